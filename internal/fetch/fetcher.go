package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/textproto"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a [Fetcher].
type Options struct {
	Source    Source
	Deliverer Deliverer
	StateDir  string // where the source's journal lives
	Hostname  string // ours, for the Received field
	MaxSize   int64  // largest message fetched; larger ones stay on the server
	Logger    *slog.Logger
	// Dial replaces net.Dialer.DialContext (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now replaces time.Now (tests).
	Now func() time.Time
	// MinBackoff and MaxBackoff bound the wait before reconnecting after
	// a failure; it doubles with each failure in a row. Defaults 2s, 5m.
	MinBackoff, MaxBackoff time.Duration
}

// Fetcher pulls mail from one source. Once and Run may not run at the
// same time; Close releases the state.
type Fetcher struct {
	opts   Options
	src    Source
	tls    *tls.Config
	state  *State
	log    *slog.Logger
	panics atomic.Int64
}

// maxUnreadPasses is how many passes may fail to read one message (an
// empty body, or a UID the server searched but did not list: a server
// that cannot read it for now) before it is left on the server for good:
// failing every pass would hold back all later mail for ever. The count
// is kept in the state, across runs (State.Unread).
const maxUnreadPasses = 3

// unreadable counts one more pass that could not read id and reports
// whether to give up on it now (the caller then records it skipped,
// which ends its count).
func (f *Fetcher) unreadable(id string) bool {
	n, err := f.state.Unread(id)
	if err != nil {
		f.log.Warn("fetch state", "err", err)
	}
	return n >= maxUnreadPasses
}

// Stats counts what one pass did.
type Stats struct {
	Fetched    int // delivered locally
	Skipped    int // left on the server for good (too large, refused, loop)
	Duplicates int // already delivered under an older UIDVALIDITY
	Deleted    int // deleted on the server
}

func (s *Stats) add(o Stats) {
	s.Fetched += o.Fetched
	s.Skipped += o.Skipped
	s.Duplicates += o.Duplicates
	s.Deleted += o.Deleted
}

// New checks the options, opens and locks the source's state.
func New(o Options) (*Fetcher, error) {
	src := o.Source
	if err := src.check(); err != nil {
		return nil, err
	}
	switch {
	case o.Deliverer == nil:
		return nil, errors.New("fetch: no Deliverer")
	case o.StateDir == "":
		return nil, errors.New("fetch: no StateDir")
	case o.MaxSize <= 0:
		return nil, errors.New("fetch: MaxSize must be positive")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 2 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Minute, o.MinBackoff)
	}
	conf, err := src.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("fetch source %q: %w", src.Name, err)
	}
	st, err := OpenState(o.StateDir, src.Name)
	if err != nil {
		return nil, err
	}
	log := o.Logger.With("source", src.Name, "account", src.Account)
	return &Fetcher{opts: o, src: src, tls: conf, state: st, log: log}, nil
}

// Source returns the source with its defaults filled in.
func (f *Fetcher) Source() Source { return f.src }

// Close releases the state and its lock.
func (f *Fetcher) Close() error { return f.state.Close() }

// Once makes one pass: every new message of every folder is delivered
// (and deleted, unless keep).
func (f *Fetcher) Once(ctx context.Context) (Stats, error) {
	if f.src.Protocol == POP3 {
		return f.pop3Once(ctx)
	}
	return f.imapOnce(ctx)
}

// Run fetches until ctx ends: a pass every interval or, for IMAP with
// idle, one connection per folder waiting in IDLE. Failures are logged
// and retried with exponential backoff.
func (f *Fetcher) Run(ctx context.Context) {
	if f.src.Protocol == IMAP && f.src.Idle {
		var wg sync.WaitGroup
		for _, folder := range f.src.Folders {
			wg.Go(func() {
				f.retry(ctx, folder, func(ctx context.Context, healthy func()) error {
					return f.watch(ctx, folder, healthy)
				})
			})
		}
		wg.Wait()
		return
	}
	f.retry(ctx, "", func(ctx context.Context, healthy func()) error {
		st, err := f.Once(ctx)
		f.logPass("", st, err)
		if err != nil {
			return err
		}
		healthy()
		return sleep(ctx, f.src.Interval)
	})
}

// retry runs session again and again until ctx ends, waiting after each
// failure for a backoff that doubles with every failure in a row; healthy
// (called by session after a good poll) resets it.
func (f *Fetcher) retry(ctx context.Context, folder string, session func(context.Context, func()) error) {
	wait := f.opts.MinBackoff
	for ctx.Err() == nil {
		err := f.guard(ctx, session, func() { wait = f.opts.MinBackoff })
		if err == nil || ctx.Err() != nil {
			continue
		}
		// ±20% jitter keeps many sources from reconnecting in step.
		d := time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
		f.log.Warn("fetch failed, will retry", "folder", folder, "remote", f.src.addr(), "retry_in", d.Round(time.Millisecond), "err", err)
		_ = sleep(ctx, d)
		wait = min(2*wait, f.opts.MaxBackoff)
	}
}

// guard runs one session and turns a panic in it (a bug, most likely set
// off by what a remote server sent) into an error, retried with the
// backoff like any failure: one source must not take the daemon down, nor
// take it down again at every start while the server sends the same.
func (f *Fetcher) guard(ctx context.Context, session func(context.Context, func()) error, healthy func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f.panics.Add(1)
			f.log.Error("fetch: panic", "remote", f.src.addr(), "err", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return session(ctx, healthy)
}

// Panics counts the panics Run recovered; anything but 0 is a bug.
func (f *Fetcher) Panics() int64 { return f.panics.Load() }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logPass logs a pass that did something; folder is "" for all.
func (f *Fetcher) logPass(folder string, st Stats, err error) {
	if st == (Stats{}) || err != nil {
		return
	}
	f.log.Info("fetch pass", "remote", f.src.addr(), "folder", folder, "fetched", st.Fetched, "skipped", st.Skipped,
		"duplicates", st.Duplicates, "deleted", st.Deleted)
}

// outcome is what became of one remote message.
type outcome int

const (
	delivered outcome = iota
	skipped
	duplicate
	vanished // expunged by someone else before it was fetched
)

// deliver hands one fetched message to the Deliverer under fetch id id,
// after recording it as pending; prior, when set, is an interrupted
// delivery of the same message under another id, which is resumed
// instead. It returns the id the message was delivered under.
func (f *Fetcher) deliver(ctx context.Context, id, fp string, msg []byte, h textproto.MIMEHeader, prior *Pending) (string, error) {
	now := f.opts.Now()
	p, resume := Pending{}, false
	if prior != nil {
		p, resume = *prior, true
	} else {
		var err error
		if p, resume, err = f.state.Begin(id, fp, now); err != nil {
			return "", err
		}
	}
	full := append(trace(&f.src, f.opts.Hostname, p.ID, now), msg...)
	from := envelopeFrom(h)
	var err error
	if r, ok := f.opts.Deliverer.(Resumer); ok && resume {
		f.log.Info("fetch: resuming an interrupted delivery", "id", p.ID, "since", p.Since)
		err = r.Resume(ctx, f.src.Account, from, full, p.ID, p.Since)
	} else {
		err = f.opts.Deliverer.Deliver(ctx, f.src.Account, from, full)
	}
	if err != nil {
		return p.ID, err
	}
	f.log.Info("fetched", "remote", f.src.Host, "id", p.ID, "msgid", h.Get("Message-Id"), "from", from, "size", len(full))
	return p.ID, nil
}

// refused logs a message left on the server for good.
func (f *Fetcher) refused(what string, err error) {
	f.log.Warn("fetch: message left on the server", "message", what, "err", err)
}
