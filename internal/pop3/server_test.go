package pop3

import (
	"context"
	"net"
	"posthorn/internal/connlimit"
	"strings"
	"testing"
	"time"
)

// TestShutdownIdle: idle sessions get [SYS/TEMP] and close, pending
// deletions are not committed, new connections are refused.
func TestShutdownIdle(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	s, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.login()
	c.cmd("DELE 1", "+OK ...")
	auth := dial(t, addr) // waiting in AUTHORIZATION
	tlsIdle := dial(t, addr)
	tlsIdle.starttls()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client{c, auth, tlsIdle} {
		cl.expect("-ERR [SYS/TEMP] server shutting down")
		cl.closed()
	}
	b.waitClosed(t, 1)
	b.wantCommits(t)
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.Close()
		t.Error("still accepting after Shutdown")
	}
	if err := s.Serve(newListener(t)); err != net.ErrClosed {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

// TestShutdownDeadline: a session stuck in the middle of a command is
// killed when the context ends.
func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	s, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.login()
	c.cmd("DELE 1", "+OK ...")
	c.send("NO") // half a command: still waiting, so interrupted
	// A TLS handshake in progress is not waiting for a command: start one
	// and never finish it.
	stuck := dial(t, addr)
	stuck.cmd("STLS", "+OK ...")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err == nil {
		t.Error("Shutdown returned nil with a handshake pending")
	}
	c.expect("-ERR [SYS/TEMP] server shutting down")
	c.closed()
	stuck.closed()
	b.waitClosed(t, 1)
	b.wantCommits(t)
}

func newListener(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestPanicInBackend: panics are recovered at the top of the session,
// counted, answered, and the maildrop is still closed without commit.
func TestPanicInBackend(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"login", "retr", "close"} {
		t.Log(where)
		b := newBackend(testMessages...)
		b.panicOn = where
		s, addr := testServer(t, b, nil)
		c := dial(t, addr)
		c.starttls()
		c.cmd("USER "+testUser, "+OK ...")
		switch where {
		case "login":
			c.cmd("PASS "+testPass, "-ERR [SYS/TEMP] internal error")
		case "retr":
			c.cmd("PASS "+testPass, "+OK ...")
			c.cmd("DELE 2", "+OK ...")
			c.cmd("RETR 1", "-ERR [SYS/TEMP] internal error")
		case "close": // after the session, in close: the client hangs up
			c.cmd("PASS "+testPass, "+OK ...")
			c.nc.Close()
		}
		if where != "close" {
			c.closed()
		}
		if where != "login" {
			b.waitClosed(t, 1)
		}
		if where == "retr" {
			b.wantCommits(t)
		}
		for start := time.Now(); s.Panics() != 1 && time.Since(start) < 5*time.Second; {
			time.Sleep(5 * time.Millisecond)
		}
		if n := s.Panics(); n != 1 {
			t.Errorf("%s: %d panics counted", where, n)
		}
		// The server goes on serving.
		b.panicOn = ""
		dial(t, addr).cmd("QUIT", "+OK ...")
	}
}

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), func(o *Options) { o.MaxConnectionsPerIP = 2 })
	a, b := dial(t, addr), dial(t, addr)
	c := rawDial(t, addr)
	c.expect("-ERR [SYS/TEMP] too many connections from your address")
	c.closed()
	a.cmd("QUIT", "+OK ...")
	a.closed()
	waitFor(t, func() bool { return tryDial(addr) })
	b.cmd("QUIT", "+OK ...")

	_, addr = testServer(t, newBackend(), func(o *Options) { o.MaxConnections = 1 })
	a = dial(t, addr)
	c = rawDial(t, addr)
	c.expect("-ERR [SYS/TEMP] too many connections, try again later")
	c.closed()
}

// rawDial connects without reading a greeting.
func rawDial(t *testing.T, addr string) *client {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: newReader(nc)}
}

// tryDial reports whether a new connection is greeted with +OK.
func tryDial(addr string) bool {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	l, _ := newReader(nc).ReadString('\n')
	return strings.HasPrefix(l, "+OK")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met")
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Hostname: "bad host", ImplicitTLS: true, MaxLineLength: 10})
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, want := range []string{"Backend is required", "not a host name", "ImplicitTLS needs TLS", "MaxLineLength 10"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	s, err := New(Options{Hostname: "pop.test", Backend: newBackend()})
	if err != nil {
		t.Fatal(err)
	}
	if o := s.opts; o.CommandTimeout != 10*time.Minute || o.MaxLineLength != 512 || o.MaxErrors != 10 || o.MaxConnections != 1000 {
		t.Errorf("defaults: %+v", o)
	}
}

func TestLimitKey(t *testing.T) {
	t.Parallel()
	l := connlimit.New(10, 1)
	rel, f := admit(l, mustAddr("2001:db8::1"))
	if f != nil {
		t.Fatal(f.text)
	}
	if _, f := admit(l, mustAddr("2001:db8::2")); f != errTooManyForIP {
		t.Error("same /64 admitted twice")
	}
	if _, f := admit(l, mustAddr("2001:db8:1::2")); f != nil {
		t.Error("other /64 refused")
	}
	rel()
	rel() // idempotent
	if _, f := admit(l, mustAddr("::ffff:192.0.2.1")); f != nil {
		t.Error("IPv4-mapped refused")
	}
	if _, f := admit(l, mustAddr("192.0.2.1")); f != errTooManyForIP {
		t.Error("IPv4 and IPv4-mapped counted apart")
	}
}
