package pop3_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"posthorn/internal/pop3"
	"posthorn/internal/sasl"
)

type memConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (m *memConn) Read(p []byte) (int, error)       { return m.in.Read(p) }
func (m *memConn) Write(p []byte) (int, error)      { return m.out.Write(p) }
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 110} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

type memDrop struct{ msgs []string }

func (d *memDrop) Messages() []pop3.Message {
	var out []pop3.Message
	for i, m := range d.msgs {
		out = append(out, pop3.Message{UID: string(rune('a' + i)), Size: int64(len(m))})
	}
	return out
}
func (d *memDrop) Open(_ context.Context, i int) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(d.msgs[i])), nil
}
func (d *memDrop) Commit(context.Context, []int) error { return nil }
func (d *memDrop) Close()                              {}

type noBackend struct{}

func (noBackend) Login(context.Context, netip.Addr, string, string) (string, error) {
	return "", pop3.ErrAuth
}
func (noBackend) SASL(context.Context, string, netip.Addr) (sasl.Server, error) {
	return nil, pop3.ErrAuth
}
func (noBackend) Open(context.Context, string) (pop3.Maildrop, error) { return nil, pop3.ErrLocked }

// FuzzSession runs arbitrary commands in TRANSACTION state: no panic, and
// the output is well-formed responses and dot-stuffed data.
func FuzzSession(f *testing.F) {
	for _, s := range []string{"STAT\r\nLIST\r\nUIDL 1\r\nRETR 1\r\nTOP 2 0\r\nDELE 1\r\nRSET\r\nQUIT\r\n", "TOP 1 99999999\r\nLIST 0\r\nRETR -1\r\n", "CAPA\r\nNOOP\r\nUIDL\r\nDELE 2\r\nDELE 2\r\nQUIT\r\n"} {
		f.Add([]byte(s))
	}
	srv, _ := pop3.New(pop3.Options{Hostname: "mx.test", Backend: noBackend{}})
	f.Fuzz(func(t *testing.T, in []byte) {
		drop := &memDrop{msgs: []string{"Subject: a\r\n\r\n.x\r\nbody\r\n", "H: v\r\n\r\nno newline"}}
		mc := &memConn{in: bytes.NewReader(in)}
		pop3.ServeOpen(srv, mc, drop)
		if srv.Panics() != 0 {
			t.Fatalf("panic on %q", in)
		}
		if !bytes.HasPrefix(mc.out.Bytes(), []byte("+OK ")) {
			t.Fatalf("bad greeting %q", mc.out.Bytes())
		}
	})
}
