package store

import (
	"context"
	"io"
	"time"
)

// Access is what the mail access agents (IMAP, POP3) need beyond Mail.
// Message content is always returned with CRLF line ends, whatever the
// backend keeps on disk, and sizes count CRLF.
//
// Changes, Open, SetFlags, Expunge and Copy (its source) honour an
// expected UIDVALIDITY in ctx (WithUIDValidity): when the mailbox of that
// name has another one, they fail with ErrNoMailbox and touch nothing, so
// that a session holding UIDs of a mailbox since deleted and created
// again never reads, flags or expunges the new one's messages.
type Access interface {
	// MailboxStatus returns one mailbox with its counts.
	MailboxStatus(ctx context.Context, account, name string) (Mailbox, error)
	DeleteMailbox(ctx context.Context, account, name string) error
	// RenameMailbox renames a mailbox and its children ("a" to "b" moves
	// "a/x" to "b/x"). Renaming INBOX moves its messages to the new
	// mailbox and leaves INBOX empty (RFC 9051 §6.3.6).
	RenameMailbox(ctx context.Context, account, from, to string) error
	Subscribe(ctx context.Context, account, name string, on bool) error
	// LoneSubscriptions lists the subscribed names that are no mailbox
	// (any more): a subscription outlives its mailbox (RFC 9051 §6.3.7),
	// and a name may be subscribed before it is created.
	LoneSubscriptions(ctx context.Context, account string) ([]string, error)

	// Snapshot returns the state of a mailbox and every message's meta.
	Snapshot(ctx context.Context, account, mailbox string) (Snapshot, error)
	// Changes returns what changed after modseq since: messages added or
	// whose flags changed (with modseq > since), and UIDs expunged.
	Changes(ctx context.Context, account, mailbox string, since uint64) (Changes, error)
	// Open returns one message's content.
	Open(ctx context.Context, account, mailbox string, uid uint32) (Content, error)
	// Append adds a message (size octets read from r, CRLF line ends)
	// with flags and internal date, durably, and returns its mailbox's
	// UIDVALIDITY and the new UID (RFC 4315 APPENDUID). It fails with
	// ErrOverQuota when the account's quota would be exceeded.
	Append(ctx context.Context, account, mailbox string, flags []string, date time.Time, r io.Reader, size int64) (uidValidity, uid uint32, err error)
	// SetFlags changes flags of the given UIDs. With unchangedSince > 0,
	// messages whose modseq is higher are left alone and returned in
	// failed (RFC 7162 §3.1.3). It returns the new meta of changed ones.
	SetFlags(ctx context.Context, account, mailbox string, uids []uint32, op FlagOp, flags []string, unchangedSince uint64) (changed []MessageMeta, failed []uint32, err error)
	// Expunge removes the given messages (with \Deleted or not: the caller
	// decides) and returns the UIDs really removed.
	Expunge(ctx context.Context, account, mailbox string, uids []uint32) ([]uint32, error)
	// Copy copies (or moves) messages to another mailbox of the account,
	// keeping flags and internal dates, and returns the destination's
	// UIDVALIDITY and the source and new UIDs in the same order
	// (RFC 4315 COPYUID).
	Copy(ctx context.Context, account, from, to string, uids []uint32, move bool) (uidValidity uint32, src, dst []uint32, err error)
	// Quota returns the bytes the account uses and its limit (0: none).
	Quota(ctx context.Context, account string) (used, limit int64, err error)
	// SetQuota sets the account's limit in bytes (0: none).
	SetQuota(ctx context.Context, account string, limit int64) error
	// Watch returns a channel that receives a value (coalesced) after
	// any change committed to the mailbox by this process, and a func to
	// stop watching. Changes made behind our back are found by Sync.
	Watch(account, mailbox string) (<-chan struct{}, func())
}

// FlagOp is how SetFlags applies its flags.
type FlagOp int

// Flag operations (RFC 9051 §6.4.6).
const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// Content is a stored message, CRLF line ends.
type Content interface {
	// Size is the length in octets (RFC822.SIZE).
	Size() int64
	// Reader returns a fresh reader from the first octet.
	Reader() (ReadCloser, error)
}

// ReadCloser is an io.ReadCloser (aliased for documentation).
type ReadCloser interface {
	Read(p []byte) (int, error)
	Close() error
}

// MessageMeta is one message's index entry as IMAP uses it.
type MessageMeta struct {
	UID          uint32
	ModSeq       uint64
	Flags        []string
	InternalDate time.Time
	Size         int64
}

// Snapshot is a mailbox's state when selected.
type Snapshot struct {
	UIDValidity   uint32
	UIDNext       uint32
	HighestModSeq uint64
	Messages      []MessageMeta // in UID order; shared: read it, never change it
}

// Changes is what changed in a mailbox after some modseq.
type Changes struct {
	UIDNext       uint32
	HighestModSeq uint64
	Updated       []MessageMeta // new or changed messages, UID order
	Expunged      []uint32      // UIDs, ascending
}

type validityKey struct{}

type expectedValidity struct {
	name string
	v    uint32
}

// WithUIDValidity returns ctx expecting mailbox name (as the caller spells
// it) to have UIDVALIDITY v.
func WithUIDValidity(ctx context.Context, name string, v uint32) context.Context {
	return context.WithValue(ctx, validityKey{}, expectedValidity{name, v})
}

// ExpectedUIDValidity returns the UIDVALIDITY ctx expects of mailbox
// name; same reports whether two spellings name one mailbox (a backend's
// rule: INBOX is case-insensitive).
func ExpectedUIDValidity(ctx context.Context, name string, same func(a, b string) bool) (uint32, bool) {
	e, ok := ctx.Value(validityKey{}).(expectedValidity)
	if !ok || !same(e.name, name) {
		return 0, false
	}
	return e.v, true
}
