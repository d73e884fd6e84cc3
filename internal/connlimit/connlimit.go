// Package connlimit caps concurrent connections, in total and per client
// address, for every listener that accepts clients (SMTP, IMAP, POP3,
// ManageSieve). IPv6 clients are counted per /64, since one host usually
// owns a whole prefix.
package connlimit

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Refusals; each protocol turns them into its own reply.
var (
	ErrBusy    = errors.New("connlimit: too many connections")
	ErrPerAddr = errors.New("connlimit: too many connections from one address")
)

// Limiter counts connections. One Limiter may be shared by several
// servers.
type Limiter struct {
	max, perAddr int

	mu     sync.Mutex
	total  int
	byAddr map[netip.Addr]int
}

// New returns a Limiter allowing max connections in all and perAddr from
// one address (or IPv6 /64).
func New(max, perAddr int) *Limiter {
	return &Limiter{max: max, perAddr: perAddr, byAddr: make(map[netip.Addr]int)}
}

// Admit counts a new connection from ip. It returns a func that releases
// it (safe to call more than once), or ErrBusy or ErrPerAddr.
func (l *Limiter) Admit(ip netip.Addr) (release func(), err error) {
	key := Key(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max {
		return nil, ErrBusy
	}
	if l.byAddr[key] >= l.perAddr {
		return nil, ErrPerAddr
	}
	l.total++
	l.byAddr[key]++
	var once sync.Once
	return func() { once.Do(func() { l.release(key) }) }, nil
}

func (l *Limiter) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byAddr[key]--; l.byAddr[key] <= 0 {
		delete(l.byAddr, key)
	}
}

// Key is the address a client is counted under: itself for IPv4 (and
// IPv4-mapped IPv6), its /64 for IPv6.
func Key(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// AcceptBackoff tells a server what to do after its listener's Accept
// failed with err, the last wait having been prev: for a passing
// condition (a timeout; the process or the system out of file
// descriptors, EMFILE or ENFILE, as during a connection flood) it returns
// how long to wait before accepting again, doubling from 5 ms to 1 s, and
// true; for anything else false: the listener is gone. Returning on
// EMFILE stopped IMAP, POP3 and ManageSieve for good after a flood, with
// clients piling up unanswered in the backlog.
func AcceptBackoff(err error, prev time.Duration) (time.Duration, bool) {
	var t interface {
		Timeout() bool
		Temporary() bool
	}
	if !errors.As(err, &t) || !(t.Timeout() || t.Temporary()) {
		return 0, false
	}
	return min(max(2*prev, 5*time.Millisecond), time.Second), true
}

// Refuse sends a refused connection its one reply and closes it, in the
// background. With tlsConf (an implicit-TLS listener) the reply goes
// inside TLS (RFC 8314 §3.3: nothing is sent in the clear there; a
// client would read a plaintext reply as a broken TLS record), as
// Postfix does in wrapper mode. A handshake costs more than a write, so
// at most MaxTLSRefusals run at once, each within RefuseTimeout; past
// that a connection is just closed.
func Refuse(nc net.Conn, tlsConf *tls.Config, reply string) {
	go refuse(nc, tlsConf, reply)
}

// Bounds of Refuse.
const (
	RefuseTimeout  = 5 * time.Second
	MaxTLSRefusals = 64
)

var tlsRefusals = make(chan struct{}, MaxTLSRefusals)

func refuse(nc net.Conn, tlsConf *tls.Config, reply string) {
	defer nc.Close()
	deadline := time.Now().Add(RefuseTimeout)
	_ = nc.SetDeadline(deadline)
	w := nc
	if tlsConf != nil {
		select {
		case tlsRefusals <- struct{}{}:
			defer func() { <-tlsRefusals }()
		default:
			return
		}
		tc := tls.Server(nc, tlsConf)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		if tc.HandshakeContext(ctx) != nil {
			return
		}
		defer func() { _ = tc.CloseWrite() }() // close_notify: the reply is complete
		w = tc
	}
	_, _ = w.Write([]byte(reply))
}
