package message

import (
	"strings"
)

// Envelope is the IMAP ENVELOPE of a header (RFC 9051 §7.5.2). Values are
// raw, as in the header: IMAP clients decode RFC 2047 words themselves.
type Envelope struct {
	Date, Subject, InReplyTo, MessageID string
	From, Sender, ReplyTo, To, Cc, Bcc  []Address
}

// Address is one ENVELOPE address. A group is a start element (Group,
// Mailbox = its name, Host "") and an end element (GroupEnd, all empty).
type Address struct {
	Name, Mailbox, Host string
	Group, GroupEnd     bool
}

// Envelope returns the part's envelope; Sender and Reply-To default to
// From (RFC 9051 §7.5.2).
func (p *Part) Envelope() Envelope {
	e := Envelope{
		Date: p.Get("Date"), Subject: p.Get("Subject"),
		InReplyTo: p.Get("In-Reply-To"), MessageID: p.Get("Message-ID"),
		From: ParseAddressList(p.Get("From")), Sender: ParseAddressList(p.Get("Sender")),
		ReplyTo: ParseAddressList(p.Get("Reply-To")), To: ParseAddressList(p.Get("To")),
		Cc: ParseAddressList(p.Get("Cc")), Bcc: ParseAddressList(p.Get("Bcc")),
	}
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
	return e
}

// maxAddresses bounds one list (CVE-2024-23184: address bombs).
const maxAddresses = 1000

// ParseAddressList parses an address list leniently: it never fails, and
// keeps names raw. Groups ("name: a, b;") become start, members, end.
func ParseAddressList(s string) []Address {
	var out []Address
	for _, el := range splitAddresses(s) {
		if len(out) >= maxAddresses {
			break
		}
		switch {
		case el.groupStart != "":
			out = append(out, Address{Mailbox: el.groupStart, Group: true})
		case el.groupEnd:
			out = append(out, Address{GroupEnd: true})
		default:
			if a, ok := parseMailbox(el.text); ok {
				out = append(out, a)
			}
		}
	}
	return out
}

type element struct {
	text       string
	groupStart string
	groupEnd   bool
}

// splitAddresses splits at top-level commas, and marks group boundaries,
// outside quotes, comments and angle brackets.
func splitAddresses(s string) []element {
	var out []element
	var cur strings.Builder
	inQuote, esc, comment, angle, group := false, false, 0, false, false
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, element{text: t})
		}
		cur.Reset()
	}
	for _, r := range s {
		switch {
		case esc:
			esc = false
		case r == '\\' && (inQuote || comment > 0):
			esc = true
		case r == '"' && comment == 0:
			inQuote = !inQuote
		case inQuote:
		case r == '(':
			comment++
		case r == ')' && comment > 0:
			comment--
		case comment > 0:
		case r == '<':
			angle = true
		case r == '>':
			angle = false
		case angle:
		case r == ':' && !group:
			out = append(out, element{groupStart: strings.TrimSpace(cur.String())})
			cur.Reset()
			group = true
			continue
		case r == ';' && group:
			flush()
			out = append(out, element{groupEnd: true})
			group = false
			continue
		case r == ',':
			flush()
			continue
		}
		cur.WriteRune(r)
	}
	flush()
	if group {
		out = append(out, element{groupEnd: true})
	}
	return out
}

// parseMailbox reads `Name <local@host>`, `local@host (Name)` or just an
// address. Without '@' the host is MISSING_DOMAIN, as Dovecot does, since
// an empty host would mean a group.
func parseMailbox(s string) (Address, bool) {
	var name, addr string
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			j = len(s) - i
		}
		addr, name = s[i+1:i+j], strings.TrimSpace(s[:i])
	} else {
		addr = s
		if i := strings.IndexByte(s, '('); i >= 0 {
			addr, name = s[:i], strings.Trim(strings.TrimSpace(s[i:]), "()")
		}
	}
	addr = strings.TrimSpace(addr)
	name = unquote(strings.TrimSpace(name))
	if addr == "" && name == "" {
		return Address{}, false
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return Address{Name: name, Mailbox: addr, Host: "MISSING_DOMAIN"}, true
	}
	local := addr[:at]
	if i := strings.LastIndexByte(local, ':'); i >= 0 { // a source route: @a,@b:user
		local = local[i+1:]
	}
	mailbox, host := unquote(local), strings.TrimRight(addr[at+1:], ";, \t")
	// An empty mailbox or host would read as a group marker (RFC 9051
	// §7.5.2), so use Dovecot's placeholders.
	if mailbox == "" {
		mailbox = "MISSING_MAILBOX"
	}
	if host == "" {
		host = "MISSING_DOMAIN"
	}
	return Address{Name: name, Mailbox: mailbox, Host: host}, true
}
