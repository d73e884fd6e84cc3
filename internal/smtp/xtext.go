package smtp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrXtext is returned, wrapped with detail, by DecodeXtext.
var ErrXtext = errors.New("invalid xtext")

// DecodeXtext decodes xtext = *( xchar / hexchar ) (RFC 3461 §4), as used
// by ENVID, ORCPT and AUTH=. Lower-case hex, a truncated "+" and any
// encoded control character are refused: an encoded CR or LF is how
// Exim CVE-2020-28021 and CVE-2020-28026 injected spool-file lines.
func DecodeXtext(s string) (string, error) {
	if !strings.ContainsRune(s, '+') {
		return s, checkXchars(s)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			d, err := decodeHexchar(s[i+1:])
			if err != nil {
				return "", err
			}
			b.WriteByte(d)
			i += 2
		case isXchar(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("%w: bad character %q", ErrXtext, c)
		}
	}
	return b.String(), nil
}

func checkXchars(s string) error {
	for i := 0; i < len(s); i++ {
		if !isXchar(s[i]) {
			return fmt.Errorf("%w: bad character %q", ErrXtext, s[i])
		}
	}
	return nil
}

// decodeHexchar decodes the two digits after "+": hexchar = "+" 2(HEXDIG),
// upper-case only (RFC 3461 §4: "A" through "F").
func decodeHexchar(s string) (byte, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("%w: truncated hexchar", ErrXtext)
	}
	hi, ok1 := upperHex(s[0])
	lo, ok2 := upperHex(s[1])
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("%w: bad hexchar %q", ErrXtext, s[:2])
	}
	d := hi<<4 | lo
	if d < 32 || d == 127 { // security.md §2.6: no encoded CR, LF, NUL.
		return 0, fmt.Errorf("%w: encoded control character %q", ErrXtext, d)
	}
	return d, nil
}

func upperHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isXchar reports xchar: any ASCII from "!" (33) to "~" (126) except "+"
// and "=" (RFC 3461 §4).
func isXchar(c byte) bool { return 33 <= c && c <= 126 && c != '+' && c != '=' }

// EncodeXtext encodes s as xtext (RFC 3461 §4): "+", "=" and every byte
// outside 33–126 become "+XX".
func EncodeXtext(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isXchar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('+')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xF])
	}
	return b.String()
}

// DecodeUTF8AddrXtext decodes the address of ORCPT=utf-8;… (RFC 6533
// §3): printable ASCII but "+", "=" and "\" as they are, any character
// as \x{HEX} (either case: ABNF literals are, RFC 5234 §2.3), and, with SMTPUTF8 (utf-8-addr-unitext), UTF-8 as it is.
// Controls, invalid UTF-8 and xtext's "+XX" are refused: "+FF" decoded
// as xtext gave an octet that is no character.
func DecodeUTF8AddrXtext(s string, unitext bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && strings.HasPrefix(s[i:], `\x{`):
			end := strings.IndexByte(s[i:], '}')
			if end < 4 || end > 9 {
				return "", fmt.Errorf("%w: bad \\x{…}", ErrXtext)
			}
			n, err := strconv.ParseUint(s[i+3:i+end], 16, 32)
			r := rune(n)
			if err != nil || !utf8.ValidRune(r) || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				return "", fmt.Errorf("%w: bad \\x{%s}", ErrXtext, s[i+3:i+end])
			}
			b.WriteRune(r)
			i += end + 1
		case c > 0x20 && c < 0x7f && c != '+' && c != '=' && c != '\\':
			b.WriteByte(c)
			i++
		case c >= 0x80 && unitext:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError || r < 0xa0 {
				return "", fmt.Errorf("%w: invalid UTF-8", ErrXtext)
			}
			b.WriteString(s[i : i+n])
			i += n
		default:
			return "", fmt.Errorf("%w: bad character %q", ErrXtext, c)
		}
	}
	return b.String(), nil
}
