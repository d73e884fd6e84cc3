package imap

import (
	"bufio"
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
	"strings"
	"sync/atomic"
	"time"
)

// state is the connection state (RFC 9051 §3).
type state int

const (
	stateNotAuth state = iota
	stateAuth
	stateSelected
)

// conn is one IMAP connection. Everything runs on its goroutine, except
// interrupt and kill (shutdown) and the line reader during IDLE.
type conn struct {
	s      *Server
	raw    net.Conn
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	remote netip.AddrPort
	id     string
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	deadline time.Time
	waiting  atomic.Bool // blocked reading a new command: shutdown may interrupt
	noFlush  atomic.Bool // IDLE: the reading goroutine must leave the writer alone

	state   state
	tls     bool
	user    User
	release func() // per-user connection count

	headerUser uint32 // the user's number in the header cache, once asked
	mbox       *selected

	condstore, qresync, utf8, rev2 bool

	compressed bool      // COMPRESS=DEFLATE is on (compress.go)
	zin        io.Reader // the client's DEFLATE stream, inflated
	zout       deflater  // the compressor of the burst being written

	errors int
	quit   bool

	checks   uint      // alive calls, so that only some look at the socket
	lastPeek time.Time // the last look (peer.go)
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, raw: nc, nc: nc, remote: remoteAddr(nc), id: newID()}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.log = s.log.With("cid", c.id, "remote", c.remote.String()) // the daemon's logger names the service (imap or imaps)
	// 4 KiB each: commands and responses that are longer pass through in
	// pieces, and thousands of idle sessions keep only this much.
	c.br = bufio.NewReaderSize(timedReader{c}, 4096)
	c.bw = bufio.NewWriterSize(connWriter{c}, 4096)
	return c
}

// timedReader reads with the current deadline and flushes pending output
// first, so replies go out exactly when the client may wait for them.
type timedReader struct{ c *conn }

func (t timedReader) Read(p []byte) (int, error) {
	c := t.c
	if !c.noFlush.Load() && c.pending() {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	if err := c.nc.SetReadDeadline(c.deadline); err != nil {
		return 0, err
	}
	if c.waiting.Load() && c.s.closing.Load() {
		return 0, errShuttingDown
	}
	return c.nc.Read(p)
}

type connWriter struct{ c *conn }

func (w connWriter) Write(p []byte) (int, error) {
	_ = w.c.nc.SetWriteDeadline(time.Now().Add(5 * time.Minute))
	return w.c.nc.Write(p)
}

var errShuttingDown = errors.New("shutting down")

func (c *conn) interrupt() {
	if c.waiting.Load() {
		_ = c.raw.SetReadDeadline(time.Now())
	}
}

func (c *conn) kill() {
	c.cancel()
	_ = c.raw.Close()
}

func (c *conn) serve() {
	defer c.close()
	defer c.recoverPanic()
	if c.s.opts.ImplicitTLS && !c.handshake() {
		return
	}
	c.writef("* OK [CAPABILITY %s] %s Posthorn IMAP ready\r\n", c.capabilities(), c.s.opts.Hostname)
	for !c.quit {
		if err := c.command(); err != nil {
			c.ended(err)
			return
		}
		if c.errors >= c.s.opts.MaxErrors {
			c.writef("* BYE Too many errors\r\n")
			return
		}
		if c.s.closing.Load() && !c.quit {
			c.writef("* BYE Server shutting down\r\n")
			return
		}
	}
}

// ended reports why the connection stopped reading.
func (c *conn) ended(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errShuttingDown) || c.s.closing.Load():
		c.writef("* BYE Server shutting down\r\n")
	case errors.As(err, &ne) && ne.Timeout():
		c.writef("* BYE Autologout; idle for too long\r\n")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		c.log.Debug("imap connection error", "err", err)
	}
}

func (c *conn) close() {
	c.unselect()
	if c.user != nil {
		c.user.Close()
	}
	if c.release != nil {
		c.release()
	}
	_ = c.flush()
	c.cancel()
	_ = c.nc.Close()
}

func (c *conn) recoverPanic() {
	if r := recover(); r != nil {
		c.s.panics.Add(1)
		c.log.Error("imap session panic", "err", fmt.Sprint(r), "stack", string(debug.Stack()))
		c.writef("* BYE Internal error\r\n")
	}
}

// handshake runs TLS on the raw connection (implicit TLS and STARTTLS).
func (c *conn) handshake() bool {
	tc := tls.Server(c.raw, c.s.opts.TLS)
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.log.Info("imap tls handshake failed", "err", err)
		return false
	}
	_ = tc.SetDeadline(time.Time{})
	c.nc, c.tls = tc, true
	c.br.Reset(timedReader{c})
	c.bw.Reset(connWriter{c})
	return true
}

// writef writes to the client (flushed before the next read).
func (c *conn) writef(format string, args ...any) {
	fmt.Fprintf(c.bw, format, args...)
}

// respError is a tagged NO or BAD with a response code.
type respError struct {
	status, code, text string
}

func (e *respError) Error() string { return e.status + " " + e.text }

func no(code, text string) error  { return &respError{"NO", code, text} }
func bad(code, text string) error { return &respError{"BAD", code, text} }

// tagged writes a tagged response.
func (c *conn) tagged(tag, status, code, text string) {
	if code != "" {
		code = "[" + code + "] "
	}
	c.writef("%s %s %s%s\r\n", tag, status, code, text)
}

// ok ends a command successfully, after sending pending mailbox updates.
func (c *conn) ok(tag, code, text string) {
	c.poll(true)
	c.tagged(tag, "OK", code, text)
}

// okNoExpunge is ok for FETCH, STORE and SEARCH, during which no EXPUNGE
// may be sent (RFC 9051 §7.5.1).
func (c *conn) okNoExpunge(tag, code, text string) {
	c.poll(false)
	c.tagged(tag, "OK", code, text)
}

// continuation asks for a literal's data (RFC 9051 §7.5).
func (c *conn) continuation() error {
	c.writef("+ Ready for literal data\r\n")
	return c.flush()
}

func (c *conn) newScanner() *scanner {
	return &scanner{br: c.br, budget: maxCommand, cont: c.continuation, utf8: c.utf8}
}

// command reads and runs one command.
func (c *conn) command() error {
	c.deadline = time.Now().Add(c.s.opts.IdleTimeout)
	if c.state == stateNotAuth {
		c.deadline = time.Now().Add(c.s.opts.LoginTimeout)
	}
	c.waiting.Store(true)
	_, err := c.br.Peek(1)
	c.waiting.Store(false)
	if err != nil {
		return err
	}
	sc := c.newScanner()
	tag, name, err := readCommandName(sc)
	if err != nil {
		if tag == "" {
			tag = "*"
		}
		return c.refuse(tag, err, sc)
	}
	cmd, ok := commands[name]
	switch {
	case !ok:
		return c.refuse(tag, syntaxf("unknown command %s", name), sc)
	case !cmd.allowed(c.state):
		return c.refuse(tag, syntaxf("%s not allowed now", name), sc)
	}
	if err := cmd.fn(c, tag, sc); err != nil {
		return c.refuse(tag, err, sc)
	}
	return nil
}

// readCommandName reads "tag SP name", with "UID name" as one name.
func readCommandName(sc *scanner) (string, string, error) {
	tag, err := sc.tag()
	if err != nil {
		return "", "", err
	}
	if err := sc.sp(); err != nil {
		return tag, "", err
	}
	name, err := sc.atom()
	if err != nil {
		return tag, "", err
	}
	name = strings.ToUpper(name)
	if name == "UID" {
		if err := sc.sp(); err != nil {
			return tag, "", err
		}
		sub, err := sc.atom()
		if err != nil {
			return tag, "", err
		}
		name += " " + strings.ToUpper(sub)
	}
	return tag, name, nil
}

// refuse answers a failed command. Syntax errors skip the rest of the
// line (unless its end was already read); I/O errors end the connection.
func (c *conn) refuse(tag string, err error, sc *scanner) error {
	var re *respError
	var le *literalError
	switch {
	case errors.As(err, &re):
		if re.status == "BAD" {
			c.errors++
		}
		c.tagged(tag, re.status, re.code, re.text)
		// Refused before the end of the line (BADCHARSET, a bad mailbox
		// name): the rest of the line is this command's, not another.
		return c.skipRest(sc)
	case errors.As(err, &le):
		c.errors++
		if le.n > maxCommand {
			c.writef("* BYE Literal too big\r\n")
			return err
		}
		c.tagged(tag, "BAD", "TOOBIG", "Literal too big")
		if _, derr := c.br.Discard(int(le.n)); derr != nil {
			return derr
		}
		return c.skipLineOrBye()
	case errors.Is(err, errSyntax), errors.Is(err, errTooBig):
		c.errors++
		c.tagged(tag, "BAD", "", cleanText(err.Error()))
		return c.skipRest(sc)
	case errors.Is(err, ErrTemporary):
		c.tagged(tag, "NO", "UNAVAILABLE", "Temporary failure, try again")
		return nil
	case errors.Is(err, errLineTooLong):
		c.writef("* BYE Line too long\r\n")
	}
	return err
}

// skipRest skips what is left of a refused command's line, unless its end
// was read; a literal too big to skip ends the connection.
func (c *conn) skipRest(sc *scanner) error {
	if sc.eol {
		return nil
	}
	return c.skipLineOrBye()
}

// skipLineOrBye skips the rest of a refused line and says BYE when that
// ends the session.
func (c *conn) skipLineOrBye() error {
	err := skipLine(c.br)
	switch {
	case errors.Is(err, errTooBig):
		c.writef("* BYE Literal too big\r\n")
	case errors.Is(err, errLineTooLong):
		c.writef("* BYE Line too long\r\n")
	}
	return err
}

// cleanText keeps a response text on one line.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// quote renders s as a quoted string, or as a literal when it cannot be
// quoted (RFC 9051 §4.3). Non-ASCII is quoted only in UTF-8 mode.
func (c *conn) quote(s string) string {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b == '\r' || b == '\n' || b == 0 || (b >= 0x80 && !c.utf8) {
			return "{" + strconv.Itoa(len(s)) + "}\r\n" + s
		}
	}
	return `"` + quoteEscaper.Replace(s) + `"`
}

// nquote is quote or NIL for "".
func (c *conn) nquote(s string) string {
	if s == "" {
		return "NIL"
	}
	return c.quote(s)
}

// mailboxName renders a name for the client: UTF-8, or modified UTF-7.
func (c *conn) mailboxName(name string) string {
	if !c.utf8 {
		name = encodeUTF7(name)
	}
	return c.quote(name)
}
