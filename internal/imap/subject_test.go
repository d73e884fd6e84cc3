package imap

import (
	"strings"
	"testing"
	"time"
)

// TestBaseSubject follows RFC 5256 §2.1 step by step.
func TestBaseSubject(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Hello":                         "Hello",
		"Re: Hello":                     "Hello",
		"RE: re: Fwd: FW: hello":        "hello",
		"Re[2]: Hello":                  "Hello",
		"Re [list]: Hello":              "Hello",
		"[list] Re: Hello":              "Hello",
		"[list] [other] Hello":          "Hello",
		"[list]":                        "[list]",
		"Hello (fwd)":                   "Hello",
		"Hello (FWD) (fwd)  ":           "Hello",
		"[Fwd: Re: Hello]":              "Hello",
		"Re: [Fwd: [list] Hello (fwd)]": "Hello",
		"  Hello \t\r\n  world  ":       "Hello world",
		"Reply to this":                 "Reply to this", // "re" needs its colon
		"Re:Hello":                      "Hello",
		"=?utf-8?q?Re=3A_caf=C3=A9?=":   "café",
		"":                              "",
		"Re:":                           "",
		"[a[b] Hello":                   "[a[b] Hello", // a blob has no bracket inside
	} {
		if got := baseSubject(in); got != want {
			t.Errorf("baseSubject(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzBaseSubject(f *testing.F) {
	f.Add("Re: [Fwd: [list] Hello (fwd)]")
	f.Add("[fwd:[fwd:[fwd:]]]")
	f.Fuzz(func(t *testing.T, s string) {
		b := baseSubject(s)
		if len(b) > len(s)+len(s)/2+8 { // decoding may grow it a little
			t.Fatalf("base subject %q longer than %q", b, s)
		}
		if baseSubject(b) != b && !hasEncodedWord(b) {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, b, baseSubject(b))
		}
	})
}

func hasEncodedWord(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '=' && s[i+1] == '?' {
			return true
		}
	}
	return false
}

// TestBaseSubjectLinear: a subject of 50,000 "[x]" blobs (about 200 KB,
// anyone can send one) takes linear time; removing one blob per round
// held a core for 15 s per SORT or THREAD.
func TestBaseSubjectLinear(t *testing.T) {
	t.Parallel()
	for _, s := range []string{strings.Repeat("[x] ", 50000) + "foo", strings.Repeat("Re: [x] ", 30000) + "foo", strings.Repeat("[fwd: ", 20000) + "foo" + strings.Repeat("]", 20000)} {
		start := time.Now()
		got := baseSubject(s)
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("%.20q…: %v", s, d)
		}
		if got != "foo" {
			t.Errorf("%.20q…: base subject %.40q, want foo", s, got)
		}
	}
}
