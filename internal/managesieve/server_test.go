package managesieve

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"posthorn/internal/connlimit"
	"strings"
	"testing"
	"time"
)

// TestShutdownIdle: sessions waiting for the client, between commands or
// in a SASL exchange, get BYE (TRYLATER) and close; new connections are
// refused.
func TestShutdownIdle(t *testing.T) {
	t.Parallel()
	b := newBackend()
	s, addr := testServer(t, b, nil)
	authed := dial(t, addr)
	authed.login()
	plainText := dial(t, addr)
	exchange := dial(t, addr)
	exchange.starttls()
	exchange.cmd(`AUTHENTICATE "PLAIN"`, `""`)
	half := dial(t, addr)
	half.send("NOO") // half a command line: still waiting, so interrupted

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client{authed, plainText, exchange, half} {
		cl.expect(`BYE (TRYLATER) "Server shutting down"`)
		cl.closed()
	}
	b.waitClosed(t, 1)
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.Close()
		t.Error("still accepting after Shutdown")
	}
	if err := s.Serve(newListener(t)); err != net.ErrClosed {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

// TestShutdownDeadline: a session in the middle of a literal, or of a TLS
// handshake, is not waiting for a command; it is killed when the context
// ends.
func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	b := newBackend()
	s, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.login()
	// NOOP's answer is flushed when the session waits for the rest of
	// the literal.
	c.send("NOOP\r\n" + `PUTSCRIPT "x" {100+}` + "\r\nkeep;")
	c.expect(`OK "Done"`)
	time.Sleep(20 * time.Millisecond)
	stuck := dial(t, addr)
	stuck.cmd("STARTTLS", `OK ...`)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err == nil {
		t.Error("Shutdown returned nil with a literal pending")
	}
	c.closed()
	stuck.closed()
	b.waitClosed(t, 1)
	if scripts, _, _, _ := b.state(); len(scripts) != 0 {
		t.Errorf("stored %v", scripts)
	}
}

// TestPanicInBackend: panics are recovered at the top of the session,
// counted, answered, and the scripts are still closed once.
func TestPanicInBackend(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"sasl", "put", "close"} {
		b := newBackend()
		b.panicOn = where
		s, addr := testServer(t, b, nil)
		c := dial(t, addr)
		c.starttls()
		switch where {
		case "sasl":
			c.cmd(`AUTHENTICATE "PLAIN" "`+plain("", testUser, testPass)+`"`, `BYE (TRYLATER) "Internal error"`)
			c.closed()
		case "put":
			c.login2()
			c.cmd(`PUTSCRIPT "x" "keep;"`, `BYE (TRYLATER) "Internal error"`)
			c.closed()
		case "close": // after the session, in close: the client hangs up
			c.login2()
			c.nc.Close()
		}
		if where != "sasl" {
			b.waitClosed(t, 1)
		}
		waitFor(t, func() bool { return s.Panics() == 1 })
		// The server goes on serving.
		b.panicOn = ""
		dial(t, addr).cmd("LOGOUT", `OK ...`)
	}
}

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), func(o *Options) { o.MaxConnectionsPerIP = 2 })
	a, b := dial(t, addr), dial(t, addr)
	c := rawDial(t, addr)
	c.expect(`BYE (TRYLATER) "Too many connections from your address"`)
	c.closed()
	a.cmd("LOGOUT", `OK ...`)
	a.closed()
	waitFor(t, func() bool { return tryDial(addr) })
	b.cmd("LOGOUT", `OK ...`)

	_, addr = testServer(t, newBackend(), func(o *Options) { o.MaxConnections = 1 })
	dial(t, addr)
	c = rawDial(t, addr)
	c.expect(`BYE (TRYLATER) "Too many connections, try again later"`)
	c.closed()
}

// tryDial reports whether a new connection is greeted with capabilities.
func tryDial(addr string) bool {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	l, _ := bufio.NewReader(nc).ReadString('\n')
	return strings.HasPrefix(l, `"IMPLEMENTATION"`)
}

func TestLimitKey(t *testing.T) {
	t.Parallel()
	l := connlimit.New(10, 1)
	rel, f := admit(l, netip.MustParseAddr("2001:db8::1"))
	if f != nil {
		t.Fatal(f.text)
	}
	if _, f := admit(l, netip.MustParseAddr("2001:db8::2")); f != errTooManyForIP {
		t.Error("same /64 admitted twice")
	}
	if _, f := admit(l, netip.MustParseAddr("2001:db8:1::2")); f != nil {
		t.Error("other /64 refused")
	}
	rel()
	rel() // idempotent
	if _, f := admit(l, netip.MustParseAddr("::ffff:192.0.2.1")); f != nil {
		t.Error("IPv4-mapped refused")
	}
	if _, f := admit(l, netip.MustParseAddr("192.0.2.1")); f != errTooManyForIP {
		t.Error("IPv4 and IPv4-mapped counted apart")
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	b := newBackend()
	b.mechs = []string{"PLAIN", "bad mech"}
	_, err := New(Options{Hostname: "bad host", Backend: b, MaxLineLength: 100, MaxNameLength: 10,
		Extensions: []string{"fileinto", "enotify", "with space"}, MaxRedirects: -1, MaxScriptSize: 1 << 40})
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, want := range []string{`"bad mech" is not a mechanism name`, "not a host name", "TLS is required",
		"enotify needs NotifyMethods", `"with space" is not a word`, "MaxRedirects -1", "MaxLineLength 100",
		"MaxNameLength 10", "MaxScriptSize 1099511627776"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := New(Options{Hostname: "sieve.test", TLS: testTLS()}); err == nil || !strings.Contains(err.Error(), "Backend is required") {
		t.Errorf("no backend: %v", err)
	}
	b.mechs = nil
	if _, err := New(Options{Hostname: "sieve.test", TLS: testTLS(), Backend: b}); err == nil || !strings.Contains(err.Error(), "no SASL mechanism") {
		t.Errorf("no mechanisms: %v", err)
	}
	s, err := New(Options{Hostname: "sieve.test", Backend: newBackend(), TLS: testTLS()})
	if err != nil {
		t.Fatal(err)
	}
	if o := s.opts; o.CommandTimeout != 10*time.Minute || o.MaxLineLength != 8192 || o.MaxErrors != 10 ||
		o.MaxConnections != 1000 || o.MaxScriptSize != 1<<20 || o.MaxNameLength != 128 || s.maxDiscard != 4<<20 {
		t.Errorf("defaults: %+v", o)
	}
}

// TestCapabilityOptions: the SIEVE list, NOTIFY and MAXREDIRECTS come from
// the options.
func TestCapabilityOptions(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), func(o *Options) {
		o.Extensions = []string{"fileinto", "enotify"}
		o.NotifyMethods = []string{"mailto"}
		o.MaxRedirects = 5
	})
	c := rawDial(t, addr)
	c.run(`
		S: "IMPLEMENTATION" "Posthorn"
		S: "SASL" ""
		S: "STARTTLS"
		S: "SIEVE" "fileinto enotify"
		S: "NOTIFY" "mailto"
		S: "MAXREDIRECTS" "5"
		S: "UNAUTHENTICATE"
		S: "VERSION" "1.0"
		S: OK "sieve.test ManageSieve ready"`)
}

func TestAppendString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"Grüße", `"Grüße"`},
		{"a\r\nb", "{4}\r\na\r\nb"},
		{"nul\x00", "{4}\r\nnul\x00"},
		{"bad\xff", "{4}\r\nbad\xff"},
		{strings.Repeat("x", 1024), `"` + strings.Repeat("x", 1024) + `"`},
		{strings.Repeat("x", 1025), "{1025}\r\n" + strings.Repeat("x", 1025)},
		{strings.Repeat(`"`, 512), `"` + strings.Repeat(`\"`, 512) + `"`},
		{strings.Repeat(`"`, 513), "{513}\r\n" + strings.Repeat(`"`, 513)},
	} {
		if got := string(appendString(nil, tc.in)); got != tc.want {
			t.Errorf("appendString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
