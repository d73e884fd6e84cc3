package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// copyDotStuffed streams r as the data of a multi-line response and ends
// it with ".\r\n" (RFC 1939 §3). A line starting with "." gets another.
// Every line goes out with CRLF: LF ends a line, with or without CR
// before it, and a last line without a line end gets one, so the
// terminator always starts a line and no content line is a lone ".". A
// bare CR, which RFC 5322 §2.3 forbids but stores hold, is data. With
// bodyLines ≥ 0 only the header, the blank line and that many body lines
// are sent (TOP, RFC 1939 §7). Memory use does not depend on the size of
// the message or of its lines.
func copyDotStuffed(w *bufio.Writer, r io.Reader, bodyLines int64) error {
	d := dotWriter{w: w, bol: true, left: bodyLines}
	buf := make([]byte, 32<<10)
	for !d.done() {
		n, err := r.Read(buf)
		d.write(buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if d.err != nil {
		return d.err
	}
	if d.cr || !d.bol {
		d.cr = false // a CR at the very end was meant as a line end
		d.endLine()
	}
	d.put([]byte(".\r\n"))
	return d.err
}

// dotWriter is the state of copyDotStuffed between reads.
type dotWriter struct {
	w    *bufio.Writer
	bol  bool  // at the beginning of a line
	cr   bool  // a CR was read and held back
	body bool  // past the blank line after the header
	left int64 // body lines still to send; < 0: all
	err  error // first write error
}

func (d *dotWriter) done() bool { return d.err != nil || d.body && d.left == 0 }

// write consumes one chunk of content. LF ends a line, with or without
// the CR before it.
func (d *dotWriter) write(p []byte) {
	for len(p) > 0 && !d.done() {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			d.text(p)
			return
		}
		d.text(p[:i])
		d.cr = false // CRLF: the held CR is part of the line end
		d.endLine()
		p = p[i+1:]
	}
}

// text takes part of a line without LF. A CR at its end is held back: it
// belongs to the line end if an LF follows, in this chunk or the next.
func (d *dotWriter) text(b []byte) {
	if len(b) == 0 {
		return
	}
	if d.cr {
		d.cr = false
		d.data([]byte{'\r'}) // a bare CR is data
	}
	if b[len(b)-1] == '\r' {
		d.cr = true
		b = b[:len(b)-1]
	}
	d.data(b)
}

// data writes line content.
func (d *dotWriter) data(b []byte) {
	if len(b) == 0 {
		return
	}
	if d.bol && b[0] == '.' {
		d.put([]byte{'.'}) // RFC 1939 §3: byte-stuff the termination octet
	}
	d.put(b)
	d.bol = false
}

// endLine ends the current line and counts it.
func (d *dotWriter) endLine() {
	d.put([]byte("\r\n"))
	switch {
	case d.body && d.left > 0:
		d.left--
	case !d.body && d.bol:
		d.body = true // the empty line between header and body (RFC 5322 §2.1)
	}
	d.bol = true
}

func (d *dotWriter) put(b []byte) {
	if d.err == nil {
		_, d.err = d.w.Write(b)
	}
}
