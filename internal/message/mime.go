package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// This file holds the streaming MIME structure parser. Unlike Parse
// (parse.go), which needs the whole message in memory, parseStream reads
// its input once through a bounded bufio.Reader: memory is O(depth +
// header sizes) whatever the length of the bodies or of their lines
// (research/security.md §2.13: never buffer a whole line).
//
// Invariants:
//   - no recursion: open multiparts live on an explicit stack (levels);
//   - every Part has HeaderStart <= BodyStart <= End, and lies inside the
//     body of its parent;
//   - no Part is deeper than Limits.MaxDepth (the root is depth 0), and
//     there are at most Limits.MaxParts Parts, the root included;
//   - offsets are octets of the input; a line ends at "\n" (CRLF or bare LF).

const (
	streamBufSize = 32 << 10
	// maxBoundary bounds a boundary parameter (Postfix
	// mime_boundary_length_limit, security.md §2.5; RFC 2046 §5.1.1 allows
	// 70). A multipart with a longer one is read as an opaque body.
	maxBoundary = 2048
	// prefixCap is how much of each line is kept to match delimiters:
	// "--" boundary "--".
	prefixCap = maxBoundary + 4
)

// openPart is a part whose end is not known yet, with the number of line
// ends before its body, to count BodyLines without keeping the body.
type openPart struct {
	part *Part
	nl   int64
}

// level is an open multipart, or (at the bottom of the stack) the whole
// message. Its open parts end at the next delimiter of the multipart, or at
// the end of the enclosing body.
type level struct {
	part     *Part
	delim    []byte // "--" + boundary; nil for the whole message
	depth    int    // depth of part; its children are depth+1
	open     []openPart
	epilogue bool // after the close delimiter all is epilogue
}

// lineInfo describes the line being read, or the previous line.
type lineInfo struct {
	start, nl int64 // offset of its first octet, line ends before it
	length    int64
	eol       int64   // 2 for CRLF, 1 for LF, 0 at the end of input
	tail      [2]byte // its last two octets
	restWS    bool    // the octets after its prefix are all " \t\r\n"
}

// stream is the state of parseStream.
type stream struct {
	br     *bufio.Reader
	lim    Limits
	levels []*level
	parts  int
	pos    int64 // offset of the next octet
	nl     int64 // line ends before pos
	last   byte  // the octet before pos
	ln     lineInfo
	prev   lineInfo
	prefix []byte // the first prefixCap octets of the current line

	// The header being read, if any, and where its part goes.
	hdr      *Part
	hdrLevel *level
	hdrDepth int
	hdrBytes int64
	hdrLine  []byte // the current line, while reading a header
	field    []byte // the current field, unfolded
}

// parseStream reads a message once, to the end, and returns its MIME
// structure. Errors are ErrHeaderTooLarge and read errors.
func parseStream(r io.Reader, lim Limits) (*Part, error) {
	return newStream(r, lim, streamBufSize).run()
}

func newStream(r io.Reader, lim Limits, bufSize int) *stream {
	return &stream{br: bufio.NewReaderSize(r, bufSize), lim: lim.withDefaults()}
}

func (s *stream) run() (*Part, error) {
	root := &Part{}
	s.levels = []*level{{depth: -1, open: []openPart{{part: root}}}}
	s.parts = 1
	s.startHeader(root, s.levels[0], 0, 0)
	for {
		ok, err := s.readLine()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if err := s.line(); err != nil {
			return nil, err
		}
		s.prev = s.ln
	}
	s.finish()
	return root, nil
}

// readLine reads the next line through bounded chunks (bufio.ErrBufferFull
// is not an error here). It reports false at the end of input.
func (s *stream) readLine() (bool, error) {
	s.ln = lineInfo{start: s.pos, nl: s.nl, restWS: true}
	s.prefix, s.hdrLine = s.prefix[:0], s.hdrLine[:0]
	for {
		chunk, err := s.br.ReadSlice('\n')
		s.take(chunk)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return s.ln.length > 0, nil
		default:
			return false, fmt.Errorf("message: reading: %w", err)
		}
	}
}

// take accounts for one chunk of the current line.
func (s *stream) take(chunk []byte) {
	if len(chunk) == 0 {
		return
	}
	ln := &s.ln
	n := min(len(chunk), prefixCap-len(s.prefix))
	s.prefix = append(s.prefix, chunk[:n]...)
	if ln.restWS && len(bytes.TrimLeft(chunk[n:], " \t\r\n")) > 0 {
		ln.restWS = false
	}
	// Past the limit the line is an error, unless it is a delimiter,
	// which needs no content: keep at most MaxHeaderBytes.
	if s.hdr != nil && int64(len(s.hdrLine)+len(chunk)) <= s.lim.MaxHeaderBytes {
		s.hdrLine = append(s.hdrLine, chunk...)
	}
	ln.tail = [2]byte{ln.tail[1], chunk[len(chunk)-1]}
	if len(chunk) >= 2 {
		ln.tail[0] = chunk[len(chunk)-2]
	}
	ln.length += int64(len(chunk))
	s.pos += int64(len(chunk))
	s.last = chunk[len(chunk)-1]
	if s.last == '\n' {
		s.nl++
		ln.eol = 1
		if ln.length >= 2 && ln.tail[0] == '\r' {
			ln.eol = 2
		}
	}
}

// line handles a complete line: part of a header, a delimiter, or body.
func (s *stream) line() error {
	k, closing := s.delimiter()
	if s.hdr != nil {
		if k == 0 {
			return s.headerLine()
		}
		// A delimiter ends the header; the line end before it belongs to
		// the delimiter (RFC 2046 §5.1.1).
		at, nl := s.lineStartEnd()
		for s.hdr != nil {
			s.endHeader(max(at, s.hdr.HeaderStart), nl)
		}
	}
	if k > 0 {
		s.delimit(k, closing)
	}
	return nil
}

// lineStartEnd returns where a body that ends before the current line
// ends (without the previous line end: RFC 2046 §5.1.1 gives the CRLF
// before a delimiter to the delimiter), and the line ends before it.
func (s *stream) lineStartEnd() (int64, int64) {
	if s.prev.eol == 0 {
		return s.ln.start, s.ln.nl
	}
	return s.ln.start - s.prev.eol, s.ln.nl - 1
}

// delimiter reports which open multipart (index in s.levels, innermost
// first, so a boundary that is a prefix of an outer one still works) the
// current line delimits, and whether it is a close delimiter.
// RFC 2046 §5.1.1: dash-boundary ["--"] *LWSP-char CRLF, at line start.
func (s *stream) delimiter() (int, bool) {
	pre := s.prefix
	if len(pre) < 3 || pre[0] != '-' || pre[1] != '-' || !s.ln.restWS {
		return 0, false
	}
	for k := len(s.levels) - 1; k > 0; k-- {
		lv := s.levels[k]
		if lv.epilogue {
			continue
		}
		rest, ok := bytes.CutPrefix(pre, lv.delim)
		if !ok {
			continue
		}
		rest, closing := bytes.CutPrefix(rest, []byte("--"))
		if len(bytes.TrimLeft(rest, " \t\r\n")) == 0 {
			return k, closing
		}
	}
	return 0, false
}

// delimit closes the parts of levels[k] (and every level inside it), then
// starts the next part unless this is the close delimiter.
func (s *stream) delimit(k int, closing bool) {
	end, nl := s.lineStartEnd()
	lastNL := s.prev.length == s.prev.eol // the previous line is empty
	s.closeLevels(k, end, nl, lastNL)
	s.levels = s.levels[:k+1]
	lv := s.levels[k]
	if closing {
		lv.epilogue = true
		return
	}
	// Past MaxParts the part is not recorded: its octets stay in the
	// body of the multipart, and later parts still end where they should.
	if s.parts >= s.lim.MaxParts {
		return
	}
	c := &Part{}
	if lv.part.Subtype == "digest" {
		c.Type, c.Subtype = "message", "rfc822" // RFC 2046 §5.1.5
	}
	lv.part.Parts = append(lv.part.Parts, c)
	s.parts++
	lv.open = append(lv.open, openPart{part: c})
	s.startHeader(c, lv, lv.depth+1, s.pos)
}

// closeLevels ends the open parts of levels[k:] at end, nl line ends into
// the input; lastNL tells whether the octet before end is a line end. The
// parts form one chain, outermost first, each inside the one before.
func (s *stream) closeLevels(k int, end, nl int64, lastNL bool) {
	parentEnd := int64(-1) // the first part's parent goes on
	for _, lv := range s.levels[k:] {
		for _, o := range lv.open {
			parentEnd = closePart(o, end, parentEnd, nl, lastNL)
		}
		lv.open = lv.open[:0]
	}
}

// closePart ends one part and returns its End. A part that starts at or
// after its parent's end (its header's last line end, or the delimiter
// line that opened it, is the line end before an outer delimiter, which
// RFC 2046 §5.1.1 gives to that delimiter) is pulled back to it.
func closePart(o openPart, end, parentEnd, nl int64, lastNL bool) int64 {
	p := o.part
	if parentEnd >= 0 {
		p.HeaderStart = min(p.HeaderStart, parentEnd)
		p.BodyStart = min(p.BodyStart, parentEnd)
	}
	p.End = max(end, p.BodyStart)
	if p.End > p.BodyStart {
		p.BodyLines = nl - o.nl
		if !lastNL {
			p.BodyLines++ // a last line without a line end
		}
	}
	return p.End
}

// finish ends whatever is open at the end of input.
func (s *stream) finish() {
	for s.hdr != nil {
		s.endHeader(s.pos, s.nl) // a header without a blank line: no body
	}
	s.closeLevels(0, s.pos, s.nl, s.pos == 0 || s.last == '\n')
}

// startHeader begins the header of part, a part of lv at depth, at start.
func (s *stream) startHeader(part *Part, lv *level, depth int, start int64) {
	part.HeaderStart = start
	s.hdr, s.hdrLevel, s.hdrDepth, s.hdrBytes = part, lv, depth, 0
	s.field = s.field[:0]
}

// headerLine adds a line to the header being read; a blank line ends it.
func (s *stream) headerLine() error {
	if s.hdrBytes+s.ln.length > s.lim.MaxHeaderBytes {
		return ErrHeaderTooLarge
	}
	s.hdrBytes += s.ln.length
	content := bytes.TrimRight(s.hdrLine, "\r\n")
	switch {
	case len(content) == 0:
		s.endHeader(s.pos, s.nl) // RFC 5322 §2.1: the empty line ends the header
	case (content[0] == ' ' || content[0] == '\t') && len(s.field) > 0:
		// RFC 5322 §2.2.3: unfold.
		s.field = append(append(s.field, ' '), bytes.TrimLeft(content, " \t")...)
	default:
		s.addField()
		s.field = append(s.field[:0], content...)
	}
	return nil
}

// addField appends the field being unfolded to the header's fields. A
// line without a colon is not a field and is dropped.
func (s *stream) addField() {
	if len(s.field) == 0 || len(s.hdr.Header) >= 10000 {
		return
	}
	name, value, ok := bytes.Cut(s.field, []byte{':'})
	if !ok || len(name) == 0 {
		return
	}
	s.hdr.Header = append(s.hdr.Header, Field{
		Name:  string(bytes.TrimRight(name, " \t")),
		Value: string(bytes.TrimSpace(value)),
	})
}

// endHeader ends the header being read; the body starts at bodyStart, nl
// line ends into the input. It then decides how the body is read.
func (s *stream) endHeader(bodyStart, nl int64) {
	part, lv, depth := s.hdr, s.hdrLevel, s.hdrDepth
	s.addField()
	s.hdr, s.hdrLevel, s.field = nil, nil, s.field[:0]
	part.BodyStart = bodyStart
	describe(part)
	lv.open[len(lv.open)-1].nl = nl
	s.enter(part, lv, depth)
}

// enter starts the body of part: a multipart pushes a level; a message
// starts the header of the encapsulated message; anything else, or
// anything past the limits, is an opaque body.
func (s *stream) enter(part *Part, lv *level, depth int) {
	if depth >= s.lim.MaxDepth || s.parts >= s.lim.MaxParts {
		return // security.md §2.5: stop descending, do not fail
	}
	switch {
	case part.Type == "multipart":
		// RFC 2046 §5.1.1: without a usable boundary there are no parts.
		if b := part.Param("boundary"); b != "" && len(b) <= maxBoundary {
			s.levels = append(s.levels, &level{part: part, delim: []byte("--" + b), depth: depth})
		}
	case encapsulates(part):
		m := &Part{}
		part.Message = m
		s.parts++
		lv.open = append(lv.open, openPart{part: m})
		s.startHeader(m, lv, depth+1, part.BodyStart)
	}
}

// encapsulates tells whether a part's body is a message to parse: RFC 2046
// §5.2.1 message/rfc822 and RFC 6532 §3.7 message/global, unless encoded
// (RFC 2046 §5.2.1 allows only 7bit, 8bit, binary; be lenient otherwise).
func encapsulates(p *Part) bool {
	return p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") &&
		p.Encoding != "base64" && p.Encoding != "quoted-printable"
}

// describe fills the MIME fields of a part from its header (RFC 2045 §5,
// §6, §7, §8; RFC 2183; RFC 3282) with interpret (params.go).
func describe(part *Part) {
	interpret(part)
}
