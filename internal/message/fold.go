package message

import (
	"bufio"
	"bytes"
	"io"
)

// MaxLine is the longest line RFC 5322 §2.1.1 and RFC 5321 §4.5.3.1.6
// allow, without its CRLF.
const MaxLine = 998

// FoldLines returns a reader of r in which every line longer than limit
// octets (its line end not counted) is broken, as Postfix's SMTP client
// does with its smtp_line_length_limit: a server that holds to RFC 5321's
// 1000 octets then gets the message instead of refusing it. A piece goes
// on after CRLF and a space, which continues a header field (RFC 5322
// §2.2.3) and keeps MIME part headers whole; in the header section a
// field is folded at its own white space where there is some, so that
// unfolding gives it back exactly. Pieces end on a UTF-8 character
// boundary. Lines within the limit are passed on as they are, line ends
// included; memory is bounded (64 KiB, or the limit), not by the line.
func FoldLines(r io.Reader, limit int) io.Reader {
	limit = max(limit, 8)
	// A buffer far larger than a line: one read per 64 KiB, not per line
	// (a queue file is read with a pread per refill).
	return &folder{br: bufio.NewReaderSize(r, max(64<<10, limit+64)), max: limit, header: true, first: true}
}

type folder struct {
	br     *bufio.Reader
	max    int
	header bool // still in the message's header section
	first  bool // the next octet starts a line of the input
	out    []byte
	off    int
	err    error
}

func (f *folder) Read(p []byte) (int, error) {
	for f.off == len(f.out) {
		if f.err != nil {
			return 0, f.err
		}
		f.out, f.off = f.out[:0], 0
		f.err = f.step()
	}
	n := copy(p, f.out[f.off:])
	f.off += n
	return n, nil
}

// step moves one line, or one piece of a long line, to f.out.
func (f *folder) step() error {
	// As much as the buffer holds (at least a line and its end): whether
	// text is the whole rest of its line decides where a header may fold.
	buf, err := f.br.Peek(f.br.Size()) // err is nil or says why buf is short
	if len(buf) == 0 {
		return err
	}
	// A piece after the first one starts with the space we add, unless
	// it starts with white space of its own.
	room := f.max
	if !f.first && !isWSP(buf[0]) {
		room--
	}
	n, text := len(buf), buf // the whole rest of the input, if err != nil
	if end := bytes.IndexByte(buf, '\n'); end >= 0 {
		n, text = end+1, bytes.TrimSuffix(buf[:end], []byte("\r"))
	} else if err == nil {
		text = nil // a line longer than buf: cut below
	}
	if text != nil && len(text) <= room {
		if f.first && len(text) == 0 {
			f.header = false // the empty line ends the header section
		}
		f.emit(buf[:n])
		f.first = true
		_, _ = f.br.Discard(n)
		return nil
	}
	whole := text != nil // text is the rest of the line, its end included
	if !whole {
		text = buf
	}
	cut := lineCut(text, room, f.header, whole)
	f.emit(text[:cut])
	f.out = append(f.out, '\r', '\n')
	f.first = false
	_, _ = f.br.Discard(cut)
	return nil
}

// emit appends a piece, after a space if it continues a broken line.
func (f *folder) emit(piece []byte) {
	if !f.first && len(piece) > 0 && !isWSP(piece[0]) {
		f.out = append(f.out, ' ')
	}
	f.out = append(f.out, piece...)
}

func isWSP(b byte) bool { return b == ' ' || b == '\t' }

// lineCut is where to end the next piece of a line of more than n
// octets, with n ≥ 4 (whole: text holds the rest of the line, not only
// its next octets): in a header field before its last white space
// that leaves something besides white space in the piece (a line of
// white space alone is no fold, RFC 5322 §3.2.2), else at the last UTF-8
// character boundary. (A run of white space longer than n still gives
// such a line: nothing else keeps every octet.) Only the message's own
// header section is folded at white space; the header of a MIME part is
// broken like body text, as Postfix breaks both.
func lineCut(text []byte, n int, header, whole bool) int {
	if header {
		end := n + 1 // the fold's space may be the first octet after the piece
		if whole {
			// Not inside the line's trailing white space: the rest would
			// be a line of white space alone.
			end = min(end, len(bytes.TrimRight(text, " \t")))
		}
		start := 0
		for start < n && isWSP(text[start]) {
			start++
		}
		if start+1 < end {
			if i := bytes.LastIndexAny(text[start+1:end], " \t"); i >= 0 {
				return start + 1 + i // the space starts the next piece: a fold
			}
		}
	}
	cut := n
	for cut > n-4 && cut > 1 && text[cut]&0xC0 == 0x80 {
		cut-- // text[cut] continues a character
	}
	return cut
}
