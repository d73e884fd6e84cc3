package mua

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"posthorn/internal/message"
	"posthorn/internal/smtp"
)

// Draft is a message before composition. Addresses and text are plain
// Unicode; Compose does every encoding.
type Draft struct {
	From        *mail.Address
	To, Cc, Bcc []*mail.Address
	Subject     string
	Text        string // the body, UTF-8; line ends may be LF or CRLF
	Attachments []Attachment
	// InReplyTo and References hold message ids with their brackets.
	InReplyTo  string
	References []string
	Date       time.Time // zero: now
	MessageID  string    // zero: generated, "<...@from-domain>"
}

// Attachment is one file to attach.
type Attachment struct {
	Filename    string // shown to the recipient; any Unicode
	ContentType string // empty: from the extension, else sniffed
	Data        []byte
}

// Composed is a message ready to send.
type Composed struct {
	// Raw is what goes over SMTP: CRLF line ends, no Bcc field.
	Raw []byte
	// Copy is what goes to the Sent folder: Raw plus the Bcc field, so
	// that the sender keeps a record of whom they copied.
	Copy      []byte
	MessageID string
	From      string   // envelope sender
	Rcpts     []string // To, Cc and Bcc addresses, once each
	Body8     bool     // the message has 8-bit octets (a forwarded original)
	UTF8      bool     // an address is not ASCII: needs SMTPUTF8 (RFC 6531)
}

// Limits of what a message we compose may contain (RFC 5322 §2.1.1).
const (
	maxBodyLine   = 998 // longest line that may travel as 7bit
	base64LineLen = 76  // RFC 2045 §6.8
)

// Compose encodes d: headers RFC 2047 where needed, the text 7bit or
// quoted-printable, attachments base64 in a multipart/mixed (RFC 2046
// §5.1.3) only when there are attachments.
func Compose(d Draft) (*Composed, error) {
	if d.From == nil || d.From.Address == "" {
		return nil, errors.New("compose: no From address")
	}
	if len(d.To)+len(d.Cc)+len(d.Bcc) == 0 {
		return nil, errors.New("compose: no recipients")
	}
	if !utf8.ValidString(d.Text) {
		return nil, errors.New("compose: the text is not UTF-8 (convert it, or attach the file)")
	}
	// Envelope addresses in SMTP form: net/mail gives addr-specs with
	// their quotes removed (smtp.FromAddrSpec).
	from, err := smtp.FromAddrSpec(d.From.Address)
	if err != nil {
		return nil, fmt.Errorf("compose: From %q: %w", d.From.Address, err)
	}
	c := &Composed{From: from.String(), MessageID: d.MessageID, UTF8: !from.IsASCII()}
	seen := map[string]bool{}
	for _, a := range concat(d.To, d.Cc, d.Bcc) {
		r, err := smtp.FromAddrSpec(a.Address)
		if err != nil {
			return nil, fmt.Errorf("compose: recipient %q: %w", a.Address, err)
		}
		if k := strings.ToLower(r.String()); !seen[k] {
			seen[k] = true
			c.Rcpts = append(c.Rcpts, r.String())
			c.UTF8 = c.UTF8 || !r.IsASCII()
		}
	}
	if c.MessageID == "" {
		c.MessageID = NewMessageID(d.From.Address)
	}
	date := d.Date
	if date.IsZero() {
		date = time.Now()
	}
	body, ctype, err := composeBody(d)
	if err != nil {
		return nil, err
	}
	c.Body8 = !isASCII(string(body))
	raw, cp := composeHeader(d, c.MessageID, date, ctype, false), composeHeader(d, c.MessageID, date, ctype, true)
	c.Raw = append(raw, body...)
	c.Copy = append(cp, body...)
	return c, nil
}

func concat(lists ...[]*mail.Address) []*mail.Address {
	var out []*mail.Address
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// NewMessageID returns a unique "<...@domain>" for a message from addr
// (RFC 5322 §3.6.4: the right side names the host that made it).
func NewMessageID(addr string) string {
	domain := "localhost"
	if i := strings.LastIndexByte(addr, '@'); i >= 0 && i+1 < len(addr) {
		domain = addr[i+1:]
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("<%s.%s@%s>", time.Now().UTC().Format("20060102150405"), hex.EncodeToString(b[:]), domain)
}

// composeHeader writes the header section; ctype holds the Content-Type
// and Content-Transfer-Encoding fields of the body, already formatted.
func composeHeader(d Draft, msgID string, date time.Time, ctype []byte, withBcc bool) []byte {
	var b bytes.Buffer
	// RFC 5322 §3.3: day, month, 4-digit year, zone as +hhmm.
	writeField(&b, "Date", date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	writeField(&b, "From", formatAddress(d.From))
	if len(d.To) > 0 {
		writeField(&b, "To", formatAddressList(d.To))
	}
	if len(d.Cc) > 0 {
		writeField(&b, "Cc", formatAddressList(d.Cc))
	}
	if withBcc && len(d.Bcc) > 0 {
		writeField(&b, "Bcc", formatAddressList(d.Bcc))
	}
	writeField(&b, "Subject", encodeText(d.Subject))
	writeField(&b, "Message-ID", msgID)
	if ids := message.MessageIDs(d.InReplyTo); len(ids) > 0 {
		writeField(&b, "In-Reply-To", strings.Join(ids, " "))
	}
	if ids := message.MessageIDs(strings.Join(d.References, " ")); len(ids) > 0 {
		writeField(&b, "References", strings.Join(ids, " "))
	}
	writeField(&b, "MIME-Version", "1.0")
	b.Write(ctype)
	b.WriteString("\r\n")
	return b.Bytes()
}

// composeBody returns the body and the content header fields for it.
func composeBody(d Draft) (body, header []byte, err error) {
	if len(d.Attachments) == 0 {
		h, text := textPart(d.Text)
		return text, h, nil
	}
	boundary := newBoundary()
	var parts [][]byte
	if strings.TrimSpace(d.Text) != "" {
		h, text := textPart(d.Text)
		parts = append(parts, append(append(h, "\r\n"...), text...))
	}
	for _, a := range d.Attachments {
		p, err := attachmentPart(a)
		if err != nil {
			return nil, nil, err
		}
		parts = append(parts, p)
	}
	for _, p := range parts {
		// RFC 2046 §5.1.1: the boundary must not occur in any part.
		if bytes.Contains(p, []byte("--"+boundary)) {
			return composeBody(d) // a new random boundary
		}
	}
	var b bytes.Buffer
	b.WriteString("This is a multi-part message in MIME format.\r\n")
	for _, p := range parts {
		b.WriteString("\r\n--" + boundary + "\r\n")
		b.Write(p)
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	var h bytes.Buffer
	writeField(&h, "Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": boundary}))
	return b.Bytes(), h.Bytes(), nil
}

func newBoundary() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	// "=_" cannot occur in quoted-printable or base64 output.
	return "=_posthorn_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// textPart returns the content fields and the encoded text: 7bit when
// every line is ASCII and at most 998 octets, quoted-printable otherwise
// (RFC 2045 §6.7), charset us-ascii or utf-8.
func textPart(text string) (header, body []byte) {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	charset, qp := "us-ascii", false
	for _, line := range strings.Split(text, "\n") {
		if len(line) > maxBodyLine {
			qp = true
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			if c >= 0x80 {
				charset, qp = "utf-8", true
			} else if c < 0x20 && c != '\t' || c == 0x7f {
				qp = true
			}
		}
	}
	var h, b bytes.Buffer
	writeField(&h, "Content-Type", mime.FormatMediaType("text/plain", map[string]string{"charset": charset}))
	if !qp {
		writeField(&h, "Content-Transfer-Encoding", "7bit")
		b.WriteString(strings.ReplaceAll(text, "\n", "\r\n"))
		return h.Bytes(), b.Bytes()
	}
	writeField(&h, "Content-Transfer-Encoding", "quoted-printable")
	w := quotedprintable.NewWriter(&b) // hard line breaks come out as CRLF
	_, _ = w.Write([]byte(text))
	_ = w.Close()
	return h.Bytes(), b.Bytes()
}

// attachmentPart is one attachment: its type from the extension or the
// content, Content-Disposition attachment with the file name (RFC 2183;
// RFC 2231 encoding when it is not ASCII), base64. A message/rfc822 part
// stays as it is: RFC 2046 §5.2.1 forbids encoding it.
func attachmentPart(a Attachment) ([]byte, error) {
	name := strings.TrimSpace(oneLine(a.Filename))
	ctype := a.ContentType
	if ctype == "" {
		ctype = DetectType(name, a.Data)
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return nil, fmt.Errorf("attachment %s: content type %q: %w", name, ctype, err)
	}
	if name != "" {
		params["name"] = name // for clients older than RFC 2183
	}
	var h bytes.Buffer
	writeField(&h, "Content-Type", mime.FormatMediaType(mt, params))
	disp := map[string]string{}
	if name != "" {
		disp["filename"] = name
	}
	writeField(&h, "Content-Disposition", mime.FormatMediaType("attachment", disp))
	if mt == "message/rfc822" {
		data := strings.ReplaceAll(string(a.Data), "\r\n", "\n")
		enc := "7bit"
		if !isASCII(data) {
			enc = "8bit"
		}
		writeField(&h, "Content-Transfer-Encoding", enc)
		h.WriteString("\r\n")
		h.WriteString(strings.ReplaceAll(data, "\n", "\r\n"))
		return h.Bytes(), nil
	}
	writeField(&h, "Content-Transfer-Encoding", "base64")
	h.WriteString("\r\n")
	enc := base64.StdEncoding.EncodeToString(a.Data)
	for len(enc) > base64LineLen {
		h.WriteString(enc[:base64LineLen] + "\r\n")
		enc = enc[base64LineLen:]
	}
	if enc != "" {
		h.WriteString(enc + "\r\n")
	}
	return h.Bytes(), nil
}

// DetectType is the content type of a file: from its extension
// (mime.TypeByExtension), else sniffed from its first 512 bytes
// (http.DetectContentType), which ends in application/octet-stream.
func DetectType(name string, data []byte) string {
	if t := mime.TypeByExtension(strings.ToLower(filepath.Ext(name))); t != "" {
		return t
	}
	return http.DetectContentType(data)
}
