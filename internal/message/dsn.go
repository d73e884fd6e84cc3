package message

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
	"strings"
	"time"
)

// DSNAction is the RFC 3464 §2.3.3 Action of one recipient.
type DSNAction string

// Actions.
const (
	ActionFailed    DSNAction = "failed"
	ActionDelayed   DSNAction = "delayed"
	ActionDelivered DSNAction = "delivered"
	ActionRelayed   DSNAction = "relayed"
)

// DSNRecipient is one per-recipient section of a report.
type DSNRecipient struct {
	Final      string // the address we tried
	Original   string // ORCPT "type;address", "" if not given
	Action     DSNAction
	Status     string // enhanced status code, e.g. "5.1.1"
	RemoteMTA  string // host name of the server that answered, if any
	Diagnostic string // the reply we got: "550 5.1.1 No such user"
	LastTry    time.Time
	WillRetry  time.Time // for delayed: when we give up
}

// DSN describes a delivery status notification (RFC 3464).
type DSN struct {
	ReportingMTA string // our host name
	To           string // the envelope sender of the original message
	EnvID        string // RFC 3461 ENVID
	Arrival      time.Time
	Recipients   []DSNRecipient
	HeadersOnly  bool // RET=HDRS, or the original is too large to return
	Original     io.Reader
}

// MaxReturnedSize: a larger original is returned as headers only.
const MaxReturnedSize = 100 << 10

// Build renders the report as a complete message with CRLF line ends,
// to be sent with the null reverse-path (RFC 3461 §6.2 / RFC 5321 §4.5.5).
func (d DSN) Build(now time.Time) ([]byte, error) {
	boundary := randomToken()
	var b bytes.Buffer
	d.writeHeader(&b, boundary, now)
	fmt.Fprintf(&b, "This is a MIME-encapsulated message.\r\n\r\n--%s\r\n", boundary)
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	d.writeHuman(&b)
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary)
	d.writeStatus(&b)
	fmt.Fprintf(&b, "\r\n--%s\r\n", boundary)
	if err := d.writeOriginal(&b); err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes(), nil
}

func (d DSN) subject() string {
	switch d.worst() {
	case ActionFailed:
		return "Undelivered Mail Returned to Sender"
	case ActionDelayed:
		return "Delayed Mail (still being retried)"
	}
	return "Successful Mail Delivery Report"
}

// worst returns the most serious action of the report.
func (d DSN) worst() DSNAction {
	w := ActionDelivered
	for _, r := range d.Recipients {
		switch {
		case r.Action == ActionFailed:
			return ActionFailed
		case r.Action == ActionDelayed:
			w = ActionDelayed
		}
	}
	return w
}

func (d DSN) writeHeader(b *bytes.Buffer, boundary string, now time.Time) {
	fmt.Fprintf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", d.ReportingMTA)
	fmt.Fprintf(b, "To: <%s>\r\n", d.To)
	fmt.Fprintf(b, "Subject: %s\r\n", d.subject())
	fmt.Fprintf(b, "Date: %s\r\n", now.Format(DateLayout))
	fmt.Fprintf(b, "Message-ID: <%s@%s>\r\n", randomToken(), d.ReportingMTA)
	b.WriteString("Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n") // RFC 3834 §5
	fmt.Fprintf(b, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n", boundary)
}

func (d DSN) writeHuman(b *bytes.Buffer) {
	fmt.Fprintf(b, "This is the mail system at host %s.\r\n\r\n", d.ReportingMTA)
	switch d.worst() {
	case ActionFailed:
		b.WriteString("Your message could not be delivered to one or more recipients.\r\nIt is attached below.\r\n\r\n")
	case ActionDelayed:
		b.WriteString("Your message has not been delivered yet. The mail system will keep trying;\r\nyou do not need to send it again.\r\n\r\n")
	default:
		b.WriteString("Your message was delivered as you asked to be told.\r\n\r\n")
	}
	for _, r := range d.Recipients {
		fmt.Fprintf(b, "<%s>: %s", r.Final, r.Action)
		if r.Diagnostic != "" {
			fmt.Fprintf(b, ": %s", oneLine(r.Diagnostic))
		}
		b.WriteString("\r\n")
	}
}

// writeStatus writes the machine-readable part (RFC 3464 §2.2, §2.3).
func (d DSN) writeStatus(b *bytes.Buffer) {
	fmt.Fprintf(b, "Reporting-MTA: dns; %s\r\n", d.ReportingMTA)
	if d.EnvID != "" {
		fmt.Fprintf(b, "Original-Envelope-Id: %s\r\n", oneLine(d.EnvID))
	}
	if !d.Arrival.IsZero() {
		fmt.Fprintf(b, "Arrival-Date: %s\r\n", d.Arrival.Format(DateLayout))
	}
	for _, r := range d.Recipients {
		b.WriteString("\r\n")
		if r.Original != "" {
			fmt.Fprintf(b, "Original-Recipient: %s\r\n", oneLine(originalRecipient(r.Original)))
		}
		fmt.Fprintf(b, "Final-Recipient: rfc822; %s\r\n", r.Final)
		fmt.Fprintf(b, "Action: %s\r\nStatus: %s\r\n", r.Action, r.Status)
		if r.RemoteMTA != "" {
			fmt.Fprintf(b, "Remote-MTA: dns; %s\r\n", r.RemoteMTA)
		}
		if r.Diagnostic != "" {
			fmt.Fprintf(b, "Diagnostic-Code: smtp; %s\r\n", oneLine(r.Diagnostic))
		}
		if !r.LastTry.IsZero() {
			fmt.Fprintf(b, "Last-Attempt-Date: %s\r\n", r.LastTry.Format(DateLayout))
		}
		if !r.WillRetry.IsZero() {
			fmt.Fprintf(b, "Will-Retry-Until: %s\r\n", r.WillRetry.Format(DateLayout))
		}
	}
}

// writeOriginal returns the original as message/rfc822, or only its header
// as text/rfc822-headers (RFC 3462 §2) for RET=HDRS or a large message.
func (d DSN) writeOriginal(b *bytes.Buffer) error {
	if d.Original == nil {
		b.WriteString("Content-Type: text/plain\r\n\r\n(original message not available)\r\n")
		return nil
	}
	br := bufio.NewReader(io.LimitReader(d.Original, MaxReturnedSize+1))
	if d.HeadersOnly {
		b.WriteString("Content-Type: text/rfc822-headers\r\n\r\n")
		return copyHeader(b, br)
	}
	var all bytes.Buffer
	if _, err := io.Copy(&all, br); err != nil {
		return err
	}
	if all.Len() > MaxReturnedSize {
		b.WriteString("Content-Type: text/rfc822-headers\r\n\r\n")
		return copyHeader(b, bufio.NewReader(&all))
	}
	b.WriteString("Content-Type: message/rfc822\r\n\r\n")
	b.Write(all.Bytes())
	return nil
}

// copyHeader copies lines up to the blank line that ends the header. A
// line longer than r's buffer comes in pieces: only a piece that starts
// a line can be that blank line.
func copyHeader(w *bytes.Buffer, r *bufio.Reader) error {
	for atStart := true; ; {
		line, err := r.ReadSlice('\n')
		if atStart && len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
		atStart = err == nil
		w.Write(line)
		if err == io.EOF {
			w.WriteString("\r\n")
			return nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
	}
}

// oneLine makes text that came from elsewhere (a remote server's reply,
// a client's ENVID) fit a report field: one line of printable US-ASCII
// (RFC 3464 §2.1: the status fields are US-ASCII; control octets, DEL
// and anything not ASCII become "?"), at most maxFieldText octets (RFC
// 5322 §2.1.1 limits lines to 998; a remote reply of 100 lines of 2,000
// characters made a bounce that the sender's own server would refuse).
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	if len(b) > maxFieldText {
		b = append(b[:maxFieldText-3], "..."...)
	}
	return string(b)
}

// maxFieldText bounds one field's text in a report.
const maxFieldText = 900

func randomToken() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
