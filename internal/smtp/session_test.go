package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"posthorn/internal/sasl"
)

func TestEHLOExtensions(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, nil)
	c := dial(t, addr)
	r := c.cmd("EHLO client.test", "250-mx.test")
	for _, ext := range []string{"PIPELINING", "SIZE 1048576", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "STARTTLS"} {
		if !strings.Contains(r, ext) {
			t.Errorf("EHLO lacks %s:\n%s", ext, r)
		}
	}
	c.cmd("HELO client.test", "250 mx.test")
	c.cmd("QUIT", "221 2.0.0")
}

func TestNoSTARTTLSWithoutCertificate(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, func(o *Options) { o.TLS = nil })
	c := dial(t, addr)
	if r := c.cmd("EHLO client.test", "250"); strings.Contains(r, "STARTTLS") {
		t.Errorf("STARTTLS offered without a certificate:\n%s", r)
	}
	c.cmd("STARTTLS", "502 5.5.1")
}

func TestDeliveryDotUnstuffed(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.startTx()
	c.cmd("DATA", "354")
	c.send("Subject: x\r\n\r\n..leading dot\r\n.\r\n")
	c.expect("250 2.0.0 Ok: queued as ID1")
	if got := b.messages(); len(got) != 1 || got[0] != "Subject: x\r\n\r\n.leading dot\r\n" {
		t.Errorf("message = %q", got)
	}
	c.cmd("NOOP", "250")
}

// A message is read through a 64 KiB buffer that goes back to a pool
// afterwards (bigReader). Commands pipelined right behind the final dot
// stay in that buffer and must still be served, message after message;
// a message far larger than the buffer arrives whole.
func TestDataBufferAndPipelinedCommandsAfterIt(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.startTx()
	c.cmd("DATA", "354")
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 300)
	// The end of the message and the next transaction in one write.
	c.send(big + ".\r\nMAIL FROM:<b@client.test>\r\nRCPT TO:<me@mx.test>\r\nDATA\r\n")
	c.expect("250 2.0.0 Ok: queued as ID1")
	c.expect("250 2.1.0")
	c.expect("250 2.1.5")
	c.expect("354")
	c.send("Subject: second\r\n\r\nhi\r\n.\r\nNOOP\r\n")
	c.expect("250 2.0.0 Ok: queued as ID1")
	c.expect("250")
	c.cmd("MAIL FROM:<c@client.test>", "250 2.1.0")
	c.cmd("RCPT TO:<me@mx.test>", "250 2.1.5")
	c.cmd("DATA", "354")
	c.send("Subject: third\r\n\r\nhi\r\n.\r\n")
	c.expect("250 2.0.0 Ok: queued as ID1")
	got := b.messages()
	if len(got) != 3 || got[0] != big || got[1] != "Subject: second\r\n\r\nhi\r\n" || got[2] != "Subject: third\r\n\r\nhi\r\n" {
		t.Errorf("%d messages; sizes %v", len(got), func() (n []int) {
			for _, m := range got {
				n = append(n, len(m))
			}
			return
		}())
	}
	c.cmd("QUIT", "221")
}

func TestSequenceErrors(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, func(o *Options) { o.MaxErrors = 100 })
	c := dial(t, addr)
	c.cmd("MAIL FROM:<a@b.test>", "503 5.5.1")
	c.cmd("EHLO c.test", "250")
	c.cmd("RCPT TO:<a@b.test>", "503 5.5.1")
	c.cmd("DATA", "503 5.5.1")
	c.cmd("MAIL FROM:<a@b.test>", "250")
	c.cmd("MAIL FROM:<a@b.test>", "503 5.5.1")
	c.cmd("DATA", "554 5.5.1")
	c.cmd("RSET", "250")
	c.cmd("FOO", "500 5.5.1")
	c.cmd("MAIL FROM:a@b.test", "501 5.1.7")
	c.cmd("MAIL TO:<a@b.test>", "501 5.5.4")
	c.cmd("MAIL FROM:<a@b.test> FOO=BAR", "555 5.5.4")
	c.cmd("MAIL FROM:<a@b.test> SIZE=99999999", "552 5.3.4")
	c.cmd("MAIL FROM:<ü@b.test>", "553 5.6.7")
	c.cmd("MAIL FROM:<ü@b.test> SMTPUTF8", "250")
	c.cmd("RCPT TO:<\"a@c\"@b.test>", "250")
	c.cmd("RCPT TO:<Postmaster>", "250")
	c.cmd("RCPT TO:<a@@b.test>", "501 5.1.3")
	c.cmd("VRFY me", "252 2.5.0")
	c.cmd("EHLO", "501 5.5.4")
}

func TestRcptRejectionsAndLimit(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{reject: map[string]*Error{"x@other.test": {Code: 554, Enhanced: "5.7.1", Msg: "Relay access denied"}}}
	_, addr := testServer(t, b, func(o *Options) { o.MaxRecipients = 2 })
	c := dial(t, addr)
	c.startTx()
	c.cmd("RCPT TO:<x@other.test>", "554 5.7.1")
	c.cmd("RCPT TO:<b@mx.test>", "250")
	c.cmd("RCPT TO:<c@mx.test>", "452 4.5.3") // RFC 5321 §4.5.3.1.10
}

// TestRcptOvershoot: recipients over the limit are refused one by one, the
// accepted ones stay and get the message (RFC 5321 §4.5.3.1.10), and those
// refusals are no protocol errors until there are as many as the limit.
func TestRcptOvershoot(t *testing.T) {
	t.Parallel()
	const limit, maxErrors = 100, 5
	rcpts := func(from, n int) (cmds string, addrs []string) {
		for i := from; i < from+n; i++ {
			addrs = append(addrs, fmt.Sprintf("r%d@mx.test", i))
			cmds += "RCPT TO:<" + addrs[len(addrs)-1] + ">\r\n"
		}
		return cmds, addrs
	}
	opts := func(o *Options) { o.MaxRecipients, o.MaxErrors = limit, maxErrors }

	t.Run("message goes to the accepted", func(t *testing.T) {
		t.Parallel()
		b := &fakeBackend{}
		_, addr := testServer(t, b, opts)
		c := dial(t, addr)
		c.cmd("EHLO client.test", "250")
		c.cmd("MAIL FROM:<a@client.test>", "250 2.1.0")
		cmds, addrs := rcpts(0, limit+50) // RFC 2920: one pipelined batch
		c.send(cmds)
		for i := range addrs {
			if i < limit {
				c.expect("250 2.1.5")
			} else {
				c.expect("452 4.5.3")
			}
		}
		c.cmd("DATA", "354")
		c.cmd("Subject: many\r\n\r\nbody\r\n.", "250 2.0.0")
		c.cmd("NOOP", "250")
		b.mu.Lock()
		defer b.mu.Unlock()
		if !slices.Equal(b.rcpts, addrs[:limit]) || len(b.msgs) != 1 {
			t.Errorf("delivered %d messages to %d recipients, want 1 to the first %d", len(b.msgs), len(b.rcpts), limit)
		}
	})

	t.Run("flood is cut off", func(t *testing.T) {
		t.Parallel()
		_, addr := testServer(t, &fakeBackend{}, opts)
		c := dial(t, addr)
		c.cmd("EHLO client.test", "250")
		c.cmd("MAIL FROM:<a@client.test>", "250 2.1.0")
		cmds, _ := rcpts(0, 2*limit+maxErrors) // no more: unread input would make the close a reset
		c.send(cmds)
		for range limit {
			c.expect("250 2.1.5")
		}
		for range limit + maxErrors { // free ones, then counted ones
			c.expect("452 4.5.3")
		}
		c.expect("421 4.7.0")
		if !c.closed() {
			t.Error("connection still open after 421")
		}
	})
}

// The inbound end-of-data variants of the SMTP-smuggling research
// (research/security.md §2.1). None may end the message, and none may let
// the commands after it run: the message is refused after the real end,
// and the session stays in step.
func TestSmugglingVariantsRefused(t *testing.T) {
	t.Parallel()
	seqs := []string{"\n.\n", "\n.\r", "\r.\n", "\r.\r", "\n.\r\n", "\r.\r\n", "\r\n.\n", "\r\n.\r", "\r\n.\r\r\n", "\r\r\n.\r\r\n", "\r\n\x00.\r\n"}
	for _, seq := range seqs {
		t.Run(fmt.Sprintf("%q", seq), func(t *testing.T) {
			t.Parallel()
			b := &fakeBackend{}
			_, addr := testServer(t, b, nil)
			c := dial(t, addr)
			c.startTx()
			c.cmd("DATA", "354")
			c.send("Subject: x\r\n\r\nbody" + seq + "MAIL FROM:<evil@x.test>\r\nRCPT TO:<me@mx.test>\r\nDATA\r\nsmuggled\r\n.\r\n")
			c.expect("550 5.6.0")
			c.cmd("NOOP", "250")
			if len(b.messages()) != 0 || len(b.froms) != 1 {
				t.Errorf("smuggled: messages %q, MAIL calls %q", b.messages(), b.froms)
			}
		})
	}
}

func TestDataLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"too big", "Subject: x\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 200), "552 5.3.4"},
		{"long line", "Subject: x\r\n\r\n" + strings.Repeat("x", 1001) + "\r\n", "550 5.6.0"},
		{"bare LF", "Subject: x\n\nbody\r\n", "550 5.6.0"},
		{"NUL", "Subject: x\r\n\r\nnul\x00\r\n", "550 5.6.0"},
		{"ok at limit", "Subject: x\r\n\r\n" + strings.Repeat("x", 998) + "\r\n", "250"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, addr := testServer(t, &fakeBackend{}, func(o *Options) { o.MaxMessageBytes = 2048 })
			c := dial(t, addr)
			c.startTx()
			c.cmd("DATA", "354")
			c.send(tc.body + ".\r\n")
			c.expect(tc.want)
			c.cmd("NOOP", "250") // still in step
		})
	}
}

func TestPipelinedDataBefore354(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.cmd("EHLO c.test", "250")
	c.send("MAIL FROM:<a@c.test>\r\nRCPT TO:<me@mx.test>\r\nDATA\r\nSubject: early\r\n\r\nx\r\n.\r\n")
	c.expect("250")
	c.expect("250")
	c.expect("554 5.5.0")
	if !c.closed() {
		t.Error("connection left open after data sent before 354")
	}
	if len(b.messages()) != 0 {
		t.Error("early data delivered")
	}
}

func TestPipelinedCommands(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.send("EHLO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<me@mx.test>\r\nRCPT TO:<you@mx.test>\r\nDATA\r\n")
	for _, want := range []string{"250-mx.test", "250 2.1.0", "250 2.1.5", "250 2.1.5", "354"} {
		c.expect(want)
	}
	c.send("Subject: p\r\n\r\nhi\r\n.\r\nQUIT\r\n")
	c.expect("250 2.0.0")
	c.expect("221")
}

func TestBDAT(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.startTx()
	// Chunks split inside a CRLF, pipelined together (RFC 3030 allows it).
	c.send("BDAT 13\r\nSubject: b\r\n\r")
	c.send("BDAT 9 LAST\r\n\nbody\r\n\r\n")
	c.expect("250 2.0.0 13 octets")
	c.expect("250 2.0.0 Ok")
	if got := b.messages(); len(got) != 1 || got[0] != "Subject: b\r\n\r\nbody\r\n\r\n" {
		t.Errorf("message = %q", got)
	}
	// DATA after BDAT's LAST is a new transaction.
	c.cmd("DATA", "503")

	// RCPT between chunks is refused; the message goes to the recipients
	// given before the first chunk only.
	c.startTx()
	c.send("BDAT 3\r\nab\r")
	c.expect("250 2.0.0 3 octets")
	c.cmd("RCPT TO:<late@mx.test>", "503 5.5.1")
	c.send("BDAT 3 LAST\r\n\n\r\n")
	c.expect("250 2.0.0 Ok")
	b.mu.Lock()
	defer b.mu.Unlock()
	if strings.Contains(strings.Join(b.rcpts, " "), "late") {
		t.Errorf("recipients after a RCPT during BDAT: %q", b.rcpts)
	}
}

func TestBDATBareLFAndNoTransaction(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.cmd("EHLO c.test", "250")
	// Without MAIL the chunk is still consumed: the next command is found.
	c.send("BDAT 5\r\nNOOP\n")
	c.expect("503 5.5.1")
	c.cmd("NOOP", "250")
	c.cmd("MAIL FROM:<a@c.test>", "250")
	c.cmd("RCPT TO:<me@mx.test>", "250")
	c.send("BDAT 12 LAST\r\nSubject: x\n\n")
	c.expect("550 5.6.0")
	c.send("BDAT 3 LAST\r\nx\r\n")
	c.expect("503 5.5.1") // the failed transaction is over
	c.cmd("NOOP", "250")
	if len(b.messages()) != 0 {
		t.Errorf("delivered %q", b.messages())
	}
	c.send("BDAT x\r\n")
	c.expect("501 5.5.4")
	if !c.closed() {
		t.Error("BDAT without size: connection stays open, stream position unknown")
	}
}

func TestCommandLineRules(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, nil)
	c := dial(t, addr)
	c.send("EHLO c.test\n")
	c.expect("500 5.5.2")
	c.send("NOOP " + strings.Repeat("x", 5000) + "\r\n")
	c.expect("500 5.5.2")
	c.send("NOOP a\rb\r\n")
	c.expect("500 5.5.2")
	c.cmd("NOOP", "250")
}

func TestTooManyErrors(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, func(o *Options) { o.MaxErrors = 3 })
	c := dial(t, addr)
	c.cmd("X1", "500")
	c.cmd("X2", "500")
	c.send("X3\r\n")
	c.expect("500")
	c.expect("421 4.7.0")
	if !c.closed() {
		t.Error("not closed after too many errors")
	}
}

func TestCrossProtocolClosed(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, nil)
	c := dial(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.expect("554 5.7.0")
	if !c.closed() {
		t.Error("HTTP request not answered by closing")
	}
}

func TestCommandTimeout(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, func(o *Options) { o.CommandTimeout = 200 * time.Millisecond })
	c := dial(t, addr)
	c.expect("421 4.4.2")
}

func TestDataTimeoutBoundsWholeMessage(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, func(o *Options) { o.DataTimeout = 500 * time.Millisecond })
	c := dial(t, addr)
	c.startTx()
	c.cmd("DATA", "354")
	// Drip one byte every 100ms: each read is quick, the total is not.
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		if _, err := c.nc.Write([]byte("x")); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if time.Since(start) >= 3*time.Second {
		t.Fatal("drip-fed DATA was not cut off")
	}
}

func TestConnectionsPerIP(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, func(o *Options) { o.MaxConnectionsPerIP = 2 })
	dial(t, addr)
	dial(t, addr)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &client{t: t, nc: nc, br: newReader(nc)}
	c.expect("421 4.7.0")
	// Another address is still served.
	nc2, err := net.Dial("tcp", strings.Replace(addr, "127.0.0.1", "127.0.0.2", 1))
	if err == nil {
		c2 := &client{t: t, nc: nc2, br: newReader(nc2)}
		c2.expect("220")
		nc2.Close()
	}
}

func TestSessionPanicRecovered(t *testing.T) {
	t.Parallel()
	s, addr := testServer(t, &fakeBackend{panicOn: "mail"}, nil)
	c := dial(t, addr)
	c.cmd("EHLO c.test", "250")
	c.cmd("MAIL FROM:<a@c.test>", "421 4.3.0")
	if s.Panics() != 1 {
		t.Errorf("Panics() = %d, want 1", s.Panics())
	}
	dial(t, addr) // the server still serves
}

func TestShutdownIdle421(t *testing.T) {
	t.Parallel()
	s, addr := testServer(t, &fakeBackend{}, nil)
	c := dial(t, addr)
	c.startTx()
	done := make(chan error)
	go func() { done <- s.Shutdown(t.Context()) }()
	c.expect("421 4.3.2")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// STARTTLS command injection (CVE-2011-0411): plaintext pipelined after
// STARTTLS must not be executed inside TLS.
func TestSTARTTLSInjection(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, nil)
	c := dial(t, addr)
	c.cmd("EHLO c.test", "250")
	c.send("STARTTLS\r\nEHLO commandinjectiontester\r\n")
	c.expect("220 2.0.0")
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tcl := &client{t: t, nc: tc, br: newReader(tc)}
	_ = tc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if line, err := tcl.br.ReadString('\n'); err == nil {
		t.Fatalf("injected command answered inside TLS: %q", line)
	}
	// After TLS the client must greet again (RFC 3207 §4.2).
	tcl.cmd("MAIL FROM:<a@c.test>", "503 5.5.1")
	r := tcl.cmd("EHLO c.test", "250")
	if strings.Contains(r, "STARTTLS") {
		t.Error("STARTTLS offered again inside TLS")
	}
}

// go-smtp's client is a peer we did not write.
func TestGoSMTPClient(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, addr := testServer(t, b, nil)
	cl, err := gosmtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	msg := "Subject: via go-smtp\r\n\r\n.dot line\r\nend\r\n"
	if err := cl.SendMail("a@client.test", []string{"me@mx.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if got := b.messages(); len(got) != 1 || got[0] != msg {
		t.Errorf("message = %q", got)
	}
	if st, ok := cl.TLSConnectionState(); !ok || st.Version < tls.VersionTLS12 {
		t.Errorf("not over TLS: version %x", st.Version)
	}
}

// authBackend's sessions accept AUTH LOGIN for anyone.
type authBackend struct{ fakeBackend }

type authSession struct{ *fakeSession }

func (b *authBackend) NewSession(ctx context.Context, c *ConnInfo) (Session, error) {
	return authSession{&fakeSession{b: &b.fakeBackend, c: c}}, nil
}

func (authSession) Auth(ctx context.Context, mech string) (sasl.Server, error) {
	return sasl.NewLogin(func(authz, user, pass string) (string, error) { return user, nil }), nil
}

// TestAuthTimeout: a client that goes silent in the middle of an AUTH
// exchange gets 421 4.4.2 and is disconnected, as one silent between
// commands is (it used to get a reply without a code, "0 ", and stay).
func TestAuthTimeout(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &authBackend{}, func(o *Options) {
		o.ImplicitTLS, o.AuthMechanisms, o.CommandTimeout = true, []string{"LOGIN"}, 300*time.Millisecond
	})
	nc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{t: t, nc: nc, br: bufio.NewReader(nc)}
	c.expect("220")
	c.cmd("EHLO c.test", "250")
	c.cmd("AUTH LOGIN", "334")
	c.expect("421 4.4.2")
	if !c.closed() {
		t.Error("the connection stayed open after the timeout")
	}
}

// TestMailParameterValues: SIZE takes digits only (RFC 1870 §6: no sign),
// and ENVID must decode to printable US-ASCII (RFC 3461 §4.4).
func TestMailParameterValues(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, func(o *Options) { o.DSN = true; o.MaxErrors = 100 })
	c := dial(t, addr)
	c.cmd("EHLO c.test", "250")
	for param, want := range map[string]string{
		"SIZE=+5": "501", "SIZE=-0": "501", "SIZE= 5": "501", "SIZE=5": "250",
		"ENVID=ab+FF+FEcd": "501", "ENVID=ab+2Bcd": "250",
	} {
		c.cmd("MAIL FROM:<a@c.test> "+param, want)
		c.cmd("RSET", "250")
	}
}

// TestImplicitTLSRefusalInsideTLS: on an implicit-TLS listener a refused
// connection gets its 421 inside TLS (RFC 8314 §3.3); in the clear, a
// client's TLS stack saw only a broken record.
func TestImplicitTLSRefusalInsideTLS(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, func(o *Options) {
		o.ImplicitTLS, o.Limiter = true, NewLimiter(100, 1)
	})
	cfg := &tls.Config{InsecureSkipVerify: true}
	first, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Close() })
	c := &client{t: t, nc: first, br: bufio.NewReader(first)}
	c.expect("220")
	second, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("the refused connection's TLS handshake: %v", err)
	}
	t.Cleanup(func() { second.Close() })
	r := &client{t: t, nc: second, br: bufio.NewReader(second)}
	r.expect("421 4.7.0")
	if !r.closed() {
		t.Error("the refused connection stayed open")
	}
}

// TestDataTimeoutBoundsWholeBDATMessage: DataTimeout bounds a message in
// BDAT chunks as a whole, the commands between chunks included; each
// chunk used to re-arm it, so small chunks kept a transaction open for
// ever.
func TestDataTimeoutBoundsWholeBDATMessage(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	_, addr := testServer(t, b, func(o *Options) { o.DataTimeout = 600 * time.Millisecond })
	c := dial(t, addr)
	c.startTx()
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		c.send("BDAT 3\r\nabc")
		if r := c.reply(); !strings.HasPrefix(r, "250") {
			if !strings.HasPrefix(r, "421 4.4.2") {
				t.Errorf("reply %q, want 421 4.4.2 at the deadline", r)
			}
			break
		}
		time.Sleep(150 * time.Millisecond)
	}
	if d := time.Since(start); d >= 3*time.Second || d < 500*time.Millisecond {
		t.Fatalf("BDAT drip ended after %v, want about 600ms", d)
	}
	if n := len(b.messages()); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// TestShutdownLetsBDATFinish: a message between BDAT chunks is in
// progress, like one in DATA: shutdown lets it finish, then says 421.
func TestShutdownLetsBDATFinish(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	s, addr := testServer(t, b, nil)
	c := dial(t, addr)
	c.startTx()
	c.send("BDAT 16\r\nSubject: x\r\n\r\nab")
	c.expect("250")
	done := make(chan error)
	go func() { done <- s.Shutdown(t.Context()) }()
	time.Sleep(200 * time.Millisecond) // shutdown has begun
	c.send("BDAT 4 LAST\r\nc\r\n.")
	c.expect("250")
	c.expect("421 4.3.2")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := b.messages(); len(got) != 1 || got[0] != "Subject: x\r\n\r\nabc\r\n." {
		t.Errorf("stored %q", got)
	}
}

// TestProtocolNames: the WITH names of Received are the registered ones
// (RFC 3848, RFC 6531 §3.7.3): UTF8SMTPSA, not UTF8ESMTPSA.
func TestProtocolNames(t *testing.T) {
	tls := &tls.ConnectionState{}
	for _, tc := range []struct {
		c    ConnInfo
		utf8 bool
		want string
	}{
		{ConnInfo{}, false, "SMTP"},
		{ConnInfo{ESMTP: true}, false, "ESMTP"},
		{ConnInfo{ESMTP: true, TLS: tls}, false, "ESMTPS"},
		{ConnInfo{ESMTP: true, TLS: tls, Auth: "me"}, false, "ESMTPSA"},
		{ConnInfo{ESMTP: true, Auth: "me"}, false, "ESMTPA"},
		{ConnInfo{ESMTP: true}, true, "UTF8SMTP"},
		{ConnInfo{ESMTP: true, TLS: tls}, true, "UTF8SMTPS"},
		{ConnInfo{ESMTP: true, Auth: "me"}, true, "UTF8SMTPA"},
		{ConnInfo{ESMTP: true, TLS: tls, Auth: "me"}, true, "UTF8SMTPSA"},
		{ConnInfo{LMTP: true}, false, "LMTP"},
		{ConnInfo{LMTP: true, TLS: tls}, false, "LMTPS"},
		{ConnInfo{LMTP: true}, true, "UTF8LMTP"},
	} {
		if got := tc.c.Protocol(tc.utf8); got != tc.want {
			t.Errorf("%+v utf8=%v: %s, want %s", tc.c, tc.utf8, got, tc.want)
		}
	}
}

// TestPostmasterParameters: "<Postmaster>" takes parameters after a
// space only, like any other path (RFC 5321 §4.1.1.3).
func TestPostmasterParameters(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, func(o *Options) { o.DSN = true })
	c := dial(t, addr)
	c.cmd("EHLO c.test", "250")
	c.cmd("MAIL FROM:<a@c.test>", "250")
	c.cmd("RCPT TO:<Postmaster>NOTIFY=NEVER", "501 5.1.3")
	c.cmd("RCPT TO:<Postmaster> NOTIFY=NEVER", "250")
	c.cmd("RCPT TO:<postmaster>", "250")
}

// TestORCPTUTF8: ORCPT of type utf-8 is read with RFC 6533's encoding.
func TestORCPTUTF8(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, &fakeBackend{}, func(o *Options) { o.DSN = true; o.MaxErrors = 100 })
	c := dial(t, addr)
	c.cmd("EHLO c.test", "250")
	c.cmd("MAIL FROM:<a@c.test>", "250")
	c.cmd(`RCPT TO:<me@mx.test> ORCPT=utf-8;r+FFej@x.test`, "501 5.5.4")
	c.cmd(`RCPT TO:<me@mx.test> ORCPT=utf-8;j\x{F6}rg@x.test`, "250")
	c.cmd(`RCPT TO:<me@mx.test> ORCPT=rfc822;a+2Bb@x.test`, "250")
}
