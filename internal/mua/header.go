package mua

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"

	"golang.org/x/text/encoding/htmlindex"
)

// maxLine is where header fields are folded (RFC 5322 §2.1.1: lines
// SHOULD be no more than 78 characters).
const maxLine = 78

// oneLine makes s safe for a header field: line breaks and tabs become
// spaces, other control characters go. Nothing typed by a user can start
// a new header field.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\r' || r == '\n' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
}

// maxWord is the longest encoded word we write: RFC 2047 §2 allows 75,
// but a shorter one fits on the first line after any field name within
// maxLine.
const maxWord = 60

// encodeText returns unstructured text (a Subject) as RFC 2047 encoded
// words when it is not plain ASCII.
func encodeText(s string) string {
	s = oneLine(s)
	// "=?" in plain text would be read as the start of an encoded word.
	if isASCII(s) && !strings.Contains(s, "=?") {
		return s
	}
	return encodeWords(s, qText)
}

// encodeWords encodes all of s as encoded words of at most maxWord
// characters, splitting between characters, never inside one (RFC 2047
// §5). Q encoding (§4.2) is used when it is not much longer than B;
// safe says which octets Q may leave as they are.
func encodeWords(s string, safe func(byte) bool) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	high := 0
	for i := 0; i < len(s); i++ {
		if !safe(s[i]) && s[i] != ' ' {
			high++
		}
	}
	useB := high*3 > len(s)
	const overhead = len("=?utf-8?q??=")
	encLen := func(raw string) int {
		if useB {
			return (len(raw) + 2) / 3 * 4
		}
		n := 0
		for i := 0; i < len(raw); i++ {
			if safe(raw[i]) || raw[i] == ' ' {
				n++
			} else {
				n += 3
			}
		}
		return n
	}
	var words []string
	cur := ""
	flush := func() {
		if cur == "" {
			return
		}
		if useB {
			words = append(words, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(cur))+"?=")
		} else {
			var b strings.Builder
			for i := 0; i < len(cur); i++ {
				switch c := cur[i]; {
				case c == ' ':
					b.WriteByte('_')
				case safe(c):
					b.WriteByte(c)
				default:
					fmt.Fprintf(&b, "=%02X", c)
				}
			}
			words = append(words, "=?utf-8?q?"+b.String()+"?=")
		}
		cur = ""
	}
	for _, r := range s {
		rs := string(r)
		if cur != "" && overhead+encLen(cur+rs) > maxWord {
			flush()
		}
		cur += rs
	}
	flush()
	return strings.Join(words, " ")
}

// qText: octets Q may carry as they are in unstructured text: printable
// ASCII but "=", "?", "_" (RFC 2047 §4.2).
func qText(c byte) bool { return c > ' ' && c < 0x7f && c != '=' && c != '?' && c != '_' }

// qPhrase: in a phrase (a display name) only letters, digits and
// "!*+-/" (RFC 2047 §5(3)).
func qPhrase(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!*+-/", c) >= 0
}

// formatAddress renders one address for a header: a name of plain words
// as it is, one with specials as a quoted string, one that is not ASCII
// as encoded words; an address alone without angle brackets.
func formatAddress(a *mail.Address) string {
	name := strings.TrimSpace(oneLine(a.Name))
	spec := strings.TrimSuffix(strings.TrimPrefix((&mail.Address{Address: a.Address}).String(), "<"), ">")
	switch {
	case name == "":
		return spec
	case !isASCII(name):
		return encodeWords(name, qPhrase) + " <" + spec + ">"
	case isAtoms(name):
		return name + " <" + spec + ">"
	}
	return (&mail.Address{Name: name, Address: a.Address}).String() // quoted-string
}

// isAtoms reports whether s is atoms separated by single spaces: a
// phrase that needs no quotes (RFC 5322 §3.2.3).
func isAtoms(s string) bool {
	for _, w := range strings.Split(s, " ") {
		if w == "" {
			return false
		}
		for i := 0; i < len(w); i++ {
			c := w[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0) {
				return false
			}
		}
	}
	return true
}

// formatAddressList joins addresses with ", ".
func formatAddressList(as []*mail.Address) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = formatAddress(a)
	}
	return strings.Join(out, ", ")
}

// writeField writes "Name: value" folded at spaces outside quoted strings
// so that lines stay within maxLine where the value allows it (a single
// longer token is never split: RFC 5322 §2.2.3 folds only at whitespace).
func writeField(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteString(":")
	col := len(name) + 1
	toks := splitFoldable(value)
	for i, tok := range toks {
		// Fold only at a single space between two words: a line must not
		// end in white space, and readers (Go's textproto among them)
		// collapse the white space around a fold.
		foldable := i > 0 && tok != "" && toks[i-1] != ""
		if foldable && col+1+len(tok) > maxLine && col > len(name)+1 {
			b.WriteString("\r\n")
			col = 0
		}
		b.WriteByte(' ')
		b.WriteString(tok)
		col += 1 + len(tok)
	}
	b.WriteString("\r\n")
}

// splitFoldable splits s at single spaces that are not inside a quoted
// string; joining the parts with " " gives s back.
func splitFoldable(s string) []string {
	var out []string
	start, quoted, esc := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case esc:
			esc = false
		case c == '\\' && quoted:
			esc = true
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// newWordDecoder decodes RFC 2047 words in any charset golang.org/x/text
// knows (the WHATWG list: ISO-8859-*, windows-125x, KOI8, Shift_JIS,
// ISO-2022-JP, EUC-KR, GBK, Big5...).
func newWordDecoder() *mime.WordDecoder {
	return &mime.WordDecoder{CharsetReader: charsetReader}
}

func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("unknown charset %q", charset)
	}
	return enc.NewDecoder().Reader(r), nil
}

// decodeHeader decodes encoded words; on failure it returns s unchanged.
func decodeHeader(s string) string {
	d, err := newWordDecoder().DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

// parseAddressList parses an address header, decoding display names. A
// field that does not parse is returned as one "address" holding the
// decoded text, so that nothing a sender wrote is hidden.
func parseAddressList(s string) []Address {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	p := mail.AddressParser{WordDecoder: newWordDecoder()}
	list, err := p.ParseList(s)
	if err != nil {
		return []Address{{Name: decodeHeader(strings.TrimSpace(s))}}
	}
	out := make([]Address, len(list))
	for i, a := range list {
		out[i] = Address{Name: a.Name, Addr: a.Address}
	}
	return out
}

// Address is a decoded mailbox: display name and address.
type Address struct {
	Name string `json:"name,omitempty"`
	Addr string `json:"address"`
}

// String is "Name <addr>", or addr alone.
func (a Address) String() string {
	switch {
	case a.Addr == "":
		return a.Name
	case a.Name == "":
		return a.Addr
	}
	return a.Name + " <" + a.Addr + ">"
}

// mailAddress converts back for composing.
func (a Address) mailAddress() *mail.Address { return &mail.Address{Name: a.Name, Address: a.Addr} }
