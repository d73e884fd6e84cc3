package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"posthorn/internal/sasl"
)

const (
	testUser = "me@example.test"
	testPass = "secret pass" // with a space: PASS takes the rest of the line
)

// testMessages are the maildrop of most tests: dot-stuffing, a last line
// without CRLF, bare LF line ends.
var testMessages = []string{
	"Subject: one\r\nFrom: a@example.test\r\n\r\nline 1\r\n.dotted\r\nline 3\r\n",
	"Subject: two\r\n\r\nbody a\r\n.\r\n..two dots\r\nlast line without CRLF",
	"Subject: three\nX-Bare: lf\n\nbody\n",
}

type fakeMsg struct{ uid, body string }

// fakeBackend is one account with an in-memory maildrop. Failures are
// injected through its fields, which are set before the server starts.
type fakeBackend struct {
	anyPassword bool   // accept every user and password
	blocked     bool   // Login and SASL report ErrBlocked
	panicOn     string // "login", "retr" or "close"
	commitErr   error
	openErr     error // returned by Maildrop.Open

	mu      sync.Mutex
	msgs    []fakeMsg
	locked  bool
	commits [][]int
	opens   int
	closes  int
	readers int // message readers not yet closed
}

func newBackend(msgs ...string) *fakeBackend {
	b := &fakeBackend{}
	for i, m := range msgs {
		b.msgs = append(b.msgs, fakeMsg{uid: fmt.Sprintf("m%d", i+1), body: m})
	}
	return b
}

func (b *fakeBackend) Login(ctx context.Context, ip netip.Addr, user, password string) (string, error) {
	switch {
	case b.panicOn == "login":
		panic("test panic in Login")
	case b.blocked:
		return "", fmt.Errorf("guard: %w", ErrBlocked)
	case user == "broken":
		return "", errors.New("user database unavailable")
	case b.anyPassword || user == testUser && password == testPass:
		return testUser, nil
	}
	return "", ErrAuth
}

func (b *fakeBackend) SASL(ctx context.Context, mech string, ip netip.Addr) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, fmt.Errorf("unexpected mechanism %q", mech)
	}
	return sasl.NewPlain(func(authz, user, pw string) (string, error) {
		if authz != "" && authz != user {
			return "", sasl.ErrAuthFailed
		}
		return b.Login(ctx, ip, user, pw)
	}), nil
}

func (b *fakeBackend) Open(ctx context.Context, identity string) (Maildrop, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.locked {
		return nil, ErrLocked
	}
	b.locked = true
	b.opens++
	return &fakeDrop{b: b, msgs: slices.Clone(b.msgs)}, nil
}

func (b *fakeBackend) state() (commits [][]int, opens, closes, readers int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.commits), b.opens, b.closes, b.readers
}

// waitClosed waits until n maildrops have been closed, and checks that
// each was closed once and no message reader was left open.
func (b *fakeBackend) waitClosed(t *testing.T, n int) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(5 * time.Millisecond) {
		if _, opens, closes, readers := b.state(); closes >= n {
			if closes != opens || closes != n || readers != 0 {
				t.Fatalf("opens %d, closes %d (want %d), open readers %d", opens, closes, n, readers)
			}
			return
		}
	}
	t.Fatalf("maildrop not closed")
}

// wantCommits checks the indexes every Commit received.
func (b *fakeBackend) wantCommits(t *testing.T, want ...[]int) {
	t.Helper()
	got, _, _, _ := b.state()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("commits %v, want %v", got, want)
	}
}

type fakeDrop struct {
	b    *fakeBackend
	msgs []fakeMsg
}

func (d *fakeDrop) Messages() []Message {
	var out []Message
	for _, m := range d.msgs {
		out = append(out, Message{UID: m.uid, Size: int64(len(m.body))})
	}
	return out
}

func (d *fakeDrop) Open(ctx context.Context, i int) (io.ReadCloser, error) {
	if d.b.panicOn == "retr" {
		panic("test panic in Maildrop.Open")
	}
	if d.b.openErr != nil {
		return nil, d.b.openErr
	}
	d.b.mu.Lock()
	d.b.readers++
	d.b.mu.Unlock()
	return &fakeReader{Reader: strings.NewReader(d.msgs[i].body), b: d.b}, nil
}

func (d *fakeDrop) Commit(ctx context.Context, deleted []int) error {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	d.b.commits = append(d.b.commits, slices.Clone(deleted))
	if d.b.commitErr != nil {
		return d.b.commitErr
	}
	for _, i := range deleted {
		d.b.msgs = slices.DeleteFunc(d.b.msgs, func(m fakeMsg) bool { return m.uid == d.msgs[i].uid })
	}
	return nil
}

func (d *fakeDrop) Close() {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	d.b.locked = false
	d.b.closes++
	if d.b.panicOn == "close" {
		panic("test panic in Maildrop.Close")
	}
}

type fakeReader struct {
	*strings.Reader
	b *fakeBackend
}

func (r *fakeReader) Close() error {
	r.b.mu.Lock()
	r.b.readers--
	r.b.mu.Unlock()
	return nil
}

// testServer runs a Server with STLS on 127.0.0.1 and returns it and its
// address. Cleanup shuts it down and fails the test on a panic, unless the
// test is about panics.
func testServer(t *testing.T, b Backend, mod func(*Options)) (*Server, string) {
	t.Helper()
	opts := Options{Hostname: "pop.test", Backend: b, TLS: testTLS()}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if n := s.Panics(); n != 0 && !strings.Contains(t.Name(), "Panic") {
			t.Errorf("%d session panics", n)
		}
	})
	return s, l.Addr().String()
}

var (
	tlsOnce sync.Once
	tlsCert tls.Certificate
)

// testTLS returns a server config with a self-signed certificate made once.
func testTLS() *tls.Config {
	tlsOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pop.test"},
			DNSNames: []string{"pop.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		tlsCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12}
}

func clientTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "pop.test"} //nolint:gosec // self-signed test certificate
}

// client is a raw POP3 client for transcript tests.
type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// dial connects and reads the greeting.
func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{t: t, nc: nc, br: bufio.NewReader(nc)}
	c.expect("+OK pop.test POP3 ready")
	return c
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// line reads one line, which must end with CRLF, and returns it without.
func (c *client) line() string {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read (got %q): %v", l, err)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line %q does not end with CRLF", l)
	}
	return l[:len(l)-2]
}

// expect reads a line and checks it: exactly, or by prefix when want
// ends with "...".
func (c *client) expect(want string) string {
	c.t.Helper()
	got := c.line()
	if prefix, ok := strings.CutSuffix(want, "..."); ok && strings.HasPrefix(got, prefix) || got == want {
		return got
	}
	c.t.Fatalf("got %q, want %q", got, want)
	return ""
}

// cmd sends one command line and checks the first line of the answer.
func (c *client) cmd(line, want string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(want)
}

// run plays a transcript: "C: line" is sent, "S: line" is expected (see
// expect). Indentation and blank lines are ignored.
func (c *client) run(transcript string) {
	c.t.Helper()
	for _, l := range strings.Split(transcript, "\n") {
		l = strings.TrimLeft(l, "\t ")
		switch {
		case l == "":
		case strings.HasPrefix(l, "C:"):
			c.send(strings.TrimPrefix(strings.TrimPrefix(l, "C:"), " ") + "\r\n")
		case strings.HasPrefix(l, "S:"):
			c.expect(strings.TrimPrefix(strings.TrimPrefix(l, "S:"), " "))
		default:
			c.t.Fatalf("bad transcript line %q", l)
		}
	}
}

// starttls sends STLS and runs the handshake.
func (c *client) starttls() {
	c.t.Helper()
	c.cmd("STLS", "+OK Begin TLS negotiation")
	c.handshake()
}

func (c *client) handshake() {
	c.t.Helper()
	tc := tls.Client(c.nc, clientTLS())
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	c.nc, c.br = tc, bufio.NewReader(tc)
}

// login runs STLS, USER and PASS.
func (c *client) login() {
	c.t.Helper()
	c.starttls()
	c.cmd("USER "+testUser, "+OK send PASS")
	c.cmd("PASS "+testPass, "+OK logged in, ...")
}

// multi reads the lines of a multi-line answer up to the ".".
func (c *client) multi() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

// closed checks that the server closes the connection with nothing more
// to read.
func (c *client) closed() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(c.br)
	var ne net.Error
	if len(rest) > 0 || errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection not closed: read %q, %v", rest, err)
	}
}

// silent checks that nothing arrives for d.
func (c *client) silent(d time.Duration) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	l, err := c.br.ReadString('\n')
	var ne net.Error
	if l != "" || !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("expected silence, got %q (%v)", l, err)
	}
}

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newReader(nc net.Conn) *bufio.Reader { return bufio.NewReader(nc) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func itoa(n int) string { return strconv.Itoa(n) }
