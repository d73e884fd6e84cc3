package pop3

import (
	"encoding/base64"
	"strings"
	"testing"

	"posthorn/internal/sasl"
)

func plain(authz, user, pass string) string {
	return base64.StdEncoding.EncodeToString(sasl.PlainResponse(authz, user, pass))
}

// TestLoginBeforeTLS: RFC 2595 §2.3, no password before TLS, and USER and
// SASL are not advertised.
func TestLoginBeforeTLS(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, func(o *Options) { o.MaxErrors = 100 })
	c := dial(t, addr)
	c.run(`
		C: USER me@example.test
		S: -ERR [AUTH] plaintext login disabled, TLS required
		C: PASS secret pass
		S: -ERR [AUTH] plaintext login disabled, TLS required
		C: AUTH
		S: -ERR [AUTH] plaintext login disabled, TLS required
		C: AUTH PLAIN ` + plain("", testUser, testPass) + `
		S: -ERR [AUTH] plaintext login disabled, TLS required
		C: STAT
		S: -ERR command not valid in this state`)
	c.cmd("CAPA", "+OK capability list follows")
	if caps := strings.Join(c.multi(), ","); strings.Contains(caps, "USER") || strings.Contains(caps, "SASL") || !strings.Contains(caps, "STLS") {
		t.Errorf("CAPA before TLS: %s", caps)
	}
	// USER before STLS is forgotten: PASS after STLS needs a new USER.
	c.starttls()
	c.cmd("PASS "+testPass, "-ERR send USER first")
	c.cmd("QUIT", "+OK pop.test POP3 server signing off")
	c.closed()
	if _, opens, _, _ := b.state(); opens != 0 {
		t.Errorf("maildrop opened %d times", opens)
	}
}

// TestNoTLSConfigured: no STLS offered, and no way to log in.
func TestNoTLSConfigured(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, func(o *Options) { o.TLS = nil })
	c := dial(t, addr)
	c.cmd("CAPA", "+OK capability list follows")
	if caps := strings.Join(c.multi(), ","); strings.Contains(caps, "STLS") || strings.Contains(caps, "USER") {
		t.Errorf("CAPA without TLS: %s", caps)
	}
	c.cmd("STLS", "-ERR TLS not available")
	c.cmd("USER "+testUser, "-ERR [AUTH] ...")
}

func TestAuthPlain(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, func(o *Options) { o.MaxErrors = 100 })

	// Initial response.
	c := dial(t, addr)
	c.starttls()
	c.cmd("AUTH PLAIN "+plain("", testUser, testPass), "+OK logged in, maildrop has 3 messages ...")
	c.cmd("QUIT", "+OK ...")
	c.closed()

	// Continuation, mechanism in lower case, authzid equal to the user.
	c = dial(t, addr)
	c.starttls()
	c.run(`
		C: AUTH
		S: +OK mechanism list follows
		S: PLAIN
		S: .
		C: AUTH plain
		S: + 
		C: ` + plain(testUser, testUser, testPass) + `
		S: +OK logged in, ...
		C: QUIT
		S: +OK ...`)
	c.closed()

	// Failures: the session goes on in AUTHORIZATION.
	c = dial(t, addr)
	c.starttls()
	c.run(`
		C: AUTH PLAIN
		S: + 
		C: *
		S: -ERR authentication canceled
		C: AUTH PLAIN
		S: + 
		C: not base64!
		S: -ERR invalid base64
		C: AUTH PLAIN %%%
		S: -ERR invalid base64
		C: AUTH PLAIN =
		S: -ERR malformed authentication response
		C: AUTH PLAIN ` + base64.StdEncoding.EncodeToString([]byte("no nuls")) + `
		S: -ERR malformed authentication response
		C: AUTH PLAIN ` + plain("", testUser, "wrong") + `
		S: -ERR [AUTH] Authentication failed
		C: AUTH PLAIN
		S: + 
		C: ` + plain("boss@example.test", testUser, testPass) + `
		S: -ERR [AUTH] Authentication failed
		C: AUTH PLAIN a b
		S: -ERR syntax error
		C: AUTH CRAM-MD5
		S: -ERR unsupported authentication mechanism
		C: AUTH PLAIN
		S: + 
		C: ` + strings.Repeat("QUFB", 3500) + `
		S: -ERR malformed authentication response
		C: AUTH PLAIN
		S: + 
		C: ` + strings.Repeat("A", 20000) + `
		S: -ERR line too long
		C: AUTH PLAIN ` + plain("", testUser, testPass) + `
		S: +OK logged in, ...
		C: QUIT
		S: +OK ...`)
	c.closed()
	b.waitClosed(t, 3)
}

func TestBadPassword(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.starttls()
	c.run(`
		C: USER me@example.test
		S: +OK send PASS
		C: PASS secret
		S: -ERR [AUTH] Authentication failed
		C: PASS secret pass
		S: -ERR send USER first
		C: USER nobody@example.test
		S: +OK send PASS
		C: PASS secret pass
		S: -ERR [AUTH] Authentication failed
		C: USER me@example.test
		S: +OK send PASS
		C: PASS
		S: -ERR syntax error
		C: USER
		S: -ERR syntax error
		C: USER me@example.test
		S: +OK send PASS
		C: PASS secret pass
		S: +OK logged in, ...`)
}

// TestBlocked: a temporary block answers [SYS/TEMP] and closes, for
// USER/PASS and AUTH alike.
func TestBlocked(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	b.blocked = true
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.starttls()
	c.cmd("USER "+testUser, "+OK send PASS")
	c.cmd("PASS "+testPass, "-ERR [SYS/TEMP] too many failed logins, try again later")
	c.closed()

	c = dial(t, addr)
	c.starttls()
	c.cmd("AUTH PLAIN "+plain("", testUser, testPass), "-ERR [SYS/TEMP] too many failed logins, try again later")
	c.closed()
}

// TestLoginInternalError: the client gets a generic temporary failure.
func TestLoginInternalError(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	_, addr := testServer(t, newBackend(), func(o *Options) { o.Logger = logs.logger() })
	c := dial(t, addr)
	c.starttls()
	c.cmd("USER broken", "+OK ...")
	c.cmd("PASS x", "-ERR [SYS/TEMP] temporary authentication failure, try again later")
	c.closed()
	if !strings.Contains(logs.String(), "user database unavailable") {
		t.Errorf("cause not logged:\n%s", logs.String())
	}
}

// TestLocked: RFC 2449 §8.1.2, a second session gets [IN-USE] and is
// closed; the first is not disturbed.
func TestLocked(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, nil)
	first := dial(t, addr)
	first.login()
	first.cmd("DELE 1", "+OK ...")

	second := dial(t, addr)
	second.starttls()
	second.cmd("USER "+testUser, "+OK ...")
	second.cmd("PASS "+testPass, "-ERR [IN-USE] mailbox locked by another session")
	second.closed()

	third := dial(t, addr)
	third.starttls()
	third.cmd("AUTH PLAIN "+plain("", testUser, testPass), "-ERR [IN-USE] mailbox locked by another session")
	third.closed()

	first.cmd("STAT", "+OK 2 ...")
	first.cmd("QUIT", "+OK ...")
	b.waitClosed(t, 1)
	b.wantCommits(t, []int{0})
}
