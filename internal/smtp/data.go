package smtp

import (
	"bufio"
	"errors"
	"io"
)

// Errors found in message data. The server keeps reading to the real end of
// the message (RFC 5321 §4.1.1.4: only <CRLF>.<CRLF> ends DATA) before it
// replies with one of these, so the dialogue never falls out of step and no
// smuggled command is ever executed.
var (
	// ErrBareNewline: a CR not followed by LF, or an LF without a CR before
	// it (RFC 5321 §2.3.8). These are the SMTP-smuggling vectors
	// (CVE-2023-51764 and relatives), so the message is refused.
	ErrBareNewline = &Error{Code: CodeMailboxNotFound, Enhanced: "5.6.0", Msg: "Message contains bare CR or LF; lines must end with CRLF"}
	// ErrTooBig: the message is larger than the server's SIZE (RFC 1870 §6.3).
	ErrTooBig = &Error{Code: CodeExceededStorage, Enhanced: "5.3.4", Msg: "Message too big"}
	// ErrNUL: a NUL octet, which no SMTP text may hold (RFC 5321 §4.5.2,
	// RFC 6152 §3: 8-bit lines still exclude NUL) and C-based readers of the
	// message downstream would misread.
	ErrNUL = &Error{Code: CodeMailboxNotFound, Enhanced: "5.6.0", Msg: "Message contains NUL octets"}
	// ErrLineTooLong: a text line is over the limit (RFC 5321 §4.5.3.1.6).
	ErrLineTooLong = &Error{Code: CodeMailboxNotFound, Enhanced: "5.6.0", Msg: "Message line too long"}
)

// dataLimits bound what a message may contain.
type dataLimits struct {
	maxBytes int64 // after dot-unstuffing, CRLF counted
	maxLine  int   // octets per line, CRLF not counted
}

// lineChecker enforces CRLF line ends and the line length on a byte stream.
// It is shared by DATA and BDAT, so a line may span several BDAT chunks.
type lineChecker struct {
	lim     dataLimits
	n       int64 // octets accepted so far
	lineLen int
	cr      bool // last octet was CR
	err     *Error
}

// check validates p, which continues the stream. It returns the length of
// the valid prefix; on a violation it records the error.
func (c *lineChecker) check(p []byte) int {
	for i, b := range p {
		switch {
		case c.cr && b != '\n':
			return c.fail(i, ErrBareNewline)
		case b == '\n' && !c.cr:
			return c.fail(i, ErrBareNewline)
		case b == '\n':
			c.cr, c.lineLen = false, 0
		case b == '\r':
			c.cr = true
		case b == 0:
			return c.fail(i, ErrNUL)
		default:
			c.lineLen++
			if c.lineLen > c.lim.maxLine {
				return c.fail(i, ErrLineTooLong)
			}
		}
	}
	if c.n += int64(len(p)); c.n > c.lim.maxBytes {
		c.err = ErrTooBig
		return 0
	}
	return len(p)
}

func (c *lineChecker) fail(i int, e *Error) int {
	c.err = e
	return i
}

// dotReader reads DATA content up to <CRLF>.<CRLF>, removes dot-stuffing
// (RFC 5321 §4.5.2) and checks every line. Once a rule is broken, Read
// returns the *Error; drain then skips to the real end of the data.
type dotReader struct {
	br    *bufio.Reader
	state int
	check lineChecker
	eof   bool
	buf   []byte // checked output of the last step
	off   int    // buf[off:] is not yet returned: the caller's p was full
}

const (
	dotBOL   = iota // at the beginning of a line
	dotText         // inside a line
	dotCR           // inside a line, after CR
	dotDot          // after a leading '.'
	dotDotCR        // after ".\r" at the beginning of a line
)

func newDotReader(br *bufio.Reader, lim dataLimits) *dotReader {
	return &dotReader{br: br, check: lineChecker{lim: lim}}
}

// Read implements io.Reader. A step may yield more octets than p has room
// for (a run of text is as long as what is buffered): the rest is kept
// for the next call, never dropped.
func (r *dotReader) Read(p []byte) (int, error) {
	n := 0
	for {
		if r.off < len(r.buf) {
			c := copy(p[n:], r.buf[r.off:])
			n += c
			r.off += c
			if n == len(p) {
				return n, nil
			}
		}
		switch {
		case r.check.err != nil:
			return n, r.check.err
		case r.eof && n == 0:
			return 0, io.EOF
		case r.eof, n > 0 && r.br.Buffered() == 0:
			return n, nil // return what we have rather than block
		}
		r.buf, r.off = r.buf[:0], 0
		if err := r.step(); err != nil {
			return n, err
		}
		r.buf = r.buf[:r.check.check(r.buf)]
	}
}

// step consumes input and appends the resulting message octets to r.buf.
// Text inside a line is copied in runs for speed.
func (r *dotReader) step() error {
	if r.state == dotText {
		return r.run()
	}
	b, err := r.br.ReadByte()
	if err != nil {
		return unexpectedEOF(err)
	}
	switch r.state {
	case dotBOL:
		if b == '.' {
			r.state = dotDot
			return nil
		}
		r.text(b)
	case dotCR:
		r.buf = append(r.buf, b)
		switch b {
		case '\n':
			r.state = dotBOL
		case '\r':
			r.state = dotCR // a second CR may still start a CRLF
		default:
			r.state = dotText
		}
	case dotDot:
		if b == '\r' {
			r.state = dotDotCR
			return nil
		}
		r.text(b) // dot-stuffed line: the leading dot is dropped
	case dotDotCR:
		if b == '\n' {
			r.eof = true // <CRLF>.<CRLF>
			return nil
		}
		// ".\r" then something else: the CR is bare. Report it.
		r.buf = append(r.buf, '\r', b)
		r.state = dotText
		if b == '\r' {
			r.state = dotCR
		}
	}
	return nil
}

func (r *dotReader) text(b byte) {
	r.buf = append(r.buf, b)
	r.state = dotText
	if b == '\r' {
		r.state = dotCR
	}
}

// run copies octets up to and including the next CR (or a bare LF, which
// the checker then refuses).
func (r *dotReader) run() error {
	avail := r.br.Buffered()
	if avail == 0 {
		if _, err := r.br.Peek(1); err != nil {
			return unexpectedEOF(err)
		}
		avail = r.br.Buffered()
	}
	chunk, _ := r.br.Peek(avail)
	i := 0
	for i < len(chunk) && chunk[i] != '\r' && chunk[i] != '\n' {
		i++
	}
	if i < len(chunk) {
		if chunk[i] == '\r' {
			r.state = dotCR
		}
		i++ // include the CR or LF
	}
	r.buf = append(r.buf, chunk[:i]...)
	_, _ = r.br.Discard(i)
	return nil
}

// drain reads and discards input up to the real end of the data. It works
// whether or not a rule was broken: r.state always reflects every octet
// consumed so far.
func (r *dotReader) drain() error {
	st := r.state
	for !r.eof {
		b, err := r.br.ReadByte()
		if err != nil {
			return unexpectedEOF(err)
		}
		switch {
		case b == '\r' && st == dotDot:
			st = dotDotCR
		case b == '\r':
			st = dotCR
		case b == '\n' && st == dotDotCR:
			r.eof = true
		case b == '\n' && st == dotCR:
			st = dotBOL
		case b == '.' && st == dotBOL:
			st = dotDot
		default:
			st = dotText
		}
	}
	return nil
}

// readChunk reads exactly size octets of a BDAT chunk (RFC 3030 §2) from br,
// checks them with c and writes the valid ones to w. After a violation, or
// when w fails, the rest of the chunk is still read and discarded, so the
// next command is found where the client put it.
func readChunk(br *bufio.Reader, size int64, c *lineChecker, w io.Writer) (werr error, err error) {
	var buf [32 << 10]byte
	for size > 0 {
		n := int64(len(buf))
		if n > size {
			n = size
		}
		m, rerr := io.ReadFull(br, buf[:n])
		size -= int64(m)
		if rerr != nil {
			return werr, unexpectedEOF(rerr)
		}
		if c.err != nil || werr != nil {
			continue
		}
		k := c.check(buf[:m])
		if k > 0 {
			_, werr = w.Write(buf[:k])
		}
	}
	return werr, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// finish checks the end of a BDAT message: a final CR with no LF is bare.
func (c *lineChecker) finish() *Error {
	if c.err == nil && c.cr {
		c.err = ErrBareNewline
	}
	return c.err
}
