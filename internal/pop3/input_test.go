package pop3

import (
	"strings"
	"testing"
	"time"
)

// TestSTLSInjection: plaintext pipelined behind STLS is discarded
// (CVE-2011-0411); nothing answers it after the handshake.
func TestSTLSInjection(t *testing.T) {
	t.Parallel()
	for _, injected := range []string{"CAPA\r\n", "USER me@example.test\r\nPASS secret pass\r\nSTAT\r\n"} {
		b := newBackend(testMessages...)
		_, addr := testServer(t, b, nil)
		c := dial(t, addr)
		c.send("STLS\r\n" + injected)
		c.expect("+OK Begin TLS negotiation")
		c.handshake()
		c.silent(300 * time.Millisecond)
		c.cmd("CAPA", "+OK capability list follows")
		c.multi()
		c.cmd("STAT", "-ERR command not valid in this state") // not logged in
		c.cmd("QUIT", "+OK pop.test POP3 server signing off")
		c.closed()
		if _, opens, _, _ := b.state(); opens != 0 {
			t.Errorf("injected login opened the maildrop")
		}
	}
}

// TestSTLSHandshakeFailure: garbage instead of a ClientHello closes.
func TestSTLSHandshakeFailure(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), nil)
	c := dial(t, addr)
	c.cmd("STLS", "+OK Begin TLS negotiation")
	c.send("this is not TLS\r\n")
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.br.ReadString('\n'); err == nil {
		t.Error("connection still open")
	}
}

// TestLongLine: RFC 2449 §4 limits, with the line skipped and the session
// going on.
func TestLongLine(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), func(o *Options) { o.MaxErrors = 100 })
	c := dial(t, addr)
	c.cmd(strings.Repeat("A", 510), "-ERR unknown command") // 512 with CRLF: allowed
	c.cmd(strings.Repeat("A", 511), "-ERR line too long")   // 513
	c.cmd(strings.Repeat("B", 20000), "-ERR line too long") // past the read buffer
	c.cmd("USER "+strings.Repeat("x", 600), "-ERR line too long")
	c.cmd("CAPA", "+OK capability list follows")
	c.multi()
}

// TestBareLF: RFC 1939 §3 wants CRLF; a bare LF line is refused and the
// session goes on. So are NUL and a CR inside the line.
func TestBareLF(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), func(o *Options) { o.MaxErrors = 100 })
	c := dial(t, addr)
	c.send("CAPA\n")
	c.expect("-ERR lines must end with CRLF")
	c.send("\n")
	c.expect("-ERR lines must end with CRLF")
	c.send("CA\x00PA\r\n")
	c.expect("-ERR invalid characters in command")
	c.send("CAPA\rQUIT\r\n")
	c.expect("-ERR invalid characters in command")
	c.cmd("CAPA", "+OK capability list follows")
	c.multi()
	c.cmd("QUIT", "+OK ...")
	c.closed()
}

// TestGarbage: unknown commands are errors; MaxErrors of them close.
func TestGarbage(t *testing.T) {
	t.Parallel()
	_, addr := testServer(t, newBackend(), func(o *Options) { o.MaxErrors = 5 })
	c := dial(t, addr)
	c.run(`
		C: GET / HTTP/1.1
		S: -ERR unknown command
		C: HELO example.test
		S: -ERR unknown command
		C:
		S: -ERR unknown command
		C: APOP me@example.test c4c9334bac560ecc979e58001b3e22fb
		S: -ERR unknown command
		C: noop
		S: -ERR command not valid in this state
		S: -ERR too many errors`)
	c.closed()
}
