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
	// ErrActive: the Sieve script is the active one and cannot be deleted.
	ErrActive = errors.New("store: script is active")
)

// Store is a complete backend: the account directory and the mailboxes.
type Store interface {
	users.Directory
	Mail
	Access
	Queue
	Sieve
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

// Sieve keeps each account's Sieve scripts, named, at most one active
// (the RFC 5804 model), and the record of vacation replies sent.
type Sieve interface {
	// SieveScripts lists an account's scripts by name.
	SieveScripts(ctx context.Context, account string) ([]SieveScript, error)
	// SieveScript returns a script's text, or ErrNotFound.
	SieveScript(ctx context.Context, account, name string) (string, error)
	// PutSieveScript creates or replaces a script. An active script stays
	// active with its new text.
	PutSieveScript(ctx context.Context, account, name, content string) error
	// ActivateSieveScript makes name the active script, or deactivates
	// every script when name is "". ErrNotFound when there is no such script.
	ActivateSieveScript(ctx context.Context, account, name string) error
	// DeleteSieveScript removes a script: ErrActive when it is active,
	// ErrNotFound when missing.
	DeleteSieveScript(ctx context.Context, account, name string) error
	// RenameSieveScript renames: ErrNotFound, or ErrExists for newName.
	RenameSieveScript(ctx context.Context, account, oldName, newName string) error
	// ActiveSieveScript returns the active script and its text, or
	// ErrNotFound when none is active.
	ActiveSieveScript(ctx context.Context, account string) (SieveScript, string, error)
	// VacationDue reports whether a vacation reply keyed key is due to
	// sender: false when one was recorded less than period ago. When it
	// returns true it has durably recorded the reply as sent at now.
	VacationDue(ctx context.Context, account, key, sender string, period time.Duration, now time.Time) (bool, error)
}

// SieveScript describes one stored script.
type SieveScript struct {
	Name     string
	Active   bool
	Size     int64
	Modified time.Time
}
