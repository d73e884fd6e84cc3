package fetch

import (
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
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// memDeliverer is a Deliverer and Resumer that keeps messages in memory,
// with injectable failures.
type memDeliverer struct {
	mu   sync.Mutex
	msgs []stored
	// before, if set, runs first; a non-nil error fails the delivery
	// before anything is stored.
	before func(msg []byte) error
	// after, if set, runs once the message is stored; a non-nil error is
	// returned (a crash after the store, before the caller heard).
	after   func(msg []byte) error
	resumed int
}

type stored struct {
	account, from string
	msg           []byte
	at            time.Time
}

func (d *memDeliverer) Deliver(ctx context.Context, account, from string, msg []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.before != nil {
		if err := d.before(msg); err != nil {
			return err
		}
	}
	d.msgs = append(d.msgs, stored{account, from, bytes.Clone(msg), time.Now()})
	if d.after != nil {
		return d.after(msg)
	}
	return nil
}

func (d *memDeliverer) Resume(ctx context.Context, account, from string, msg []byte, id string, since time.Time) error {
	d.mu.Lock()
	d.resumed++
	for _, s := range d.msgs {
		if !s.at.Before(since) && IDOf(s.msg) == id {
			d.mu.Unlock()
			return nil
		}
	}
	d.mu.Unlock()
	return d.Deliver(ctx, account, from, msg)
}

// subjects returns the Subject of every stored message, in order.
func (d *memDeliverer) subjects() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, s := range d.msgs {
		out = append(out, header(s.msg).Get("Subject"))
	}
	return out
}

func (d *memDeliverer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.msgs)
}

// testMessage returns a small message with a unique Message-ID.
func testMessage(subject string) []byte {
	return fmt.Appendf(nil, "Return-Path: <sender@remote.test>\r\nFrom: sender@remote.test\r\nTo: me@remote.test\r\n"+
		"Subject: %s\r\nMessage-ID: <%s@remote.test>\r\nDate: Sat, 29 Nov 2025 10:00:00 +0000\r\n\r\nbody of %s\r\n.\r\n..dot\r\n",
		subject, strings.ReplaceAll(subject, " ", "-"), subject)
}

// imapPeer is an in-memory IMAP server (go-imap's imapmemserver) on
// 127.0.0.1, with IDLE and UIDPLUS.
type imapPeer struct {
	addr string
	user *imapmemserver.User
}

func newIMAPPeer(t *testing.T, tlsConf *tls.Config, folders ...string) *imapPeer {
	t.Helper()
	return newWrappedIMAPPeer(t, tlsConf, nil, folders...)
}

// newWrappedIMAPPeer is newIMAPPeer whose sessions wrap may replace (a
// server that misbehaves in one command).
func newWrappedIMAPPeer(t *testing.T, tlsConf *tls.Config, wrap func(imapserver.Session) imapserver.Session, folders ...string) *imapPeer {
	t.Helper()
	if wrap == nil {
		wrap = func(s imapserver.Session) imapserver.Session { return s }
	}
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("me", "secret")
	mem.AddUser(user)
	for _, f := range append([]string{"INBOX"}, folders...) {
		if err := user.Create(f, nil); err != nil {
			t.Fatal(err)
		}
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return wrap(mem.NewSession()), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
		Logger:       quiet{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &imapPeer{addr: ln.Addr().String(), user: user}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

func (p *imapPeer) add(t *testing.T, folder string, msgs ...[]byte) {
	t.Helper()
	for _, m := range msgs {
		if _, err := p.user.Append(folder, bytes.NewReader(m), &imap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// source returns an IMAP source for the peer, plain text.
func (p *imapPeer) source() Source {
	host, port, _ := net.SplitHostPort(p.addr)
	var n int
	fmt.Sscan(port, &n)
	return Source{Name: "test", Account: "me@example.test", Protocol: IMAP, Host: host, Port: n, TLS: TLSNone,
		Insecure: true, User: "me", Password: staticPassword("secret"), Timeout: 5 * time.Second}
}

func staticPassword(pw string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return pw, nil }
}

// newFetcher makes a fetcher with its state in dir.
func newFetcher(t *testing.T, src Source, d Deliverer, dir string) *Fetcher {
	t.Helper()
	f, err := New(Options{Source: src, Deliverer: d, StateDir: dir, Hostname: "mx.example.test", MaxSize: 1 << 20,
		Logger: slog.New(slog.DiscardHandler), MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// once runs one pass with a time limit.
func once(t *testing.T, f *Fetcher) (Stats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return f.Once(ctx)
}

// selfSigned returns a server TLS config and its certificate's DER.
func selfSigned(t *testing.T) (*tls.Config, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "peer.test"},
		DNSNames: []string{"peer.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, der
}

// pop3Peer is a scripted POP3 server over an in-memory maildrop: DELE
// takes effect at QUIT only (RFC 1939 §6).
type pop3Peer struct {
	mu     sync.Mutex
	msgs   []pop3Msg
	noUIDL bool
	empty  atomic.Bool // RETR sends no content (a server's glitch)
	addr   string
}

type pop3Msg struct {
	uidl string
	body []byte // CRLF
}

func newPOP3Peer(t *testing.T) *pop3Peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pop3Peer{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *pop3Peer) add(uidl string, body []byte) {
	p.mu.Lock()
	p.msgs = append(p.msgs, pop3Msg{uidl, body})
	p.mu.Unlock()
}

func (p *pop3Peer) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.msgs)
}

func (p *pop3Peer) source() Source {
	s := (&imapPeer{addr: p.addr}).source()
	s.Protocol = POP3
	return s
}

func (p *pop3Peer) serve(c net.Conn) {
	defer c.Close()
	p.mu.Lock()
	msgs := append([]pop3Msg(nil), p.msgs...)
	p.mu.Unlock()
	dele := map[int]bool{}
	w := func(s string) { io.WriteString(c, s+"\r\n") }
	w("+OK ready")
	buf := make([]byte, 0, 512)
	one := make([]byte, 1)
	for {
		buf = buf[:0]
		for {
			if _, err := c.Read(one); err != nil {
				return
			}
			if one[0] == '\n' {
				break
			}
			buf = append(buf, one[0])
		}
		f := strings.Fields(strings.TrimSuffix(string(buf), "\r"))
		if len(f) == 0 {
			w("-ERR empty")
			continue
		}
		var n int
		if len(f) > 1 {
			fmt.Sscan(f[1], &n)
		}
		switch strings.ToUpper(f[0]) {
		case "CAPA":
			w("+OK\r\nUSER\r\nUIDL\r\n.")
		case "USER":
			w("+OK")
		case "PASS":
			if len(f) == 2 && f[1] == "secret" {
				w("+OK")
			} else {
				w("-ERR [AUTH] no")
			}
		case "UIDL":
			if p.noUIDL {
				w("-ERR no UIDL here")
				continue
			}
			var b strings.Builder
			b.WriteString("+OK\r\n")
			for i, m := range msgs {
				fmt.Fprintf(&b, "%d %s\r\n", i+1, m.uidl)
			}
			w(b.String() + ".")
		case "LIST":
			var b strings.Builder
			b.WriteString("+OK\r\n")
			for i, m := range msgs {
				fmt.Fprintf(&b, "%d %d\r\n", i+1, len(m.body))
			}
			w(b.String() + ".")
		case "RETR":
			if n < 1 || n > len(msgs) {
				w("-ERR no such message")
				continue
			}
			var b bytes.Buffer
			b.WriteString("+OK\r\n")
			body := string(msgs[n-1].body)
			if p.empty.Load() {
				body = ""
			}
			for _, line := range strings.SplitAfter(body, "\r\n") {
				if strings.HasPrefix(line, ".") {
					b.WriteString(".")
				}
				b.WriteString(line)
			}
			b.WriteString(".\r\n")
			c.Write(b.Bytes())
		case "DELE":
			dele[n] = true
			w("+OK")
		case "QUIT":
			p.mu.Lock()
			var keep []pop3Msg
			for _, m := range p.msgs {
				gone := false
				for i, sm := range msgs {
					gone = gone || dele[i+1] && sm.uidl == m.uidl
				}
				if !gone {
					keep = append(keep, m)
				}
			}
			p.msgs = keep
			p.mu.Unlock()
			w("+OK bye")
			return
		default:
			w("-ERR unknown")
		}
	}
}

var errCrash = errors.New("simulated crash")

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// scriptConn is a net.Conn that reads a fixed server script and discards
// what the client writes.
func scriptConn(server string) net.Conn {
	return &fakeConn{r: strings.NewReader(server)}
}

type fakeConn struct {
	net.Conn // nil: unused methods panic
	r        io.Reader
}

func (c *fakeConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *fakeConn) Close() error                { return nil }
