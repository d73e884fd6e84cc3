package sieve

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"posthorn/internal/message"
)

// Bounds on :days (RFC 5230 §4.1 lets a site set them).
const (
	MinDays = 1
	MaxDays = 30
)

// Period is how long one sender gets no second reply.
func (v *Vacation) Period() time.Duration {
	d := v.Days
	if d < MinDays {
		d = MinDays
	}
	if d > MaxDays {
		d = MaxDays
	}
	return time.Duration(d) * 24 * time.Hour
}

// Key names this vacation action for the once-per-period record: the
// :handle, or a digest of the parameters that make the reply what it is
// (RFC 5230 §4.2: a changed reason is a new vacation).
func (v *Vacation) Key() string {
	if v.Handle != "" {
		return "handle:" + v.Handle
	}
	h := sha256.Sum256([]byte(v.Subject + "\x00" + v.From + "\x00" + v.Reason + "\x00" + fmt.Sprint(v.Mime)))
	return "auto:" + hex.EncodeToString(h[:12])
}

// listFields mark mail from a mailing list (RFC 2369, RFC 2919).
var listFields = []string{"List-Id", "List-Help", "List-Subscribe", "List-Unsubscribe", "List-Post", "List-Owner", "List-Archive"}

// ShouldAnswer applies the rules of RFC 5230 §4.5–§4.6 and RFC 3834 §2
// that do not need memory: it returns false with the reason for mail
// that must never get an automatic reply. own are the recipient's
// addresses: the account, the address the mail came to, :addresses.
func ShouldAnswer(in Input, own []string) (bool, string) {
	sender := strings.ToLower(in.From)
	local, _, _ := strings.Cut(sender, "@")
	switch {
	case sender == "":
		return false, "null sender"
	case local == "mailer-daemon" || local == "listserv" || local == "majordomo" ||
		strings.HasPrefix(local, "owner-") || strings.HasSuffix(local, "-request") || strings.HasSuffix(local, "-owner"):
		return false, "sender is a list or a daemon"
	case ownsAddr(own, sender):
		return false, "sender is the recipient"
	}
	if as := strings.ToLower(strings.TrimSpace(in.Header.Get("Auto-Submitted"))); as != "" && !strings.HasPrefix(as, "no") {
		return false, "auto-submitted"
	}
	switch strings.ToLower(strings.TrimSpace(in.Header.Get("Precedence"))) {
	case "bulk", "list", "junk":
		return false, "precedence bulk, list or junk"
	}
	for _, f := range listFields {
		if in.Header.Get(f) != "" {
			return false, "mailing list"
		}
	}
	if !addressedTo(in.Header, own) {
		return false, "recipient not in To, Cc or Bcc"
	}
	return true, ""
}

func ownsAddr(own []string, addr string) bool {
	for _, o := range own {
		if o != "" && strings.EqualFold(o, addr) {
			return true
		}
	}
	return false
}

// addressedTo tells whether one of own is in a destination field
// (RFC 5230 §4.5).
func addressedTo(h Header, own []string) bool {
	for _, name := range []string{"To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"} {
		for _, v := range h.Values(name) {
			list, err := mail.ParseAddressList(v)
			if err != nil {
				// Unparsable: look for the address as text.
				for _, o := range own {
					if o != "" && strings.Contains(strings.ToLower(v), strings.ToLower(o)) {
						return true
					}
				}
				continue
			}
			for _, a := range list {
				if ownsAddr(own, a.Address) {
					return true
				}
			}
		}
	}
	return false
}

// Limits on what a reply copies from the message it answers.
const (
	maxSubject  = 200 // characters of the reply's Subject
	maxName     = 200 // characters of the :from display name
	maxMsgIDLen = 250 // a longer message id is not copied
	maxRefs     = 10  // message ids kept in References
	maxLine     = 998 // RFC 5322 §2.1.1: octets in a line, CRLF aside
)

// Reply writes the vacation response (RFC 5230 §5, RFC 3834 §3) from
// address from to the envelope sender of in. hostname makes the
// Message-ID. Every field is one logical line with no CR or LF of the
// script's or the message's, folded so that no line passes 998 octets.
func (v *Vacation) Reply(in Input, from, hostname string, now time.Time) []byte {
	var b bytes.Buffer
	subject := v.Subject
	if subject == "" || subject == "Automated reply" {
		subject = "Auto: " + decodeWords(in.Header.Get("Subject")) // §5.4
	}
	field := func(name, value string) { writeField(&b, name, value) }
	field("From", v.sender(in, from))
	field("To", "<"+oneLine(in.From)+">")
	field("Subject", mime.QEncoding.Encode("utf-8", clipRunes(oneLine(subject), maxSubject)))
	field("Date", now.Format(time.RFC1123Z))
	field("Message-ID", "<"+rand.Text()+"@"+oneLine(hostname)+">")
	if ids := msgIDs(in.Header.Get("Message-ID")); len(ids) > 0 { // §5.5
		field("In-Reply-To", ids[0])
		field("References", strings.Join(references(in.Header, ids[0]), " "))
	}
	field("Auto-Submitted", "auto-replied (vacation)") // RFC 3834 §5
	field("Precedence", "bulk")
	field("MIME-Version", "1.0")
	v.writeBody(&b)
	return b.Bytes()
}

// sender is the reply's From field: :from when its address is one the
// run knows the user by (the address mailed, the account, or from),
// else from. RFC 5230 §4.3 leaves it to the site to refuse addresses
// the user does not own; a :from that is no RFC 5322 mailbox, or holds
// a second line, is refused the same way.
func (v *Vacation) sender(in Input, from string) string {
	if a, err := mail.ParseAddress(v.From); err == nil {
		for _, own := range []string{from, in.To, in.Account} {
			if own != "" && strings.EqualFold(a.Address, own) {
				// String quotes or RFC 2047-encodes the name: no CR or LF survives.
				return (&mail.Address{Name: clipRunes(a.Name, maxName), Address: own}).String()
			}
		}
	}
	return (&mail.Address{Address: oneLine(from)}).String()
}

// writeBody writes the content fields and the reason. A :mime reason is
// a MIME entity (§4.4) of which only the Content-* fields (RFC 2045 §9)
// are kept; a plain one whose lines pass maxLine goes quoted-printable.
func (v *Vacation) writeBody(b *bytes.Buffer) {
	reason := crlf(v.Reason)
	if v.Mime {
		head, body := mimeFields(reason)
		b.WriteString(head + "\r\n" + body)
	} else if longLines(reason) {
		writeField(b, "Content-Type", "text/plain; charset=utf-8")
		writeField(b, "Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		w := quotedprintable.NewWriter(b)
		w.Write([]byte(reason))
		w.Close()
	} else {
		writeField(b, "Content-Type", "text/plain; charset=utf-8")
		writeField(b, "Content-Transfer-Encoding", "8bit")
		b.WriteString("\r\n")
		b.WriteString(reason)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
}

// mimeFields splits a :mime reason into its Content-* fields (CRLF
// after each) and its body. The header ends at the empty line, or at
// the first line that is no field.
func mimeFields(reason string) (head, body string) {
	lines := strings.Split(reason, "\r\n")
	var keep []string
	keeping := false
	i := 0
	for ; i < len(lines) && lines[i] != ""; i++ {
		l := lines[i]
		if l[0] == ' ' || l[0] == '\t' { // continuation (RFC 5322 §2.2.3)
			if keeping {
				keep = append(keep, l)
			}
			continue
		}
		name, _, ok := strings.Cut(l, ":")
		if !ok || !fieldName(name) {
			break
		}
		keeping = len(name) > 8 && strings.EqualFold(name[:8], "content-")
		if keeping {
			keep = append(keep, l)
		}
	}
	if i < len(lines) && lines[i] == "" {
		i++
	}
	for _, l := range keep {
		head += l + "\r\n"
	}
	return head, strings.Join(lines[i:], "\r\n")
}

// fieldName: printable ASCII but ':' and space (RFC 5322 §2.2).
func fieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return s != ""
}

func longLines(s string) bool {
	for l := range strings.SplitSeq(s, "\r\n") {
		if len(l) > maxLine {
			return true
		}
	}
	return false
}

// crlf ends every line with CRLF, whatever it ended with.
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// writeField writes one field, folded at spaces (RFC 5322 §2.2.3) so
// that lines stay within 78 characters where the words allow. Callers
// keep every word far below maxLine.
func writeField(b *bytes.Buffer, name, value string) {
	line := name + ":"
	for _, w := range strings.Fields(oneLine(value)) {
		if len(line)+1+len(w) > 78 && len(line) > len(name)+1 {
			b.WriteString(line + "\r\n")
			line = ""
		}
		line += " " + w
	}
	b.WriteString(line + "\r\n")
}

// msgIDs returns the message ids ("<left@right>", RFC 5322 §3.6.4) of a
// field's value, dropping anything else and ids longer than maxMsgIDLen.
func msgIDs(v string) []string {
	var out []string
	for _, id := range message.MessageIDs(v) {
		if len(id) <= maxMsgIDLen && !strings.ContainsFunc(id[1:len(id)-1], badIDRune) {
			out = append(out, id)
		}
	}
	return out
}

func badIDRune(r rune) bool { return r <= ' ' || r == 0x7f || r == '<' || r == utf8.RuneError }

// references is the reply's References (RFC 5322 §3.6.4): the parent's
// References (or In-Reply-To) then the parent's id. A long chain keeps
// its first id and the last ones, as RFC 5537 §3.4.4 trims Netnews
// References, so the field stays short.
func references(h Header, parent string) []string {
	ids := msgIDs(h.Get("References"))
	if len(ids) == 0 {
		ids = msgIDs(h.Get("In-Reply-To"))
	}
	ids = append(slices.DeleteFunc(ids, func(id string) bool { return id == parent }), parent)
	if len(ids) > maxRefs {
		ids = append(ids[:1], ids[len(ids)-maxRefs+1:]...)
	}
	return ids
}

// oneLine joins the lines of s with spaces: no CR or LF is left.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

// clipRunes cuts s to at most n characters.
func clipRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

func decodeWords(s string) string {
	d, err := new(mime.WordDecoder).DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}
