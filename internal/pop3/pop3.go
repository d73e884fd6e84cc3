// Package pop3 is the POP3 server (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS,
// RFC 5034 SASL): wire only. It calls a Backend it defines; the daemon
// implements it over the users service and the store.
//
// Invariants: a maildrop is locked for the whole session (RFC 1939 §3);
// deletions happen only at QUIT from the TRANSACTION state (RFC 1939 §6);
// USER/PASS and AUTH are refused before TLS.
package pop3

import (
	"context"
	"errors"
	"io"
	"net/netip"

	"posthorn/internal/sasl"
)

// Backend authenticates and opens maildrops.
type Backend interface {
	// Login checks a user name and password. ErrAuth for bad credentials,
	// an error wrapping ErrBlocked for a temporarily blocked client.
	Login(ctx context.Context, ip netip.Addr, user, password string) (identity string, err error)
	// SASL starts an AUTH exchange.
	SASL(ctx context.Context, mech string, ip netip.Addr) (sasl.Server, error)
	// Open locks and opens an identity's maildrop; ErrLocked when another
	// session holds it.
	Open(ctx context.Context, identity string) (Maildrop, error)
}

// Maildrop is one locked mailbox for one session.
type Maildrop interface {
	Messages() []Message
	Open(ctx context.Context, i int) (io.ReadCloser, error) // content of message i (0-based), CRLF
	Commit(ctx context.Context, deleted []int) error
	Close()
}

// Message is one message in a maildrop: its UIDL and CRLF size.
type Message struct {
	UID  string
	Size int64
}

// Errors of a Backend.
var (
	ErrAuth    = errors.New("pop3: authentication failed")
	ErrLocked  = errors.New("pop3: maildrop locked")
	ErrBlocked = errors.New("pop3: too many failed logins")
)
