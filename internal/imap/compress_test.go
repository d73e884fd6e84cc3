package imap_test

import (
	"bufio"
	"compress/flate"
	"net"
	"strings"
	"testing"
	"time"
)

// deflateConn is a client's side of COMPRESS=DEFLATE (RFC 4978), on the
// standard library's DEFLATE: each write is sent with a sync flush.
type deflateConn struct {
	net.Conn
	r *bufio.Reader
	w *flate.Writer
}

func newDeflateConn(nc net.Conn, br *bufio.Reader) *deflateConn {
	w, _ := flate.NewWriter(nc, flate.DefaultCompression)
	return &deflateConn{Conn: nc, r: bufio.NewReader(flate.NewReader(br)), w: w}
}

func (d *deflateConn) Read(p []byte) (int, error) { return d.r.Read(p) }
func (d *deflateConn) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	if err == nil {
		err = d.w.Flush()
	}
	return n, err
}

// TestCompressDeflate: after COMPRESS DEFLATE, commands, a large FETCH,
// IDLE with a delivery (the server writes with pooled compressors, burst
// by burst) and a literal all pass through one DEFLATE stream each way;
// a second COMPRESS gets NO [COMPRESSIONACTIVE].
func TestCompressDeflate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	big := "Subject: big\r\n\r\n" + strings.Repeat("all work and no play makes jack a dull boy\r\n", 20000)
	e.deliver(t, big)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	if out := c.do("x CAPABILITY", "x OK"); !contains(out, "COMPRESS=DEFLATE") {
		t.Fatalf("no COMPRESS=DEFLATE: %q", out)
	}
	c.do("z COMPRESS DEFLATE", "z OK")
	dc := newDeflateConn(c.nc, c.br)
	c.nc, c.br = dc, bufio.NewReader(dc)

	for round := range 3 {
		out := c.do("f FETCH 1 BODY.PEEK[]", "f OK")
		if !strings.Contains(out[0], "BODY[] {"+fmtInt(len(big))+"}\n"+big+")") {
			t.Fatalf("round %d: FETCH through DEFLATE: %d lines, %.200q", round, len(out), out)
		}
		c.do("n NOOP", "n OK")
	}
	c.send("a APPEND INBOX {19}\r\n")
	c.line("+ ")
	c.send("Subject: a\r\n\r\nhello\r\n")
	l := c.readLine()
	for ; !strings.HasPrefix(l, "a "); l = c.readLine() {
	}
	if !strings.HasPrefix(l, "a OK") {
		t.Fatalf("APPEND through DEFLATE: %q", l)
	}
	c.send("i IDLE\r\n")
	c.line("+ ")
	e.deliver(t, "Subject: new\r\n\r\nbody\r\n")
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.line("* 3 EXISTS")
	c.send("DONE\r\n")
	c.line("i OK")
	c.do("y COMPRESS DEFLATE", "y NO [COMPRESSIONACTIVE]")
	c.do("l LOGOUT", "l OK")
}
