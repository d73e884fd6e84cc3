package message

import (
	"strings"
	"testing"
)

func TestFilterHeaderSelection(t *testing.T) {
	t.Parallel()
	h := crlf("Subject: a\n folded\nFrom: x@example.org\nto: y@example.org\nX-Trace: 1\n\tmore\nReceived: one\nReceived: two\nSubject : spaced\n\nBody-Field: not header\n")
	for _, tc := range []struct {
		name    string
		header  string
		names   []string
		exclude bool
		want    string
	}{
		{"names in any case, folding kept", h, []string{"SUBJECT", "To"}, false, "Subject: a\n folded\nto: y@example.org\nSubject : spaced\n\n"},
		{"repeated fields all kept", h, []string{"received"}, false, "Received: one\nReceived: two\n\n"},
		{"NOT drops folded fields whole", h, []string{"subject", "x-trace", "received"}, true, "From: x@example.org\nto: y@example.org\n\n"},
		{"nothing matches", h, []string{"Cc"}, false, "\n"},
		{"no names", h, nil, false, "\n"},
		{"NOT without names is the whole header", h, nil, true, "Subject: a\n folded\nFrom: x@example.org\nto: y@example.org\nX-Trace: 1\n\tmore\nReceived: one\nReceived: two\nSubject : spaced\n\n"},
		{"bare LF in, CRLF out", "Subject: a\n b\nTo: c\n\n", []string{"subject"}, false, "Subject: a\n b\n\n"},
		{"no final blank line", "Subject: a\r\nTo: c", []string{"to"}, false, "To: c\n\n"},
		{"empty header", "\r\n", []string{"to"}, true, "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := string(FilterHeader([]byte(tc.header), tc.names, tc.exclude)); got != crlf(tc.want) {
				t.Errorf("got %q, want %q", got, crlf(tc.want))
			}
		})
	}
}

// TestFilterHeaderOfPart selects from a part's header as the IMAP server
// does, slicing the message at the parsed offsets.
func TestFilterHeaderOfPart(t *testing.T) {
	t.Parallel()
	msg := crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain;\n charset=utf-8\nContent-ID: <c@x>\n\nbody\n--x--\n")
	p, err := ParseStructure(strings.NewReader(msg), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	c := p.Parts[0]
	got := string(FilterHeader([]byte(msg[c.HeaderStart:c.BodyStart]), []string{"content-type"}, false))
	if want := "Content-Type: text/plain;\r\n charset=utf-8\r\n\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
