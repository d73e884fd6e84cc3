package smtp

import (
	"errors"
	"testing"

	"posthorn/internal/message"
)

func TestDecodeXtext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"abc", "abc"},
		{"a+2Bb", "a+b"},
		{"a+3Db", "a=b"},
		{"+20", " "},
		{"+41", "A"},
		{"+7E", "~"},
		{"+C3+BC", "ü"},
		{"+FF", "\xff"},
		{"rfc822;user+40example.com", "rfc822;user@example.com"},
		{"!\"#$%&'()*,-./09:;<>?@AZ[\\]^_`az{|}~", "!\"#$%&'()*,-./09:;<>?@AZ[\\]^_`az{|}~"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeXtext(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("DecodeXtext(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestDecodeXtextInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
	}{
		{"encoded LF (CVE-2020-28026)", "a+0Ab"},
		{"encoded CR", "a+0Db"},
		{"encoded CRLF", "+0D+0A"},
		{"encoded NUL", "+00"},
		{"encoded DEL", "+7F"},
		{"encoded ESC", "+1B"},
		{"encoded 1F", "+1F"},
		{"lower-case hex", "+2b"},
		{"mixed-case hex", "+c3+Bc"},
		{"truncated plus", "a+"},
		{"truncated one digit", "a+2"},
		{"non-hex", "+GG"},
		{"plus plus", "++2B"},
		{"raw equals", "a=b"},
		{"raw space", "a b"},
		{"raw tab", "a\tb"},
		{"raw LF", "a\nb"},
		{"raw CR", "a\rb"},
		{"raw NUL", "a\x00b"},
		{"raw DEL", "a\x7fb"},
		{"raw non-ASCII", "ü"},
		{"raw non-ASCII after hexchar", "+2Bü"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeXtext(tt.in)
			if !errors.Is(err, ErrXtext) {
				t.Errorf("DecodeXtext(%q) = %q, %v; want ErrXtext", tt.in, got, err)
			}
		})
	}
}

func TestEncodeXtext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"abc", "abc"},
		{"a+b=c", "a+2Bb+3Dc"},
		{"a b", "a+20b"},
		{"a\r\nb", "a+0D+0Ab"},
		{"\x00\x7f", "+00+7F"},
		{"ü", "+C3+BC"},
		{"user@example.com", "user@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := EncodeXtext(tt.in); got != tt.want {
				t.Errorf("EncodeXtext(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestUTF8AddrXtext: ORCPT=utf-8;… uses RFC 6533's encoding, not xtext:
// "+FF" gave an octet that is no character, which a DSN then showed.
func TestUTF8AddrXtext(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		unitext bool
		want    string // "" for an error
	}{
		{`j\x{F6}rg@b\x{FC}cher.example`, false, "jörg@bücher.example"},
		{"jörg@bücher.example", true, "jörg@bücher.example"},
		{"jörg@bücher.example", false, ""},
		{`a\x{2B}b@x.test`, false, "a+b@x.test"},
		{"r+FFej@x.test", false, ""},
		{"a=b@x.test", false, ""},
		{`a\x{D}b@x.test`, false, ""},
		{`a\x{d8}b@x.test`, false, "aØb@x.test"}, // HEXDIG is either case
		{`a\x{+D8}b@x.test`, false, ""},
		{`a\x{D800}b@x.test`, false, ""},
		{`a\x{}b`, false, ""},
		{`a\x{110000}b`, false, ""},
		{"a\xffb@x.test", true, ""},
		{"a\u0085b@x.test", true, ""},
		{`a\b@x.test`, false, ""},
	} {
		got, err := DecodeUTF8AddrXtext(tc.in, tc.unitext)
		if tc.want == "" && err == nil || tc.want != "" && got != tc.want {
			t.Errorf("%q (unitext %v): %q, %v; want %q", tc.in, tc.unitext, got, err, tc.want)
		}
	}
	for _, s := range []string{"jörg+x=y\\z@bücher.example", "plain@x.test", "✉@例え.jp"} {
		enc := message.EncodeUTF8AddrXtext(s)
		if dec, err := DecodeUTF8AddrXtext(enc, false); err != nil || dec != s {
			t.Errorf("round trip of %q: %q → %q, %v", s, enc, dec, err)
		}
	}
}
