package message

import (
	"fmt"
	"strings"
	"time"
)

// Trace describes one hop, for the trace fields added on delivery.
type Trace struct {
	From       string    // envelope sender, "" for the null path
	Recipient  string    // the RCPT address this copy is for
	Account    string    // the mailbox owner it is delivered to
	HELO       string    // client's EHLO/HELO argument
	RemoteIP   string    // client's IP address
	By         string    // our hostname
	With       string    // protocol: ESMTP, ESMTPS, UTF8SMTPS, …
	ID         string    // our message id
	TLSVersion string    // e.g. "TLS1.3", "" without TLS
	TLSCipher  string    //
	Time       time.Time //
}

// DateLayout is the RFC 5322 §3.3 date-time format.
const DateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// TraceFields returns Return-Path (RFC 5321 §4.4), Delivered-To (the
// de-facto loop-detection field) and Received (RFC 5321 §4.4) for one
// delivered copy, with CRLF line ends, ready to prefix the message.
func TraceFields(t Trace) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", t.From)
	if t.Account != "" {
		fmt.Fprintf(&b, "Delivered-To: %s\r\n", t.Account)
	}
	b.WriteString(Received(t))
	return []byte(b.String())
}

// Received returns one Received field, folded, with CRLF. Client-supplied
// text (HELO) is reduced to safe characters so it cannot break the field.
func Received(t Trace) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (Posthorn) with %s id %s",
		safeToken(t.HELO), t.RemoteIP, t.By, t.With, t.ID)
	if t.TLSVersion != "" {
		fmt.Fprintf(&b, "\r\n\t(%s cipher %s)", t.TLSVersion, t.TLSCipher)
	}
	if t.Recipient != "" {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", t.Recipient)
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", t.Time.Format(DateLayout))
	return b.String()
}

// safeToken keeps letters, digits and . - _ [ ] : and turns anything else
// into '?'.
func safeToken(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		case strings.ContainsRune(".-_[]:", r):
			return r
		}
		return '?'
	}, s)
}
