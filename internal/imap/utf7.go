package imap

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Modified UTF-7 for mailbox names (RFC 3501 §5.1.3): printable ASCII as
// is ("&" as "&-"), anything else as "&" + modified base64 of UTF-16 + "-".

var b64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

var errUTF7 = errors.New("bad modified UTF-7")

// encodeUTF7 encodes a UTF-8 name.
func encodeUTF7(s string) string {
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) > 0 {
			b.WriteByte('&')
			u := utf16.Encode(run)
			raw := make([]byte, 2*len(u))
			for i, c := range u {
				raw[2*i], raw[2*i+1] = byte(c>>8), byte(c)
			}
			b.WriteString(b64.EncodeToString(raw))
			b.WriteByte('-')
			run = run[:0]
		}
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		run = append(run, r)
	}
	flush()
	return b.String()
}

// decodeUTF7 decodes a modified UTF-7 name. It refuses non-canonical
// encodings (encoded printable ASCII, like "&AC4-" for "."), which could
// otherwise smuggle "../" past name checks (security.md §2.12).
func decodeUTF7(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return "", errUTF7
		}
		enc := s[i+1 : i+1+j]
		i += j + 1
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		if err := decodeRun(&b, enc); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

func decodeRun(b *strings.Builder, enc string) error {
	raw, err := b64.DecodeString(enc)
	if err != nil || len(raw)%2 != 0 {
		return errUTF7
	}
	u := make([]uint16, len(raw)/2)
	for i := range u {
		u[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
	}
	for _, r := range utf16.Decode(u) {
		if r >= 0x20 && r <= 0x7e || r == utf8.RuneError {
			return errUTF7
		}
		b.WriteRune(r)
	}
	return nil
}
