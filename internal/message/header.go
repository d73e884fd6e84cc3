// Package message holds RFC 5322 and MIME helpers that several agents
// share: a streaming header filter with limits, and the trace fields
// (Return-Path, Delivered-To, Received) added on delivery.
package message

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// Errors from Filter when a message breaks a limit.
var (
	ErrHeaderTooBig   = errors.New("message: header section too large")
	ErrTooManyHeaders = errors.New("message: too many header fields")
)

// maxDeliveredTo bounds the Delivered-To values Filter remembers.
const maxDeliveredTo = 100

// HeaderInfo is what Filter learns from a header section.
type HeaderInfo struct {
	Fields      int      // header fields seen
	Bytes       int64    // size of the header section
	Received    int      // Received fields: the hop count (RFC 5321 §6.3)
	DeliveredTo []string // Delivered-To values, lower-cased (loop detection)
	MessageID   string   // Message-ID value, for logs
	From        []string // From field values (at most a few)
	FromFields  int      // From fields seen, however many
	HasDate     bool     // a Date field was seen
	Complete    bool     // the end of the header section was seen
}

// Filter copies a message to W, dropping the header fields for which Drop
// returns true and checking the header limits. It expects CRLF line ends.
// It never buffers more than one header field, itself bounded by MaxBytes.
type Filter struct {
	W        io.Writer
	MaxBytes int64             // header section limit
	MaxCount int               // header field limit
	Drop     func(string) bool // field name → drop it; nil keeps all
	Info     HeaderInfo

	line  []byte // the current, unfinished line
	field []byte // the current field with its continuation lines
	body  bool
	err   error
}

// Write implements io.Writer.
func (f *Filter) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.body {
		return f.W.Write(p)
	}
	for i := 0; i < len(p); {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			f.line = append(f.line, p[i:]...)
			if f.err = f.count(len(p) - i); f.err != nil {
				return i, f.err
			}
			return len(p), nil
		}
		f.line = append(f.line, p[i:i+j+1]...)
		if f.err = f.count(j + 1); f.err != nil {
			return i, f.err
		}
		i += j + 1
		if f.err = f.endLine(); f.err != nil {
			return i, f.err
		}
		if f.body {
			n, err := f.W.Write(p[i:])
			return i + n, err
		}
	}
	return len(p), nil
}

func (f *Filter) count(n int) error {
	f.Info.Bytes += int64(n)
	if f.Info.Bytes > f.MaxBytes {
		return ErrHeaderTooBig
	}
	return nil
}

// endLine handles one complete header line.
func (f *Filter) endLine() error {
	line := f.line
	f.line = f.line[:0]
	switch {
	case len(line) > 0 && (line[0] == ' ' || line[0] == '\t') && len(f.field) > 0:
		f.field = append(f.field, line...) // continuation (RFC 5322 §2.2.3)
		return nil
	case isBlank(line) || !IsFieldLine(line):
		// The blank line ends the header. A line that is no field at all
		// also does (as in Postfix): the message had no separator, and
		// this is body. One is written before it, so that no reader takes
		// the line for a field, or for the continuation of a field added
		// in front (a first line " From: x" became part of our Date).
		if err := f.flushField(); err != nil {
			return err
		}
		f.body, f.Info.Complete = true, true
		if !isBlank(line) {
			if _, err := f.W.Write([]byte("\r\n")); err != nil {
				return err
			}
		}
		_, err := f.W.Write(line)
		return err
	}
	if err := f.flushField(); err != nil {
		return err
	}
	f.field = append(f.field, line...)
	return nil
}

// IsFieldLine reports whether line starts a header field: a name of
// printable ASCII other than ':' (RFC 5322 §2.2 ftext), maybe white space
// (RFC 5322 §4.5 obs-hdr), then ':'.
func IsFieldLine(line []byte) bool {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	return i < len(line) && line[i] == ':'
}

// Close ends the message: a header without body still has its last field.
func (f *Filter) Close() error {
	if f.err != nil {
		return f.err
	}
	if !f.body {
		f.field = append(f.field, f.line...)
		f.line = nil
		if err := f.flushField(); err != nil {
			return err
		}
	}
	return nil
}

// flushField records and writes (or drops) the buffered field.
func (f *Filter) flushField() error {
	if len(f.field) == 0 {
		return nil
	}
	fld := f.field
	f.field = f.field[:0]
	if f.Info.Fields++; f.Info.Fields > f.MaxCount {
		return ErrTooManyHeaders
	}
	name, value, _ := bytes.Cut(fld, []byte{':'})
	n := strings.ToLower(string(bytes.TrimRight(name, " \t")))
	f.note(n, value)
	if f.Drop != nil && f.Drop(n) {
		return nil
	}
	_, err := f.W.Write(fld)
	return err
}

func (f *Filter) note(name string, value []byte) {
	switch name {
	case "received":
		f.Info.Received++
	case "delivered-to":
		if len(f.Info.DeliveredTo) < maxDeliveredTo {
			f.Info.DeliveredTo = append(f.Info.DeliveredTo, strings.ToLower(unfold(value)))
		}
	case "message-id":
		if f.Info.MessageID == "" {
			f.Info.MessageID = unfold(value)
		}
	case "from":
		f.Info.FromFields++
		if len(f.Info.From) < 8 {
			f.Info.From = append(f.Info.From, unfold(value))
		}
	case "date":
		f.Info.HasDate = true
	}
}

// unfold joins folded lines and trims white space.
func unfold(v []byte) string {
	s := strings.NewReplacer("\r\n", "", "\n", "").Replace(string(v))
	return strings.TrimSpace(s)
}

func isBlank(line []byte) bool {
	return len(line) <= 2 && len(bytes.TrimRight(line, "\r\n")) == 0
}
