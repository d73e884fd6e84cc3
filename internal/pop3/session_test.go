package pop3

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func sizes() (s1, s2, s3, all int) {
	s1, s2, s3 = len(testMessages[0]), len(testMessages[1]), len(testMessages[2])
	return s1, s2, s3, s1 + s2 + s3
}

// TestFullSession walks through every command after STLS and USER/PASS.
func TestFullSession(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, nil)
	s1, s2, s3, all := sizes()
	c := dial(t, addr)
	c.run(`
		C: CAPA
		S: +OK capability list follows
		S: TOP
		S: UIDL
		S: RESP-CODES
		S: AUTH-RESP-CODE
		S: PIPELINING
		S: EXPIRE NEVER
		S: LOGIN-DELAY 0
		S: STLS
		S: IMPLEMENTATION Posthorn
		S: .
		C: USER me@example.test
		S: -ERR [AUTH] plaintext login disabled, TLS required`)
	c.starttls()
	c.run(fmt.Sprintf(`
		C: CAPA
		S: +OK capability list follows
		S: TOP
		S: UIDL
		S: RESP-CODES
		S: AUTH-RESP-CODE
		S: PIPELINING
		S: EXPIRE NEVER
		S: LOGIN-DELAY 0
		S: USER
		S: SASL PLAIN
		S: IMPLEMENTATION Posthorn
		S: .
		C: user me@example.test
		S: +OK send PASS
		C: PASS secret pass
		S: +OK logged in, maildrop has 3 messages (%[4]d octets)
		C: STAT
		S: +OK 3 %[4]d
		C: LIST
		S: +OK scan listing follows
		S: 1 %[1]d
		S: 2 %[2]d
		S: 3 %[3]d
		S: .
		C: list 2
		S: +OK 2 %[2]d
		C: UIDL
		S: +OK unique-id listing follows
		S: 1 m1
		S: 2 m2
		S: 3 m3
		S: .
		C: UIDL 3
		S: +OK 3 m3
		C: TOP 1 0
		S: +OK top of message follows
		S: Subject: one
		S: From: a@example.test
		S:
		S: .
		C: TOP 1 2
		S: +OK top of message follows
		S: Subject: one
		S: From: a@example.test
		S:
		S: line 1
		S: ..dotted
		S: .
		C: TOP 2 99
		S: +OK top of message follows
		S: Subject: two
		S:
		S: body a
		S: ..
		S: ...two dots
		S: last line without CRLF
		S: .
		C: RETR 2
		S: +OK %[2]d octets
		S: Subject: two
		S:
		S: body a
		S: ..
		S: ...two dots
		S: last line without CRLF
		S: .
		C: RETR 3
		S: +OK %[3]d octets
		S: Subject: three
		S: X-Bare: lf
		S:
		S: body
		S: .
		C: DELE 1
		S: +OK message 1 deleted
		C: DELE 1
		S: -ERR message 1 already deleted
		C: LIST 1
		S: -ERR no such message
		C: UIDL 1
		S: -ERR no such message
		C: RETR 1
		S: -ERR no such message
		C: TOP 1 0
		S: -ERR no such message
		C: STAT
		S: +OK 2 %[5]d
		C: LIST
		S: +OK scan listing follows
		S: 2 %[2]d
		S: 3 %[3]d
		S: .
		C: RSET
		S: +OK maildrop has 3 messages (%[4]d octets)
		C: NOOP
		S: +OK
		C: DELE 3
		S: +OK message 3 deleted
		C: DELE 1
		S: +OK message 1 deleted
		C: QUIT
		S: +OK pop.test POP3 server signing off (2 messages deleted)`, s1, s2, s3, all, s2+s3))
	c.closed()
	b.waitClosed(t, 1)
	b.wantCommits(t, []int{0, 2})
	if len(b.msgs) != 1 || b.msgs[0].uid != "m2" {
		t.Errorf("maildrop after QUIT: %v", b.msgs)
	}
}

func TestDeleQuitCommits(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.login()
	c.run(`
		C: DELE 2
		S: +OK message 2 deleted
		C: QUIT
		S: +OK pop.test POP3 server signing off (1 messages deleted)`)
	c.closed()
	b.waitClosed(t, 1)
	b.wantCommits(t, []int{1})
}

// TestQuitWithoutDeletions: nothing to commit, no Commit call.
func TestQuitWithoutDeletions(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.login()
	c.cmd("QUIT", "+OK pop.test POP3 server signing off (0 messages deleted)")
	c.closed()
	b.waitClosed(t, 1)
	b.wantCommits(t)
}

// TestDisconnectWithoutQuit: RFC 1939 §6, no UPDATE, nothing deleted.
func TestDisconnectWithoutQuit(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.login()
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("RETR 2", "+OK ...")
	c.multi()
	c.nc.Close()
	b.waitClosed(t, 1)
	b.wantCommits(t)
	if len(b.msgs) != 3 {
		t.Errorf("%d messages left", len(b.msgs))
	}
}

// TestCommitFails: -ERR [SYS/TEMP], close, the lock is released.
func TestCommitFails(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	b.commitErr = errors.New("disk full")
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.login()
	c.cmd("DELE 1", "+OK message 1 deleted")
	c.cmd("QUIT", "-ERR [SYS/TEMP] could not remove deleted messages, none were removed")
	c.closed()
	b.waitClosed(t, 1)
	b.wantCommits(t, []int{0})
	if len(b.msgs) != 3 {
		t.Errorf("%d messages left", len(b.msgs))
	}
}

// TestLockReleasedBeforeQuitReply: a client that reconnects as soon as it
// has the QUIT reply finds the maildrop free.
func TestLockReleasedBeforeQuitReply(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, nil)
	for range 3 {
		c := dial(t, addr)
		c.login()
		c.cmd("QUIT", "+OK ...")
	}
}

func TestPipelining(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.starttls()
	// All in one write, login included.
	c.send("USER me@example.test\r\nPASS secret pass\r\nSTAT\r\nLIST 1\r\nUIDL\r\nTOP 1 0\r\nDELE 3\r\nBOGUS\r\nRETR 3\r\nNOOP\r\nQUIT\r\n")
	_, _, _, all := sizes()
	c.run(fmt.Sprintf(`
		S: +OK send PASS
		S: +OK logged in, ...
		S: +OK 3 %d
		S: +OK 1 %d
		S: +OK unique-id listing follows
		S: 1 m1
		S: 2 m2
		S: 3 m3
		S: .
		S: +OK top of message follows
		S: Subject: one
		S: From: a@example.test
		S:
		S: .
		S: +OK message 3 deleted
		S: -ERR unknown command
		S: -ERR no such message
		S: +OK
		S: +OK pop.test POP3 server signing off (1 messages deleted)`, all, len(testMessages[0])))
	c.closed()
	b.waitClosed(t, 1)
	b.wantCommits(t, []int{2})
}

// TestNumbers: message numbers and TOP line counts out of range.
func TestNumbers(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, func(o *Options) { o.MaxErrors = 100 })
	c := dial(t, addr)
	c.login()
	for _, tc := range []struct{ cmd, want string }{
		{"RETR 0", "-ERR no such message"},
		{"RETR 4", "-ERR no such message"},
		{"RETR -1", "-ERR invalid message number"},
		{"RETR +1", "-ERR invalid message number"},
		{"RETR abc", "-ERR invalid message number"},
		{"RETR 1x", "-ERR invalid message number"},
		{"RETR 0x1", "-ERR invalid message number"},
		{"RETR 99999999999999999999999", "-ERR no such message"},
		{"RETR 4294967297", "-ERR no such message"},
		{"RETR", "-ERR syntax error"},
		{"RETR 1 2", "-ERR syntax error"},
		{"LIST 0", "-ERR no such message"},
		{"LIST -5", "-ERR invalid message number"},
		{"LIST 1 2", "-ERR syntax error"},
		{"UIDL 18446744073709551617", "-ERR no such message"},
		{"DELE 0", "-ERR no such message"},
		{"DELE", "-ERR syntax error"},
		{"DELE 2.0", "-ERR invalid message number"},
		{"TOP 1", "-ERR syntax error"},
		{"TOP 1 -1", "-ERR invalid line count"},
		{"TOP 1 +1", "-ERR invalid line count"},
		{"TOP 1 x", "-ERR invalid line count"},
		{"TOP 1 99999999999999999999", "-ERR invalid line count"},
		{"TOP 0 1", "-ERR no such message"},
		{"STAT 1", "-ERR syntax error"},
		{"NOOP x", "-ERR syntax error"},
		{"RSET 1", "-ERR syntax error"},
		{"LIST 01", "+OK 1 " + fmt.Sprint(len(testMessages[0]))},
		{"STAT", "+OK 3 ..."},
	} {
		c.cmd(tc.cmd, tc.want)
	}
	// A huge but valid line count sends the whole message.
	c.cmd("TOP 2 9223372036854775807", "+OK top of message follows")
	if got := c.multi(); len(got) != 6 {
		t.Errorf("TOP with a huge count: %q", got)
	}
	c.cmd("QUIT", "+OK ...")
	b.waitClosed(t, 1)
	b.wantCommits(t)
}

// TestWrongState: TRANSACTION commands before login and AUTHORIZATION
// commands after.
func TestWrongState(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, func(o *Options) { o.MaxErrors = 100 })
	c := dial(t, addr)
	for _, cmd := range []string{"STAT", "LIST", "LIST 1", "UIDL", "RETR 1", "TOP 1 1", "DELE 1", "RSET", "NOOP"} {
		c.cmd(cmd, "-ERR command not valid in this state")
	}
	c.starttls()
	c.cmd("PASS secret pass", "-ERR send USER first")
	c.cmd("STAT", "-ERR command not valid in this state")
	c.login2()
	for _, cmd := range []string{"USER me@example.test", "PASS x", "AUTH PLAIN", "AUTH", "STLS"} {
		c.cmd(cmd, "-ERR command not valid in this state")
	}
	c.cmd("CAPA", "+OK capability list follows")
	if caps := strings.Join(c.multi(), ","); !strings.Contains(caps, "USER,SASL PLAIN") || strings.Contains(caps, "STLS") {
		t.Errorf("CAPA in TRANSACTION: %s", caps)
	}
	c.cmd("QUIT", "+OK ...")
}

// login2 logs in on a connection that already has TLS.
func (c *client) login2() {
	c.t.Helper()
	c.cmd("USER "+testUser, "+OK send PASS")
	c.cmd("PASS "+testPass, "+OK logged in, ...")
}

// TestAutologout: RFC 1939 §3, the server closes without a response and
// without UPDATE.
func TestAutologout(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, func(o *Options) { o.CommandTimeout = 300 * time.Millisecond })
	c := dial(t, addr)
	c.login()
	c.cmd("DELE 1", "+OK ...")
	c.closed()
	b.waitClosed(t, 1)
	b.wantCommits(t)
}

// TestImplicitTLS: port 995 style, no STLS, login allowed at once.
func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, func(o *Options) { o.ImplicitTLS = true })
	tc, err := tls.Dial("tcp", addr, clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	c := &client{t: t, nc: tc, br: newReader(tc)}
	c.expect("+OK pop.test POP3 ready")
	c.cmd("CAPA", "+OK capability list follows")
	if caps := strings.Join(c.multi(), ","); strings.Contains(caps, "STLS") || !strings.Contains(caps, "USER") {
		t.Errorf("CAPA: %s", caps)
	}
	c.cmd("STLS", "-ERR command not permitted when TLS active")
	c.login2()
	c.cmd("RETR 1", "+OK ...")
	if got := c.multi(); got[len(got)-2] != "..dotted" {
		t.Errorf("RETR: %q", got)
	}
	c.cmd("QUIT", "+OK ...")
	b.waitClosed(t, 1)
}

// TestLogs: one Info line at login and at quit, never a password.
func TestLogs(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, func(o *Options) { o.Logger = logs.logger() })
	c := dial(t, addr)
	c.starttls()
	c.cmd("USER "+testUser, "+OK ...")
	c.cmd("PASS hunter2 wrong", "-ERR [AUTH] Authentication failed")
	c.cmd("AUTH PLAIN AG1lQGV4YW1wbGUudGVzdABodW50ZXIz", "-ERR [AUTH] Authentication failed") // \0me@example.test\0hunter3
	c.login2()
	c.cmd("RETR 1", "+OK ...")
	c.multi()
	c.cmd("DELE 1", "+OK ...")
	c.cmd("QUIT", "+OK ...")
	b.waitClosed(t, 1)
	out := logs.String()
	for _, want := range []string{
		`msg="pop3 login failed" cid=`,
		`msg="pop3 login" cid=`,
		"account=me@example.test mech=USER messages=3",
		`msg="pop3 quit"`,
		"retrieved=1 deleted=1",
		"remote=127.0.0.1:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"hunter2", "hunter3", "secret pass", "AG1lQGV4YW1wbGUudGVzdABodW50ZXIz"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains a password %q:\n%s", secret, out)
		}
	}
}

// TestRetrGone: a message another client deleted meanwhile gets a
// permanent -ERR (no [SYS/TEMP]: trying again will not help), and the
// session goes on.
func TestRetrGone(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	b.openErr = ErrGone
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.login()
	c.cmd("RETR 1", "-ERR message was deleted by another client")
	c.cmd("TOP 2 0", "-ERR message was deleted by another client")
	c.cmd("NOOP", "+OK")
}
