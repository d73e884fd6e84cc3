package daemon

import (
	"io"
	"net"
	"testing"
	"time"
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
