package pop3

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
	"sync/atomic"
	"time"
)

// state is a POP3 session state (RFC 1939 §3). UPDATE is not a state a
// session waits in: QUIT passes through it and closes.
type state uint8

const (
	authorization state = 1 << iota
	transaction
)

// conn is one POP3 connection. Everything but interruptIdle and kill runs
// on the connection's goroutine.
type conn struct {
	s      *Server
	raw    net.Conn // the TCP connection
	nc     net.Conn // raw, or the TLS connection on top of it
	br     *bufio.Reader
	bw     *bufio.Writer
	remote netip.AddrPort
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	deadline time.Time   // read deadline of the current wait
	idle     atomic.Bool // waiting for the client: Shutdown may interrupt
	quit     bool        // close after this command
	errors   int         // client errors so far

	state  state
	secure bool   // TLS is on
	user   string // from USER, waiting for PASS

	// TRANSACTION state.
	drop      Maildrop
	msgs      []Message
	deleted   []bool
	retrieved int
}

// saslLineMax bounds a SASL response line: sasl.MaxResponse in base64
// with CRLF. RFC 5034 §4 does not hold responses to the command limit.
const saslLineMax = (12288+2)/3*4 + 2

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, raw: nc, nc: nc, remote: addrPort(nc.RemoteAddr()), state: authorization}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.log = s.log.With("cid", newID(), "remote", c.remote.String())
	c.br = bufio.NewReaderSize(timedReader{c}, max(s.opts.MaxLineLength, saslLineMax))
	c.bw = bufio.NewWriterSize(connWriter{c}, 8192)
	return c
}

// timedReader reads from the current connection with the wait's deadline.
// It flushes pending responses first: answers to pipelined commands go out
// together, exactly when the server would otherwise wait (RFC 2449 §6.6).
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
// hold its maildrop lock for long.
type connWriter struct{ c *conn }

func (w connWriter) Write(p []byte) (int, error) {
	_ = w.c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return w.c.nc.Write(p)
}

var errShutdownRead = errors.New("pop3: server shutting down")

// interruptIdle makes a session that waits for the client stop waiting.
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
// answered with a generic -ERR before the connection closes.
func (c *conn) recoverPanic() {
	if r := recover(); r != nil {
		c.s.panics.Add(1)
		c.log.Error("pop3 session panic", "err", fmt.Sprint(r), "stack", string(debug.Stack()))
		c.reply(errInternal)
	}
}

// session greets and runs commands until QUIT, an error or shutdown.
func (c *conn) session() {
	c.log.Debug("pop3 connect")
	if c.s.opts.ImplicitTLS && !c.handshake() {
		return
	}
	c.ok("%s POP3 ready", c.s.opts.Hostname)
	for !c.quit {
		line, bad, err := c.readLine(c.s.opts.MaxLineLength)
		switch {
		case err != nil:
			c.readFailed(err)
			return
		case bad != nil:
			c.fail(bad)
		default:
			c.dispatch(line)
		}
		switch {
		case c.quit: // the command has answered already
		case c.errors >= c.s.opts.MaxErrors:
			c.reply(errTooManyErrors)
		case c.s.closing.Load():
			c.reply(errShutdown)
		}
	}
}

// close releases the maildrop without committing anything (RFC 1939 §6:
// only QUIT enters UPDATE), then the connection.
func (c *conn) close() {
	_ = c.bw.Flush()
	c.cancel()
	_ = c.nc.Close()
	c.release()
	c.log.Debug("pop3 disconnect")
}

// release closes the maildrop once.
func (c *conn) release() {
	if d := c.drop; d != nil {
		c.drop = nil
		d.Close()
	}
}

// readFailed ends the session after a failed read.
func (c *conn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errShutdownRead) || c.s.closing.Load():
		c.reply(errShutdown)
	case errors.As(err, &ne) && ne.Timeout():
		// RFC 1939 §3: on autologout the server closes without a
		// response and without entering UPDATE.
		c.log.Info("pop3 autologout", "after", c.s.opts.CommandTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		c.log.Debug("pop3 read", "err", err)
	}
	c.quit = true
}

// readLine reads one line of at most limit octets with its CRLF and
// returns it without. A line that breaks the rules is consumed and
// returned as bad; err means the connection is gone.
func (c *conn) readLine(limit int) (line string, bad *failure, err error) {
	c.deadline = time.Now().Add(c.s.opts.CommandTimeout)
	c.idle.Store(true)
	defer c.idle.Store(false)
	b, err := c.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		if err := c.skipLine(); err != nil {
			return "", nil, err
		}
		return "", errLineTooLong, nil
	case err != nil:
		return "", nil, err
	case len(b) > limit:
		return "", errLineTooLong, nil
	case len(b) < 2 || b[len(b)-2] != '\r':
		return "", errBareLF, nil // RFC 1939 §3: lines end with CRLF
	}
	b = b[:len(b)-2]
	if bytes.ContainsAny(b, "\r\x00") {
		return "", errBadChars, nil
	}
	return string(b), nil, nil
}

// skipLine discards the rest of an over-long line.
func (c *conn) skipLine() error {
	for {
		_, err := c.br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

// handshake runs the TLS handshake on the raw connection, for implicit TLS
// and STLS alike, and reports success. Resetting the reader drops any
// plaintext buffered so far.
func (c *conn) handshake() bool {
	tc := tls.Server(c.raw, c.s.opts.TLS)
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.log.Info("pop3 tls handshake failed", "err", err)
		return false
	}
	_ = tc.SetDeadline(time.Time{})
	c.nc, c.secure = tc, true
	c.br.Reset(timedReader{c})
	c.bw.Reset(connWriter{c})
	return true
}

// ok queues a positive single-line response; it is flushed before the
// next read. Texts never echo client input.
func (c *conn) ok(format string, args ...any) {
	if format == "" {
		_, _ = c.bw.WriteString("+OK\r\n")
		return
	}
	_, _ = c.bw.WriteString("+OK ")
	_, _ = fmt.Fprintf(c.bw, format, args...)
	_, _ = c.bw.WriteString("\r\n")
}

// multiline queues "+OK title", the lines and the terminating "."
// (RFC 1939 §3). The lines are ours and never start with ".".
func (c *conn) multiline(title string, lines []string) {
	c.ok("%s", title)
	for _, l := range lines {
		_, _ = c.bw.WriteString(l + "\r\n")
	}
	_, _ = c.bw.WriteString(".\r\n")
}

// reply queues a negative response; a failure that hangs up ends the
// session after it.
func (c *conn) reply(f *failure) {
	_, _ = c.bw.WriteString(f.line())
	if f.hangup {
		c.quit = true
	}
}

// fail answers a client error and counts it.
func (c *conn) fail(f *failure) {
	c.errors++
	c.reply(f)
}
