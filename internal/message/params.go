package message

import (
	"bytes"
	"strings"
)

// frame is an open multipart: its delimiter and the parts that end when
// the next delimiter (or the end of the enclosing body) comes.
type frame struct {
	part     *Part
	delim    []byte  // "--" + boundary
	open     []*Part // current child and the messages nested in it
	epilogue bool    // after the close delimiter
	depth    int
}

type parser struct {
	data   []byte
	lim    Limits
	frames []*frame
	parts  int
}

func (p *parser) parse() (*Part, error) {
	root := &Part{}
	pos, err := p.header(root, 0)
	if err != nil {
		return nil, err
	}
	top := &frame{depth: 0} // the whole message: no delimiter
	p.frames = append(p.frames, top)
	if top.open, err = p.enter(root, 0, &pos); err != nil {
		return nil, err
	}
	if err := p.body(pos); err != nil {
		return nil, err
	}
	return root, nil
}

// body walks the lines after pos, opening and closing parts at delimiters.
func (p *parser) body(pos int) error {
	prevEOL := 0 // length of the line end before pos
	for pos < len(p.data) {
		line := p.line(pos)
		// Past MaxParts, delimiters are only text: the last part grows.
		if k, closing := p.delimiter(line); k > 0 && p.parts < p.lim.MaxParts {
			end := max(pos-prevEOL, 0)
			p.closeAbove(k, end)
			f := p.frames[k]
			p.closeParts(f.open, end)
			f.open = nil
			pos += len(line)
			prevEOL = eolLen(line)
			if closing {
				f.epilogue = true
				continue
			}
			next, err := p.child(f, pos)
			if err != nil {
				return err
			}
			pos, prevEOL = next, 0
			continue
		}
		pos += len(line)
		prevEOL = eolLen(line)
	}
	for i := len(p.frames) - 1; i >= 0; i-- {
		p.closeParts(p.frames[i].open, len(p.data))
	}
	return nil
}

// child starts a new part of multipart f at pos.
func (p *parser) child(f *frame, pos int) (int, error) {
	c := &Part{HeaderStart: int64(pos)}
	if f.part.Subtype == "digest" {
		c.Type, c.Subtype = "message", "rfc822" // RFC 2046 §5.1.5
	}
	f.part.Parts = append(f.part.Parts, c)
	p.parts++
	next, err := p.header(c, pos)
	if err != nil {
		return 0, err
	}
	f.open, err = p.enter(c, f.depth+1, &next)
	return next, err
}

// enter decides how a part's body is read: a multipart pushes a frame, a
// message/rfc822 has its own header parsed at once (and so on inward). It
// returns the parts that stay open until the enclosing delimiter.
func (p *parser) enter(part *Part, depth int, pos *int) ([]*Part, error) {
	open := []*Part{part}
	for {
		switch {
		case depth >= p.lim.MaxDepth || p.parts >= p.lim.MaxParts:
			return open, nil
		case part.Type == "multipart" && part.Param("boundary") != "":
			p.frames = append(p.frames, &frame{part: part, delim: []byte("--" + part.Param("boundary")), depth: depth + 1})
			return open, nil
		case part.Type == "message" && (part.Subtype == "rfc822" || part.Subtype == "global") &&
			part.Encoding != "base64" && part.Encoding != "quoted-printable":
			m := &Part{HeaderStart: int64(*pos)}
			p.parts++
			next, err := p.header(m, *pos)
			if err != nil {
				return nil, err
			}
			part.Message, *pos = m, next
			open = append(open, m)
			part, depth = m, depth+1
		default:
			return open, nil
		}
	}
}

// delimiter reports which open multipart (frame index, innermost match
// first) a line delimits, and whether it is the close delimiter
// (RFC 2046 §5.1.1: "--" boundary ["--"] *LWSP CRLF).
func (p *parser) delimiter(line []byte) (int, bool) {
	if len(line) < 3 || line[0] != '-' || line[1] != '-' {
		return 0, false
	}
	for k := len(p.frames) - 1; k > 0; k-- {
		f := p.frames[k]
		if f.epilogue {
			continue // after the close delimiter all is epilogue
		}
		rest, ok := bytes.CutPrefix(line, f.delim)
		if !ok {
			continue
		}
		closing := bytes.HasPrefix(rest, []byte("--"))
		if closing {
			rest = rest[2:]
		}
		if len(bytes.TrimRight(rest, " \t\r\n")) == 0 {
			return k, closing
		}
	}
	return 0, false
}

// closeAbove ends every frame inside frame k.
func (p *parser) closeAbove(k, end int) {
	for i := len(p.frames) - 1; i > k; i-- {
		p.closeParts(p.frames[i].open, end)
	}
	p.frames = p.frames[:k+1]
}

// closeParts sets the end of parts and counts their body lines.
func (p *parser) closeParts(parts []*Part, end int) {
	for _, part := range parts {
		part.End = max(int64(end), part.BodyStart)
		p.finish(part)
	}
}

// finish counts a closed part's body lines: line ends, plus a last line
// without one.
func (p *parser) finish(part *Part) {
	body := p.data[part.BodyStart:part.End]
	part.BodyLines = int64(bytes.Count(body, []byte{'\n'}))
	if len(body) > 0 && body[len(body)-1] != '\n' {
		part.BodyLines++
	}
}

// line returns the line at pos, with its line end.
func (p *parser) line(pos int) []byte {
	if i := bytes.IndexByte(p.data[pos:], '\n'); i >= 0 {
		return p.data[pos : pos+i+1]
	}
	return p.data[pos:]
}

func eolLen(line []byte) int {
	switch {
	case bytes.HasSuffix(line, []byte("\r\n")):
		return 2
	case bytes.HasSuffix(line, []byte("\n")):
		return 1
	}
	return 0
}

// header parses a header section at pos, ending at a blank line, at a
// delimiter of an open multipart, or at the end. It returns where the body
// starts.
func (p *parser) header(part *Part, pos int) (int, error) {
	part.HeaderStart = int64(pos)
	start := pos
	var field []byte
	for pos < len(p.data) {
		line := p.line(pos)
		if k, _ := p.delimiter(line); k > 0 {
			break
		}
		if int64(pos+len(line)-start) > p.lim.MaxHeaderBytes {
			return 0, ErrHeaderTooLarge
		}
		pos += len(line)
		content := bytes.TrimRight(line, "\r\n")
		if len(content) == 0 {
			break // the blank line ends the header
		}
		if (content[0] == ' ' || content[0] == '\t') && field != nil {
			field = append(append(field, ' '), bytes.TrimLeft(content, " \t")...)
			continue
		}
		p.addField(part, field)
		field = append([]byte(nil), content...)
	}
	p.addField(part, field)
	part.BodyStart = int64(pos)
	p.interpret(part)
	return pos, nil
}

func (p *parser) addField(part *Part, field []byte) {
	if field == nil {
		return
	}
	name, value, ok := bytes.Cut(field, []byte{':'})
	if !ok || len(name) == 0 || len(part.Header) >= 10000 {
		return
	}
	part.Header = append(part.Header, Field{Name: strings.TrimRight(string(name), " \t"), Value: strings.TrimSpace(string(value))})
}

// interpret reads the MIME fields of a part (RFC 2045 §5, §6, RFC 2183).
func (p *parser) interpret(part *Part) {
	if ct := part.Get("Content-Type"); ct != "" {
		typ, params := parseParams(ct)
		if t, st, ok := strings.Cut(typ, "/"); ok && t != "" && st != "" && validToken(t) && validToken(st) {
			part.Type, part.Subtype = t, st
		}
		part.Params = params
	}
	if part.Type == "" {
		part.Type, part.Subtype = "text", "plain" // RFC 2045 §5.2
	}
	if part.Type == "text" && part.Param("charset") == "" {
		part.Params = append(part.Params, Param{"charset", "us-ascii"}) // RFC 2046 §4.1.2
	}
	part.Encoding = strings.ToLower(strings.TrimSpace(part.Get("Content-Transfer-Encoding")))
	if part.Encoding == "" {
		part.Encoding = "7bit"
	}
	part.ID, part.Description = part.Get("Content-ID"), part.Get("Content-Description")
	part.MD5, part.Location = part.Get("Content-MD5"), part.Get("Content-Location")
	if d := part.Get("Content-Disposition"); d != "" {
		part.Disposition, part.DispositionParams = parseParams(d)
	}
	for _, l := range strings.Split(part.Get("Content-Language"), ",") {
		if l = strings.TrimSpace(l); l != "" {
			part.Language = append(part.Language, l)
		}
	}
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// maxParams bounds the parameters of one field (CVE-2026-27859 class).
const maxParams = 100

// parseParams splits `value; k=v; k2="v 2"` (RFC 2045 §5.1). The value is
// lower-cased; keys too; quoted values are unquoted. RFC 2231 parameters
// (k*0, k*) are kept as written.
func parseParams(s string) (string, []Param) {
	parts := splitParams(s)
	value := strings.ToLower(strings.TrimSpace(parts[0]))
	var ps []Param
	for _, kv := range parts[1:] {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" || len(ps) >= maxParams {
			continue
		}
		ps = append(ps, Param{Key: k, Value: unquote(strings.TrimSpace(v))})
	}
	return value, ps
}

// splitParams splits on ";" outside quoted strings, and drops comments.
func splitParams(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, esc, comment := false, false, 0
	for _, r := range s {
		switch {
		case esc:
			esc = false
		case inQuote && r == '\\':
			esc = true
		case r == '"' && comment == 0:
			inQuote = !inQuote
		case !inQuote && r == '(':
			comment++
			continue
		case !inQuote && r == ')' && comment > 0:
			comment--
			continue
		case comment > 0:
			continue
		case !inQuote && r == ';':
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	return append(out, cur.String())
}

func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
