package pop3

import (
	"bytes"
	"net"
	"regexp"
	"testing"
	"time"
)

// memConn is a net.Conn whose input is fixed and whose output is kept.
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

// fuzzMessages are hard to send right: lone dots, bare LF and CR, no final
// line end, content that looks like responses, an empty message.
var fuzzMessages = []string{
	"Subject: a\r\n\r\n.\r\n..\r\n.x\r\nend\r\n",
	"H: v\n\nbare\nlf\n.",
	"+OK fake\r\n-ERR fake\r\n\r\n.\r\n",
	"",
	"no header\rbare CR\r",
}

// FuzzSession feeds arbitrary client input to a whole session, once over
// plaintext with STLS offered and once as if TLS were on (so USER, PASS
// and AUTH work; the backend takes any password). The session must end
// when the input does, never panic, close any maildrop once, commit only
// on QUIT, and write only well-formed responses.
func FuzzSession(f *testing.F) {
	f.Add([]byte("USER a\r\nPASS b\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 0\r\nDELE 1\r\nQUIT\r\n"))
	f.Add([]byte("AUTH PLAIN\r\nAGEAYg==\r\nRETR 3\r\nRETR 5\r\nQUIT\r\n"))
	f.Add([]byte("CAPA\r\nSTLS\r\nCAPA\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, secure := range []bool{false, true} {
			out := fuzzRun(t, in, secure)
			checkResponses(t, out)
		}
	})
}

func fuzzRun(t *testing.T, in []byte, secure bool) []byte {
	b := newBackend(fuzzMessages...)
	b.anyPassword = true
	opts := Options{Hostname: "pop.test", Backend: b, MaxErrors: 1000}
	if !secure {
		opts.TLS = testTLS()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mc := &memConn{in: bytes.NewReader(in)}
	c := newConn(s, mc)
	c.secure = secure
	c.serve()
	if s.Panics() != 0 {
		t.Fatalf("panic on %q", in)
	}
	commits, opens, closes, readers := b.state()
	if opens != closes || readers != 0 {
		t.Fatalf("%d maildrops opened, %d closed, %d readers open", opens, closes, readers)
	}
	if len(commits) > 0 && !bytes.Contains(bytes.ToUpper(in), []byte("QUIT")) {
		t.Fatalf("commit without QUIT: %q", in)
	}
	return mc.out.Bytes()
}

// multiTitle matches the first line of our multi-line responses.
var multiTitle = regexp.MustCompile(`^\+OK (\d+ octets|.* follows)$`)

// checkResponses asserts the output is a sequence of responses: single
// lines starting "+OK", "-ERR" or "+ " of at most 512 octets (RFC 2449
// §4), and multi-line responses whose data lines are dot-stuffed and end
// with a ".". After STLS's "+OK" the rest is TLS and is not checked.
func checkResponses(t *testing.T, out []byte) {
	t.Helper()
	if len(out) == 0 {
		t.Fatal("no greeting")
	}
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		t.Fatalf("output does not end with CRLF: %q", out)
	}
	multi := false
	for _, l := range bytes.Split(out[:len(out)-2], []byte("\r\n")) {
		if bytes.ContainsAny(l, "\n") || !multi && bytes.ContainsAny(l, "\r") {
			t.Fatalf("bare line end in %q", l)
		}
		switch {
		case multi && string(l) == ".":
			multi = false
		case multi && len(l) > 0 && l[0] == '.' && (len(l) < 2 || l[1] != '.'):
			t.Fatalf("data line %q not dot-stuffed", l)
		case multi:
		case len(l)+2 > 512:
			t.Fatalf("response of %d octets", len(l)+2)
		case string(l) == "+OK Begin TLS negotiation":
			return
		case multiTitle.Match(l):
			multi = true
		case string(l) == "+OK", bytes.HasPrefix(l, []byte("+OK ")), bytes.HasPrefix(l, []byte("-ERR ")), bytes.HasPrefix(l, []byte("+ ")):
		default:
			t.Fatalf("malformed response line %q", l)
		}
	}
	if multi {
		t.Fatalf("unterminated multi-line response in %q", out)
	}
}
