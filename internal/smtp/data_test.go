package smtp

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// Every input here holds the real end of data; after the message the
// reader must be positioned exactly after it, wherever a rule broke.
func TestDotReaderFindsRealEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string // message, or "" when refused
		err  *Error
	}{
		{"a\r\n.\r\n", "a\r\n", nil},
		{".\r\n", "", nil},
		{"..x\r\n.\r\n", ".x\r\n", nil},
		{"body\r\r\n.\r\n", "", ErrBareNewline},
		{"body\r\n.\r\r\n.\r\n", "", ErrBareNewline},
		{"a\r\r\r\n.\r\n", "", ErrBareNewline},
		{"a\n.\n.\r\n\r\n.\r\n", "", ErrBareNewline},
		{"a\n.\r\n.\r\n", "", ErrBareNewline}, // "\n.\r\n" does not end it
		{"\r\n.\r\r\n\r\n.\r\n", "", ErrBareNewline},
		{strings.Repeat("x", 20) + "\r\n.\r\n", "", ErrLineTooLong},
		{"nul\x00\r\n.\r\n", "", ErrNUL},
	} {
		br := bufio.NewReader(strings.NewReader(tc.in + "NEXT"))
		dr := newDotReader(br, dataLimits{maxBytes: 1000, maxLine: 10})
		got, err := io.ReadAll(dr)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%q: err %v, want %v", tc.in, err, tc.err)
			}
		} else if err != nil || string(got) != tc.want {
			t.Errorf("%q: got %q, %v", tc.in, got, err)
		}
		if err := dr.drain(); err != nil {
			t.Errorf("%q: drain: %v", tc.in, err)
			continue
		}
		if rest, _ := io.ReadAll(br); string(rest) != "NEXT" {
			t.Errorf("%q: after the end the stream is at %q, want NEXT", tc.in, rest)
		}
	}
}
