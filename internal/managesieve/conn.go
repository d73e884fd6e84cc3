package managesieve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"
)

// state is a ManageSieve session state (RFC 5804 §4: command-nonauth,
// command-auth; command-any is valid in both).
type state uint8

const (
	nonAuth state = 1 << iota
	authenticated
)

// conn is one ManageSieve connection. Everything but interruptIdle and
// kill runs on the connection's goroutine.
type conn struct {
	s      *Server
	raw    net.Conn // the TCP connection
	nc     net.Conn // raw, or the TLS connection on top of it
	br     *bufio.Reader
	bw     *bufio.Writer
	remote netip.AddrPort
	// baseLog has the connection's keys; log adds the account once
	// authenticated.
	baseLog, log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	deadline time.Time   // read deadline of the current wait
	idle     atomic.Bool // waiting with nothing in flight: Shutdown may interrupt
	quit     bool        // close after this command
	errors   int         // client errors so far

	state    state
	secure   bool    // TLS is on
	identity string  // authenticated user
	scripts  Scripts // open while authenticated
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, raw: nc, nc: nc, remote: addrPort(nc.RemoteAddr()), state: nonAuth}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.baseLog = s.log.With("cid", newID(), "remote", c.remote.String())
	c.log = c.baseLog
	c.br = bufio.NewReaderSize(timedReader{c}, s.opts.MaxLineLength)
	c.bw = bufio.NewWriterSize(connWriter{c}, 8192)
	return c
}

// timedReader reads from the current connection with the wait's deadline.
// It flushes pending responses first: answers to pipelined commands go out
// together, exactly when the server would otherwise wait.
type timedReader struct{ c *conn }

func (t timedReader) Read(p []byte) (int, error) {
	c := t.c
	if c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			return 0, err
		}
	}
	if err := c.nc.SetReadDeadline(c.deadline); err != nil {
		return 0, err
	}
	if c.idle.Load() && c.s.closing.Load() {
		return 0, errShutdownRead
	}
	return c.nc.Read(p)
}

// connWriter bounds every write, so a client that stops reading cannot
// hold its session for long.
type connWriter struct{ c *conn }

func (w connWriter) Write(p []byte) (int, error) {
	_ = w.c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return w.c.nc.Write(p)
}

var errShutdownRead = errors.New("managesieve: server shutting down")

// interruptIdle makes a session that waits for a command stop waiting.
func (c *conn) interruptIdle() {
	if c.idle.Load() {
		_ = c.raw.SetReadDeadline(time.Now())
	}
}

// kill closes the connection under the session's feet (Shutdown deadline).
func (c *conn) kill() {
	c.cancel()
	_ = c.raw.Close()
}

// serve runs the session, then releases everything. Both halves call the
// backend, so both are guarded against panics.
func (c *conn) serve() {
	c.guard(c.session)
	c.guard(c.close)
}

func (c *conn) guard(f func()) {
	defer c.recoverPanic()
	f()
}

// recoverPanic is the one recover of a session: counted, logged, and
// answered with a generic BYE before the connection closes.
func (c *conn) recoverPanic() {
	if r := recover(); r != nil {
		c.s.panics.Add(1)
		c.log.Error("managesieve session panic", "err", fmt.Sprint(r), "stack", string(debug.Stack()))
		c.reply(errInternal)
	}
}

// session greets and runs commands until LOGOUT, a BYE or the end of the
// connection.
func (c *conn) session() {
	c.log.Debug("managesieve connect")
	// RFC 5804 §1.7: the greeting is a capability response.
	c.capabilities()
	c.ok("", c.s.opts.Hostname+" ManageSieve ready")
	for !c.quit {
		c.command()
		switch {
		case c.quit: // the command has answered already
		case c.errors >= c.s.opts.MaxErrors:
			c.reply(errTooManyErrors)
		case c.s.closing.Load():
			c.reply(errShutdown)
		}
	}
}

// command reads and runs one command.
func (c *conn) command() {
	line, bad, err := c.readLine(true)
	switch {
	case err != nil:
		c.readFailed(err)
	case bad != nil:
		if c.skipLiterals(line) {
			c.fail(bad)
		}
	default:
		c.dispatch(line)
	}
}

// close releases the scripts, then the connection.
func (c *conn) close() {
	_ = c.bw.Flush()
	c.cancel()
	_ = c.nc.Close()
	c.release()
	c.log.Debug("managesieve disconnect")
}

// release closes the script store once.
func (c *conn) release() {
	if sc := c.scripts; sc != nil {
		c.scripts = nil
		sc.Close()
	}
}

// readFailed ends the session after a failed read.
func (c *conn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errShutdownRead) || c.s.closing.Load():
		c.reply(errShutdown)
	case errors.As(err, &ne) && ne.Timeout():
		c.log.Info("managesieve autologout", "after", c.s.opts.CommandTimeout)
		c.reply(errTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		c.log.Debug("managesieve read", "err", err)
	}
	c.quit = true
}

// tailLen is how much of an over-long line readLine keeps: enough for a
// literal header ("{4294967295+}") at its end, which skipLiterals needs.
const tailLen = 32

// readLine reads one line segment of at most MaxLineLength octets with
// its CRLF and returns it without. A line that breaks the rules is
// consumed and returned as bad, with what there is of it (the end of an
// over-long line); err means the connection is gone. idle marks a wait
// with nothing in flight (for a command or a SASL response), which
// Shutdown may interrupt.
func (c *conn) readLine(idle bool) (line []byte, bad *failure, err error) {
	c.deadline = time.Now().Add(c.s.opts.CommandTimeout)
	if idle {
		c.idle.Store(true)
		defer c.idle.Store(false)
	}
	b, err := c.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		tail, err := c.skipLine(b)
		if err != nil {
			return nil, nil, err
		}
		return tail, errLineTooLong, nil
	case err != nil:
		return nil, nil, err
	}
	line = bytes.Clone(b[:len(b)-1])
	if len(line) == 0 || line[len(line)-1] != '\r' {
		return line, errBareLF, nil // RFC 5804 §4: lines end with CRLF
	}
	line = line[:len(line)-1]
	if bytes.ContainsAny(line, "\r\x00") {
		return line, errBadChars, nil
	}
	return line, nil, nil
}

// skipLine discards the rest of an over-long line whose start is b, and
// returns its last tailLen octets without the line end.
func (c *conn) skipLine(b []byte) ([]byte, error) {
	tail := bytes.Clone(b[max(0, len(b)-tailLen):])
	for {
		b, err := c.br.ReadSlice('\n')
		tail = append(tail, b[max(0, len(b)-tailLen):]...)
		tail = bytes.Clone(tail[max(0, len(tail)-tailLen):])
		if !errors.Is(err, bufio.ErrBufferFull) {
			if err != nil {
				return nil, err
			}
			return bytes.TrimRight(tail, "\r\n"), nil
		}
	}
}

// readLiteral reads the n octets of a literal whose header ended the
// previous line segment. The buffer grows as octets arrive: a header
// alone costs no memory.
func (c *conn) readLiteral(n int64) ([]byte, error) {
	c.deadline = time.Now().Add(c.s.opts.CommandTimeout)
	var buf bytes.Buffer
	buf.Grow(int(min(n, 64<<10)))
	if _, err := io.CopyN(&buf, c.br, n); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// skipLiterals discards what follows a refused line: if the line ends in
// a literal header, the literal's octets (unbuffered) and the line after
// them, and so on. It reports whether the session goes on; when it does
// not, it has answered.
func (c *conn) skipLiterals(line []byte) bool {
	for {
		n, ok := trailingLiteral(line)
		if !ok {
			return true
		}
		if n > c.s.maxDiscard {
			c.log.Info("managesieve literal too large", "octets", n)
			c.reply(errLiteralTooLarge)
			return false
		}
		c.deadline = time.Now().Add(c.s.opts.CommandTimeout)
		if _, err := io.CopyN(io.Discard, c.br, n); err != nil {
			c.readFailed(err)
			return false
		}
		var err error
		if line, _, err = c.readLine(false); err != nil {
			c.readFailed(err)
			return false
		}
	}
}

// handshake runs the TLS handshake on the raw connection and reports
// success. Resetting the reader drops any plaintext buffered so far.
func (c *conn) handshake() bool {
	tc := tls.Server(c.raw, c.s.opts.TLS)
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.log.Info("managesieve tls handshake failed", "err", err)
		return false
	}
	_ = tc.SetDeadline(time.Time{})
	c.nc, c.secure = tc, true
	c.br.Reset(timedReader{c})
	c.bw.Reset(connWriter{c})
	return true
}

// ok queues an OK response (RFC 5804 §4 response-ok) with an optional
// response code (written as it is: "SASL" and "TAG" bring their string)
// and text. It is flushed before the next read.
func (c *conn) ok(code, text string) {
	b := []byte("OK")
	if code != "" {
		b = append(append(append(b, " ("...), code...), ')')
	}
	if text != "" {
		b = appendString(append(b, ' '), text)
	}
	_, _ = c.bw.Write(append(b, "\r\n"...))
}

// capability queues one capability line (RFC 5804 §1.7): the name, and
// the value when there is one.
func (c *conn) capability(name string, value ...string) {
	b := appendString(nil, name)
	for _, v := range value {
		b = appendString(append(b, ' '), v)
	}
	_, _ = c.bw.Write(append(b, "\r\n"...))
}

// literal queues a string as a literal line (GETSCRIPT's answer).
func (c *conn) literal(s string) {
	_, _ = c.bw.WriteString("{" + strconv.Itoa(len(s)) + "}\r\n")
	_, _ = c.bw.WriteString(s)
	_, _ = c.bw.WriteString("\r\n")
}

// reply queues a NO or BYE; a BYE ends the session after it.
func (c *conn) reply(f *failure) {
	_, _ = c.bw.WriteString(f.line())
	if f.bye {
		c.quit = true
	}
}

// fail answers a client error and counts it.
func (c *conn) fail(f *failure) {
	c.errors++
	c.reply(f)
}
