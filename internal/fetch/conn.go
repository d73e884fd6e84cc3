package fetch

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// deadlineConn gives every read and write its own deadline, timeout from
// when it starts, whatever deadlines the protocol library sets; only
// while idle (an IMAP IDLE is running) do reads wait without one.
type deadlineConn struct {
	net.Conn
	timeout time.Duration

	mu   sync.Mutex
	idle bool
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.idle {
		_ = c.Conn.SetReadDeadline(time.Time{})
	} else {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}

// setIdle switches reads to waiting without a deadline, or back; a read
// already waiting gets the new deadline at once.
func (c *deadlineConn) setIdle(idle bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = idle
	if idle {
		_ = c.Conn.SetReadDeadline(time.Time{})
	} else {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
}

// The library's own deadlines are ignored: ours are set on every call.
func (c *deadlineConn) SetDeadline(time.Time) error      { return nil }
func (c *deadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (c *deadlineConn) SetWriteDeadline(time.Time) error { return nil }

// dial connects to the source's server, with implicit TLS when asked (the
// handshake bounded by the timeout). It returns the connection to speak
// the protocol on and ctl, the deadline layer right above TCP (below any
// TLS), whose idle mode IDLE switches. The connection is closed when ctx
// ends; stop releases that.
func (f *Fetcher) dial(ctx context.Context) (conn net.Conn, ctl *deadlineConn, stop func() bool, err error) {
	src := &f.src
	dial := f.opts.Dial
	if dial == nil {
		d := net.Dialer{Timeout: src.Timeout, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	raw, err := dial(ctx, "tcp", src.addr())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect %s: %w", src.addr(), err)
	}
	stop = context.AfterFunc(ctx, func() { raw.Close() })
	ctl = &deadlineConn{Conn: raw, timeout: src.Timeout}
	if src.TLS != TLSImplicit {
		return ctl, ctl, stop, nil
	}
	tc := tls.Client(ctl, f.tls)
	hctx, cancel := context.WithTimeout(ctx, src.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		stop()
		raw.Close()
		return nil, nil, nil, fmt.Errorf("TLS with %s: %w", src.addr(), err)
	}
	return tc, ctl, stop, nil
}
