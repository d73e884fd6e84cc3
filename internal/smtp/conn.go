package smtp

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
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one SMTP connection: the command loop and the transaction state.
// Everything but interruptIdle and kill runs on the connection's goroutine.
type conn struct {
	s    *Server
	raw  net.Conn // the TCP connection
	nc   net.Conn // raw, or the TLS connection on top of it
	br   *bufio.Reader
	bw   *bufio.Writer
	info ConnInfo
	sess Session
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	deadline time.Time   // read deadline of the current phase
	idle     atomic.Bool // waiting for a command: shutdown may interrupt
	quit     bool        // close after this command

	helo   bool // HELO or EHLO seen (since the last STARTTLS)
	errors int  // protocol errors so far
	junk   int  // commands that move no mail (NOOP, RSET, …)

	// Transaction state, cleared by resetTx.
	mail      bool
	utf8      bool
	rcpts     int
	overshoot int // RCPTs refused for the recipient limit (cmdRcpt)
	bdat      *bdatState
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, raw: nc, nc: nc}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.info = ConnInfo{
		ID:       newID(),
		Service:  s.opts.Service,
		Local:    addrPort(nc.LocalAddr()),
		Remote:   addrPort(nc.RemoteAddr()),
		Hostname: s.opts.Hostname,
		PeerUID:  peerUID(nc),
		LMTP:     s.opts.LMTP,
	}
	c.log = s.log.With("cid", c.info.ID, "remote", c.info.Remote.String(), "service", s.opts.Service)
	size := max(4096, s.opts.MaxCommandLength+2)
	c.br = bufio.NewReaderSize(timedReader{c}, size)
	c.bw = bufio.NewWriterSize(connWriter{c}, 4096)
	return c
}

// dataReaders are the read buffers of messages being received: 64 KiB
// take a 100 KiB message in a few reads where the 4 KiB command buffer
// needs 25, and they go back to the pool when the message is in.
var dataReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// bigReader gives the session a 64 KiB read buffer for a message (its
// command buffer is empty then: cmdData checks) and returns the function
// that gives the command buffer back. If the client already sent more
// (pipelined commands after the message), the big buffer stays.
func (c *conn) bigReader() func() {
	small := c.br
	c.br = dataReaders.Get().(*bufio.Reader)
	c.br.Reset(timedReader{c})
	return func() {
		if c.br.Buffered() > 0 {
			return
		}
		big := c.br
		c.br = small
		big.Reset(nil)
		dataReaders.Put(big)
	}
}

// timedReader reads from the current connection with the phase deadline.
// It flushes pending replies first: replies to pipelined commands go out
// together, exactly when the client can wait for nothing else (RFC 2920 §3).
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
		return 0, errShutdown
	}
	return c.nc.Read(p)
}

type connWriter struct{ c *conn }

func (w connWriter) Write(p []byte) (int, error) {
	_ = w.c.nc.SetWriteDeadline(time.Now().Add(w.c.s.opts.CommandTimeout))
	return w.c.nc.Write(p)
}

// interruptIdle makes a session that waits for a command stop waiting.
func (c *conn) interruptIdle() {
	if c.idle.Load() {
		_ = c.raw.SetReadDeadline(time.Now())
	}
}

// kill closes the connection under the session's feet (shutdown deadline).
func (c *conn) kill() {
	c.cancel()
	_ = c.raw.Close()
}

// serve runs the connection until QUIT, an error or shutdown.
func (c *conn) serve() {
	defer c.close()
	defer c.recoverPanic()
	c.log.Debug("smtp connect")
	if c.s.opts.ImplicitTLS && !c.handshake() {
		return
	}
	sess, err := c.s.opts.Backend.NewSession(c.ctx, &c.info)
	if err != nil {
		c.replyErr(err)
		return
	}
	c.sess = sess
	if c.s.opts.LMTP {
		c.reply(CodeReady, "", "%s LMTP Posthorn", c.s.opts.Hostname)
	} else {
		c.reply(CodeReady, "", "%s ESMTP Posthorn", c.s.opts.Hostname)
	}
	for !c.quit {
		line, err := c.readCommand()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.dispatch(line)
		if c.errors >= c.s.opts.MaxErrors {
			c.reply(CodeUnavailable, "4.7.0", "Too many errors, closing connection")
			return
		}
		if c.s.closing.Load() && !c.quit && c.bdat == nil {
			c.replyErr(errShutdown)
			return
		}
	}
}

func (c *conn) close() {
	if c.bdat != nil {
		c.bdat.abort(io.ErrUnexpectedEOF)
		c.bdat = nil
	}
	if c.sess != nil {
		c.sess.Close()
	}
	_ = c.bw.Flush()
	c.cancel()
	_ = c.nc.Close()
	c.log.Debug("smtp disconnect")
}

func (c *conn) recoverPanic() {
	if r := recover(); r != nil {
		c.s.panics.Add(1)
		c.log.Error("smtp session panic", "err", fmt.Sprint(r), "stack", string(debug.Stack()))
		c.reply(CodeUnavailable, "4.3.0", "Internal error, closing connection")
	}
}

// readFailed ends the session after a failed command read.
func (c *conn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errShutdown) || c.s.closing.Load():
		c.replyErr(errShutdown)
	case errors.As(err, &ne) && ne.Timeout():
		c.reply(CodeUnavailable, "4.4.2", "Timeout waiting for command, closing connection")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		c.log.Debug("smtp read", "err", err)
	}
}

var (
	errLineTooLong = &Error{Code: CodeSyntax, Enhanced: "5.5.2", Msg: "Command line too long"}
	errBareLFCmd   = &Error{Code: CodeSyntax, Enhanced: "5.5.2", Msg: "Command lines must end with CRLF"}
	errBadChars    = &Error{Code: CodeSyntax, Enhanced: "5.5.2", Msg: "Invalid characters in command"}
)

// readCommand returns the next command line without its CRLF. A line that
// breaks the rules is consumed and answered here; the loop then goes on.
func (c *conn) readCommand() (string, error) {
	for {
		// Between BDAT chunks a message is in progress: shutdown lets
		// it finish, as it does a DATA transfer.
		c.idle.Store(c.bdat == nil)
		line, err := c.readLine()
		c.idle.Store(false)
		if err == nil {
			return line, nil
		}
		if err.Err != nil {
			return "", err.Err
		}
		c.fail(err)
	}
}

// readLine reads one line under the command rules. An *Error with Err set
// means the connection failed; otherwise the line was refused.
func (c *conn) readLine() (string, *Error) {
	c.deadline = time.Now().Add(c.s.opts.CommandTimeout)
	if c.bdat != nil && c.bdat.deadline.Before(c.deadline) {
		c.deadline = c.bdat.deadline // the next chunk is still the message's
	}
	line, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		if err := c.skipLine(); err != nil {
			return "", &Error{Err: err}
		}
		return "", errLineTooLong
	}
	if err != nil {
		return "", &Error{Err: err}
	}
	line = line[:len(line)-1]
	if !bytes.HasSuffix(line, []byte{'\r'}) {
		return "", errBareLFCmd // RFC 5321 §2.3.8: lines end with CRLF
	}
	line = line[:len(line)-1]
	if len(line) > c.s.opts.MaxCommandLength {
		return "", errLineTooLong // RFC 5321 §4.5.3.1.4
	}
	if bytes.ContainsAny(line, "\r\x00") {
		return "", errBadChars
	}
	return string(line), nil
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

// reply queues one single-line reply; it is flushed before the next read.
func (c *conn) reply(code int, enhanced, format string, args ...any) {
	c.writeReply(Reply{Code: code, Enhanced: enhanced, Lines: []string{fmt.Sprintf(format, args...)}})
}

func (c *conn) writeReply(r Reply) {
	var b strings.Builder
	r.format(&b)
	_, _ = c.bw.WriteString(b.String())
	if r.Code >= 400 {
		c.log.Debug("smtp reply", "code", r.Code, "text", strings.Join(r.Lines, " "))
	}
}

// fail answers with a protocol error and counts it.
func (c *conn) fail(e *Error) {
	c.errors++
	c.reply(e.Code, e.Enhanced, "%s", e.Msg)
}

// replyErr answers a backend error. Anything that is not an *Error is an
// internal failure: the client gets a generic 451, the log gets the cause.
func (c *conn) replyErr(err error) {
	var e *Error
	if !errors.As(err, &e) {
		c.log.Error("smtp backend", "err", err)
		e = &Error{Code: CodeLocalError, Enhanced: "4.3.0", Msg: "Local error in processing, try again later"}
	} else if e.Err != nil {
		c.log.Info("smtp refused", "code", e.Code, "err", e.Err)
	}
	if e.Code >= 400 {
		c.errors++
	}
	c.reply(e.Code, e.Enhanced, "%s", e.Msg)
}

// resetTx ends the current mail transaction.
func (c *conn) resetTx() {
	if c.bdat != nil {
		c.bdat.abort(errAborted)
		c.bdat = nil
	}
	if c.mail && c.sess != nil {
		c.sess.Reset()
	}
	c.mail, c.utf8, c.rcpts, c.overshoot = false, false, 0, 0
}

var errAborted = errors.New("smtp: transaction aborted")

// handshake runs the TLS handshake on the raw connection, for implicit TLS
// and STARTTLS alike. It reports success.
func (c *conn) handshake() bool {
	tc := tls.Server(c.raw, c.s.opts.TLS)
	_ = tc.SetDeadline(time.Now().Add(c.s.opts.TLSHandshakeTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.log.Info("smtp tls handshake failed", "err", err)
		return false
	}
	_ = tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.nc, c.info.TLS = tc, &st
	c.br.Reset(timedReader{c})
	c.bw.Reset(connWriter{c})
	return true
}
