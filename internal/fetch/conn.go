package fetch

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// minRate is the slowest a server may answer once it has been asked:
// an answer must be complete within the timeout plus one second for
// every minRate octets of it. Without it, a server that sent one octet
// a little within each read's timeout held a pass for ever (Postfix's
// smtpd_min_data_rate guards its reads the same way).
const minRate = 1 << 10

// deadlineConn gives every read and write its own deadline, timeout from
// when it starts, whatever deadlines the protocol library sets; only
// while idle (an IMAP IDLE is running) do reads wait without one. Reads
// are also held to minRate from the start of the exchange (our last
// command, see begin).
type deadlineConn struct {
	net.Conn
	timeout time.Duration

	mu    sync.Mutex
	idle  bool
	begun time.Time // when the current exchange began
	got   int64     // octets read since
}

func newDeadlineConn(c net.Conn, timeout time.Duration) *deadlineConn {
	return &deadlineConn{Conn: c, timeout: timeout, begun: time.Now()}
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.idle {
		_ = c.Conn.SetReadDeadline(time.Time{})
	} else {
		_ = c.Conn.SetReadDeadline(c.deadline(time.Now()))
	}
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got += int64(n)
	c.mu.Unlock()
	return n, err
}

// deadline is timeout from now, but no later than the exchange's
// allowance. The caller holds mu.
func (c *deadlineConn) deadline(now time.Time) time.Time {
	d := now.Add(c.timeout)
	secs := min(c.got/minRate, 1<<30)
	if limit := c.begun.Add(c.timeout + time.Duration(secs)*time.Second); limit.Before(d) {
		d = limit
	}
	return d
}

// begin starts an exchange: the protocol side calls it for every command
// it sends. It is called above TLS, so that octets TLS sends on its own
// (a KeyUpdate the server asked for) begin nothing.
func (c *deadlineConn) begin() {
	c.mu.Lock()
	c.begun, c.got = time.Now(), 0
	c.mu.Unlock()
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}

// setIdle switches reads to waiting without a deadline, or back; a read
// already waiting gets the new deadline at once. The time spent idle
// does not count against the exchange.
func (c *deadlineConn) setIdle(idle bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = idle
	if idle {
		_ = c.Conn.SetReadDeadline(time.Time{})
		return
	}
	c.begun, c.got = time.Now(), 0
	_ = c.Conn.SetReadDeadline(c.deadline(c.begun))
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
	ctl = newDeadlineConn(raw, src.Timeout)
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
