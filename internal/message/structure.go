package message

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// Limits bound ParseStructure (research/security.md §2.5: Dovecot stops at
// 100 nested and 10,000 total parts).
type Limits struct {
	MaxDepth       int   // nested multiparts and message/rfc822, default 100
	MaxParts       int   // parts in all, default 10000
	MaxHeaderBytes int64 // one header section, default 1 MiB
}

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = 100
	}
	if l.MaxParts <= 0 {
		l.MaxParts = 10000
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 1 << 20
	}
	return l
}

// ErrHeaderTooLarge: a header section over Limits.MaxHeaderBytes.
var ErrHeaderTooLarge = errors.New("message: header section too large")

// Part is one MIME entity (RFC 2045, RFC 2046) with its place in the
// message: the header is [HeaderStart, BodyStart), including the blank
// line that ends it, and the body [BodyStart, End).
type Part struct {
	HeaderStart, BodyStart, End int64
	Header                      []Field
	Type, Subtype               string // lower-case; text/plain by default
	Params                      []Param
	ID, Description, Encoding   string // Encoding lower-case, "7bit" by default
	MD5, Location               string
	Disposition                 string
	DispositionParams           []Param
	Language                    []string
	BodyLines                   int64
	Parts                       []*Part // children of a multipart
	Message                     *Part   // the message inside message/rfc822 or message/global
}

// Field is one header field, its value unfolded and trimmed.
type Field struct{ Name, Value string }

// Param is one parameter of Content-Type or Content-Disposition.
type Param struct{ Key, Value string }

// Get returns the first value of a header field (case-insensitive name).
func (p *Part) Get(name string) string {
	for _, f := range p.Header {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Param returns a Content-Type parameter.
func (p *Part) Param(key string) string {
	for _, pr := range p.Params {
		if strings.EqualFold(pr.Key, key) {
			return pr.Value
		}
	}
	return ""
}

// ParseStructure reads a message once, streaming, and returns its MIME
// structure. Memory grows with nesting depth and header size, never with
// the size of a body (see parseStream in mime.go).
func ParseStructure(rd io.Reader, lim Limits) (*Part, error) {
	return parseStream(rd, lim)
}

// Parse returns the MIME structure of a message held in memory.
func Parse(data []byte, lim Limits) (*Part, error) {
	return parseStream(bytes.NewReader(data), lim)
}
