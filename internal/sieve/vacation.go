package sieve

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"time"
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

// Reply writes the vacation response (RFC 5230 §5, RFC 3834 §3) from
// address from to the envelope sender of in. hostname makes the
// Message-ID.
func (v *Vacation) Reply(in Input, from, hostname string, now time.Time) []byte {
	var b bytes.Buffer
	if v.From != "" {
		from = v.From
	}
	subject := v.Subject
	if subject == "" || subject == "Automated reply" {
		subject = "Auto: " + decodeWords(in.Header.Get("Subject")) // §5.4
	}
	field := func(name, value string) { fmt.Fprintf(&b, "%s: %s\r\n", name, value) }
	field("From", from)
	field("To", "<"+in.From+">")
	field("Subject", mime.QEncoding.Encode("utf-8", oneLine(subject)))
	field("Date", now.Format(time.RFC1123Z))
	field("Message-ID", "<"+rand.Text()+"@"+hostname+">")
	if id := strings.TrimSpace(in.Header.Get("Message-ID")); id != "" { // §5.5
		field("In-Reply-To", oneLine(id))
		refs := strings.TrimSpace(in.Header.Get("References"))
		if refs == "" {
			refs = strings.TrimSpace(in.Header.Get("In-Reply-To"))
		}
		field("References", oneLine(strings.TrimSpace(refs+" "+id)))
	}
	field("Auto-Submitted", "auto-replied (vacation)") // RFC 3834 §5
	field("Precedence", "bulk")
	field("MIME-Version", "1.0")
	reason := strings.ReplaceAll(strings.ReplaceAll(v.Reason, "\r\n", "\n"), "\n", "\r\n")
	if v.Mime { // §4.4: the reason is a MIME entity with its own fields
		b.WriteString(reason)
	} else {
		field("Content-Type", "text/plain; charset=utf-8")
		field("Content-Transfer-Encoding", "8bit")
		b.WriteString("\r\n")
		b.WriteString(reason)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

func decodeWords(s string) string {
	d, err := new(mime.WordDecoder).DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}
