package imap_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"posthorn/internal/certs"
	"posthorn/internal/daemon"
	"posthorn/internal/imap"
	"posthorn/internal/store"
	"posthorn/internal/store/local"
	"posthorn/internal/users"
)

// env is an IMAP server over a real local store with one user.
type env struct {
	srv  *imap.Server
	addr string
	st   *local.Store
}

const password = "s3cret-pass"

func newEnv(t *testing.T, mod func(*imap.Options)) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := local.Open(local.Options{Dir: dir, Hostname: "mx.test"})
	if err != nil {
		t.Fatal(err)
	}
	us, err := users.New(users.Options{Directory: st, Guard: users.NewGuard(users.GuardOptions{MaxDelay: time.Millisecond})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := us.AddDomain(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := us.AddAccount(ctx, "me", "example.test", password); err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteSelfSigned(dir+"/c.pem", dir+"/k.pem", "mx.test"); err != nil {
		t.Fatal(err)
	}
	cs, err := certs.Load(dir+"/c.pem", dir+"/k.pem")
	if err != nil {
		t.Fatal(err)
	}
	opts := imap.Options{Hostname: "mx.test", Backend: daemon.IMAPBackend(us, st), TLS: cs.TLSConfig(), SyncInterval: 200 * time.Millisecond}
	if mod != nil {
		mod(&opts)
	}
	srv, err := imap.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		st.Close()
		if srv.Panics() != 0 {
			t.Errorf("%d session panics", srv.Panics())
		}
	})
	return &env{srv: srv, addr: l.Addr().String(), st: st}
}

// deliver puts a message in INBOX as the MTA would.
func (e *env) deliver(t *testing.T, msg string) {
	t.Helper()
	errs := e.st.Deliver(context.Background(), []store.Delivery{{Account: "me@example.test", Body: strings.NewReader(msg), BodySize: int64(len(msg))}})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
}

// client speaks raw IMAP.
type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (e *env) dial(t *testing.T) *client {
	t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{t: t, nc: nc, br: bufio.NewReader(nc)}
	c.line("* OK")
	return c
}

// login upgrades to TLS and logs in.
func (e *env) login(t *testing.T) *client {
	c := e.dial(t)
	c.do("s STARTTLS", "s OK")
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.nc, c.br = tc, bufio.NewReader(tc)
	c.do("l LOGIN me@example.test "+password, "l OK")
	return c
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) readLine() string {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// line reads one line and checks its prefix.
func (c *client) line(prefix string) string {
	c.t.Helper()
	l := c.readLine()
	if !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("got %q, want prefix %q", l, prefix)
	}
	return l
}

// do sends a command and returns every line up to the tagged one, which
// must start with want. Literals are read whole.
func (c *client) do(cmd, want string) []string {
	c.t.Helper()
	c.send(cmd + "\r\n")
	tag, _, _ := strings.Cut(cmd, " ")
	var out []string
	for {
		l := c.readLine()
		for strings.HasSuffix(l, "}") && strings.Contains(l, "{") {
			n := 0
			_, _ = fmt.Sscan(l[strings.LastIndex(l, "{")+1:len(l)-1], &n)
			buf := make([]byte, n)
			if _, err := io.ReadFull(c.br, buf); err != nil {
				c.t.Fatal(err)
			}
			l += "\n" + string(buf) + c.readLine()
		}
		out = append(out, l)
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, want) {
				c.t.Fatalf("%s: got %q, want %q (all: %q)", cmd, l, want, out)
			}
			return out
		}
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func fmtInt(n int) string { return fmt.Sprint(n) }

func newReader(nc net.Conn) *bufio.Reader { return bufio.NewReader(nc) }
