package users

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"posthorn/internal/metrics"
)

// GuardOptions configure a Guard.
type GuardOptions struct {
	MaxFailures int           // failures from one IP within Window before a block
	Window      time.Duration // how long a failure counts
	BlockTime   time.Duration // how long a block lasts
	MaxDelay    time.Duration // longest pause after a failure
	// Trusted are client networks never blocked by address (a webmail
	// server logging in for all its users, a proxy): their failures still
	// count against each account, which delays the next try.
	Trusted []netip.Prefix
	Now     func() time.Time
}

// Guard counts failed logins per client IP (IPv6 per /64) and per account,
// on every protocol together. After a failure the caller waits Delay before
// answering, growing with the failures seen; an IP with MaxFailures
// failures within Window is blocked for BlockTime. A success clears the
// failures of its own account, from its IP and in all, and never waits:
// a login to an account of one's own does not wipe out the failures
// against others (that let one guess without limit).
//
// Checks run only inside Begin and its release: an IP may have no more
// checks under way at once than failures left before its block, so that
// a burst of parallel guesses, each let through before any had failed,
// cannot get past MaxFailures (150 at once were all checked).
type Guard struct {
	opts GuardOptions

	mu    sync.Mutex
	ips   map[netip.Addr]*failures
	accts map[string]*failures
}

type failures struct {
	n       int
	first   time.Time
	blocked time.Time      // blocked until
	by      map[string]int // an IP's failures per account
	running int            // an IP's checks under way (Begin)
}

// maxTracked bounds the memory a flood of distinct addresses can take.
const maxTracked = 100000

// NewGuard returns a Guard; zero options get defaults (10, 15m, 15m, 5s).
func NewGuard(o GuardOptions) *Guard {
	if o.MaxFailures <= 0 {
		o.MaxFailures = 10
	}
	if o.Window <= 0 {
		o.Window = 15 * time.Minute
	}
	if o.BlockTime <= 0 {
		o.BlockTime = 15 * time.Minute
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Guard{opts: o, ips: map[netip.Addr]*failures{}, accts: map[string]*failures{}}
}

func guardKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// Counters of the shared limiter, for the http listener's /metrics.
var (
	authFailures = metrics.Default.Counter("posthorn_auth_failures_total", "Failed logins, every protocol.")
	authBlocks   = metrics.Default.Counter("posthorn_auth_blocks_total", "Client addresses blocked after too many failed logins.")
)

// Begin waits until ip may have one more credential check under way,
// and returns the function that ends it; ErrBlocked when ip is blocked,
// or ctx's error.
func (g *Guard) Begin(ctx context.Context, ip netip.Addr) (end func(), err error) {
	if g.trusted(ip) {
		return func() {}, nil
	}
	key := guardKey(ip)
	for {
		g.mu.Lock()
		now := g.opts.Now()
		f := g.ips[key]
		if f != nil && now.Before(f.blocked) {
			g.mu.Unlock()
			return nil, ErrBlocked
		}
		if f == nil || expired(f, now, g.opts.Window) && f.running == 0 {
			if len(g.ips) >= maxTracked {
				prune(g.ips, now, g.opts.Window)
			}
			f = &failures{first: now}
			g.ips[key] = f
		}
		if f.running < max(g.opts.MaxFailures-f.n, 1) {
			f.running++
			g.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { g.end(key) }) }, nil
		}
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (g *Guard) end(key netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.ips[key]
	if f == nil || f.running == 0 {
		return
	}
	f.running--
	if f.running == 0 && f.n == 0 && !g.opts.Now().Before(f.blocked) {
		delete(g.ips, key) // nothing to remember: every IP that logs in made one
	}
}

// trusted reports whether ip is in a network never blocked by address.
func (g *Guard) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range g.opts.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Blocked reports whether ip may not try to log in now.
func (g *Guard) Blocked(ip netip.Addr) bool {
	if g.trusted(ip) {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.ips[guardKey(ip)]
	return f != nil && g.opts.Now().Before(f.blocked)
}

// Failed records a failed login and returns how long to wait before
// answering: 250ms doubled per failure of the IP or the account (whichever
// has more), at most MaxDelay.
func (g *Guard) Failed(ip netip.Addr, account string) (delay time.Duration, blocked bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.opts.Now()
	authFailures.Inc()
	if g.trusted(ip) {
		n := 0
		if account != "" {
			n = bump(g.accts, account, now, g.opts.Window).n
		}
		return g.delay(n), false
	}
	fi := bump(g.ips, guardKey(ip), now, g.opts.Window)
	if fi.by == nil {
		fi.by = map[string]int{}
	}
	fi.by[account]++
	n := fi.n
	if account != "" {
		if fa := bump(g.accts, account, now, g.opts.Window); fa.n > n {
			n = fa.n
		}
	}
	if fi.n >= g.opts.MaxFailures {
		fi.blocked = now.Add(g.opts.BlockTime)
		blocked = true
		authBlocks.Inc()
	}
	return g.delay(n), blocked
}

// delay is the pause after the nth failure: 250ms, doubling, at most
// MaxDelay.
func (g *Guard) delay(n int) time.Duration {
	d := 250 * time.Millisecond
	for i := 1; i < n && d < g.opts.MaxDelay; i++ {
		d *= 2
	}
	return min(d, g.opts.MaxDelay)
}

// bump counts one failure for key, restarting an expired window.
func bump[K comparable](m map[K]*failures, key K, now time.Time, window time.Duration) *failures {
	f := m[key]
	if f == nil {
		if len(m) >= maxTracked {
			prune(m, now, window)
		}
		f = &failures{first: now}
		m[key] = f
	} else if expired(f, now, window) {
		f.n, f.first, f.by = 0, now, nil // a new window; checks under way stay counted
	}
	f.n++
	return f
}

func expired(f *failures, now time.Time, window time.Duration) bool {
	return now.Sub(f.first) > window && now.After(f.blocked)
}

// prune drops expired records with no check under way.
func prune[K comparable](m map[K]*failures, now time.Time, window time.Duration) {
	for k, f := range m {
		if expired(f, now, window) && f.running == 0 {
			delete(m, k)
		}
	}
}

// Succeeded clears the account's failures, in all and from the IP; the
// IP's failures against other accounts stay.
func (g *Guard) Succeeded(ip netip.Addr, account string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.ips[guardKey(ip)]; f != nil && !g.opts.Now().Before(f.blocked) {
		f.n -= f.by[account]
		delete(f.by, account)
		if f.n <= 0 && f.running == 0 {
			delete(g.ips, guardKey(ip))
		}
	}
	delete(g.accts, account)
}
