package mua

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html"

	"posthorn/internal/message"
)

// maxDepth bounds multipart nesting (a message is untrusted input).
const maxDepth = 20

// Message is a message as a person reads it: decoded header fields, the
// text, and the list of attachments.
type Message struct {
	UID        uint32    `json:"uid,omitempty"`
	Folder     string    `json:"folder,omitempty"`
	Flags      []string  `json:"flags,omitempty"`
	Date       time.Time `json:"date"`
	From       []Address `json:"from"`
	To         []Address `json:"to,omitempty"`
	Cc         []Address `json:"cc,omitempty"`
	ReplyTo    []Address `json:"reply_to,omitempty"`
	Subject    string    `json:"subject"`
	MessageID  string    `json:"message_id,omitempty"`
	InReplyTo  string    `json:"in_reply_to,omitempty"`
	References []string  `json:"references,omitempty"`
	// Text is the readable body: the text/plain parts, or the text of
	// the text/html parts when there is no plain one (TextType says).
	Text        string `json:"text"`
	TextType    string `json:"text_type,omitempty"`
	Attachments []Part `json:"attachments,omitempty"`
	// Notes say what could not be decoded (an unknown charset, a broken
	// part); the rest of the message is still shown.
	Notes []string `json:"notes,omitempty"`

	Raw []byte `json:"-"`
}

// Part is an attachment of a message.
type Part struct {
	Index       int    `json:"index"` // 1, 2, ... in the order of the message
	Filename    string `json:"filename,omitempty"`
	ContentType string `json:"content_type"`
	Size        int    `json:"size"` // decoded
	Saved       string `json:"saved,omitempty"`

	Data []byte `json:"-"`
}

// ParseMessage decodes raw (RFC 5322 + MIME). It never fails on a broken
// message: what cannot be decoded is shown raw, with a note, and a header
// line that is no field is left out with a note (any sender can put one
// there, and the message must still be readable, answerable and
// forwardable). The error return is kept for callers; it is always nil.
func ParseMessage(raw []byte) (*Message, error) {
	var h mail.Header
	var body []byte
	var notes []string
	if msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(raw))); err == nil {
		h = msg.Header
		body, _ = io.ReadAll(msg.Body)
	} else {
		var skipped int
		if h, body, skipped = lenientHeader(raw); skipped > 0 {
			notes = append(notes, fmt.Sprintf("%d header line(s) that are no header field left out", skipped))
		}
	}
	m := &Message{Notes: notes,
		From:       parseAddressList(h.Get("From")),
		To:         parseAddressList(h.Get("To")),
		Cc:         parseAddressList(h.Get("Cc")),
		ReplyTo:    parseAddressList(h.Get("Reply-To")),
		Subject:    decodeHeader(h.Get("Subject")),
		InReplyTo:  strings.Join(message.MessageIDs(h.Get("In-Reply-To")), " "),
		References: message.MessageIDs(h.Get("References")),
		Raw:        raw,
	}
	if ids := message.MessageIDs(h.Get("Message-ID")); len(ids) > 0 {
		m.MessageID = ids[0]
	}
	if d, err := mail.ParseDate(h.Get("Date")); err == nil {
		m.Date = d
	}
	w := &walker{m: m}
	w.entity(textproto.MIMEHeader(h), body, 0)
	switch {
	case len(w.plain) > 0:
		m.Text, m.TextType = strings.Join(w.plain, "\n"), "text/plain"
	case len(w.html) > 0:
		m.Text, m.TextType = htmlToText(strings.Join(w.html, "\n")), "text/html"
	}
	return m, nil
}

// lenientHeader splits raw into its header fields and body as mutt and
// Dovecot read a broken header: up to the first empty line (or the end),
// continuation lines unfolded into their field, other lines without a
// colon (or with an empty or spaced name) left out and counted.
func lenientHeader(raw []byte) (mail.Header, []byte, int) {
	h := mail.Header{}
	skipped := 0
	var name string // the field a continuation line belongs to
	rest := raw
	for len(rest) > 0 {
		line, after, found := bytes.Cut(rest, []byte("\n"))
		if !found {
			after = nil
		}
		rest = after
		text := strings.TrimSuffix(string(line), "\r")
		if text == "" {
			break
		}
		if text[0] == ' ' || text[0] == '\t' {
			if vs := h[name]; name != "" && len(vs) > 0 {
				vs[len(vs)-1] += " " + strings.TrimSpace(text)
			} else {
				skipped++
			}
			continue
		}
		k, v, ok := strings.Cut(text, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			skipped, name = skipped+1, ""
			continue
		}
		name = textproto.CanonicalMIMEHeaderKey(k)
		h[name] = append(h[name], strings.TrimSpace(v))
	}
	return h, rest, skipped
}

// walker collects the text and the attachments of a MIME tree.
type walker struct {
	m     *Message
	plain []string
	html  []string
}

func (w *walker) note(format string, args ...any) {
	w.m.Notes = append(w.m.Notes, fmt.Sprintf(format, args...))
}

func (w *walker) entity(h textproto.MIMEHeader, body []byte, depth int) {
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt == "" {
		// RFC 2045 §5.2: no (or a broken) Content-Type is text/plain.
		mt, params = "text/plain", map[string]string{}
	}
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	// Some mailers put RFC 2047 words in file names, against RFC 2047 §5.
	filename = decodeHeader(filename)

	if strings.HasPrefix(mt, "multipart/") && depth < maxDepth && params["boundary"] != "" {
		w.multipart(mt, params["boundary"], body, depth)
		return
	}
	data, err := decodeTransfer(h.Get("Content-Transfer-Encoding"), body)
	if err != nil {
		w.note("part %s: %v (shown undecoded)", mt, err)
	}
	isText := mt == "text/plain" || mt == "text/html"
	if isText && disp != "attachment" && filename == "" {
		text := w.decodeCharset(params["charset"], data)
		text = strings.ReplaceAll(text, "\r\n", "\n")
		if mt == "text/plain" {
			w.plain = append(w.plain, text)
		} else {
			w.html = append(w.html, text)
		}
		return
	}
	if mt == "message/rfc822" && filename == "" {
		filename = "forwarded message.eml"
		if fm, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
			if s := decodeHeader(fm.Header.Get("Subject")); s != "" {
				filename = s + ".eml"
			}
		}
	}
	ctype := mt
	if cs := params["charset"]; cs != "" && strings.HasPrefix(mt, "text/") {
		ctype = mime.FormatMediaType(mt, map[string]string{"charset": cs})
	}
	w.m.Attachments = append(w.m.Attachments, Part{Index: len(w.m.Attachments) + 1, Filename: filename,
		ContentType: ctype, Size: len(data), Data: data})
}

// multipart walks the parts; of a multipart/alternative (RFC 2046 §5.1.4)
// only the best one we can show: the last text/plain, else the last part.
func (w *walker) multipart(mt, boundary string, body []byte, depth int) {
	type part struct {
		h    textproto.MIMEHeader
		body []byte
	}
	var parts []part
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := r.NextRawPart() // raw: we decode transfer encodings ourselves
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			w.note("%s: %v", mt, err)
			break
		}
		b, err := io.ReadAll(p)
		if err != nil {
			w.note("%s: %v", mt, err)
		}
		parts = append(parts, part{p.Header, b})
	}
	if mt == "multipart/alternative" && len(parts) > 1 {
		best := len(parts) - 1
		for i, p := range parts {
			if t, _, _ := mime.ParseMediaType(p.h.Get("Content-Type")); t == "text/plain" {
				best = i
			}
		}
		parts = parts[best : best+1]
	}
	for _, p := range parts {
		w.entity(p.h, p.body, depth+1)
	}
}

// decodeTransfer undoes a Content-Transfer-Encoding (RFC 2045 §6).
func decodeTransfer(cte string, body []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "base64":
		// The decoder skips CR and LF; other junk is an error.
		out, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(bytes.TrimSpace(body))))
		if err != nil {
			return body, fmt.Errorf("base64: %w", err)
		}
		return out, nil
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			return body, fmt.Errorf("quoted-printable: %w", err)
		}
		return out, nil
	}
	return body, fmt.Errorf("unknown transfer encoding %q", cte)
}

// decodeCharset converts text to UTF-8. A missing charset is US-ASCII
// (RFC 2045 §5.2), which UTF-8 includes; invalid bytes become U+FFFD.
func (w *walker) decodeCharset(charset string, data []byte) string {
	cs := strings.ToLower(strings.Trim(charset, `" `))
	switch cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	r, err := charsetReader(cs, bytes.NewReader(data))
	if err != nil {
		w.note("%v: shown as UTF-8", err)
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	out, err := io.ReadAll(r)
	if err != nil {
		w.note("charset %s: %v", cs, err)
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// htmlToText is a crude renderer: the text of the document, a line break
// for each block element, nothing of scripts, styles and the head.
func htmlToText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return tidyText(b.String())
		case html.TextToken:
			if skip == 0 {
				b.WriteString(collapseSpace(string(z.Text())))
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "head", "title":
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			case "br", "p", "div", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "ul", "ol":
				b.WriteString("\n")
			case "li":
				if tt == html.StartTagToken {
					b.WriteString("\n* ")
				}
			case "td", "th":
				b.WriteString(" ")
			}
		}
	}
}

// collapseSpace turns each run of HTML white space (not U+00A0, which
// &nbsp; means to keep) into one space.
func collapseSpace(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// tidyText trims every line and keeps at most one empty line in a row.
func tidyText(s string) string {
	var out []string
	blank := true
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			if !blank {
				out = append(out, "")
			}
			blank = true
			continue
		}
		out = append(out, line)
		blank = false
	}
	return strings.TrimSpace(strings.Join(out, "\n")) + "\n"
}

// Printable makes untrusted text safe for a terminal: control characters
// other than newline and tab (escape sequences that could rewrite the
// screen or the title) and bidirectional overrides are shown as U+FFFD.
func Printable(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && Unsafe(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// Unsafe reports a rune a terminal may act on: a control character (C0,
// DEL, C1, whose CSI starts escape sequences) or a bidirectional
// override, which reorders what follows it on the screen.
func Unsafe(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) ||
		r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f
}
