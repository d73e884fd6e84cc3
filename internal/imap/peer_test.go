package imap

import (
	"net"
	"testing"
	"time"
)

// TestPeerClosed: a connection whose peer is there is not taken for
// gone; one whose peer closed is, octets left unread or not (over TLS
// the close_notify alert always is).
func TestPeerClosed(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func() (server, client net.Conn) {
		t.Helper()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		server, err = ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { server.Close(); client.Close() })
		return server, client
	}
	s, c := pair()
	if peerClosed(s) {
		t.Error("an open connection taken for closed")
	}
	c.Write([]byte("x NOOP\r\n"))
	c.Close()
	time.Sleep(50 * time.Millisecond)
	if !peerClosed(s) {
		t.Error("closed with octets unread: not seen")
	}
	buf := make([]byte, 64)
	s.Read(buf)
	if !peerClosed(s) {
		t.Error("closed with nothing unread: not seen")
	}
	s2, c2 := pair()
	c2.Close()
	time.Sleep(50 * time.Millisecond)
	if !peerClosed(s2) {
		t.Error("closed at once: not seen")
	}
}
