package smtp

import (
	"strings"
	"testing"
	"unicode"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/.

// FuzzParsePath checks that ParsePath never panics and that whatever it
// accepts is canonical: String parses back to the same Address, the
// domain holds no "@", and nothing holds a control character.
func FuzzParsePath(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, o byte) {
		opts := PathOptions{AllowNull: o&1 != 0, UTF8: o&2 != 0}
		p, rest, err := ParsePath(s, opts)
		if err != nil {
			return
		}
		if !strings.HasSuffix(s, rest) || strings.HasPrefix(rest, " ") {
			t.Fatalf("ParsePath(%q): bad rest %q", s, rest)
		}
		if p.Null {
			if !opts.AllowNull || !strings.HasPrefix(s, "<>") || p.Route != nil || !p.Addr.IsZero() {
				t.Fatalf("ParsePath(%q, %+v) = %+v", s, opts, p)
			}
			return
		}
		checkFuzzedAddress(t, s, opts, p.Addr)
		for _, d := range p.Route {
			if d == "" || strings.ContainsAny(d, "@[]") || hasControl(d) {
				t.Fatalf("ParsePath(%q): bad route domain %q", s, d)
			}
		}
	})
}

func checkFuzzedAddress(t *testing.T, s string, opts PathOptions, a Address) {
	t.Helper()
	if a.Local == "" || a.Domain == "" || strings.Contains(a.Domain, "@") {
		t.Fatalf("ParsePath(%q) = %+v", s, a)
	}
	if hasControl(a.Local) || hasControl(a.Domain) {
		t.Fatalf("ParsePath(%q) = %+v: control character", s, a)
	}
	if !opts.UTF8 && !a.IsASCII() {
		t.Fatalf("ParsePath(%q) = %+v: non-ASCII without UTF8", s, a)
	}
	if ad := a.ASCIIDomain(); ad == "" || !isASCII(ad) {
		t.Fatalf("ParsePath(%q) = %+v: ASCIIDomain %q", s, a, ad)
	}
	again := "<" + a.String() + ">"
	q, rest, err := ParsePath(again, opts)
	if err != nil || q.Addr != a || rest != "" {
		t.Fatalf("ParsePath(%q) = %+v; re-parsing %q = %+v, %q, %v", s, a, again, q.Addr, rest, err)
	}
	if b, err := ParseAddress(a.String(), opts.UTF8); err != nil || b != a {
		t.Fatalf("ParseAddress(%q) = %+v, %v; want %+v", a.String(), b, err, a)
	}
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	})
}

// FuzzParseParams checks that ParseParams never panics and that what it
// accepts is clean: upper-case keywords, no duplicates, no SP or control
// characters in values.
func FuzzParseParams(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, utf8 bool) {
		params, err := ParseParams(s, utf8)
		if err != nil {
			return
		}
		seen := make(map[string]bool)
		for _, p := range params {
			if !isKeyword(p.Key) || p.Key != strings.ToUpper(p.Key) || seen[p.Key] {
				t.Fatalf("ParseParams(%q): bad or repeated key %q", s, p.Key)
			}
			seen[p.Key] = true
			if p.HasValue == (p.Value == "") || strings.ContainsAny(p.Value, " =") || hasControl(p.Value) {
				t.Fatalf("ParseParams(%q): bad value %+v", s, p)
			}
			if !utf8 && !isASCII(p.Value) {
				t.Fatalf("ParseParams(%q): non-ASCII value %q without UTF8", s, p.Value)
			}
		}
	})
}

// FuzzXtext checks that DecodeXtext never panics nor returns a control
// character, and that decoding undoes EncodeXtext.
func FuzzXtext(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := DecodeXtext(s); err == nil {
			if strings.ContainsFunc(d, func(r rune) bool { return r < 32 || r == 127 }) {
				t.Fatalf("DecodeXtext(%q) = %q: control character", s, d)
			}
			if d2, err := DecodeXtext(EncodeXtext(d)); err != nil || d2 != d {
				t.Fatalf("DecodeXtext(EncodeXtext(%q)) = %q, %v", d, d2, err)
			}
		}
		if strings.ContainsFunc(s, func(r rune) bool { return r < 32 || r == 127 }) {
			return
		}
		e := EncodeXtext(s)
		if d, err := DecodeXtext(e); err != nil || d != s {
			t.Fatalf("DecodeXtext(EncodeXtext(%q)) = %q, %v; encoded %q", s, d, err, e)
		}
	})
}
