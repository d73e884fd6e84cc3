// Package store defines the mail store: the interface every storage backend
// implements (embedded SQLite + Maildir in store/local, PostgreSQL in
// store/pg), and the plain types that cross it.
//
// The model is IMAP's from the start: every mailbox has UIDVALIDITY, UIDNEXT
// and HIGHESTMODSEQ; every message has a UID, a MODSEQ, flags, an internal
// date and a size; expunged messages leave (UID, MODSEQ) tombstones.
// Nothing in this interface names a file, a path or an SQL dialect.
package store

import (
	"context"
	"errors"
	"io"
	"time"

	"posthorn/internal/users"
)

// Errors returned by backends.
var (
	ErrNoMailbox = errors.New("store: no such mailbox")
	ErrExists    = users.ErrExists
	ErrNotFound  = users.ErrNotFound
	// ErrFull means the storage is out of space: a temporary failure.
	ErrFull = errors.New("store: out of storage space")
	// ErrOverQuota: the account's quota would be exceeded.
	ErrOverQuota = errors.New("store: quota exceeded")
	// ErrBadName: a mailbox name the store cannot hold.
	ErrBadName = errors.New("store: invalid mailbox name")
	// ErrCorrupt means stored data is damaged beyond use.
	ErrCorrupt = errors.New("store: damaged data")
)

// Store is a complete backend: the account directory and the mailboxes.
type Store interface {
	users.Directory
	Mail
	Access
	Queue
	Close() error
}

// Mail stores and lists messages.
type Mail interface {
	// Deliver stores each message of ds and returns one error per element.
	// A nil error means that message is on stable storage and visible in
	// its mailbox (RFC 5321 §6.1: we are now responsible for it). Errors
	// wrapping ErrFull or other I/O failures are temporary.
	Deliver(ctx context.Context, ds []Delivery) []error
	// Mailboxes lists an account's mailboxes.
	Mailboxes(ctx context.Context, account string) ([]Mailbox, error)
	// CreateMailbox adds a mailbox; specialUse is an RFC 6154 attribute
	// such as `\Sent`, or "".
	CreateMailbox(ctx context.Context, account, name, specialUse string) error
	// Messages lists the messages of a mailbox in UID order.
	Messages(ctx context.Context, account, mailbox string) ([]Message, error)
	// Sync brings the index of a mailbox in line with its storage, when
	// the storage can change behind the server's back (Maildir).
	Sync(ctx context.Context, account, mailbox string) error
}

// Delivery is one message for one mailbox. The stored message is Header
// followed by the first BodySize octets of Body; Body may be shared by
// several deliveries and is read with ReadAt only.
type Delivery struct {
	Account  string   // canonical account address
	Mailbox  string   // mailbox name, "INBOX" if empty
	Flags    []string // IMAP flags and keywords to set, e.g. `\Seen`
	Date     time.Time
	Header   []byte // per-delivery trace fields (Return-Path, Delivered-To, Received)
	Body     io.ReaderAt
	BodySize int64
}

// Mailbox is one folder of an account.
type Mailbox struct {
	Name          string // IMAP name, "/" separated, "INBOX" for the inbox
	SpecialUse    string // `\Sent`, `\Drafts`, … or ""
	UIDValidity   uint32
	UIDNext       uint32
	HighestModSeq uint64
	Messages      int
	Unseen        int   // messages without \Seen
	Deleted       int   // messages with \Deleted
	Size          int64 // octets of all messages (RFC 8438 STATUS SIZE)
	Subscribed    bool
}

// Message is one message's index entry.
type Message struct {
	UID          uint32
	ModSeq       uint64
	Flags        []string
	InternalDate time.Time
	Size         int64
}

// DefaultMailboxes are created with every account (RFC 6154 special use).
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", ""},
	{"Sent", `\Sent`},
	{"Drafts", `\Drafts`},
	{"Trash", `\Trash`},
	{"Junk", `\Junk`},
	{"Archive", `\Archive`},
}
