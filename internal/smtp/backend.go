package smtp

import (
	"context"
	"crypto/tls"
	"io"
	"net/netip"

	"posthorn/internal/sasl"
)

// Backend decides what happens to mail. It is implemented by the mail policy
// (package delivery); the server calls it from one goroutine per connection.
type Backend interface {
	// NewSession is called once per connection, before the greeting.
	// Returning an *Error refuses the connection with that reply.
	NewSession(ctx context.Context, c *ConnInfo) (Session, error)
}

// Session handles the mail transactions of one connection. Its methods are
// never called concurrently. Any error may be an *Error, whose code and text
// become the reply; other errors become "451 4.3.0" and are logged.
type Session interface {
	// Mail starts a transaction (RFC 5321 §4.1.1.2).
	Mail(ctx context.Context, from Path, opts MailOptions) error
	// Rcpt adds one recipient (RFC 5321 §4.1.1.3). A rejected recipient does
	// not end the transaction.
	Rcpt(ctx context.Context, to Path, opts RcptOptions) error
	// Data receives the message. r yields the message exactly as sent, with
	// CRLF line ends, after dot-unstuffing; it returns an *Error when the
	// input breaks a rule (bare CR or LF, size, line length). Data must have
	// made the message durable before it returns a nil error: the server
	// replies "250 … queued as id" as soon as it does.
	Data(ctx context.Context, r io.Reader) (id string, err error)
	// Reset aborts the current transaction (RSET, EHLO, STARTTLS, errors).
	Reset()
	// Close ends the session; it is called exactly once.
	Close()
}

// AuthSession is implemented by sessions that accept AUTH (RFC 4954).
type AuthSession interface {
	Session
	// Auth starts a SASL exchange for mech, one of Options.AuthMechanisms.
	// The returned server's errors become replies: sasl.ErrAuthFailed is
	// 535 5.7.8, an *Error is sent as it is (a temporary block, say).
	Auth(ctx context.Context, mech string) (sasl.Server, error)
}

// LMTPSession is implemented by sessions of an LMTP server (RFC 2033).
type LMTPSession interface {
	Session
	// LMTPData is Data with one result per accepted recipient, in RCPT
	// order: nil when that recipient's copy is durable. A non-nil err
	// applies to every recipient.
	LMTPData(ctx context.Context, r io.Reader) (id string, results []error, err error)
}

// ConnInfo describes a connection. The server updates HELO, ESMTP and TLS
// as the session progresses; a Session may keep the pointer and read them.
type ConnInfo struct {
	ID       string         // connection id, for logs ("cid")
	Service  string         // listener service name: "smtp", "submission", …
	Local    netip.AddrPort // our end
	Remote   netip.AddrPort // the client
	HELO     string         // argument of the last HELO/EHLO
	ESMTP    bool           // the client used EHLO
	TLS      *tls.ConnectionState
	Auth     string // authenticated identity, "" before AUTH
	LMTP     bool   // the session speaks LMTP
	PeerUID  int    // uid of the process on a unix socket, -1 otherwise
	Hostname string // our hostname, as announced in the greeting
}

// Protocol returns the "with" keyword for a Received header (RFC 3848,
// RFC 6531 §3.7.3): SMTP, ESMTP or ESMTPS, with UTF8 prefix when utf8.
//
// The names are those of the IANA "WITH protocol types" registry: SMTP
// for HELO; ESMTP, LMTP and their S (TLS) and A (authenticated) forms
// (RFC 3848); and for a SMTPUTF8 transaction UTF8SMTP and UTF8LMTP with
// the same suffixes (RFC 6531 §3.7.3), never "UTF8ESMTP…".
func (c *ConnInfo) Protocol(utf8 bool) string {
	if !c.ESMTP && !c.LMTP {
		return "SMTP" // HELO: no extensions, so no SMTPUTF8 either
	}
	var suffix string
	if c.TLS != nil {
		suffix += "S"
	}
	if c.Auth != "" {
		suffix += "A"
	}
	base := "ESMTP"
	switch {
	case c.LMTP && utf8:
		base = "UTF8LMTP"
	case c.LMTP:
		base = "LMTP"
	case utf8:
		base = "UTF8SMTP"
	}
	return base + suffix
}

// MailOptions are the accepted parameters of MAIL FROM.
type MailOptions struct {
	Size    int64  // SIZE= declared size, 0 if absent (RFC 1870)
	Body    string // BODY= "7BIT" or "8BITMIME" (RFC 6152), "" if absent
	UTF8    bool   // SMTPUTF8 (RFC 6531 §3.4)
	Ret     string // RET= "FULL" or "HDRS" (RFC 3461 §4.3), "" if absent
	EnvID   string // ENVID=, xtext-decoded (RFC 3461 §4.4)
	AuthArg string // AUTH= mailbox, xtext-decoded (RFC 4954 §5)
}

// RcptOptions are the accepted parameters of RCPT TO.
type RcptOptions struct {
	Notify []string // NOTIFY= values, upper-cased (RFC 3461 §4.1)
	ORcpt  string   // ORCPT= "addr-type;address", xtext-decoded (RFC 3461 §4.2)
}
