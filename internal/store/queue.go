package store

import (
	"context"
	"io"
	"time"
)

// Queue keeps outbound mail durably until it is delivered or returned.
// The scheduling rules live in package queue; a backend only stores.
type Queue interface {
	// Enqueue stores a message (body with CRLF line ends) and its
	// recipients. When it returns nil, both are on stable storage.
	Enqueue(ctx context.Context, m QueuedMessage, body io.Reader) error
	// QueueDue returns up to limit messages that have a recipient in state
	// RcptQueued whose next attempt is due at now, or that have no queued
	// or held recipient left and every next attempt due (a DSN to retry).
	QueueDue(ctx context.Context, now time.Time, limit int) ([]QueuedMessage, error)
	// QueueGet returns one message, ErrNotFound if there is none.
	QueueGet(ctx context.Context, id string) (QueuedMessage, error)
	// QueueList returns every queued message, oldest first.
	QueueList(ctx context.Context) ([]QueuedMessage, error)
	// QueueCounts returns how many recipients are in each state, without
	// loading the messages (a metrics scrape asks it often).
	QueueCounts(ctx context.Context) (map[RcptState]int, error)
	// QueueBody opens a message's body.
	QueueBody(ctx context.Context, id string) (Body, error)
	// QueueUpdate stores the new state of the given recipients (matched
	// by Addr) of message id.
	QueueUpdate(ctx context.Context, id string, rcpts []QueuedRcpt) error
	// QueueDelete removes a message and its body.
	QueueDelete(ctx context.Context, id string) error
}

// Body is a stored message body.
type Body interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// RcptState is where a queued recipient stands.
type RcptState string

// Recipient states. Delivered and Failed recipients stay until the message
// is deleted, so that one DSN can report them together.
const (
	RcptQueued    RcptState = "queued"
	RcptHeld      RcptState = "held"
	RcptDelivered RcptState = "delivered"
	RcptFailed    RcptState = "failed"
)

// QueuedMessage is a message in the outbound queue.
type QueuedMessage struct {
	ID      string
	From    string // envelope sender, "" for the null reverse-path
	EnvID   string // RFC 3461 ENVID
	Ret     string // RFC 3461 RET: "FULL", "HDRS" or ""
	UTF8    bool   // needs SMTPUTF8 (RFC 6531)
	Created time.Time
	Size    int64
	Rcpts   []QueuedRcpt
}

// QueuedRcpt is one recipient of a queued message and its delivery state.
type QueuedRcpt struct {
	Addr        string
	ORcpt       string   // RFC 3461 ORCPT, "type;address"
	Notify      []string // RFC 3461 NOTIFY values
	State       RcptState
	Attempts    int
	NextAttempt time.Time
	LastAttempt time.Time
	Code        int    // last reply code (0: none yet)
	Enhanced    string // last enhanced status code
	Text        string // last reply text or local error
	Remote      string // host that gave the last reply
	Warned      bool   // a delay DSN was sent
}
