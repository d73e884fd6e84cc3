package smtp

import (
	"net/netip"
	"sync"
)

// Limiter caps concurrent connections in total and per client address.
// IPv6 clients are counted per /64, since one host usually owns a whole
// prefix. One Limiter may be shared by several servers.
type Limiter struct {
	max, perIP int

	mu    sync.Mutex
	total int
	byIP  map[netip.Addr]int
}

// NewLimiter returns a Limiter allowing max connections in all and perIP
// from one address (or IPv6 /64).
func NewLimiter(max, perIP int) *Limiter {
	return &Limiter{max: max, perIP: perIP, byIP: make(map[netip.Addr]int)}
}

var (
	errTooBusy      = &Error{Code: CodeUnavailable, Enhanced: "4.3.2", Msg: "Too many connections, try again later"}
	errTooManyForIP = &Error{Code: CodeUnavailable, Enhanced: "4.7.0", Msg: "Too many connections from your address"}
)

// admit counts a new connection from ip. It returns a release func, or the
// reply to refuse the connection with.
func (l *Limiter) admit(ip netip.Addr) (release func(), refuse *Error) {
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

func (l *Limiter) release(key netip.Addr) {
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
