package mua

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMSA is a scripted submission server: it offers STARTTLS or not,
// AUTH PLAIN only after TLS, and records what it was told.
type fakeMSA struct {
	l        net.Listener
	cert     tls.Certificate
	startTLS bool

	mu    sync.Mutex
	lines []string // commands received; "[TLS]" marks the handshake
	data  string
}

func newFakeMSA(t *testing.T, startTLS bool) *fakeMSA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "msa.test"},
		DNSNames: []string{"msa.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMSA{l: l, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, startTLS: startTLS}
	t.Cleanup(func() { l.Close() })
	go f.serve()
	return f
}

func (f *fakeMSA) fingerprint() string {
	sum := sha256.Sum256(f.cert.Certificate[0])
	return hex.EncodeToString(sum[:])
}

func (f *fakeMSA) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = append(f.lines, s)
}

func (f *fakeMSA) transcript() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.lines, "\n")
}

func (f *fakeMSA) serve() {
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		go f.session(c)
	}
}

func (f *fakeMSA) session(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r, w := bufio.NewReader(c), c
	say := func(s string) { _, _ = w.Write([]byte(s + "\r\n")) }
	secure := false
	say("220 msa.test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		f.record(line)
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch {
		case verb == "EHLO":
			ext := []string{"250-msa.test", "250-PIPELINING"}
			if f.startTLS && !secure {
				ext = append(ext, "250-STARTTLS")
			}
			if secure {
				ext = append(ext, "250-AUTH LOGIN PLAIN")
			}
			say(strings.Join(append(ext, "250 8BITMIME"), "\r\n"))
		case verb == "STARTTLS":
			say("220 go ahead")
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{f.cert}})
			if tc.Handshake() != nil {
				return
			}
			f.record("[TLS]")
			c, secure = tc, true
			r, w = bufio.NewReader(tc), tc
		case verb == "AUTH":
			say("235 2.7.0 ok")
		case verb == "MAIL":
			say("250 2.1.0 ok")
		case verb == "RCPT" && strings.Contains(line, "bad@"):
			say("550 5.1.1 no such user")
		case verb == "RCPT":
			say("250 2.1.5 ok")
		case verb == "DATA":
			say("354 go")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil || l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			f.mu.Lock()
			f.data = b.String()
			f.mu.Unlock()
			say("250 2.0.0 queued")
		case verb == "QUIT":
			say("221 bye")
			return
		default:
			say("500 what")
		}
	}
}

func (f *fakeMSA) profile(t *testing.T) *Profile {
	t.Helper()
	_, port, _ := net.SplitHostPort(f.l.Addr().String())
	n, _ := strconv.Atoi(port)
	p := &Profile{Name: "t", User: "me@example.test", TLSFingerprint: f.fingerprint(),
		Submission: Server{Host: "127.0.0.1", Port: n, TLS: TLSStart}}
	p.Password = func(context.Context) (string, error) { return "pw", nil }
	if err := p.Check(""); err != nil {
		t.Fatal(err)
	}
	return p
}

func composed(t *testing.T, rcpts ...string) *Composed {
	t.Helper()
	d := Draft{From: addr("me@example.test"), Subject: "s", Text: "hello\n.\n"}
	for _, r := range rcpts {
		d.To = append(d.To, &mail.Address{Address: r})
	}
	c, err := Compose(d)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSubmitStartTLSThenPlain(t *testing.T) {
	t.Parallel()
	f := newFakeMSA(t, true)
	res, err := Submit(context.Background(), f.profile(t), composed(t, "you@example.test", "bad@example.test"))
	if err != nil {
		t.Fatalf("%v\n%s", err, f.transcript())
	}
	if len(res) != 2 || !res[0].OK() || res[1].OK() || res[1].Code != 550 {
		t.Errorf("results %v", res)
	}
	tr := f.transcript()
	tlsAt, authAt := strings.Index(tr, "[TLS]"), strings.Index(tr, "AUTH PLAIN ")
	if tlsAt < 0 || authAt < tlsAt {
		t.Errorf("AUTH before TLS:\n%s", tr)
	}
	want := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00me@example.test\x00pw"))
	if !strings.Contains(tr, want) {
		t.Errorf("no %q in\n%s", want, tr)
	}
	f.mu.Lock()
	data := f.data
	f.mu.Unlock()
	if !strings.Contains(data, "\r\nhello\r\n..\r\n") {
		t.Errorf("body not dot-stuffed:\n%q", data)
	}
}

func TestSubmitRefusesWithoutStartTLS(t *testing.T) {
	t.Parallel()
	f := newFakeMSA(t, false)
	_, err := Submit(context.Background(), f.profile(t), composed(t, "you@example.test"))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(f.transcript(), "AUTH") || strings.Contains(f.transcript(), "MAIL") {
		t.Errorf("went on without TLS:\n%s", f.transcript())
	}
}

func TestSubmitChecksTheCertificate(t *testing.T) {
	t.Parallel()
	f := newFakeMSA(t, true)
	p := f.profile(t)
	p.TLSFingerprint = strings.Repeat("0", 64)
	if _, err := Submit(context.Background(), p, composed(t, "you@example.test")); err == nil {
		t.Error("a certificate that is not the pinned one was accepted")
	}
	p.TLSFingerprint = "" // system roots: the self-signed certificate fails
	if _, err := Submit(context.Background(), p, composed(t, "you@example.test")); err == nil {
		t.Error("a self-signed certificate was accepted without a pin or CA file")
	}
	if strings.Contains(f.transcript(), "AUTH") {
		t.Errorf("sent AUTH to an unverified server:\n%s", f.transcript())
	}
}
