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

// readDot reads a whole message through a dotReader over a bufio.Reader of
// bufSize, asking for chunk octets at a time, then drains it; it returns
// the message, the error and what is left of the input.
func readDot(in string, bufSize, chunk int, lim dataLimits) (string, error, string) {
	br := bufio.NewReaderSize(strings.NewReader(in), bufSize)
	dr := newDotReader(br, lim)
	var out []byte
	p := make([]byte, chunk)
	var err error
	for {
		var n int
		n, err = dr.Read(p)
		out = append(out, p[:n]...)
		if err != nil {
			break
		}
	}
	if err == io.EOF {
		err = nil
	}
	if derr := dr.drain(); derr != nil && err == nil {
		err = derr
	}
	rest, _ := io.ReadAll(br)
	return string(out), err, string(rest)
}

// However small the caller's buffer, and whatever the read buffer, a
// message comes out whole: a run of text longer than the caller's buffer
// was once cut short (io.ReadAll starts with 512 octets).
func TestDotReaderSmallReads(t *testing.T) {
	t.Parallel()
	msg := "Subject: x\r\n\r\n" + strings.Repeat(strings.Repeat("y", 990)+"\r\n", 40) + "..dot\r\nend\r\n"
	want := strings.Replace(msg, "\r\n..dot", "\r\n.dot", 1)
	lim := dataLimits{maxBytes: 1 << 20, maxLine: 998}
	for _, bufSize := range []int{16, 4096, 64 << 10} {
		for _, chunk := range []int{1, 7, 512, 4096, 32 << 10} {
			got, err, rest := readDot(msg+".\r\nNEXT", bufSize, chunk, lim)
			if err != nil || got != want || rest != "NEXT" {
				t.Errorf("buffer %d, reads of %d: %d octets (want %d), err %v, rest %q", bufSize, chunk, len(got), len(want), err, rest)
			}
		}
	}
}

// Any input reads the same whatever the read sizes: the same octets, the
// same error, the same position after the end.
func FuzzDotReaderChunks(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "..x\r\n.\r\nQUIT\r\n", "a\rb\r\n.\r\n", "x\n.\r\n.\r\n", strings.Repeat("z", 3000) + "\r\n.\r\n"} {
		f.Add(s, uint16(1), uint16(16))
	}
	f.Fuzz(func(t *testing.T, in string, chunk, bufSize uint16) {
		lim := dataLimits{maxBytes: 1 << 16, maxLine: 998}
		c, b := 1+int(chunk)%5000, 16+int(bufSize)%70000
		wantOut, wantErr, wantRest := readDot(in, 64<<10, 64<<10, lim)
		got, err, rest := readDot(in, b, c, lim)
		if got != wantOut || rest != wantRest || !errors.Is(err, wantErr) && !errors.Is(wantErr, err) {
			t.Fatalf("reads of %d through %d: %d octets, err %v, rest %d; in one go: %d octets, err %v, rest %d",
				c, b, len(got), err, len(rest), len(wantOut), wantErr, len(wantRest))
		}
	})
}
