// Package managesieve is Posthorn's ManageSieve server (RFC 5804): users
// upload, check, list, activate, rename and delete their Sieve scripts. It
// is a wire package: it never touches disk and calls only the Backend it
// defines here, which the daemon implements over the users service, the
// sieve compiler and the store.
//
// Files: server.go accepts and shuts down, limits.go counts connections,
// conn.go reads lines and writes responses, parse.go reads command
// arguments (quoted strings, literals, numbers) and writes strings,
// commands.go dispatches and handles the commands of every state,
// auth.go runs AUTHENTICATE, scripts.go the script commands, failure.go
// names the response codes and canned answers.
//
// Invariants:
//   - No credential crosses the wire before TLS: AUTHENTICATE is refused
//     with NO (ENCRYPT-NEEDED) until STARTTLS has succeeded, and plaintext
//     the client sent behind STARTTLS is discarded, never read as if it
//     came through TLS.
//   - The session reads a command, literals included, to its end before it
//     answers, and skips the literals of a command it refuses: literal
//     content is never read as commands. A literal over its limit is
//     discarded as it arrives, never buffered; past maxDiscard the session
//     hangs up instead.
//   - A session opens at most one Scripts, after authentication, and closes
//     it exactly once: at UNAUTHENTICATE or when the connection ends.
//   - Whatever the backend returns (script names, content, error text) is
//     sent as a quoted string or a literal that frames it exactly: it can
//     never end a response early.
package managesieve

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"posthorn/internal/sasl"
)

// Backend authenticates users and opens their script stores. The daemon
// implements it. Its methods are called from many sessions at once.
//
// There is no password method: every mechanism, PLAIN included, runs as a
// sasl.Server from SASL, as pop3's AUTH does.
type Backend interface {
	// Mechanisms lists the SASL mechanisms to offer after TLS, in order
	// of preference ("PLAIN", "SCRAM-SHA-256"). New calls it once.
	Mechanisms() []string
	// SASL starts an exchange for one of the offered mechanisms for a
	// client at ip. The exchange's Next reports bad credentials with
	// sasl.ErrAuthFailed or ErrAuth, a block with an error wrapping
	// ErrBlocked, and a user whose stored secrets cannot serve this
	// mechanism (no SCRAM keys yet) with ErrTransition.
	SASL(ctx context.Context, mech string, ip netip.Addr) (sasl.Server, error)
	// Scripts opens the script store of an authenticated identity.
	Scripts(ctx context.Context, identity string) (Scripts, error)
}

// Scripts is one user's script store, open for one session. Only the
// session's goroutine calls it. Every name it gets is valid (RFC 5804
// §1.6, at most Options.MaxNameLength characters); every content at most
// Options.MaxScriptSize octets, as the client sent it (line ends and
// encoding unchecked: compiling is the backend's).
type Scripts interface {
	// List returns every script, at most one of them Active.
	List(ctx context.Context) ([]Script, error)
	// Get returns a script's content, or ErrNoScript.
	Get(ctx context.Context, name string) (string, error)
	// Check compiles content without storing it: nil, a *CheckError for
	// a script that does not compile, or another error.
	Check(ctx context.Context, content string) error
	// Put compiles content and, if it compiles, stores it under name,
	// replacing any script of that name (which stays active if it was).
	// It returns a *CheckError, or ErrQuota, ErrTooManyScripts or
	// ErrTooLarge when storing it would break a limit; on any error
	// nothing changed.
	Put(ctx context.Context, name, content string) error
	// SetActive makes name the one active script; "" deactivates all.
	// It returns ErrNoScript for an unknown name.
	SetActive(ctx context.Context, name string) error
	// Delete removes a script. It returns ErrActive for the active
	// script (RFC 5804 §2.10) and ErrNoScript for an unknown name.
	Delete(ctx context.Context, name string) error
	// Rename renames a script, which stays active if it was. It returns
	// ErrNoScript when oldName does not exist and ErrExists when newName
	// does.
	Rename(ctx context.Context, oldName, newName string) error
	// HaveSpace reports whether a script of size octets could be stored
	// under name (replacing one of that name): nil, or ErrQuota,
	// ErrTooManyScripts or ErrTooLarge.
	HaveSpace(ctx context.Context, name string, size int64) error
	// Close releases the store. The session calls it exactly once.
	Close()
}

// Script is one entry of a listing.
type Script struct {
	Name   string
	Active bool
}

// CheckError is a script that does not compile: the line (1-based; 0 when
// unknown) and what is wrong. Its text goes to the client as it is.
type CheckError struct {
	Line int
	Msg  string
}

func (e *CheckError) Error() string {
	if e.Line <= 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// Errors a Backend returns.
var (
	// ErrAuth: wrong user name or password.
	ErrAuth = errors.New("managesieve: authentication failed")
	// ErrBlocked: the client may not try again for a while.
	ErrBlocked = errors.New("managesieve: login temporarily blocked")
	// ErrTransition: the credentials cannot serve this mechanism until
	// the user logs in once with another (RFC 5804 §1.3
	// TRANSITION-NEEDED).
	ErrTransition = errors.New("managesieve: credentials need a transition")

	// ErrNoScript: no script of that name.
	ErrNoScript = errors.New("managesieve: no such script")
	// ErrActive: the script is active and cannot be deleted.
	ErrActive = errors.New("managesieve: script is active")
	// ErrExists: a script of the new name exists.
	ErrExists = errors.New("managesieve: script exists")
	// ErrQuota: the user's storage quota would be exceeded.
	ErrQuota = errors.New("managesieve: quota exceeded")
	// ErrTooManyScripts: the user may not have more scripts.
	ErrTooManyScripts = errors.New("managesieve: too many scripts")
	// ErrTooLarge: the script is larger than a script may be.
	ErrTooLarge = errors.New("managesieve: script too large")
)

// validName reports why a script name is unacceptable, or "" when it is
// fine. RFC 5804 §1.6: a name is Net-Unicode (RFC 5198: UTF-8 in NFC)
// without the controls 0000–001F, 007F, 0080–009F, LINE SEPARATOR and
// PARAGRAPH SEPARATOR, at least one character long; servers must allow
// 128 characters and may allow more, but must not truncate.
func validName(name string, maxChars int) string {
	switch {
	case name == "":
		return "script name is empty"
	case !utf8.ValidString(name):
		return "script name is not UTF-8"
	case utf8.RuneCountInString(name) > maxChars:
		return "script name too long"
	case strings.ContainsFunc(name, forbiddenInName):
		return "script name contains control characters"
	case !norm.NFC.IsNormalString(name):
		return "script name is not in Unicode normalization form C"
	}
	return ""
}

func forbiddenInName(r rune) bool {
	return r <= 0x1f || r >= 0x7f && r <= 0x9f || r == 0x2028 || r == 0x2029
}
