package imap

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"time"

	"posthorn/internal/sasl"
)

// Backend authenticates users. It is implemented by the daemon over the
// users service and the store.
type Backend interface {
	// Login checks a user name and password (LOGIN). Errors: ErrAuth for
	// bad credentials, ErrBlocked for a temporarily blocked client.
	Login(ctx context.Context, ip netip.Addr, user, password string) (User, error)
	// SASL starts an AUTHENTICATE exchange; after it succeeds, Open gives
	// the user for the server's identity.
	SASL(ctx context.Context, mech string, ip netip.Addr) (sasl.Server, error)
	Open(ctx context.Context, identity string) (User, error)
}

// Errors a Backend or User returns; the server turns them into response
// codes (RFC 5530).
var (
	ErrAuth      = errors.New("imap: authentication failed")
	ErrBlocked   = errors.New("imap: too many failed logins")
	ErrNoMailbox = errors.New("imap: no such mailbox")
	ErrExists    = errors.New("imap: mailbox exists")
	ErrBadName   = errors.New("imap: invalid mailbox name")
	ErrOverQuota = errors.New("imap: quota exceeded")
	ErrNoMessage = errors.New("imap: no such message")
	ErrTemporary = errors.New("imap: temporary failure")
	ErrCannotDo  = errors.New("imap: operation not allowed")
)

// User is one authenticated user's mail. Its methods may be called from
// several sessions at once. Mailbox names are UTF-8, "/" separated, and
// "INBOX" is always spelled so.
//
// Calls a session makes on its selected mailbox carry, in ctx, the
// UIDVALIDITY it selected (SelectedUIDValidity). A User must fail them
// with ErrNoMailbox when the mailbox now of that name has another
// UIDVALIDITY: it was deleted and created again, or another mailbox was
// renamed onto the name, and the session's UIDs name other messages.
type User interface {
	Name() string
	Mailboxes(ctx context.Context) ([]MailboxInfo, error)
	Create(ctx context.Context, name, specialUse string) error
	Delete(ctx context.Context, name string) error
	Rename(ctx context.Context, from, to string) error
	Subscribe(ctx context.Context, name string, on bool) error
	Status(ctx context.Context, name string) (Status, error)
	Snapshot(ctx context.Context, name string) (Snapshot, error)
	Changes(ctx context.Context, name string, since uint64) (Changes, error)
	Open(ctx context.Context, name string, uid uint32) (Content, error)
	Append(ctx context.Context, name string, flags []string, date time.Time, r io.Reader, size int64) (uidValidity, uid uint32, err error)
	SetFlags(ctx context.Context, name string, uids []uint32, op FlagOp, flags []string, unchangedSince uint64) (changed []Meta, failed []uint32, err error)
	Expunge(ctx context.Context, name string, uids []uint32) ([]uint32, error)
	Copy(ctx context.Context, from, to string, uids []uint32, move bool) (uidValidity uint32, src, dst []uint32, err error)
	Quota(ctx context.Context) (used, limit int64, err error)
	Watch(name string) (<-chan struct{}, func())
	Close()
}

// MailboxInfo is one mailbox in a list.
type MailboxInfo struct {
	Name       string
	SpecialUse string // `\Sent`… or ""
	Subscribed bool
	// NonExistent marks a subscription of a name that is no mailbox (a
	// deleted one's: RFC 9051 §6.3.7 keeps it). Only a SUBSCRIBED
	// selection lists it, as \NonExistent \Subscribed (RFC 5258 §3), or
	// LSUB as \Noselect.
	NonExistent bool
}

// Status is a mailbox's counts (STATUS, SELECT).
type Status struct {
	Messages, Unseen, Deleted int
	UIDNext, UIDValidity      uint32
	HighestModSeq             uint64
	Size                      int64
}

// FlagOp is how SetFlags applies flags.
type FlagOp int

// Flag operations.
const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// Meta is one message's index data.
type Meta struct {
	UID          uint32
	ModSeq       uint64
	Flags        []string
	InternalDate time.Time
	Size         int64
}

// Snapshot is the state of a mailbox at SELECT.
type Snapshot struct {
	UIDValidity, UIDNext uint32
	HighestModSeq        uint64
	Messages             []Meta // UID order
}

// Changes is what changed after some MODSEQ.
type Changes struct {
	UIDNext       uint32
	HighestModSeq uint64
	Updated       []Meta
	Expunged      []uint32
}

// Content is one message, CRLF line ends.
type Content interface {
	Size() int64
	Reader() (io.ReadCloser, error)
}

// selectedKey is the context key of the selected mailbox's identity.
type selectedKey struct{}

type selectedID struct {
	name        string
	uidValidity uint32
}

// withSelected returns ctx carrying the identity of the selected mailbox.
func withSelected(ctx context.Context, name string, uidValidity uint32) context.Context {
	return context.WithValue(ctx, selectedKey{}, selectedID{name, uidValidity})
}

// SelectedUIDValidity returns the UIDVALIDITY a session expects of the
// mailbox name, if ctx comes from a call on its selected mailbox.
func SelectedUIDValidity(ctx context.Context, name string) (uint32, bool) {
	id, ok := ctx.Value(selectedKey{}).(selectedID)
	if !ok || id.name != name {
		return 0, false
	}
	return id.uidValidity, true
}
