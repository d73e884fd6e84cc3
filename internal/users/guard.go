package users

import (
	"net/netip"
	"posthorn/internal/metrics"
	"sync"
	"time"
)

// GuardOptions configure a Guard.
type GuardOptions struct {
	MaxFailures int           // failures from one IP within Window before a block
	Window      time.Duration // how long a failure counts
	BlockTime   time.Duration // how long a block lasts
	MaxDelay    time.Duration // longest pause after a failure
	Now         func() time.Time
}

// Guard counts failed logins per client IP (IPv6 per /64) and per account,
// on every protocol together. After a failure the caller waits Delay before
// answering, growing with the failures seen; an IP with MaxFailures
// failures within Window is blocked for BlockTime. A success clears its
// IP's record and never waits.
type Guard struct {
	opts GuardOptions

	mu    sync.Mutex
	ips   map[netip.Addr]*failures
	accts map[string]*failures
}

type failures struct {
	n       int
	first   time.Time
	blocked time.Time // blocked until
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

// Blocked reports whether ip may not try to log in now.
func (g *Guard) Blocked(ip netip.Addr) bool {
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
	fi := bump(g.ips, guardKey(ip), now, g.opts.Window)
	n := fi.n
	if account != "" {
		if fa := bump(g.accts, account, now, g.opts.Window); fa.n > n {
			n = fa.n
		}
	}
	authFailures.Inc()
	if fi.n >= g.opts.MaxFailures {
		fi.blocked = now.Add(g.opts.BlockTime)
		blocked = true
		authBlocks.Inc()
	}
	delay = 250 * time.Millisecond
	for i := 1; i < n && delay < g.opts.MaxDelay; i++ {
		delay *= 2
	}
	return min(delay, g.opts.MaxDelay), blocked
}

// bump counts one failure for key, restarting an expired window.
func bump[K comparable](m map[K]*failures, key K, now time.Time, window time.Duration) *failures {
	f := m[key]
	if f == nil || expired(f, now, window) {
		if len(m) >= maxTracked {
			prune(m, now, window)
		}
		f = &failures{first: now}
		m[key] = f
	}
	f.n++
	return f
}

func expired(f *failures, now time.Time, window time.Duration) bool {
	return now.Sub(f.first) > window && now.After(f.blocked)
}

// prune drops expired records.
func prune[K comparable](m map[K]*failures, now time.Time, window time.Duration) {
	for k, f := range m {
		if expired(f, now, window) {
			delete(m, k)
		}
	}
}

// Succeeded clears the IP's failures and the account's.
func (g *Guard) Succeeded(ip netip.Addr, account string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.ips[guardKey(ip)]; f != nil && !g.opts.Now().Before(f.blocked) {
		delete(g.ips, guardKey(ip))
	}
	delete(g.accts, account)
}
