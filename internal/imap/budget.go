package imap

import (
	"context"
	"sync"
)

// budget bounds the octets of message content that all sessions hold in
// memory at once (FETCH and SEARCH load one message at a time). A session
// that would go over waits for others to finish; a message larger than the
// whole budget is still served, alone.
type budget struct {
	max int64

	mu   sync.Mutex
	used int64
	free chan struct{} // closed and replaced whenever something is released
}

func newBudget(max int64) *budget {
	return &budget{max: max, free: make(chan struct{})}
}

// acquire reserves n octets, waiting while the budget is spent. The
// returned func gives them back; call it exactly once.
func (b *budget) acquire(ctx context.Context, n int64) (func(), error) {
	n = min(max(n, 1), b.max)
	for {
		b.mu.Lock()
		if b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return func() { b.release(n) }, nil
		}
		wait := b.free
		b.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.free)
	b.free = make(chan struct{})
	b.mu.Unlock()
}
