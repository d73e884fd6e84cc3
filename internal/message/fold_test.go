package message

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// fold runs FoldLines over s, once whole and once an octet at a time:
// both must give the same result.
func fold(t testing.TB, s string, max int) string {
	t.Helper()
	whole, err := io.ReadAll(FoldLines(strings.NewReader(s), max))
	if err != nil {
		t.Fatal(err)
	}
	slow, err := io.ReadAll(FoldLines(iotest.OneByteReader(strings.NewReader(s)), max))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(whole, slow) {
		t.Fatalf("octet by octet gave another result:\n%q\n%q", whole, slow)
	}
	return string(whole)
}

// longest is the longest line of s, its line end (LF or CRLF) not
// counted; a CR without an LF after it is text.
func longest(s string) int {
	n := 0
	for line := range strings.Lines(s) {
		if l, ok := strings.CutSuffix(line, "\n"); ok {
			line = strings.TrimSuffix(l, "\r")
		}
		n = max(n, len(line))
	}
	return n
}

// TestFoldLines: lines over the limit come out in pieces of at most the
// limit, UTF-8 characters whole, header fields folded at their white
// space, and nothing lost; other lines pass as they are.
func TestFoldLines(t *testing.T) {
	const max = MaxLine
	subject := "Subject:" + strings.Repeat(" word", 500)
	body := strings.Repeat("x", 2500)
	utf := strings.Repeat("é", 1200)
	msg := subject + "\r\nX-Long: " + strings.Repeat("y", 1500) + "\r\n\r\n" + body + "\r\nshort\r\n" + utf + "\r\n"
	out := fold(t, msg, max)
	if n := longest(out); n > max {
		t.Fatalf("a line of %d octets is left", n)
	}
	if !utf8.ValidString(out) {
		t.Error("a UTF-8 character was cut")
	}
	hdr, rest, _ := strings.Cut(out, "\r\n\r\n")
	// Unfolding (RFC 5322 §2.2.3) gives the fields back; the Subject was
	// folded at its own spaces, so exactly.
	fields := strings.Split(strings.ReplaceAll(hdr, "\r\n ", " "), "\r\n")
	if len(fields) != 2 || fields[0] != subject || strings.ReplaceAll(fields[1], " ", "") != "X-Long:"+strings.Repeat("y", 1500) {
		t.Errorf("header after unfolding: %.80q…", fields)
	}
	if got := strings.ReplaceAll(rest, "\r\n ", ""); got != body+"\r\nshort\r\n"+utf+"\r\n" {
		t.Errorf("body pieces do not join up to the original: %.80q…", got)
	}
	for _, s := range []string{
		"Subject: x\r\n\r\nhello\r\n",
		"a\nbare LF\r\nno end", // line ends are passed as they are
		"",
		strings.Repeat("z", max) + "\r\n" + strings.Repeat("z", max),
	} {
		if got := fold(t, s, max); got != s {
			t.Errorf("%.40q… changed: %.60q…", s, got)
		}
	}
	// A continuation line indented by several spaces before a long word,
	// or a field with white space at its end, gives no piece of white
	// space alone.
	for _, c := range []struct {
		msg string
		max int
	}{
		{"X-Url: a\r\n   " + strings.Repeat("u", 1500) + "\r\n\r\nb\r\n", max},
		{"X-A: aaaaaaaaaa \r\n\r\nb\r\n", 15},
		{"X-A: aaa bbbbbbbbb  \t\r\n\r\nb\r\n", 15},
	} {
		out := fold(t, c.msg, c.max)
		for _, l := range strings.Split(out, "\r\n") {
			if l != "" && strings.TrimLeft(l, " \t") == "" {
				t.Errorf("a header line of white space alone: %q in %q", l, out)
			}
		}
		if n := longest(out); n > c.max {
			t.Errorf("a line of %d in %q", n, out)
		}
	}
	// Every length around the piece boundaries, header and body, with and
	// without a final line end: a rest of exactly the limit once came out
	// one octet over it.
	for n := max - 2; n < 3*max+3; n++ {
		for _, m := range []string{
			"X-H: " + strings.Repeat("h", n) + "\r\n\r\nb\r\n",
			"S: s\r\n\r\n" + strings.Repeat("b", n) + "\r\n",
			"S: s\r\n\r\n" + strings.Repeat("b", n),
		} {
			if got := longest(fold(t, m, max)); got > max {
				t.Fatalf("a line of %d octets gave one of %d", n, got)
			}
		}
	}
}

// FuzzFoldLines: whatever the input, no line is left over the limit, the
// same input octet by octet gives the same output, only line ends and
// spaces are added, and an input without long lines comes out unchanged.
func FuzzFoldLines(f *testing.F) {
	f.Add([]byte("Subject: a b c d e f g h\r\n\r\nbody body body\r\n"), 10)
	f.Add([]byte("X: \t\t\t\t\t\t\t\t\t\t\t\t\t\r\n\r\n"), 8)
	f.Add([]byte("\r\n"+strings.Repeat("ééé", 20)), 9)
	f.Add([]byte("a\rb\nc\r\r\n\n"+strings.Repeat("q", 40)), 12)
	f.Fuzz(func(t *testing.T, in []byte, lim int) {
		lim = 8 + (lim%200+200)%200
		out := fold(t, string(in), lim)
		if n := longest(out); n > lim {
			t.Fatalf("line of %d octets, limit %d", n, lim)
		}
		strip := func(s string) string { // octets, not runes: in may be any
			var b []byte
			for i := range len(s) {
				if !strings.ContainsRune("\r\n \t", rune(s[i])) {
					b = append(b, s[i])
				}
			}
			return string(b)
		}
		if strip(out) != strip(string(in)) {
			t.Fatalf("text changed beyond line ends and spaces:\n%q\n%q", in, out)
		}
		if longest(string(in)) <= lim && out != string(in) {
			t.Fatalf("short lines changed:\n%q\n%q", in, out)
		}
	})
}

func ExampleFoldLines() {
	out, _ := io.ReadAll(FoldLines(strings.NewReader("Subject: one two three\r\n\r\n0123456789abcdef\r\n"), 10))
	fmt.Print(strings.ReplaceAll(string(out), "\r\n", "|\n"))
	// Output:
	// Subject:|
	//  one two|
	//  three|
	// |
	// 0123456789|
	//  abcdef|
}
