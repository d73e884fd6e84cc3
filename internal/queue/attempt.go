package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"posthorn/internal/store"
)

// attempt tries every due recipient of m once, grouped by domain. Each
// domain's outcome is saved as soon as it is known, so a crash while
// another domain's server is slow never sends the recipients that
// already got their 250 again. It finishes the message when nothing is
// left to do.
func (q *Queue) attempt(ctx context.Context, m store.QueuedMessage) {
	body, err := q.opts.Store.QueueBody(ctx, m.ID)
	if err != nil {
		q.bodyLost(ctx, m, err)
		return
	}
	defer body.Close()
	now := q.opts.Now()
	groups := dueByDomain(m, now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	saved := true
	for domain, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The outcome is saved even when ctx ended meanwhile: what the
			// remote accepted must not be sent again.
			saveCtx := context.WithoutCancel(ctx)
			// One message may name hundreds of domains: each is a
			// delivery, held to Workers at once over all messages.
			select {
			case q.conns <- struct{}{}:
				defer func() { <-q.conns }()
			case <-ctx.Done():
				return // stopping: the recipients stay due
			}
			if !q.takeDomain(domain) {
				// Busy: not an attempt (no count, no backoff); the scan
				// looks past these recipients for a while.
				mu.Lock()
				defer mu.Unlock()
				var changed []store.QueuedRcpt
				for _, i := range idx {
					m.Rcpts[i].NextAttempt = now.Add(min(domainBusyDelay, q.opts.MinBackoff))
					changed = append(changed, m.Rcpts[i])
				}
				q.log.Debug("queue: domain busy, later", "msgid", m.ID, "domain", domain)
				if err := q.opts.Store.QueueUpdate(saveCtx, m.ID, changed); err != nil {
					q.log.Error("queue update", "msgid", m.ID, "domain", domain, "err", err)
				}
				return
			}
			defer q.releaseDomain(domain)
			env := Envelope{ID: m.ID, From: m.From, EnvID: m.EnvID, Ret: m.Ret, UTF8: m.UTF8, Domain: domain}
			mu.Lock()
			for _, i := range idx {
				env.Rcpts = append(env.Rcpts, m.Rcpts[i])
			}
			mu.Unlock()
			results := q.deliver(ctx, env, body, body.Size())
			end := q.opts.Now() // the backoff counts from the end of the attempt
			mu.Lock()
			defer mu.Unlock()
			var changed []store.QueuedRcpt
			more := tooMany(results)
			for k, i := range idx {
				res := result(results, k)
				q.apply(&m, &m.Rcpts[i], res, end, more && isTooMany(res))
				changed = append(changed, m.Rcpts[i])
			}
			if err := q.opts.Store.QueueUpdate(saveCtx, m.ID, changed); err != nil {
				q.log.Error("queue update", "msgid", m.ID, "domain", domain, "err", err)
				saved = false
			}
		}()
	}
	wg.Wait()
	if !saved {
		return
	}
	q.notify(context.WithoutCancel(ctx), m, body)
}

// deliver runs the Transport for one domain's recipients. A panic in it
// is this attempt's temporary failure, not the daemon's end: it runs on a
// goroutine of its own, where the worker's recover does not reach, and a
// hostile MX's 221 greeting that crashed the client crashed the daemon
// again on every start while the message was queued.
func (q *Queue) deliver(ctx context.Context, env Envelope, body io.ReaderAt, size int64) (results []Result) {
	defer func() {
		if r := recover(); r != nil {
			q.panics.Add(1)
			q.log.Error("queue transport panic", "msgid", env.ID, "domain", env.Domain, "err", r, "stack", string(debug.Stack()))
			results = make([]Result, len(env.Rcpts))
			for i := range results {
				results[i] = Result{Code: 451, Enhanced: "4.3.0", Text: "internal error, will retry"}
			}
		}
	}()
	return q.opts.Transport.Deliver(ctx, env, body, size)
}

// isTooMany is the refusal of a recipient past the server's limit per
// transaction: 452 4.5.3 (RFC 5321 §4.5.3.1.10, RFC 3463).
func isTooMany(r Result) bool { return r.Code == 452 && r.Enhanced == "4.5.3" }

// tooMany reports whether a transaction delivered to some recipients and
// refused others as too many: those are sent again at once. (Without a
// recipient taken, a 452 4.5.3 waits its backoff like any 4xx, so that a
// server refusing everything is not tried in a loop.)
func tooMany(rs []Result) bool {
	took, refused := false, false
	for _, r := range rs {
		took = took || r.Code/100 == 2
		refused = refused || isTooMany(r)
	}
	return took && refused
}

// result guards against a Transport returning too few results.
func result(rs []Result, i int) Result {
	if i < len(rs) {
		return rs[i]
	}
	return Result{Code: 451, Enhanced: "4.3.0", Text: "no result from transport"}
}

// dueByDomain groups the indexes of due recipients by domain.
// domainBusyDelay is how long recipients wait when their domain has
// PerDomain deliveries in progress (at most MinBackoff).
const domainBusyDelay = 30 * time.Second

func dueByDomain(m store.QueuedMessage, now time.Time) map[string][]int {
	g := map[string][]int{}
	for i, r := range m.Rcpts {
		if r.State == store.RcptQueued && !r.NextAttempt.After(now) {
			d := strings.ToLower(r.Addr[strings.LastIndexByte(r.Addr, '@')+1:])
			g[d] = append(g[d], i)
		}
	}
	return g
}

// apply records one result on a recipient and schedules what follows.
// again: the server refused it only as one too many beside others it
// took (RFC 5321 §4.5.3.1.10); it takes it in another transaction, so
// that is due at once, as Postfix sends it, and no attempt is counted.
func (q *Queue) apply(m *store.QueuedMessage, r *store.QueuedRcpt, res Result, now time.Time, again bool) {
	if !again {
		r.Attempts++
	}
	r.LastAttempt = now
	r.Code, r.Enhanced, r.Text, r.Remote = res.Code, res.Enhanced, res.Text, res.Remote
	log := q.log.With("msgid", m.ID, "from", m.From, "rcpt", r.Addr, "code", res.Code, "remote", res.Remote)
	switch {
	case res.Code >= 200 && res.Code < 300:
		r.State = store.RcptDelivered
		switch {
		case res.Relayed:
			r.Text = "relayed: " + r.Text
		case res.PassedOn:
			r.Text = passedOn + r.Text
		}
		log.Info("delivered", "attempts", r.Attempts)
	case res.Code >= 500:
		r.State = store.RcptFailed
		log.Info("bounced", "err", res.Text)
	case now.Sub(m.Created) >= q.opts.Lifetime:
		r.State = store.RcptFailed
		r.Enhanced = "4.4.7" // RFC 3463: delivery time expired
		r.Text = "gave up after " + q.opts.Lifetime.String() + ": " + res.Text
		log.Info("expired", "err", res.Text)
	case again:
		r.NextAttempt = now
		log.Info("deferred: too many recipients for one transaction, again at once", "err", res.Text)
	default:
		r.NextAttempt = now.Add(q.backoff(r.Attempts))
		log.Info("deferred", "err", res.Text, "retry", r.NextAttempt.Format(time.RFC3339))
	}
}

// backoff is MinBackoff doubled per attempt, at most MaxBackoff.
func (q *Queue) backoff(attempts int) time.Duration {
	d := q.opts.MinBackoff
	for i := 1; i < attempts && d < q.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, q.opts.MaxBackoff)
}

// bodyLost handles a message whose body cannot be read: every pending
// recipient fails with a clear reason, the sender is told, the rows go.
func (q *Queue) bodyLost(ctx context.Context, m store.QueuedMessage, err error) {
	q.log.Error("queue body unreadable", "msgid", m.ID, "err", err)
	if !errors.Is(err, store.ErrCorrupt) {
		return // transient: try again at the next scan
	}
	now := q.opts.Now()
	for i := range m.Rcpts {
		r := &m.Rcpts[i]
		if r.State == store.RcptQueued || r.State == store.RcptHeld {
			r.State, r.Code, r.Enhanced, r.LastAttempt = store.RcptFailed, 554, "5.3.0", now
			r.Text = "message damaged in the queue"
		}
	}
	if err := q.opts.Store.QueueUpdate(ctx, m.ID, m.Rcpts); err != nil {
		q.log.Error("queue update", "msgid", m.ID, "err", err)
		return
	}
	q.notify(ctx, m, nil)
}

// Flush makes every queued recipient of id (or of all messages if id is "")
// due now.
func (q *Queue) Flush(ctx context.Context, id string) error {
	err := Flush(ctx, q.opts.Store, id)
	q.Wake()
	return err
}

// Hold stops delivery attempts for a message until Release.
func (q *Queue) Hold(ctx context.Context, id string) error { return Hold(ctx, q.opts.Store, id) }

// Release makes a held message deliverable now.
func (q *Queue) Release(ctx context.Context, id string) error {
	err := Release(ctx, q.opts.Store, id)
	q.Wake()
	return err
}

// Flush, Hold and Release work on the store alone, so that admin commands
// can use them while a daemon runs: its runner sees the change at its next
// scan (within Options.Poll).

// Flush makes every queued recipient of id (all messages if "") due now.
func Flush(ctx context.Context, st store.Queue, id string) error {
	return setState(ctx, st, id, func(r *store.QueuedRcpt) bool {
		if r.State != store.RcptQueued {
			return false
		}
		r.NextAttempt = time.Time{}
		return true
	})
}

// Hold stops delivery attempts for a message until Release.
func Hold(ctx context.Context, st store.Queue, id string) error {
	return setState(ctx, st, id, func(r *store.QueuedRcpt) bool {
		if r.State != store.RcptQueued {
			return false
		}
		r.State = store.RcptHeld
		return true
	})
}

// Release makes a held message deliverable now.
func Release(ctx context.Context, st store.Queue, id string) error {
	return setState(ctx, st, id, func(r *store.QueuedRcpt) bool {
		if r.State != store.RcptHeld {
			return false
		}
		r.State, r.NextAttempt = store.RcptQueued, time.Time{}
		return true
	})
}

func setState(ctx context.Context, st store.Queue, id string, change func(*store.QueuedRcpt) bool) error {
	var ms []store.QueuedMessage
	if id == "" {
		var err error
		if ms, err = st.QueueList(ctx); err != nil {
			return err
		}
	} else {
		m, err := st.QueueGet(ctx, id)
		if err != nil {
			return fmt.Errorf("queue %s: %w", id, err)
		}
		ms = []store.QueuedMessage{m}
	}
	for _, m := range ms {
		var rs []store.QueuedRcpt
		for i := range m.Rcpts {
			if change(&m.Rcpts[i]) {
				rs = append(rs, m.Rcpts[i])
			}
		}
		if len(rs) > 0 {
			if err := st.QueueUpdate(ctx, m.ID, rs); err != nil {
				return err
			}
		}
	}
	return nil
}

// pending reports whether a recipient still has delivery ahead.
func pending(r store.QueuedRcpt) bool {
	return r.State == store.RcptQueued || r.State == store.RcptHeld
}

func notifies(r store.QueuedRcpt, what string) bool {
	if len(r.Notify) == 0 {
		return what == "FAILURE" // RFC 3461 §4.1: the default is FAILURE
	}
	return slices.Contains(r.Notify, what)
}
