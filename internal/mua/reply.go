package mua

import (
	"net/mail"
	"regexp"
	"slices"
	"strings"

	"posthorn/internal/message"
)

// reSubject matches the reply prefixes a subject may carry already:
// "Re:", "RE:", "Re[2]:", repeated.
var reSubject = regexp.MustCompile(`(?i)^\s*(re(\[\d+\])?\s*:\s*)+`)

// fwdSubject matches forward prefixes.
var fwdSubject = regexp.MustCompile(`(?i)^\s*(fwd?\s*:\s*)+`)

// ReplySubject is "Re: " and the subject without its reply prefixes.
func ReplySubject(s string) string {
	return "Re: " + reSubject.ReplaceAllString(s, "")
}

// Reply builds the answer to orig, from from, with text after the
// quoted original. me lists our own addresses (lower case): a reply-all
// leaves them out. The threading fields follow RFC 5322 §3.6.4:
// In-Reply-To is the original's Message-ID, References its References
// (else its In-Reply-To, when that holds one id) followed by its
// Message-ID.
func Reply(orig *Message, from *mail.Address, me []string, all bool, text string) Draft {
	d := Draft{From: from, Subject: ReplySubject(orig.Subject)}
	isMe := func(a Address) bool { return slices.Contains(me, strings.ToLower(a.Addr)) }
	to := orig.ReplyTo
	if len(to) == 0 {
		to = orig.From
	}
	if len(orig.ReplyTo) == 0 && len(orig.From) > 0 && !slices.ContainsFunc(orig.From, func(a Address) bool { return !isMe(a) }) {
		// A reply to a message we sent goes to its recipients (as mutt).
		to = orig.To
	}
	seen := map[string]bool{}
	add := func(list []*mail.Address, as []Address, skipMe bool) []*mail.Address {
		for _, a := range as {
			k := strings.ToLower(a.Addr)
			if a.Addr == "" || seen[k] || skipMe && isMe(a) {
				continue
			}
			seen[k] = true
			list = append(list, a.mailAddress())
		}
		return list
	}
	d.To = add(nil, to, false)
	if all {
		d.Cc = add(nil, append(slices.Clone(orig.To), orig.Cc...), true)
	}
	if orig.MessageID != "" {
		d.InReplyTo = orig.MessageID
	}
	refs := orig.References
	if len(refs) == 0 {
		if ids := message.MessageIDs(orig.InReplyTo); len(ids) == 1 {
			refs = ids
		}
	}
	d.References = slices.Clone(refs)
	if orig.MessageID != "" {
		d.References = append(d.References, orig.MessageID)
	}
	d.Text = Quote(orig) + text
	return d
}

// Quote is the attribution line and the original text with "> " before
// every line (">" alone before an empty one: no trailing space).
func Quote(orig *Message) string {
	var b strings.Builder
	who := "you"
	if len(orig.From) > 0 {
		who = Printable(oneLine(orig.From[0].String())) // the name may hold a line break
	}
	if orig.Date.IsZero() {
		b.WriteString(who + " wrote:\n")
	} else {
		b.WriteString("On " + orig.Date.Format("Mon, 02 Jan 2006 15:04 -0700") + ", " + who + " wrote:\n")
	}
	text := strings.TrimRight(orig.Text, "\n")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, " \t\r")
		if line == "" {
			b.WriteString(">\n")
		} else {
			b.WriteString("> " + line + "\n")
		}
	}
	b.WriteString("\n")
	return b.String()
}

// Forward builds a message that carries orig whole, as a message/rfc822
// attachment (RFC 2046 §5.2.1): headers, attachments and signatures
// arrive untouched, and every client shows it as a message.
func Forward(orig *Message, from *mail.Address, to []*mail.Address, text string) Draft {
	subject := "Fwd: " + fwdSubject.ReplaceAllString(orig.Subject, "")
	name := SafeFilename(orig.Subject)
	if name == "" {
		name = "forwarded message"
	}
	return Draft{From: from, To: to, Subject: subject, Text: text,
		Attachments: []Attachment{{Filename: name + ".eml", ContentType: "message/rfc822", Data: orig.Raw}}}
}
