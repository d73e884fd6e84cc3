package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestClientAgainstServer(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{reject: map[string]*Error{"bad@mx.test": {Code: 550, Enhanced: "5.1.1", Msg: "No such user"}}}
	_, addr := testServer(t, b, nil)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(nc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(context.Background(), &tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	body := "Subject: t\r\n\r\n.starts with a dot\nbare LF\rbare CR\r\nlast line without CRLF"
	res, err := c.Send(Envelope{From: "a@client.test", Size: int64(len(body)), Rcpts: []EnvelopeRcpt{{Addr: "me@mx.test"}, {Addr: "bad@mx.test"}}}, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mail.Code != 250 || res.Rcpts[0].Code != 250 || res.Rcpts[1].Code != 550 || res.Rcpts[1].Enhanced != "5.1.1" || res.Data.Code != 250 {
		t.Fatalf("result %+v", res)
	}
	want := "Subject: t\r\n\r\n.starts with a dot\r\nbare LF\r\nbare CR\r\nlast line without CRLF\r\n"
	if got := b.messages(); len(got) != 1 || got[0] != want {
		t.Errorf("server got %q", got)
	}
	if _, ok := c.TLS(); !ok {
		t.Error("not TLS")
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
}

func TestClientAllRecipientsRefused(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{reject: map[string]*Error{"bad@mx.test": {Code: 550, Enhanced: "5.1.1", Msg: "No"}}}
	_, addr := testServer(t, b, nil)
	nc, _ := net.Dial("tcp", addr)
	c, err := NewClient(nc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.Hello("x.test")
	res, err := c.Send(Envelope{From: "a@x.test", Rcpts: []EnvelopeRcpt{{Addr: "bad@mx.test"}}}, strings.NewReader("x\r\n"))
	if err != nil || res.Rcpts[0].Code != 550 || res.Data.Code != 0 {
		t.Fatalf("res %+v err %v", res, err)
	}
	// The session is still usable.
	if r, err := c.cmd("NOOP"); err != nil || r.Code != 250 {
		t.Fatalf("NOOP: %v %v", r, err)
	}
}

// scripted runs a fake server that writes each reply after reading a line.
func scripted(t *testing.T, greeting string, replies ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.Write([]byte(greeting))
		br := bufio.NewReader(nc)
		for _, r := range replies {
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
			nc.Write([]byte(r))
		}
		time.Sleep(200 * time.Millisecond)
	}()
	return l.Addr().String()
}

func TestClientRefusesMalformedReplies(t *testing.T) {
	t.Parallel()
	for _, greeting := range []string{
		"220 ok\x00\r\n",
		"220-first\r\n221 other code\r\n",
		"22 short\r\n",
		"220x\r\n",
		"220 " + strings.Repeat("a", 5000) + "\r\n",
		strings.Repeat("220-x\r\n", 200) + "220 x\r\n",
		"220 a\rb\r\n",
	} {
		addr := scripted(t, greeting)
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewClient(nc, 2*time.Second)
		nc.Close()
		if !errors.Is(err, ErrBadReply) {
			t.Errorf("greeting %.40q: err %v, want ErrBadReply", greeting, err)
		}
	}
}

func TestClientParsesEnhancedCodes(t *testing.T) {
	t.Parallel()
	addr := scripted(t, "220 mx ESMTP\r\n", "250-mx\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", "451-4.7.1 Try\r\n451 4.7.1 again later\r\n")
	nc, _ := net.Dial("tcp", addr)
	c, err := NewClient(nc, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("me"); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Ext("size"); !ok || v != "1000" {
		t.Errorf("SIZE ext %q %v", v, ok)
	}
	r, err := c.cmd("NOOP")
	if err != nil || r.Code != 451 || r.Enhanced != "4.7.1" || r.Text() != "Try again later" {
		t.Errorf("reply %+v, %v", r, err)
	}
	var e *Error
	if !errors.As(r.Err(), &e) || !e.Temporary() {
		t.Errorf("Err() = %v", r.Err())
	}
}

func TestDotWriter(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":               ".\r\n",
		"a":              "a\r\n.\r\n",
		".\r\n":          "..\r\n.\r\n",
		"a\r\n.\r\n":     "a\r\n..\r\n.\r\n",
		"a\n.\nb":        "a\r\n..\r\nb\r\n.\r\n",
		"a\r.\rb":        "a\r\n..\r\nb\r\n.\r\n",
		"a\r\r\n.\r\r\n": "a\r\n\r\n..\r\n\r\n.\r\n",
		"x\r":            "x\r\n.\r\n",
	} {
		var sb strings.Builder
		bw := bufio.NewWriter(&sb)
		d := &dotWriter{w: bw, bol: true}
		for i := 0; i < len(in); i++ { // byte at a time: every boundary
			d.Write([]byte{in[i]})
		}
		d.close()
		bw.Flush()
		if sb.String() != want {
			t.Errorf("dotWriter(%q) = %q, want %q", in, sb.String(), want)
		}
	}
}

// TestClientSlowSteadyReader: a server that reads a large message slowly
// but steadily, and takes a while to answer the final dot, gets it whole.
// One write deadline for the whole transfer (as before) cut it off after
// the command timeout; each write now gets its own (RFC 5321 §4.5.3.2.5),
// and the final reply twice the timeout (§4.5.3.2.6 asks 10 minutes).
func TestClientSlowSteadyReader(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	// Small socket buffers, set before the connection exists (set later,
	// they make TCP stall on retransmission timers), so that the pace is
	// the reader's.
	small := func(opt int) func(string, string, syscall.RawConn) error {
		return func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, 16<<10) })
		}
	}
	lc := net.ListenConfig{Control: small(syscall.SO_RCVBUF)}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	scriptedMX(t, ln, func(nc net.Conn, br *bufio.Reader) {
		nc.Write([]byte("220 slow.test\r\n"))
		for _, reply := range []string{"250 slow.test", "250 2.1.0 ok", "250 2.1.5 ok", "354 go"} {
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
			nc.Write([]byte(reply + "\r\n"))
		}
		n := 0
		buf := make([]byte, 32<<10)
		for {
			time.Sleep(10 * time.Millisecond) // about 3 MB/s at most
			k, err := br.Read(buf)
			n += k
			if err != nil || strings.HasSuffix(string(buf[:k]), "\r\n.\r\n") {
				break
			}
		}
		time.Sleep(300 * time.Millisecond) // scanning the message
		nc.Write([]byte("250 2.0.0 queued\r\n"))
		got <- n
	})
	d := net.Dialer{Control: small(syscall.SO_SNDBUF)}
	nc, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := NewClient(nc, timeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat(strings.Repeat("x", 78)+"\r\n", 25000) // 2 MB: ten command timeouts at the reader's pace
	start := time.Now()
	res, err := c.Send(Envelope{From: "a@client.test", Rcpts: []EnvelopeRcpt{{Addr: "b@slow.test"}}}, strings.NewReader(body))
	if err != nil || res.Data.Code != 250 {
		t.Fatalf("after %v: %+v, %v", time.Since(start), res.Data, err)
	}
	if n := <-got; n < len(body) {
		t.Errorf("the server read %d octets of %d", n, len(body))
	}
	t.Logf("sent %d octets in %v with a %v timeout", len(body), time.Since(start).Round(time.Millisecond), timeout)
}

// TestClientMail252ThenData: an MX answering 252 to MAIL and 354 to the
// pipelined DATA gets no message at all: the client drops the
// connection rather than end the transaction with an empty message,
// which that MX would deliver.
func TestClientMail252ThenData(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rest := make(chan string, 1)
	scriptedMX(t, ln, func(nc net.Conn, br *bufio.Reader) {
		nc.Write([]byte("220 mx.test\r\n"))
		br.ReadString('\n')
		nc.Write([]byte("250-mx.test\r\n250 PIPELINING\r\n"))
		for range 3 { // MAIL, RCPT, DATA, pipelined
			br.ReadString('\n')
		}
		nc.Write([]byte("252 2.1.0 maybe\r\n250 2.1.5 ok\r\n354 go\r\n"))
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(br)
		rest <- string(b)
	})
	c := helloClient(t, ln.Addr().String())
	_, err = c.Send(Envelope{From: "a@client.test", Rcpts: []EnvelopeRcpt{{Addr: "b@mx.test"}}}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	if !errors.Is(err, ErrBadReply) {
		t.Errorf("Send: %v, want ErrBadReply", err)
	}
	c.Quit()
	if got := <-rest; strings.Contains(got, "\r\n.\r\n") || strings.HasPrefix(got, ".\r\n") {
		t.Errorf("the MX got the end of a message: %q", got)
	}
}

// helloClient connects to addr and says EHLO.
func helloClient(t *testing.T, addr string) *Client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c, err := NewClient(nc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// scriptedMX serves the first connection on ln with serve, in its own
// goroutine, and closes both when the test ends or serve returns.
func scriptedMX(t *testing.T, ln net.Listener, serve func(nc net.Conn, br *bufio.Reader)) {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		serve(nc, bufio.NewReader(nc))
	}()
}

// TestClientPositiveRepliesOfTheWrongKind: a greeting, a STARTTLS reply
// or a DATA reply that is positive but not the one the protocol calls for
// is an error, never success: a 221 greeting returned no client and no
// error (the daemon crashed on it), and a 250 to DATA counted as
// delivered with no octet sent.
func TestClientPositiveRepliesOfTheWrongKind(t *testing.T) {
	t.Parallel()
	for _, g := range []string{"221 go away\r\n", "250 hello\r\n", "354 what\r\n"} {
		nc, err := net.Dial("tcp", scripted(t, g))
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewClient(nc, 2*time.Second)
		nc.Close()
		if err == nil || c != nil {
			t.Errorf("greeting %q: client %v, err %v", g, c, err)
		}
	}
	dial := func(replies ...string) *Client {
		t.Helper()
		nc, err := net.Dial("tcp", scripted(t, "220 mx.test\r\n", replies...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		c, err := NewClient(nc, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial("250-mx.test\r\n250 STARTTLS\r\n", "250 sure\r\n")
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(context.Background(), &tls.Config{InsecureSkipVerify: true}); !errors.Is(err, ErrBadReply) {
		t.Errorf("STARTTLS answered 250: %v, want ErrBadReply", err)
	}
	c = dial("250 mx.test\r\n", "250 ok\r\n", "250 ok\r\n", "250 queued?\r\n")
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(Envelope{From: "a@client.test", Rcpts: []EnvelopeRcpt{{Addr: "b@mx.test"}}}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	if !errors.Is(err, ErrBadReply) || res.Data.Code == 250 {
		t.Errorf("DATA answered 250: %+v, %v; want ErrBadReply", res, err)
	}
}

// TestClientRcpt252SendsTheMessage: a 2xx other than 250 to RCPT accepts
// the recipient (as Postfix takes it), so the message itself is sent, not
// an empty one ended at once.
func TestClientRcpt252SendsTheMessage(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	scriptedMX(t, ln, func(nc net.Conn, br *bufio.Reader) {
		nc.Write([]byte("220 mx.test\r\n"))
		br.ReadString('\n')
		nc.Write([]byte("250-mx.test\r\n250 PIPELINING\r\n"))
		for range 3 {
			br.ReadString('\n')
		}
		nc.Write([]byte("250 ok\r\n252 2.1.5 will try\r\n354 go\r\n"))
		var msg strings.Builder
		for {
			l, err := br.ReadString('\n')
			if err != nil || l == ".\r\n" {
				break
			}
			msg.WriteString(l)
		}
		nc.Write([]byte("250 2.0.0 queued\r\n"))
		got <- msg.String()
	})
	c := helloClient(t, ln.Addr().String())
	res, err := c.Send(Envelope{From: "a@client.test", Rcpts: []EnvelopeRcpt{{Addr: "b@mx.test"}}}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	if err != nil || res.Data.Code != 250 {
		t.Errorf("Send: %+v %v", res, err)
	}
	if m := <-got; !strings.Contains(m, "body") {
		t.Errorf("the MX got %q", m)
	}
}

// TestClientSTARTTLSInjection: replies a server (or a man in the middle)
// sent in plaintext after its 220 to STARTTLS are never read as replies
// under TLS (CVE-2011-0411's client side). Here they arrive in the same
// segment as the 220 and announce AUTH and a 250 for the next command;
// the client must either drop them and read the real replies under TLS,
// or fail the handshake, never act on them.
func TestClientSTARTTLSInjection(t *testing.T) {
	t.Parallel()
	cfg := testTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scriptedMX(t, ln, func(nc net.Conn, br *bufio.Reader) {
		nc.Write([]byte("220 mx.test\r\n"))
		br.ReadString('\n') // EHLO
		nc.Write([]byte("250-mx.test\r\n250 STARTTLS\r\n"))
		br.ReadString('\n') // STARTTLS
		nc.Write([]byte("220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n250 2.1.0 injected sender ok\r\n"))
		tc := tls.Server(nc, cfg)
		if tc.Handshake() != nil {
			return
		}
		tbr := bufio.NewReader(tc)
		if l, _ := tbr.ReadString('\n'); strings.HasPrefix(l, "EHLO") {
			tc.Write([]byte("250-mx.test\r\n250 SIZE 1000\r\n"))
		}
		if l, _ := tbr.ReadString('\n'); strings.HasPrefix(l, "MAIL") {
			tc.Write([]byte("550 5.7.1 real refusal\r\n"))
		}
		time.Sleep(200 * time.Millisecond)
	})
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := NewClient(nc, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(context.Background(), &tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Logf("handshake failed on the injected octets (safe): %v", err)
		return
	}
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Ext("AUTH"); ok {
		t.Error("AUTH announced in plaintext before the handshake was taken as said under TLS")
	}
	if _, ok := c.Ext("SIZE"); !ok {
		t.Error("the EHLO reply under TLS was not the one read")
	}
	res, err := c.Send(Envelope{From: "a@client.test", Rcpts: []EnvelopeRcpt{{Addr: "b@mx.test"}}}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	if res.Mail.Code != 550 {
		t.Errorf("MAIL reply %+v (err %v), want the real 550, not the injected 250", res.Mail, err)
	}
}

// TestClientPipelinedDataRefused: with PIPELINING, a refusal of DATA is
// the accepted recipients' result, and a 250 to DATA is an error, never a
// delivery. The refusal was dropped, and the outbound queue retried a
// 554 to DATA as 451 4.4.2 until the message expired (red-team run).
func TestClientPipelinedDataRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		data    string
		code    int
		wantErr bool
	}{
		{"554 5.5.0 no data for you\r\n", 554, false},
		{"451 4.3.0 try later\r\n", 451, false},
		{"250 2.0.0 ok?\r\n", 0, true},
	} {
		nc, err := net.Dial("tcp", scripted(t, "220 mx.test\r\n", "250-mx.test\r\n250 PIPELINING\r\n", "250 ok\r\n", "250 ok\r\n", tc.data))
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewClient(nc, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Hello("client.test"); err != nil {
			t.Fatal(err)
		}
		res, err := c.Send(Envelope{From: "a@client.test", Rcpts: []EnvelopeRcpt{{Addr: "b@mx.test"}}}, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
		if tc.wantErr {
			if !errors.Is(err, ErrBadReply) || res.Data.Code == 250 {
				t.Errorf("DATA %q: %+v, %v; want ErrBadReply", tc.data, res.Data, err)
			}
		} else if err != nil || res.Data.Code != tc.code || res.Rcpts[0].Code != 250 {
			t.Errorf("DATA %q: data %+v rcpts %+v err %v; want the refusal as the result", tc.data, res.Data, res.Rcpts, err)
		}
		nc.Close()
	}
}
