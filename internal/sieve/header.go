package sieve

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// Header is a message's header section: fields in order, names as sent,
// values unfolded but not decoded (the library decodes RFC 2047 words).
type Header []Field

// Field is one header field.
type Field struct{ Name, Value string }

// Values returns the values of every field named key, in order; names
// compare without case (RFC 5322 §1.2.2).
func (h Header) Values(key string) []string {
	var out []string
	for _, f := range h {
		if strings.EqualFold(f.Name, key) {
			out = append(out, f.Value)
		}
	}
	return out
}

// Get returns the first value of key, or "".
func (h Header) Get(key string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, key) {
			return f.Value
		}
	}
	return ""
}

// ErrHeaderTooLarge: the header section is longer than the limit given to
// ReadHeader. The fields read so far are still returned.
var ErrHeaderTooLarge = errors.New("sieve: header section too large")

// ReadHeader reads the header section of a message (up to the empty line
// or the end) and returns its fields and how many octets it took,
// including the empty line. It reads at most max octets. Lines without a
// colon are skipped: a filter sees what it can, it does not judge syntax.
func ReadHeader(r io.Reader, max int64) (Header, int64, error) {
	br := bufio.NewReader(io.LimitReader(r, max+1))
	var h Header
	var n int64
	var cur []byte
	flush := func() {
		if name, value, ok := bytes.Cut(cur, []byte(":")); ok && len(bytes.TrimSpace(name)) > 0 {
			h = append(h, Field{Name: string(bytes.TrimSpace(name)), Value: strings.TrimSpace(string(value))})
		}
		cur = nil
	}
	for {
		line, err := readLine(br, max)
		n += int64(len(line))
		if n > max {
			flush()
			return h, n, ErrHeaderTooLarge
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 && len(line) > 0 { // the empty line
			flush()
			return h, n, nil
		}
		if len(trimmed) > 0 && (trimmed[0] == ' ' || trimmed[0] == '\t') && cur != nil {
			cur = append(cur, ' ')
			cur = append(cur, bytes.TrimLeft(trimmed, " \t")...)
		} else {
			flush()
			cur = append([]byte(nil), trimmed...)
		}
		if err == io.EOF {
			flush()
			return h, n, nil
		}
		if err != nil {
			return h, n, err
		}
	}
}

// readLine returns one line with its end, however long, up to max+1 octets.
func readLine(br *bufio.Reader, max int64) ([]byte, error) {
	var full []byte
	for {
		part, err := br.ReadSlice('\n')
		if int64(len(full)) <= max {
			full = append(full, part...)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return full, err
		}
	}
}
