package smtp

import (
	"bytes"

	"net"
	"testing"
	"time"
)

// memConn is a net.Conn whose input is fixed and whose output is kept.
type memConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (m *memConn) Read(p []byte) (int, error)  { return m.in.Read(p) }
func (m *memConn) Write(p []byte) (int, error) { return m.out.Write(p) }
func (m *memConn) Close() error                { return nil }
func (m *memConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }
func (m *memConn) RemoteAddr() net.Addr        { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4000} }
func (m *memConn) SetDeadline(time.Time) error { return nil }
func (m *memConn) SetReadDeadline(time.Time) error {
	return nil
}
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzSession feeds arbitrary client input to a whole session. It must end
// (input runs out), never panic, and every reply line must be well formed.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"EHLO a\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n",
		"EHLO a\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nBDAT 5 LAST\r\nab\r\n\r\nQUIT\r\n",
		"HELO x\r\nMAIL FROM:<> SIZE=10 BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<Postmaster>\r\nRSET\r\nQUIT\r\n",
		"EHLO a\r\nMAIL FROM:<@r.test:a@b.test>\r\nRCPT TO:<\"x y\"@d.test>\r\nBDAT 3\r\na\nbBDAT 0 LAST\r\n",
		"EHLO a\nSTARTTLS\r\nGET / HTTP/1.0\r\n",
		"EHLO a\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nBDAT 99999999999999999999\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := New(Options{Hostname: "mx.test", Backend: &fakeBackend{}, MaxMessageBytes: 4096, MaxErrors: 1000})
		if err != nil {
			t.Fatal(err)
		}
		mc := &memConn{in: bytes.NewReader(in)}
		s.accept(mc)
		s.wg.Wait()
		if s.Panics() != 0 {
			t.Fatalf("panic on %q", in)
		}
		checkReplies(t, mc.out.Bytes())
	})
}

// checkReplies asserts every output line is "ddd[ -]text\r\n".
func checkReplies(t *testing.T, out []byte) {
	for len(out) > 0 {
		i := bytes.Index(out, []byte("\r\n"))
		if i < 0 {
			t.Fatalf("reply without CRLF: %q", out)
		}
		line := out[:i]
		if len(line) < 4 || line[0] < '2' || line[0] > '5' || (line[3] != ' ' && line[3] != '-') ||
			bytes.ContainsAny(line, "\r\n\x00") {
			t.Fatalf("malformed reply line %q", line)
		}
		out = out[i+2:]
	}
}
