// Package pop3 is Posthorn's POP3 server (RFC 1939) with the CAPA
// (RFC 2449), STLS (RFC 2595) and SASL AUTH (RFC 5034) extensions. It is a
// wire package: it never touches disk and calls only the Backend it defines
// here, which the daemon implements over the users service and the store.
//
// Files: server.go accepts and shuts down, limits.go counts connections,
// conn.go reads lines and writes responses, commands.go dispatches and
// handles AUTHORIZATION, auth.go runs SASL, transaction.go handles the
// TRANSACTION and UPDATE states, dot.go streams dot-stuffed message text.
//
// Invariants:
//   - A session opens at most one Maildrop, after authentication, and closes
//     it exactly once: before the QUIT reply, or when the connection ends.
//   - Deletions are committed only by the session's own QUIT in the
//     TRANSACTION state (RFC 1939 §6). A dropped connection, a timeout, a
//     panic or Shutdown deletes nothing.
//   - No password crosses the wire before TLS: USER, PASS and AUTH are
//     refused without it (RFC 2595 §2.3), and plaintext the client sent
//     behind STLS is discarded, never read as if it came through TLS.
//   - Every line of a multi-line response ends in CRLF and none is a lone
//     ".", whatever the message content: content cannot end a response early.
package pop3

import (
	"context"
	"errors"
	"io"
	"net/netip"

	"posthorn/internal/sasl"
)

// Backend authenticates and opens maildrops. The daemon implements it. Its
// methods are called from many sessions at once.
type Backend interface {
	// Login checks a user name and password (USER/PASS) for a client at ip
	// and returns the canonical identity. It returns ErrAuth for bad
	// credentials, an error wrapping ErrBlocked for a client that is
	// temporarily blocked, or another error for an internal failure.
	Login(ctx context.Context, ip netip.Addr, user, password string) (identity string, err error)
	// SASL starts an AUTH exchange for mech ("PLAIN"). The exchange's Next
	// reports bad credentials with sasl.ErrAuthFailed or ErrAuth and a
	// block with an error wrapping ErrBlocked.
	SASL(ctx context.Context, mech string, ip netip.Addr) (sasl.Server, error)
	// Open locks and opens the maildrop of an authenticated identity. It
	// returns ErrLocked while another POP3 session holds it.
	Open(ctx context.Context, identity string) (Maildrop, error)
}

// Maildrop is one locked mailbox for one session (RFC 1939 §3: exclusive
// access). Only its session's goroutine calls it.
type Maildrop interface {
	// Messages is the snapshot taken at open, in order; message numbers
	// are index+1. The session calls it once.
	Messages() []Message
	// Open returns the content of message i (0-based) with CRLF line ends.
	// The session reads it as a stream and closes it.
	Open(ctx context.Context, i int) (io.ReadCloser, error)
	// Commit removes the messages at these indexes (0-based, ascending),
	// at QUIT. It is all or nothing: on error nothing was removed.
	Commit(ctx context.Context, deleted []int) error
	// Close releases the lock. It is called exactly once, after Commit or
	// without it.
	Close()
}

// Message is what a session knows about one message before reading it.
type Message struct {
	// UID is the message's unique-id listing for UIDL: stable across
	// sessions, 1 to 70 characters 0x21–0x7E (RFC 1939 §7).
	UID string
	// Size is the size in octets with CRLF line ends, as LIST and STAT
	// report it (RFC 1939 §5).
	Size int64
}

// Errors a Backend returns.
var (
	// ErrAuth: wrong user name or password.
	ErrAuth = errors.New("pop3: authentication failed")
	// ErrLocked: another session holds the maildrop.
	ErrLocked = errors.New("pop3: maildrop locked")
	// ErrBlocked: the client may not try again for a while.
	ErrBlocked = errors.New("pop3: login temporarily blocked")
	// ErrGone: Maildrop.Open found the message deleted by another
	// client (an IMAP EXPUNGE) since the session began.
	ErrGone = errors.New("pop3: message deleted by another client")
)

// validUID reports whether a backend's UID may go on the wire
// (RFC 1939 §7: one to 70 characters in the range 0x21 to 0x7E).
func validUID(s string) bool {
	if len(s) == 0 || len(s) > 70 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
