package managesieve

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
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
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
	testPass = "secret pass"
)

// fakeBackend is one account with an in-memory script store. Failures are
// injected through its fields, which are set before the server starts.
type fakeBackend struct {
	mechs       []string
	anyPassword bool             // PLAIN takes every user and password
	blocked     bool             // SASL exchanges report ErrBlocked
	transition  bool             // SCRAM reports ErrTransition
	panicOn     string           // "sasl", "put" or "close"
	openErr     error            // Scripts fails
	fail        map[string]error // method name → error it returns
	maxScripts  int              // 0: no limit
	quota       int              // total octets; 0: no limit

	mu      sync.Mutex
	scripts map[string]string
	active  string
	opens   int
	closes  int
}

func newBackend() *fakeBackend {
	return &fakeBackend{mechs: []string{sasl.Plain, sasl.ScramSHA256}, scripts: map[string]string{}, fail: map[string]error{}}
}

func (b *fakeBackend) Mechanisms() []string { return b.mechs }

var (
	scramOnce  sync.Once
	scramCreds sasl.SCRAMCredentials
)

func (b *fakeBackend) SASL(ctx context.Context, mech string, ip netip.Addr) (sasl.Server, error) {
	if b.panicOn == "sasl" {
		panic("test panic in SASL")
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlain(func(authz, user, pw string) (string, error) {
			switch {
			case b.blocked:
				return "", fmt.Errorf("guard: %w", ErrBlocked)
			case user == "broken":
				return "", errors.New("user database unavailable")
			case b.anyPassword:
				return testUser, nil
			case authz != "" && authz != user, user != testUser, pw != testPass:
				return "", ErrAuth
			}
			return testUser, nil
		}), nil
	case sasl.ScramSHA256:
		scramOnce.Do(func() {
			var err error
			if scramCreds, err = sasl.NewSCRAMCredentials(testPass); err != nil {
				panic(err)
			}
		})
		return sasl.NewSCRAMSHA256(func(authz, user string) (sasl.SCRAMCredentials, string, error) {
			switch {
			case b.transition:
				return sasl.SCRAMCredentials{}, "", ErrTransition
			case user != testUser:
				return sasl.SCRAMCredentials{}, "", sasl.ErrAuthFailed
			}
			return scramCreds, testUser, nil
		}, nil), nil
	}
	return nil, fmt.Errorf("unexpected mechanism %q", mech)
}

func (b *fakeBackend) Scripts(ctx context.Context, identity string) (Scripts, error) {
	if identity != testUser {
		return nil, fmt.Errorf("unexpected identity %q", identity)
	}
	if b.openErr != nil {
		return nil, b.openErr
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opens++
	return &fakeScripts{b: b}, nil
}

func (b *fakeBackend) state() (scripts map[string]string, active string, opens, closes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.scripts), b.active, b.opens, b.closes
}

// waitClosed waits until n stores have been closed, each once.
func (b *fakeBackend) waitClosed(t *testing.T, n int) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(5 * time.Millisecond) {
		if _, _, opens, closes := b.state(); closes >= n {
			if closes != opens || closes != n {
				t.Fatalf("opens %d, closes %d, want %d", opens, closes, n)
			}
			return
		}
	}
	t.Fatal("scripts not closed")
}

// fakeScripts compiles with a toy rule: a line starting with "bogus" is
// a syntax error on that line.
type fakeScripts struct {
	b      *fakeBackend
	closed bool
}

func (s *fakeScripts) injected(method string) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		panic("Scripts used after Close")
	}
	return s.b.fail[method]
}

func (s *fakeScripts) List(ctx context.Context) ([]Script, error) {
	if err := s.injected("List"); err != nil {
		return nil, err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	var out []Script
	for _, n := range slices.Sorted(maps.Keys(s.b.scripts)) {
		out = append(out, Script{Name: n, Active: n == s.b.active})
	}
	return out, nil
}

func (s *fakeScripts) Get(ctx context.Context, name string) (string, error) {
	if err := s.injected("Get"); err != nil {
		return "", err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	content, ok := s.b.scripts[name]
	if !ok {
		return "", ErrNoScript
	}
	return content, nil
}

func (s *fakeScripts) Check(ctx context.Context, content string) error {
	if err := s.injected("Check"); err != nil {
		return err
	}
	for i, l := range strings.Split(content, "\n") {
		if strings.HasPrefix(l, "bogus") {
			return &CheckError{Line: i + 1, Msg: `unknown command "bogus"`}
		}
	}
	return nil
}

func (s *fakeScripts) Put(ctx context.Context, name, content string) error {
	if s.b.panicOn == "put" {
		panic("test panic in Put")
	}
	if err := s.injected("Put"); err != nil {
		return err
	}
	if err := s.Check(ctx, content); err != nil {
		return err
	}
	if err := s.HaveSpace(ctx, name, int64(len(content))); err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.scripts[name] = content
	return nil
}

func (s *fakeScripts) HaveSpace(ctx context.Context, name string, size int64) error {
	if err := s.injected("HaveSpace"); err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	_, exists := s.b.scripts[name]
	if s.b.maxScripts > 0 && !exists && len(s.b.scripts) >= s.b.maxScripts {
		return ErrTooManyScripts
	}
	total := size
	for n, c := range s.b.scripts {
		if n != name {
			total += int64(len(c))
		}
	}
	if s.b.quota > 0 && total > int64(s.b.quota) {
		return ErrQuota
	}
	return nil
}

func (s *fakeScripts) SetActive(ctx context.Context, name string) error {
	if err := s.injected("SetActive"); err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if _, ok := s.b.scripts[name]; !ok && name != "" {
		return ErrNoScript
	}
	s.b.active = name
	return nil
}

func (s *fakeScripts) Delete(ctx context.Context, name string) error {
	if err := s.injected("Delete"); err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	switch _, ok := s.b.scripts[name]; {
	case !ok:
		return ErrNoScript
	case name == s.b.active:
		return ErrActive
	}
	delete(s.b.scripts, name)
	return nil
}

func (s *fakeScripts) Rename(ctx context.Context, oldName, newName string) error {
	if err := s.injected("Rename"); err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	content, ok := s.b.scripts[oldName]
	if !ok {
		return ErrNoScript
	}
	if _, ok := s.b.scripts[newName]; ok {
		return ErrExists
	}
	delete(s.b.scripts, oldName)
	s.b.scripts[newName] = content
	if s.b.active == oldName {
		s.b.active = newName
	}
	return nil
}

func (s *fakeScripts) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		panic("Scripts closed twice")
	}
	s.closed = true
	s.b.closes++
	if s.b.panicOn == "close" {
		panic("test panic in Close")
	}
}

// testServer runs a Server on 127.0.0.1 and returns it and its address.
// Cleanup shuts it down and fails the test on a panic, unless the test is
// about panics.
func testServer(t *testing.T, b Backend, mod func(*Options)) (*Server, string) {
	t.Helper()
	opts := Options{Hostname: "sieve.test", Backend: b, TLS: testTLS()}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l := newListener(t)
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

func newListener(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
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
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sieve.test"},
			DNSNames: []string{"sieve.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		tlsCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12}
}

func clientTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "sieve.test"} //nolint:gosec // self-signed test certificate
}

// greeting is the capability response before TLS, OK line included.
var greeting = []string{
	`"IMPLEMENTATION" "Posthorn"`,
	`"SASL" ""`,
	`"STARTTLS"`,
	`"SIEVE" "fileinto reject ereject envelope imap4flags copy subaddress body vacation variables relational mailbox"`,
	`"UNAUTHENTICATE"`,
	`"VERSION" "1.0"`,
	`OK "sieve.test ManageSieve ready"`,
}

// client is a raw ManageSieve client for transcript tests.
type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// dial connects and reads the greeting.
func dial(t *testing.T, addr string) *client {
	t.Helper()
	c := rawDial(t, addr)
	for _, want := range greeting {
		c.expect(want)
	}
	return c
}

// rawDial connects without reading a greeting.
func rawDial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
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

// run plays a transcript: "C: line" is sent with CRLF, "S: line" is
// expected (see expect). Indentation and blank lines are ignored.
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

// response reads lines up to and including the final OK, NO or BYE,
// reading literals whole, and returns them; a literal's content is
// returned as one element after its "{N}" line.
func (c *client) response() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		first := l
		for {
			n, ok := trailingLiteral([]byte(l))
			if !ok {
				break
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(c.br, buf); err != nil {
				c.t.Fatal(err)
			}
			out = append(out, l, string(buf))
			l = c.line()
		}
		out = append(out, l)
		if strings.HasPrefix(first, "OK") || strings.HasPrefix(first, "NO") || strings.HasPrefix(first, "BYE") {
			return out
		}
	}
}

// starttls sends STARTTLS, runs the handshake and reads the new
// capabilities; it returns them with the final OK.
func (c *client) starttls() []string {
	c.t.Helper()
	c.cmd("STARTTLS", `OK "Begin TLS negotiation now"`)
	c.handshake()
	return c.response()
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

// login runs STARTTLS and AUTHENTICATE PLAIN with an initial response.
func (c *client) login() {
	c.t.Helper()
	c.starttls()
	c.cmd(`AUTHENTICATE "PLAIN" "`+plain("", testUser, testPass)+`"`, `OK "Logged in"`)
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

func plain(authz, user, pass string) string {
	return base64.StdEncoding.EncodeToString(sasl.PlainResponse(authz, user, pass))
}

// lit returns s as a non-synchronizing literal.
func lit(s string) string { return "{" + strconv.Itoa(len(s)) + "+}\r\n" + s }

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

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met")
}
