package imapconn

import (
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestSearchUIDs(t *testing.T) {
	t.Parallel()
	const max32 = imap.UID(4294967295)
	for _, tc := range []struct {
		name  string
		all   imap.NumSet
		from  uint32
		want  []uint32
		error string
	}{
		{"none", nil, 1, nil, ""},
		{"plain", imap.UIDSetNum(5, 3, 3, 9), 1, []uint32{3, 5, 9}, ""},
		{"from", imap.UIDSetNum(2, 7, 8), 7, []uint32{7, 8}, ""},
		// go-imap's AllUIDs loops for ever on this one.
		{"last UID", imap.UIDSet{{Start: max32, Stop: max32}}, 1, []uint32{4294967295}, ""},
		{"range to the last UID", imap.UIDSet{{Start: max32 - 2, Stop: max32}}, 1, []uint32{4294967293, 4294967294, 4294967295}, ""},
		{"reversed range", imap.UIDSet{{Start: 9, Stop: 7}}, 1, []uint32{7, 8, 9}, ""},
		{"huge range", imap.UIDSet{{Start: 1, Stop: 4000000000}}, 1, nil, "more than"},
		{"star", imap.UIDSet{{Start: 1, Stop: 0}}, 1, nil, `"*"`},
		{"sequence numbers", imap.SeqSetNum(1, 2), 1, nil, "sequence numbers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SearchUIDs(tc.all, tc.from, 1000)
			if tc.error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.error) {
					t.Fatalf("err = %v, want one with %q", err, tc.error)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("SearchUIDs = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
