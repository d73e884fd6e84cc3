package imap

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime/quotedprintable"
	"strconv"
	"strings"

	"posthorn/internal/message"
)

// fetchedMessage is a message loaded for FETCH or SEARCH: its octets and
// MIME structure.
type fetchedMessage struct {
	data    []byte
	root    *message.Part
	release func() // gives its memory back to the server's budget
}

// loadMessage reads a message and parses its structure, within the
// server's content memory budget; the caller calls release when done.
func (c *conn) loadMessage(m Meta) (*fetchedMessage, error) {
	release, err := c.s.content.acquire(c.ctx, 3*m.Size)
	if err != nil {
		return nil, err
	}
	msg, err := c.readMessage(m)
	if err != nil {
		release()
		return nil, err
	}
	msg.release = release
	return msg, nil
}

func (c *conn) readMessage(m Meta) (*fetchedMessage, error) {
	content, err := c.user.Open(c.mbox.ctx, c.mbox.name, m.UID)
	if err != nil {
		return nil, c.mapErr(err)
	}
	r, err := content.Reader()
	if err != nil {
		return nil, c.mapErr(err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, c.s.opts.AppendLimit+1<<20))
	if err != nil {
		return nil, c.mapErr(err)
	}
	root, err := message.ParseStructure(bytes.NewReader(data), message.Limits{})
	if err != nil {
		// A header too large to parse: serve the octets, with a minimal
		// structure, rather than fail the FETCH.
		root = &message.Part{End: int64(len(data)), BodyStart: 0, Type: "text", Subtype: "plain", Encoding: "7bit"}
	}
	return &fetchedMessage{data: data, root: root}, nil
}

func (f *fetchedMessage) slice(a, b int64) []byte {
	a, b = max(0, min(a, int64(len(f.data)))), max(0, min(b, int64(len(f.data))))
	if b < a {
		return nil
	}
	return f.data[a:b]
}

// literalHead is the start of a literal (or literal8 when data holds
// NUL) that carries data.
func literalHead(data []byte, binary bool) string {
	prefix := "{"
	if binary && bytes.IndexByte(data, 0) >= 0 {
		prefix = "~{" // RFC 3516 §4.2
	}
	return prefix + strconv.Itoa(len(data)) + "}\r\n"
}

// findPart walks a section path (RFC 9051 §6.4.5). It returns the part and
// whether it is the message itself (empty path).
func findPart(root *message.Part, path []int) (*message.Part, error) {
	p := root
	for i, n := range path {
		// Into an encapsulated message/rfc822, except at the top: there
		// part 1 of a message that is not multipart is its body, the
		// encapsulated message whole (RFC 9051 §6.4.5).
		if i > 0 && p.Message != nil && len(p.Parts) == 0 {
			p = p.Message
		}
		switch {
		case len(p.Parts) > 0:
			if n > len(p.Parts) {
				return nil, errNoSection
			}
			p = p.Parts[n-1]
		case n != 1:
			return nil, errNoSection
		}
	}
	return p, nil
}

// sectionValue renders BODY[…], BINARY[…] and BINARY.SIZE[…]. The data
// is a view into the message where it can be; what had to be made
// (decoded parts, selected header fields) is charged to fs.
func (c *conn) sectionValue(sec *section, msg *fetchedMessage, fs *fetchScratch) (fetchPiece, error) {
	data, err := fs.sectionData(sec, msg)
	if errors.Is(err, errNoSection) {
		data, err = nil, nil // a part that does not exist reads as empty
	}
	if err != nil {
		return fetchPiece{}, err
	}
	if sec.kind == "BINARY.SIZE" {
		return fetchPiece{text: sec.label + " " + strconv.Itoa(len(data))}, nil
	}
	label := sec.label
	if sec.partial {
		label += "<" + strconv.FormatInt(sec.offset, 10) + ">"
		data = partial(data, sec.offset, sec.length)
	}
	if sec.kind == "BODY" && bytes.IndexByte(data, 0) >= 0 {
		// A plain literal may not hold NUL (RFC 9051 §9: CHAR8); BINARY
		// sends it as it is. As Dovecot does, NUL reads as 0x80 here.
		if err := fs.charge(len(data)); err != nil {
			return fetchPiece{}, err
		}
		data = bytes.ReplaceAll(data, []byte{0}, []byte{0x80})
	}
	return fetchPiece{text: label + " " + literalHead(data, sec.kind == "BINARY"), data: data}, nil
}

// partial is the <off.n> substring of data (RFC 9051 §6.4.5); off and n
// come from the client, up to 2^63-1 each, so off+n may overflow.
func partial(data []byte, off, n int64) []byte {
	size := int64(len(data))
	if off >= size {
		return nil
	}
	return data[off:min(size, off+min(n, size-off))]
}

// fetchPiece is one item of a FETCH response: its text and, for a
// literal, the octets written after it as they are.
type fetchPiece struct {
	text string
	data []byte
}

// fetchScratch holds what one message's FETCH items computed: decoded
// parts are shared by every item that asks for them, and the octets made
// for the response are bounded. Without that bound, one short command
// repeating BINARY[1] or HEADER.FIELDS.NOT (…) thousands of times made
// the server hold thousands of copies of a large part.
type fetchScratch struct {
	decoded map[*message.Part][]byte
	made    int64
	limit   int64 // 1 MiB, and twice the message once it is loaded
}

func (fs *fetchScratch) charge(n int) error {
	fs.made += int64(n)
	if fs.made > fs.limit {
		return no("LIMIT", "FETCH asks for too much data made from one message; ask for fewer items")
	}
	return nil
}

func (fs *fetchScratch) sectionData(sec *section, msg *fetchedMessage) ([]byte, error) {
	p, err := findPart(msg.root, sec.path)
	if err != nil {
		return nil, err
	}
	if sec.kind != "BODY" && len(sec.path) == 0 {
		// BINARY[] is the whole message, header included, as BODY[] is
		// (RFC 9051 §6.4.5: an empty section is the entire message).
		// RFC 3516 decodes one part's body and says nothing about a whole
		// message; it is sent as it is, a message whose header still
		// describes its encoding, where decoding only its body would
		// leave a header that lies.
		return msg.data, nil
	}
	if sec.kind != "BODY" {
		if d, ok := fs.decoded[p]; ok {
			return d, nil
		}
		d, err := decodeBody(p, msg.slice(p.BodyStart, p.End))
		if err != nil {
			return nil, err
		}
		if fs.decoded == nil {
			fs.decoded = map[*message.Part][]byte{}
		}
		fs.decoded[p] = d
		return d, fs.charge(len(d))
	}
	d, err := sectionData(sec, msg, p)
	if err == nil && strings.HasPrefix(sec.text, "HEADER.FIELDS") {
		err = fs.charge(len(d))
	}
	return d, err
}

// sectionData returns BODY[…] of part p (found by sec.path): a view into
// the message, or the selected header fields.
func sectionData(sec *section, msg *fetchedMessage, p *message.Part) ([]byte, error) {
	top := len(sec.path) == 0
	switch sec.text {
	case "":
		if top {
			return msg.data, nil
		}
		return msg.slice(p.BodyStart, p.End), nil
	case "MIME":
		return msg.slice(p.HeaderStart, p.BodyStart), nil
	}
	if !top { // HEADER and TEXT of part N are those of its message/rfc822
		if p.Message == nil {
			return nil, errNoSection
		}
		p = p.Message
	}
	switch sec.text {
	case "TEXT":
		return msg.slice(p.BodyStart, p.End), nil
	case "HEADER":
		return msg.slice(p.HeaderStart, p.BodyStart), nil
	}
	return message.FilterHeader(msg.slice(p.HeaderStart, p.BodyStart), sec.fields, sec.text == "HEADER.FIELDS.NOT"), nil
}

// decodeBody undoes a Content-Transfer-Encoding for BINARY (RFC 3516).
func decodeBody(p *message.Part, body []byte) ([]byte, error) {
	switch strings.ToLower(p.Encoding) {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, body)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			return nil, no("UNKNOWN-CTE", "Cannot decode base64 body")
		}
		return out[:n], nil
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			return nil, no("UNKNOWN-CTE", "Cannot decode quoted-printable body")
		}
		return out, nil
	}
	return nil, no("UNKNOWN-CTE", "Unknown Content-Transfer-Encoding")
}

// bodyStructure renders BODY or BODYSTRUCTURE (RFC 9051 §7.5.2).
func (c *conn) bodyStructure(p *message.Part, ext bool) string {
	if len(p.Parts) > 0 {
		return c.multipartStructure(p, ext)
	}
	var b strings.Builder
	b.WriteString("(" + c.quote(p.Type) + " " + c.quote(p.Subtype) + " " + c.params(p.Params) + " " +
		c.nquote(p.ID) + " " + c.nquote(p.Description) + " " + c.quote(orDefault(p.Encoding, "7bit")) + " " +
		strconv.FormatInt(p.End-p.BodyStart, 10))
	switch {
	case p.Message != nil && p.Type == "message":
		b.WriteString(" " + c.envelope(p.Message) + " " + c.bodyStructure(p.Message, ext) + " " + strconv.FormatInt(p.BodyLines, 10))
	case p.Type == "text":
		b.WriteString(" " + strconv.FormatInt(p.BodyLines, 10))
	}
	if ext {
		b.WriteString(" " + c.nquote(p.MD5) + " " + c.disposition(p) + " " + c.language(p.Language) + " " + c.nquote(p.Location))
	}
	b.WriteString(")")
	return b.String()
}

func (c *conn) multipartStructure(p *message.Part, ext bool) string {
	var b strings.Builder
	b.WriteString("(")
	for _, ch := range p.Parts {
		b.WriteString(c.bodyStructure(ch, ext))
	}
	b.WriteString(" " + c.quote(p.Subtype))
	if ext {
		b.WriteString(" " + c.params(p.Params) + " " + c.disposition(p) + " " + c.language(p.Language) + " " + c.nquote(p.Location))
	}
	b.WriteString(")")
	return b.String()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (c *conn) params(ps []message.Param) string {
	if len(ps) == 0 {
		return "NIL"
	}
	var parts []string
	for _, p := range ps {
		parts = append(parts, c.quote(p.Key)+" "+c.quote(p.Value))
	}
	return "(" + strings.Join(parts, " ") + ")"
}

func (c *conn) disposition(p *message.Part) string {
	if p.Disposition == "" {
		return "NIL"
	}
	return "(" + c.quote(p.Disposition) + " " + c.params(p.DispositionParams) + ")"
}

func (c *conn) language(l []string) string {
	switch len(l) {
	case 0:
		return "NIL"
	case 1:
		return c.quote(l[0])
	}
	var q []string
	for _, x := range l {
		q = append(q, c.quote(x))
	}
	return "(" + strings.Join(q, " ") + ")"
}

// envelope renders ENVELOPE (RFC 9051 §7.5.2).
func (c *conn) envelope(p *message.Part) string {
	e := p.Envelope()
	return "(" + strings.Join([]string{
		c.nquote(e.Date), c.nquote(e.Subject), c.addrs(e.From), c.addrs(e.Sender), c.addrs(e.ReplyTo),
		c.addrs(e.To), c.addrs(e.Cc), c.addrs(e.Bcc), c.nquote(e.InReplyTo), c.nquote(e.MessageID),
	}, " ") + ")"
}

func (c *conn) addrs(list []message.Address) string {
	if len(list) == 0 {
		return "NIL"
	}
	var b strings.Builder
	b.WriteString("(")
	for _, a := range list {
		b.WriteString("(" + c.nquote(a.Name) + " NIL " + c.nquote(a.Mailbox) + " " + c.nquote(a.Host) + ")")
	}
	b.WriteString(")")
	return b.String()
}
