package pop3_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"posthorn/internal/certs"
	"posthorn/internal/daemon"
	"posthorn/internal/pop3"
	"posthorn/internal/store"
	"posthorn/internal/store/local"
	"posthorn/internal/users"
)

const password = "pop-secret"

type env struct {
	addr string
	st   *local.Store
	srv  *pop3.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := local.Open(local.Options{Dir: dir, Hostname: "mx.test"})
	if err != nil {
		t.Fatal(err)
	}
	us, _ := users.New(users.Options{Directory: st, Guard: users.NewGuard(users.GuardOptions{MaxDelay: time.Millisecond})})
	ctx := context.Background()
	us.AddDomain(ctx, "example.test")
	if _, err := us.AddAccount(ctx, "me", "example.test", password); err != nil {
		t.Fatal(err)
	}
	certs.WriteSelfSigned(dir+"/c.pem", dir+"/k.pem", "mx.test")
	cs, err := certs.Load(dir+"/c.pem", dir+"/k.pem")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pop3.New(pop3.Options{Hostname: "mx.test", Backend: daemon.POP3Backend(us, st), TLS: cs.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		st.Close()
		if srv.Panics() != 0 {
			t.Errorf("%d panics", srv.Panics())
		}
	})
	e := &env{addr: l.Addr().String(), st: st, srv: srv}
	for _, m := range []string{"Subject: one\r\n\r\nfirst body\r\n.dotted line\r\n", "Subject: two\r\n\r\nl1\r\nl2\r\nl3\r\nlast without newline"} {
		if errs := st.Deliver(ctx, []store.Delivery{{Account: "me@example.test", Body: strings.NewReader(m), BodySize: int64(len(m))}}); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	return e
}

type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (e *env) dial(t *testing.T) *client {
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{t: t, nc: nc, br: bufio.NewReader(nc)}
	c.line("+OK")
	return c
}

func (c *client) line(prefix string) string {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	l = strings.TrimRight(l, "\r\n")
	if !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("got %q, want %q", l, prefix)
	}
	return l
}

func (c *client) cmd(s, prefix string) string {
	c.t.Helper()
	c.nc.Write([]byte(s + "\r\n"))
	return c.line(prefix)
}

// multi reads a multi-line response body up to ".".
func (c *client) multi() []string {
	var out []string
	for {
		l := c.line("")
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

func (c *client) starttls() {
	c.cmd("STLS", "+OK")
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.nc, c.br = tc, bufio.NewReader(tc)
}

func TestSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t)
	c.cmd("CAPA", "+OK")
	if caps := strings.Join(c.multi(), " "); !strings.Contains(caps, "STLS") || strings.Contains(caps, "USER") {
		t.Errorf("CAPA before TLS: %s", caps)
	}
	c.cmd("USER me@example.test", "-ERR [AUTH]")
	c.starttls()
	c.cmd("USER me@example.test", "+OK")
	c.cmd("PASS "+password, "+OK")
	c.cmd("STAT", "+OK 2 ")
	c.cmd("LIST", "+OK")
	if l := c.multi(); len(l) != 2 {
		t.Errorf("LIST %q", l)
	}
	c.cmd("UIDL 1", "+OK 1 ")
	c.cmd("RETR 1", "+OK")
	if got := c.multi(); strings.Join(got, "|") != "Subject: one||first body|..dotted line" {
		t.Errorf("RETR %q", got)
	}
	c.cmd("TOP 2 1", "+OK")
	if got := c.multi(); strings.Join(got, "|") != "Subject: two||l1" {
		t.Errorf("TOP %q", got)
	}
	c.cmd("RETR 2", "+OK")
	if got := c.multi(); got[len(got)-1] != "last without newline" {
		t.Errorf("RETR 2 %q", got)
	}
	c.cmd("DELE 1", "+OK")
	c.cmd("RETR 1", "-ERR")
	c.cmd("STAT", "+OK 1 ")
	c.cmd("RSET", "+OK")
	c.cmd("DELE 2", "+OK")
	c.cmd("RETR 0", "-ERR")
	c.cmd("RETR 99999999999", "-ERR")
	c.cmd("QUIT", "+OK")
	snap, _ := e.st.Snapshot(context.Background(), "me@example.test", "INBOX")
	if len(snap.Messages) != 1 || snap.Messages[0].UID != 1 {
		t.Errorf("after QUIT: %+v", snap.Messages)
	}
}

func TestNoCommitWithoutQuitAndLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t)
	c.starttls()
	c.cmd("AUTH PLAIN AG1lQGV4YW1wbGUudGVzdABwb3Atc2VjcmV0", "+OK") // \0me@example.test\0pop-secret
	c.cmd("DELE 1", "+OK")
	second := e.dial(t)
	second.starttls()
	second.cmd("USER me@example.test", "+OK")
	second.cmd("PASS "+password, "-ERR [IN-USE]")
	c.nc.Close() // drop without QUIT: RFC 1939 §6, nothing deleted
	time.Sleep(100 * time.Millisecond)
	snap, _ := e.st.Snapshot(context.Background(), "me@example.test", "INBOX")
	if len(snap.Messages) != 2 {
		t.Errorf("deleted without QUIT: %d left", len(snap.Messages))
	}
	third := e.dial(t)
	third.starttls()
	third.cmd("AUTH PLAIN", "+ ")
	third.cmd("*", "-ERR [AUTH]")
	third.cmd("USER me@example.test", "+OK")
	third.cmd("PASS wrong", "-ERR [AUTH]")
	third.cmd("USER me@example.test", "+OK")
	third.cmd("PASS "+password, "+OK") // the lock was released
}

func TestSTLSInjectionAndGarbage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.dial(t)
	c.nc.Write([]byte("STLS\r\nCAPA\r\n"))
	c.line("+OK")
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	_ = tc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 64)
	if n, _ := tc.Read(buf); n > 0 {
		t.Fatalf("injected CAPA answered: %q", buf[:n])
	}
	c.nc, c.br = tc, bufio.NewReader(tc)
	c.cmd("BOGUS", "-ERR")
	c.cmd("STAT", "-ERR")
	c.cmd(strings.Repeat("A", 2000), "-ERR")
	c.nc.Write([]byte("NOOP\n"))
	c.line("-ERR")
	c.cmd("QUIT", "+OK")
}

// Python's poplib is a peer we did not write.
func TestPythonPoplib(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	host, port, _ := net.SplitHostPort(e.addr)
	script := `
import poplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3(sys.argv[1], int(sys.argv[2]))
p.stls(context=ctx)
p.user("me@example.test"); p.pass_("` + password + `")
n, size = p.stat()
resp, uids, _ = p.uidl()
resp, lines, _ = p.retr(1)
print(n, len(uids), lines[0].decode(), lines[-1].decode())
p.dele(1)
print(p.quit().decode())
`
	out, err := exec.Command("python3", "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python3 poplib (install python3): %v\n%s", err, out)
	}
	if got := string(out); !strings.HasPrefix(got, "2 2 Subject: one .dotted line\n+OK") {
		t.Errorf("poplib output %q", got)
	}
	snap, _ := e.st.Snapshot(context.Background(), "me@example.test", "INBOX")
	if len(snap.Messages) != 1 {
		t.Errorf("%d messages after poplib DELE+QUIT", len(snap.Messages))
	}
}
