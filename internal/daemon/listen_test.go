package daemon

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"posthorn/internal/config"
)

// TestCapListener: past its slots the http listener closes new
// connections at once, and a slot given back serves again.
func TestCapListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &capListener{Listener: inner, slots: make(chan struct{}, 2)}
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	dial()
	first, second := <-accepted, <-accepted
	_ = second
	third := dial()
	_ = third.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := third.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a connection past the cap: read %v, want EOF (closed)", err)
	}
	first.Close()
	first.Close() // gives its slot back once only
	dial()
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("a freed slot did not serve a new connection")
	}
	if n := len(l.slots); n != 2 {
		t.Errorf("%d slots taken, want 2", n)
	}
}

// TestSMTPLimitersApart: port-25 clients using up their limits leave
// submission, LMTP and the local socket theirs; the local socket's
// clients, all one address, are not held to the per-address limit.
func TestSMTPLimitersApart(t *testing.T) {
	ls := smtpLimiters(config.SMTP{MaxConnections: 3, MaxConnectionsPerIP: 2})
	ip := netip.MustParseAddr("192.0.2.1")
	for range 2 {
		if _, err := ls["smtp"].Admit(ip); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ls["smtp"].Admit(ip); err == nil {
		t.Fatal("port 25 past its per-address limit")
	}
	for _, svc := range []string{"submission", "lmtp"} {
		if _, err := ls[svc].Admit(ip); err != nil {
			t.Errorf("%s refused while port 25 is full: %v", svc, err)
		}
	}
	if _, err := ls["submissions"].Admit(ip); err != nil {
		t.Errorf("submissions: %v", err)
	}
	if _, err := ls["submissions"].Admit(ip); err == nil {
		t.Error("submission and submissions do not share their limit")
	}
	for i := range 3 {
		if _, err := ls["local"].Admit(netip.Addr{}); err != nil {
			t.Errorf("local connection %d: %v", i+1, err)
		}
	}
}
