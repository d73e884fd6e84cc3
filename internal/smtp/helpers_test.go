package smtp

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBackend records what a session is given and can be told to fail.
type fakeBackend struct {
	mu      sync.Mutex
	froms   []string
	rcpts   []string
	msgs    []string
	reject  map[string]*Error // RCPT address → reply
	dataErr error
	panicOn string // "mail" or "data"
}

func (b *fakeBackend) NewSession(ctx context.Context, c *ConnInfo) (Session, error) {
	return &fakeSession{b: b, c: c}, nil
}

type fakeSession struct {
	b *fakeBackend
	c *ConnInfo
}

func (s *fakeSession) Mail(ctx context.Context, from Path, o MailOptions) error {
	if s.b.panicOn == "mail" {
		panic("test panic")
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.froms = append(s.b.froms, from.String())
	return nil
}

func (s *fakeSession) Rcpt(ctx context.Context, to Path, o RcptOptions) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if e := s.b.reject[to.Addr.String()]; e != nil {
		return e
	}
	s.b.rcpts = append(s.b.rcpts, to.Addr.String())
	return nil
}

func (s *fakeSession) Data(ctx context.Context, r io.Reader) (string, error) {
	if s.b.panicOn == "data" {
		panic("test panic in data")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.dataErr != nil {
		return "", s.b.dataErr
	}
	s.b.msgs = append(s.b.msgs, string(data))
	return "ID1", nil
}

func (s *fakeSession) Reset() {}
func (s *fakeSession) Close() {}

func (b *fakeBackend) messages() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.msgs...)
}

// testServer runs a Server on 127.0.0.1 and returns its address.
func testServer(t *testing.T, b Backend, mod func(*Options)) (*Server, string) {
	t.Helper()
	opts := Options{Hostname: "mx.test", Backend: b, TLS: testTLS(t), MaxMessageBytes: 1 << 20}
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
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if n := s.Panics(); n != 0 && !t.Failed() && !strings.Contains(t.Name(), "Panic") {
			t.Errorf("%d session panics", n)
		}
	})
	return s, l.Addr().String()
}

var (
	tlsOnce sync.Once
	tlsCert tls.Certificate
)

func testTLS(t *testing.T) *tls.Config {
	tlsOnce.Do(func() {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.test"},
			DNSNames: []string{"mx.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		tlsCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12}
}

// client is a raw SMTP client for transcript tests.
type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{t: t, nc: nc, br: bufio.NewReader(nc)}
	c.expect("220")
	return c
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// reply reads one complete (possibly multi-line) reply.
func (c *client) reply() string {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var all []string
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply (got %q): %v", all, err)
		}
		all = append(all, strings.TrimRight(line, "\r\n"))
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(all, "\n")
		}
	}
}

// expect reads a reply and checks it starts with prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	r := c.reply()
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("reply %q, want prefix %q", r, prefix)
	}
	return r
}

// cmd sends one command line and checks the reply.
func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(prefix)
}

// closed reports whether the server has closed the connection.
func (c *client) closed() bool {
	_ = c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.br.ReadByte()
	return err == io.EOF
}

// startTx sends EHLO, MAIL and one RCPT.
func (c *client) startTx() {
	c.t.Helper()
	c.cmd("EHLO client.test", "250")
	c.cmd("MAIL FROM:<a@client.test>", "250 2.1.0")
	c.cmd("RCPT TO:<me@mx.test>", "250 2.1.5")
}

func newReader(nc net.Conn) *bufio.Reader { return bufio.NewReader(nc) }

// LMTPData makes fakeSession an LMTPSession: recipients whose address
// starts with "fail" get a temporary error.
func (s *fakeSession) LMTPData(ctx context.Context, r io.Reader) (string, []error, error) {
	id, err := s.Data(ctx, r)
	if err != nil {
		return "", nil, err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	var res []error
	for _, rc := range s.b.rcpts {
		if strings.HasPrefix(rc, "fail") {
			res = append(res, &Error{Code: 452, Enhanced: "4.2.2", Msg: "Mailbox full"})
		} else {
			res = append(res, nil)
		}
	}
	return id, res, nil
}
