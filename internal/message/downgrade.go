package message

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf8"
)

// Downgrade writes the message of size octets in r to w with every body
// part that holds 8-bit octets under an identity encoding (7bit, 8bit,
// binary, or one unknown) re-encoded as quoted-printable, for a server that does not
// offer 8BITMIME: RFC 6152 §3 lets a client send it 8-bit data only after
// such a conversion (the other choice being to return the message), and
// Postfix converts the same way by default. Boundaries, preambles,
// epilogues, 7-bit parts and parts already in base64 or quoted-printable
// are copied as they are; a multipart or message/rfc822 part is walked
// into, not encoded (RFC 2045 §6.4 forbids it). A message without MIME
// fields whose body is 8-bit gets MIME-Version and a text/plain
// Content-Type naming utf-8, or unknown-8bit (RFC 1428) when it is not
// UTF-8. Header fields with 8-bit octets are left as they are: only
// SMTPUTF8 can carry them, and they are rare without it.
//
// The structure is read first (memory bounded by ParseStructure's
// limits); a message it cannot parse is copied unchanged.
func Downgrade(w io.Writer, r io.ReaderAt, size int64) error {
	root, err := ParseStructure(io.NewSectionReader(r, 0, size), Limits{})
	if err != nil {
		_, err = io.Copy(w, io.NewSectionReader(r, 0, size))
		return err
	}
	d := downgrader{w: w, r: r}
	return d.part(root, true)
}

type downgrader struct {
	w io.Writer
	r io.ReaderAt
}

func (d *downgrader) copy(start, end int64) error {
	if end <= start {
		return nil
	}
	_, err := io.Copy(d.w, io.NewSectionReader(d.r, start, end-start))
	return err
}

// part writes p, converting what needs it; msg says p is a message (the
// root, or the one inside a message/rfc822 part), not a body part.
func (d *downgrader) part(p *Part, msg bool) error {
	switch {
	case p.Message != nil:
		if err := d.compositeHeader(p); err != nil {
			return err
		}
		return d.part(p.Message, true) // a message of its own
	case len(p.Parts) > 0:
		if err := d.compositeHeader(p); err != nil {
			return err
		}
		at := p.BodyStart
		for _, c := range p.Parts {
			if err := d.copy(at, c.HeaderStart); err != nil { // delimiter, preamble
				return err
			}
			if err := d.part(c, false); err != nil {
				return err
			}
			at = c.End
		}
		return d.copy(at, p.End) // close delimiter, epilogue
	}
	if p.Encoding == "base64" || p.Encoding == "quoted-printable" {
		return d.copy(p.HeaderStart, p.End) // 7-bit already
	}
	if p.Type == "multipart" || p.Type == "message" {
		// A composite part the parser left whole (past its depth or part
		// limits, or without a delimiter): no encoding is allowed on it
		// (RFC 2045 §6.4), so it goes as it is.
		return d.copy(p.HeaderStart, p.End)
	}
	// 7bit, 8bit, binary, or a name nobody knows, which leaves the
	// octets as they are (RFC 2045 §6.4): encoded as they are too.
	eight, valid, err := scanRange(d.r, p.BodyStart, p.End)
	if err != nil {
		return err
	}
	if !eight {
		return d.copy(p.HeaderStart, p.End)
	}
	var add []string
	if msg && p.Get("MIME-Version") == "" {
		add = append(add, "MIME-Version: 1.0")
		if p.Get("Content-Type") == "" {
			charset := "utf-8"
			if !valid {
				charset = "unknown-8bit"
			}
			add = append(add, "Content-Type: text/plain; charset="+charset)
		}
	}
	add = append(add, "Content-Transfer-Encoding: quoted-printable")
	if err := d.header(p, add); err != nil {
		return err
	}
	return d.encode(p.BodyStart, p.End)
}

// compositeHeader writes the header of a multipart or message part. One
// labelled 8bit or binary is labelled 7bit, as Postfix does: what it
// holds is converted (RFC 2045 §6.4 allows only identity encodings
// there, and 8bit would claim what the server was not told).
func (d *downgrader) compositeHeader(p *Part) error {
	if p.Encoding != "8bit" && p.Encoding != "binary" {
		return d.copy(p.HeaderStart, p.BodyStart)
	}
	return d.header(p, []string{"Content-Transfer-Encoding: 7bit"})
}

// header writes p's header section without its Content-Transfer-Encoding
// fields and with the fields of add before the blank line that ends it.
func (d *downgrader) header(p *Part, add []string) error {
	raw := make([]byte, p.BodyStart-p.HeaderStart) // within Limits.MaxHeaderBytes
	if _, err := d.r.ReadAt(raw, p.HeaderStart); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var out bytes.Buffer
	skip := false
	for line := range bytes.Lines(raw) {
		text := bytes.TrimRight(line, "\r\n")
		if len(text) == 0 {
			break // the blank line: written after add
		}
		if text[0] != ' ' && text[0] != '\t' {
			name, _, _ := bytes.Cut(text, []byte(":"))
			skip = strings.EqualFold(string(bytes.TrimSpace(name)), "Content-Transfer-Encoding")
		}
		if !skip {
			out.Write(text)
			out.WriteString("\r\n")
		}
	}
	for _, f := range add {
		out.WriteString(f + "\r\n")
	}
	out.WriteString("\r\n")
	_, err := d.w.Write(out.Bytes())
	return err
}

// encode writes [start, end) as quoted-printable.
func (d *downgrader) encode(start, end int64) error {
	return qpEncode(d.w, io.NewSectionReader(d.r, start, end-start))
}

// qpEncode writes r as quoted-printable (RFC 2045 §6.7): line ends (CRLF,
// or a bare LF) become CRLF, encoded lines are at most 76 octets, white
// space before a line end is encoded. A "-" that would start a line is
// encoded too: breaking a long line could otherwise start one with the
// part's boundary (RFC 2046 §5.1.1), which the original could not hold.
func qpEncode(w io.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 32<<10)
	bw := bufio.NewWriterSize(w, 32<<10)
	line := make([]byte, 0, 80)
	put := func(tok ...byte) {
		if len(line)+len(tok) > 75 { // room for the "=" of a soft break
			bw.Write(line)
			bw.WriteString("=\r\n")
			line = line[:0]
		}
		if len(line) == 0 && tok[0] == '-' {
			tok = []byte("=2D")
		}
		line = append(line, tok...)
	}
	// endLine encodes white space that would end the line, then writes it.
	endLine := func(crlf bool) {
		if n := len(line); n > 0 && (line[n-1] == ' ' || line[n-1] == '\t') {
			c := line[n-1]
			line = line[:n-1]
			put('=', hexDigits[c>>4], hexDigits[c&15])
		}
		bw.Write(line)
		if crlf {
			bw.WriteString("\r\n")
		}
		line = line[:0]
	}
	for {
		c, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch {
		case c == '\r':
			if next, _ := br.Peek(1); len(next) == 1 && next[0] == '\n' {
				continue // the LF ends the line
			}
			put('=', '0', 'D')
		case c == '\n':
			endLine(true)
		case c == '\t' || c >= ' ' && c <= '~' && c != '=':
			put(c)
		default:
			put('=', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	endLine(false)
	return bw.Flush()
}

const hexDigits = "0123456789ABCDEF"

// scanRange reports whether [start, end) holds an octet over 127, and
// whether it is valid UTF-8.
func scanRange(r io.ReaderAt, start, end int64) (eight, valid bool, err error) {
	valid = true
	buf := make([]byte, 32<<10)
	carry := 0 // octets of an unfinished character moved to buf's start
	for off := start; off < end; {
		n, err := r.ReadAt(buf[carry:carry+int(min(int64(len(buf)-carry), end-off))], off)
		if n == 0 && err != nil {
			return eight, valid, err
		}
		off += int64(n)
		chunk := buf[:carry+n]
		if !eight && bytes.IndexFunc(chunk, func(c rune) bool { return c >= utf8.RuneSelf }) < 0 {
			carry = 0
			continue
		}
		eight = true
		if !valid {
			carry = 0
			continue
		}
		ok := len(chunk)
		if off < end { // the last character may go on in the next read
			for i := len(chunk) - 1; i >= 0 && i >= len(chunk)-utf8.UTFMax; i-- {
				if utf8.RuneStart(chunk[i]) {
					if !utf8.FullRune(chunk[i:]) {
						ok = i
					}
					break
				}
			}
		}
		valid = utf8.Valid(chunk[:ok])
		carry = copy(buf, chunk[ok:])
	}
	return eight, valid && carry == 0, nil
}
