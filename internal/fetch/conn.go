package fetch

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
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

// literalGuard bounds the literals an IMAP server sends: the client
// library reads a literal that is not a message body into memory whole,
// so a hostile server announcing {3221225472} in an ENVELOPE grew the
// daemon by gigabytes. It follows IMAP's framing (RFC 9051 §4.3: a
// literal is announced by "{n}" at the end of a line and its octets are
// skipped, not scanned) and fails the connection when one response's
// literals add up to more than max octets.
type literalGuard struct {
	net.Conn
	r    io.Reader // Conn, maybe behind a synthetic greeting
	max  int64
	skip int64 // octets of the current literal still to come
	sum  int64 // literal octets of the current response
	tail []byte
}

func newLiteralGuard(c net.Conn, r io.Reader, max int64) *literalGuard {
	if r == nil {
		r = c
	}
	return &literalGuard{Conn: c, r: r, max: max, tail: make([]byte, 0, 24)}
}

func (g *literalGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if gerr := g.scan(p[:n]); gerr != nil {
		g.Conn.Close()
		return 0, gerr
	}
	return n, err
}

func (g *literalGuard) scan(b []byte) error {
	for len(b) > 0 {
		if g.skip > 0 {
			k := min(g.skip, int64(len(b)))
			g.skip -= k
			b = b[k:]
			continue
		}
		c := b[0]
		b = b[1:]
		if c != '\n' {
			if len(g.tail) == cap(g.tail) {
				copy(g.tail, g.tail[1:])
				g.tail = g.tail[:len(g.tail)-1]
			}
			g.tail = append(g.tail, c)
			continue
		}
		n, ok := announcedLiteral(g.tail)
		g.tail = g.tail[:0]
		if !ok {
			g.sum = 0 // the response ended
			continue
		}
		if g.sum += n; g.sum > g.max {
			return fmt.Errorf("imap: the server sent a response with %d octets of literals, more than the %d allowed", g.sum, g.max)
		}
		g.skip = n
	}
	return nil
}

// announcedLiteral parses "{n}\r" (or "~{n}\r", "{n+}\r") ending a line.
func announcedLiteral(tail []byte) (int64, bool) {
	s := strings.TrimSuffix(string(tail), "\r")
	if !strings.HasSuffix(s, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(s, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(s[i+1:len(s)-1], "+"), 10, 64)
	return n, err == nil && n >= 0
}
