// Package queue delivers outbound mail: it keeps messages in a store.Queue,
// tries each recipient's domain through a Transport, retries temporary
// failures with exponential backoff until the lifetime is over, and sends
// delivery status notifications (RFC 3464) for failures, and for delays and
// successes when the sender asked (RFC 3461).
//
// Invariants:
//   - Enqueue returns only when the message is durable (store.Queue).
//   - A recipient's state is saved after each attempt, before any DSN for
//     it is sent; a crash in between can repeat a delivery (SMTP allows
//     that) but never lose one.
//   - A message is deleted only when no recipient is left queued or held,
//     and after its DSN, if any, was handed over.
//   - The null sender is never sent a DSN (RFC 5321 §4.5.5).
package queue

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"posthorn/internal/store"
)

// Transport delivers one message to the recipients of one domain. It must
// not retry by itself; it returns one Result per recipient, in order.
type Transport interface {
	Deliver(ctx context.Context, env Envelope, body io.ReaderAt, size int64) []Result
}

// Envelope is what a Transport needs to know.
type Envelope struct {
	ID     string
	From   string
	EnvID  string
	Ret    string
	UTF8   bool
	Domain string
	Rcpts  []store.QueuedRcpt
}

// Result is the outcome for one recipient. Code 2xx is delivered, 4xx is
// temporary, 5xx permanent.
type Result struct {
	Code     int
	Enhanced string
	Text     string
	Remote   string // the host that answered, if any
	// Relayed: accepted by a server that does not support DSN, so a
	// NOTIFY=SUCCESS gets "relayed" rather than "delivered".
	Relayed bool
	// PassedOn: accepted by a server that supports DSN, to which the
	// NOTIFY and ORCPT parameters went along: that server (or the next)
	// reports success, not we (RFC 3461 §5.2.1).
	PassedOn bool
}

// Injector hands over a message we generate (a DSN). It is implemented by
// package delivery: local recipients get it in their mailbox, others
// through this queue.
type Injector interface {
	Inject(ctx context.Context, from string, to []string, msg []byte) error
}

// Options configure a Queue.
type Options struct {
	Store     store.Queue
	Transport Transport
	Injector  Injector // for DSNs; may be set later with SetInjector
	Hostname  string

	MinBackoff   time.Duration // first retry after this (default 5m)
	MaxBackoff   time.Duration // backoff doubles up to this (default 1h)
	Lifetime     time.Duration // give up after this (default 5 days)
	DelayWarning time.Duration // NOTIFY=DELAY notice after this (default 4h)
	Workers      int           // concurrent deliveries (default 8)
	// PerDomain bounds the deliveries in progress to one recipient domain
	// (default half of Workers, at least 2; the daemon's queue.per_domain),
	// so that a domain whose
	// servers answer slowly, on purpose or not, cannot take every worker
	// (Postfix: default_destination_concurrency_limit).
	PerDomain int
	Poll      time.Duration // how often to look for due work (default 1s)
	// StopTimeout is how long Run lets attempts in progress finish once
	// its context ends; then their connections are closed and their
	// recipients stay queued (default 30s).
	StopTimeout time.Duration

	Logger *slog.Logger
	Now    func() time.Time
}

// Queue schedules deliveries. Run must be running for mail to go out.
type Queue struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	injector Injector
	inflight map[string]bool // message ids being worked on
	domains  map[string]int  // deliveries in progress per recipient domain
	wake     chan struct{}
	sem      chan struct{}
	conns    chan struct{} // deliveries (connections) in progress, all messages
	panics   atomic.Int64
	wg       sync.WaitGroup
	work     context.Context    // context of attempts; ended by abort
	abort    context.CancelFunc // ends attempts that outlive StopTimeout
}

// New validates opts and returns a Queue.
func New(opts Options) (*Queue, error) {
	if opts.Store == nil || opts.Transport == nil || opts.Hostname == "" {
		return nil, errors.New("queue: Store, Transport and Hostname are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.MinBackoff, 5*time.Minute)
	def(&opts.MaxBackoff, time.Hour)
	def(&opts.Lifetime, 5*24*time.Hour)
	def(&opts.DelayWarning, 4*time.Hour)
	def(&opts.Poll, time.Second)
	def(&opts.StopTimeout, 30*time.Second)
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.PerDomain <= 0 {
		opts.PerDomain = max(2, opts.Workers/2)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	work, abort := context.WithCancel(context.Background())
	return &Queue{
		opts: opts, log: opts.Logger, injector: opts.Injector,
		inflight: map[string]bool{}, domains: map[string]int{}, wake: make(chan struct{}, 1), sem: make(chan struct{}, opts.Workers),
		conns: make(chan struct{}, opts.Workers),
		work:  work, abort: abort,
	}, nil
}

// SetInjector sets where DSNs go (it and the queue refer to each other).
func (q *Queue) SetInjector(in Injector) {
	q.mu.Lock()
	q.injector = in
	q.mu.Unlock()
}

// NewID returns a fresh queue id.
func NewID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// Enqueue stores a message for delivery and wakes the runner. m.ID is set
// if empty. It returns when the message is durable.
func (q *Queue) Enqueue(ctx context.Context, m store.QueuedMessage, body io.Reader) (string, error) {
	if m.ID == "" {
		m.ID = NewID()
	}
	now := q.opts.Now()
	if m.Created.IsZero() {
		m.Created = now
	}
	for i := range m.Rcpts {
		m.Rcpts[i].State = store.RcptQueued
		m.Rcpts[i].NextAttempt = now
	}
	if err := q.opts.Store.Enqueue(ctx, m, body); err != nil {
		return "", err
	}
	q.log.Info("queued", "msgid", m.ID, "from", m.From, "rcpts", len(m.Rcpts), "size", m.Size)
	q.Wake()
	return m.ID, nil
}

// Wake makes the runner look for due work now.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run delivers due messages until ctx ends, then waits for deliveries in
// progress to finish.
func (q *Queue) Run(ctx context.Context) {
	t := time.NewTicker(q.opts.Poll)
	defer t.Stop()
	for {
		q.runDue(ctx)
		select {
		case <-ctx.Done():
			q.stop()
			return
		case <-t.C:
		case <-q.wake:
		}
	}
}

// stop waits for attempts in progress, at most StopTimeout, then aborts
// the rest (their outcome, a temporary failure, is saved) and waits again.
func (q *Queue) stop() {
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(q.opts.StopTimeout):
		q.log.Warn("queue: attempts still running at shutdown, cutting them", "after", q.opts.StopTimeout)
		q.abort()
		<-done
	}
}

// runDue starts a worker for each due message not already in flight.
func (q *Queue) runDue(ctx context.Context) {
	due, err := q.opts.Store.QueueDue(ctx, q.opts.Now(), 4*q.opts.Workers)
	if err != nil {
		if ctx.Err() == nil {
			q.log.Error("queue scan", "err", err)
		}
		return
	}
	for _, m := range due {
		if !q.claim(m.ID) {
			continue
		}
		select {
		case q.sem <- struct{}{}:
		case <-ctx.Done():
			q.release(m.ID)
			return
		}
		q.wg.Add(1)
		go func() {
			defer func() { <-q.sem; q.release(m.ID); q.wg.Done() }()
			defer q.recoverPanic(m.ID)
			// Read it again: the list is as old as the scan, and while this
			// loop waited for a worker the message may have been attempted
			// (its delivered recipients still looked queued in the old
			// copy, were sent again and written back as not delivered) or
			// finished and deleted.
			fresh, err := q.opts.Store.QueueGet(q.work, m.ID)
			if err != nil {
				if !errors.Is(err, store.ErrNotFound) && q.work.Err() == nil {
					q.log.Error("queue read", "msgid", m.ID, "err", err)
				}
				return
			}
			q.attempt(q.work, fresh)
		}()
	}
}

func (q *Queue) claim(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inflight[id] {
		return false
	}
	q.inflight[id] = true
	return true
}

func (q *Queue) release(id string) {
	q.mu.Lock()
	delete(q.inflight, id)
	q.mu.Unlock()
}

// takeDomain reserves a delivery to domain, unless PerDomain are in
// progress already.
func (q *Queue) takeDomain(domain string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.domains[domain] >= q.opts.PerDomain {
		return false
	}
	q.domains[domain]++
	return true
}

func (q *Queue) releaseDomain(domain string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.domains[domain]--; q.domains[domain] <= 0 {
		delete(q.domains, domain)
	}
}

func (q *Queue) recoverPanic(id string) {
	if r := recover(); r != nil {
		q.panics.Add(1)
		q.log.Error("queue worker panic", "msgid", id, "err", r)
	}
}

// Panics counts the panics recovered in queue workers and transports,
// for posthorn_panics_total (anything but 0 is a bug).
func (q *Queue) Panics() int64 { return q.panics.Load() }
