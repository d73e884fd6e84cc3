package delivery

import (
	"sync"
	"time"
)

// doneTargets remembers, per message and recipient, the Unix targets (a
// mailbox, a pipe, a file) already delivered while another target of the
// same recipient failed for now and the recipient went to the queue: the
// retry skips them. Without it every retry delivered every target again;
// a .forward of "\me, |notify" whose command was down put one more copy
// in the mailbox at each retry, dozens over the queue's lifetime.
//
// It is kept in memory: after a restart, a retry delivers such targets
// once more (at least once, as SMTP itself). Entries go when their
// recipient is done, or after doneTTL (beyond the queue's lifetime), and
// there are at most maxDone of them.
type doneTargets struct {
	mu sync.Mutex
	m  map[doneKey]map[string]time.Time // target → when delivered
}

type doneKey struct{ id, rcpt string }

const (
	doneTTL = 8 * 24 * time.Hour
	maxDone = 100_000
)

func (d *doneTargets) has(id, rcpt, target string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.m[doneKey{id, rcpt}][target]
	return ok
}

func (d *doneTargets) add(id, rcpt, target string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[doneKey]map[string]time.Time{}
	}
	if len(d.m) >= maxDone {
		d.prune(now)
	}
	k := doneKey{id, rcpt}
	if d.m[k] == nil {
		d.m[k] = map[string]time.Time{}
	}
	d.m[k][target] = now
}

// forget drops a recipient whose targets are all delivered.
func (d *doneTargets) forget(id, rcpt string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, doneKey{id, rcpt})
}

// prune drops entries older than doneTTL and, if that is not enough,
// any others until there is room. The caller holds mu.
func (d *doneTargets) prune(now time.Time) {
	for k, ts := range d.m {
		for t, at := range ts {
			if now.Sub(at) > doneTTL {
				delete(ts, t)
			}
		}
		if len(ts) == 0 {
			delete(d.m, k)
		}
	}
	for k := range d.m {
		if len(d.m) < maxDone {
			break
		}
		delete(d.m, k)
	}
}
