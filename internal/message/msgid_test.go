package message

import (
	"slices"
	"testing"
)

func TestMessageIDs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"<a@x> <b@y>":                       {"<a@x>", "<b@y>"},
		"(comment) <a@x>\r\n\t<b@y> junk":   {"<a@x>", "<b@y>"},
		"<a b@x> <> <c@z":                   nil, // whitespace, empty, unterminated
		"no brackets at all":                nil,
		"<bad\x01id@x> <ok@x> <c1\u009b@x>": {"<ok@x>"}, // control characters
	} {
		if got := MessageIDs(in); !slices.Equal(got, want) {
			t.Errorf("MessageIDs(%q) = %q, want %q", in, got, want)
		}
	}
}
