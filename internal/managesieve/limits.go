package managesieve

import (
	"net/netip"
	"sync"
)

// limiter caps concurrent connections in total and per client address.
// IPv6 clients are counted per /64, since one host usually owns a whole
// prefix.
type limiter struct {
	max, perIP int

	mu    sync.Mutex
	total int
	byIP  map[netip.Addr]int
}

func newLimiter(max, perIP int) *limiter {
	return &limiter{max: max, perIP: perIP, byIP: make(map[netip.Addr]int)}
}

// admit counts a new connection from ip. It returns a release func, or
// the answer to refuse the connection with.
func (l *limiter) admit(ip netip.Addr) (release func(), refuse *failure) {
	key := limitKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max {
		return nil, errTooBusy
	}
	if l.byIP[key] >= l.perIP {
		return nil, errTooManyForIP
	}
	l.total++
	l.byIP[key]++
	var once sync.Once
	return func() { once.Do(func() { l.release(key) }) }, nil
}

func (l *limiter) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byIP[key]--; l.byIP[key] <= 0 {
		delete(l.byIP, key)
	}
}

func limitKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}
