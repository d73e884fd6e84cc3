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
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

type state int

const (
	stateAuth  state = iota // AUTHORIZATION
	stateTrans              // TRANSACTION
)

// conn is one POP3 session.
type conn struct {
	s      *Server
	raw    net.Conn
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	remote netip.AddrPort
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	deadline time.Time
	waiting  atomic.Bool

	state     state
	tls       bool
	user      string // from USER
	identity  string
	drop      Maildrop
	msgs      []Message
	deleted   []bool
	errors    int
	quit      bool
	retrieved int
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, raw: nc, nc: nc, remote: remoteAddr(nc)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.log = s.log.With("remote", c.remote.String(), "service", "pop3")
	c.br = bufio.NewReaderSize(timedReader{c}, 1024)
	c.bw = bufio.NewWriterSize(connWriter{c}, 8192)
	return c
}

type timedReader struct{ c *conn }

// Read flushes pending replies, then reads with the command deadline.
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
	if c.waiting.Load() && c.s.closing.Load() {
		return 0, errShutdown
	}
	return c.nc.Read(p)
}

type connWriter struct{ c *conn }

func (w connWriter) Write(p []byte) (int, error) {
	_ = w.c.nc.SetWriteDeadline(time.Now().Add(w.c.s.opts.CommandTimeout))
	return w.c.nc.Write(p)
}

var errShutdown = errors.New("shutting down")

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
	c.ok("%s POP3 ready", c.s.opts.Hostname)
	for !c.quit {
		line, err := c.readCommand()
		if err != nil {
			if errors.Is(err, errShutdown) || c.s.closing.Load() {
				c.err("[SYS/TEMP] Server shutting down")
			}
			return
		}
		c.dispatch(line)
		if c.errors >= c.s.opts.MaxErrors {
			c.err("Too many errors")
			return
		}
	}
}

// close releases the maildrop without committing: only QUIT commits.
func (c *conn) close() {
	if c.drop != nil {
		c.drop.Close()
	}
	_ = c.bw.Flush()
	c.cancel()
	_ = c.nc.Close()
}

func (c *conn) recoverPanic() {
	if r := recover(); r != nil {
		c.s.panics.Add(1)
		c.log.Error("pop3 session panic", "err", fmt.Sprint(r), "stack", string(debug.Stack()))
		c.err("[SYS/TEMP] Internal error")
	}
}

func (c *conn) handshake() bool {
	tc := tls.Server(c.raw, c.s.opts.TLS)
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.log.Info("pop3 tls handshake failed", "err", err)
		return false
	}
	_ = tc.SetDeadline(time.Time{})
	c.nc, c.tls = tc, true
	c.br.Reset(timedReader{c})
	c.bw.Reset(connWriter{c})
	return true
}

func (c *conn) ok(format string, args ...any) {
	fmt.Fprintf(c.bw, "+OK "+format+"\r\n", args...)
}

func (c *conn) err(text string) {
	fmt.Fprintf(c.bw, "-ERR %s\r\n", text)
}

// fail answers a client error and counts it.
func (c *conn) fail(text string) {
	c.errors++
	c.err(text)
}

// readCommand reads one line: CRLF required, bounded (RFC 2449 §4).
func (c *conn) readCommand() (string, error) {
	for {
		c.deadline = time.Now().Add(c.s.opts.CommandTimeout)
		c.waiting.Store(true)
		line, err := c.br.ReadSlice('\n')
		c.waiting.Store(false)
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > c.s.opts.MaxLineLength {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = c.br.ReadSlice('\n')
			}
			if err != nil {
				return "", err
			}
			c.fail("Line too long")
			continue
		}
		if err != nil {
			return "", err
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			c.fail("Lines must end with CRLF")
			continue
		}
		line = line[:len(line)-2]
		if bytes.ContainsAny(line, "\r\x00") {
			c.fail("Invalid characters")
			continue
		}
		return string(line), nil
	}
}

// command is one POP3 command and the state it runs in.
type command struct {
	fn    func(c *conn, args []string)
	state state
}

var commands = map[string]command{
	"CAPA": {(*conn).cmdCapa, -1},
	"QUIT": {(*conn).cmdQuit, -1},
	"NOOP": {(*conn).cmdNoop, stateTrans},
	"STLS": {(*conn).cmdStls, stateAuth},
	"USER": {(*conn).cmdUser, stateAuth},
	"PASS": {(*conn).cmdPass, stateAuth},
	"AUTH": {(*conn).cmdAuth, stateAuth},
	"STAT": {(*conn).cmdStat, stateTrans},
	"LIST": {(*conn).cmdList, stateTrans},
	"UIDL": {(*conn).cmdUidl, stateTrans},
	"RETR": {(*conn).cmdRetr, stateTrans},
	"TOP":  {(*conn).cmdTop, stateTrans},
	"DELE": {(*conn).cmdDele, stateTrans},
	"RSET": {(*conn).cmdRset, stateTrans},
}

func (c *conn) dispatch(line string) {
	f := strings.Split(line, " ")
	name := strings.ToUpper(f[0])
	cmd, ok := commands[name]
	switch {
	case !ok:
		c.fail("Unknown command")
	case cmd.state >= 0 && cmd.state != c.state:
		c.fail("Command not valid in this state")
	default:
		cmd.fn(c, f[1:])
	}
}

// capabilities lists CAPA (RFC 2449 §5).
func (c *conn) capabilities() []string {
	caps := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "LOGIN-DELAY 0", "IMPLEMENTATION Posthorn"}
	if c.state == stateAuth {
		if c.tls {
			caps = append(caps, "USER", "SASL PLAIN")
		} else if c.s.opts.TLS != nil {
			caps = append(caps, "STLS")
		}
	}
	return caps
}

func (c *conn) cmdCapa(args []string) {
	c.ok("Capability list follows")
	for _, cp := range c.capabilities() {
		fmt.Fprintf(c.bw, "%s\r\n", cp)
	}
	fmt.Fprintf(c.bw, ".\r\n")
}

func (c *conn) cmdNoop([]string) { c.ok("") }

// cmdStls starts TLS (RFC 2595 §4). Plaintext pipelined after it is
// dropped, never read as if it had come through TLS.
func (c *conn) cmdStls(args []string) {
	if c.tls || c.s.opts.TLS == nil {
		c.fail("TLS not available")
		return
	}
	c.ok("Begin TLS negotiation")
	if err := c.bw.Flush(); err != nil {
		c.quit = true
		return
	}
	if n := c.br.Buffered(); n > 0 {
		c.log.Warn("pop3 discarding plaintext sent after STLS", "bytes", n)
	}
	if !c.handshake() {
		c.quit = true
		return
	}
	c.user = ""
}

func (c *conn) cmdUser(args []string) {
	if !c.tls {
		c.fail("[AUTH] TLS required: use STLS first")
		return
	}
	if len(args) != 1 || args[0] == "" {
		c.fail("Syntax: USER name")
		return
	}
	c.user = args[0]
	c.ok("Send PASS")
}

func (c *conn) cmdPass(args []string) {
	if !c.tls {
		c.fail("[AUTH] TLS required: use STLS first")
		return
	}
	if c.user == "" {
		c.fail("USER first")
		return
	}
	// RFC 1939 §7: the password is the rest of the line, spaces included.
	pw := strings.Join(args, " ")
	id, err := c.s.opts.Backend.Login(c.ctx, c.remote.Addr(), c.user, pw)
	c.user = ""
	if err != nil {
		c.authFailed(err)
		return
	}
	c.open(id)
}

func (c *conn) authFailed(err error) {
	if errors.Is(err, ErrBlocked) {
		c.err("[SYS/TEMP] Too many failed logins, try again later")
		c.quit = true
		return
	}
	if !errors.Is(err, ErrAuth) {
		c.log.Error("pop3 login", "err", err)
	}
	c.fail("[AUTH] Authentication failed")
}

// open locks the maildrop and enters TRANSACTION.
func (c *conn) open(id string) {
	drop, err := c.s.opts.Backend.Open(c.ctx, id)
	if errors.Is(err, ErrLocked) {
		c.err("[IN-USE] Mailbox locked by another POP3 session")
		c.quit = true
		return
	}
	if err != nil {
		c.log.Error("pop3 open", "err", err)
		c.err("[SYS/TEMP] Cannot open mailbox")
		c.quit = true
		return
	}
	c.identity, c.drop, c.state = id, drop, stateTrans
	c.msgs = drop.Messages()
	c.deleted = make([]bool, len(c.msgs))
	c.log = c.log.With("account", id)
	c.log.Info("pop3 login", "messages", len(c.msgs))
	c.ok("Logged in, %d messages", len(c.msgs))
}

func (c *conn) cmdQuit([]string) {
	c.quit = true
	if c.state != stateTrans {
		c.ok("Bye")
		return
	}
	var del []int
	for i, d := range c.deleted {
		if d {
			del = append(del, i)
		}
	}
	if len(del) > 0 {
		if err := c.drop.Commit(c.ctx, del); err != nil {
			c.log.Error("pop3 commit", "err", err)
			c.err("[SYS/TEMP] Could not delete messages; none were deleted")
			return
		}
	}
	c.log.Info("pop3 quit", "retrieved", c.retrieved, "deleted", len(del))
	c.ok("Bye, %d messages deleted", len(del))
}

// msg parses a message number argument, refusing deleted messages.
func (c *conn) msg(arg string) (int, bool) {
	n, err := strconv.ParseUint(arg, 10, 31)
	if err != nil || n == 0 || int(n) > len(c.msgs) || c.deleted[n-1] {
		c.fail("No such message")
		return 0, false
	}
	return int(n - 1), true
}

func (c *conn) cmdStat(args []string) {
	var n int
	var size int64
	for i, m := range c.msgs {
		if !c.deleted[i] {
			n++
			size += m.Size
		}
	}
	c.ok("%d %d", n, size)
}

func (c *conn) cmdList(args []string) {
	c.listing(args, func(i int) string { return strconv.FormatInt(c.msgs[i].Size, 10) })
}
func (c *conn) cmdUidl(args []string) { c.listing(args, func(i int) string { return c.msgs[i].UID }) }

// listing answers LIST and UIDL, for one message or all.
func (c *conn) listing(args []string, value func(int) string) {
	switch len(args) {
	case 1:
		if i, ok := c.msg(args[0]); ok {
			c.ok("%d %s", i+1, value(i))
		}
		return
	case 0:
	default:
		c.fail("Syntax error")
		return
	}
	c.ok("Listing follows")
	for i := range c.msgs {
		if !c.deleted[i] {
			fmt.Fprintf(c.bw, "%d %s\r\n", i+1, value(i))
		}
	}
	fmt.Fprintf(c.bw, ".\r\n")
}

func (c *conn) cmdDele(args []string) {
	if len(args) != 1 {
		c.fail("Syntax: DELE n")
		return
	}
	if i, ok := c.msg(args[0]); ok {
		c.deleted[i] = true
		c.ok("Message %d deleted", i+1)
	}
}

func (c *conn) cmdRset([]string) {
	for i := range c.deleted {
		c.deleted[i] = false
	}
	c.ok("%d messages", len(c.msgs))
}

func (c *conn) cmdRetr(args []string) {
	if len(args) != 1 {
		c.fail("Syntax: RETR n")
		return
	}
	if i, ok := c.msg(args[0]); ok {
		c.send(i, -1)
		c.retrieved++
	}
}

// cmdTop sends the header and n body lines (RFC 1939 §7).
func (c *conn) cmdTop(args []string) {
	if len(args) != 2 {
		c.fail("Syntax: TOP n lines")
		return
	}
	i, ok := c.msg(args[0])
	if !ok {
		return
	}
	n, err := strconv.ParseUint(args[1], 10, 31)
	if err != nil {
		c.fail("Bad line count")
		return
	}
	c.send(i, int(n))
}

// send streams a message, dot-stuffed; bodyLines < 0 means all of it.
func (c *conn) send(i, bodyLines int) {
	r, err := c.drop.Open(c.ctx, i)
	if err != nil {
		c.log.Error("pop3 open message", "err", err)
		c.err("[SYS/TEMP] Cannot read message")
		return
	}
	defer r.Close()
	c.ok("%d octets", c.msgs[i].Size)
	if err := writeDotStuffed(c.bw, r, bodyLines); err != nil {
		c.log.Error("pop3 send", "err", err)
		c.quit = true
	}
}

// writeDotStuffed copies r line by line: a leading "." is doubled, every
// line ends CRLF, and ".\r\n" ends the response. With bodyLines ≥ 0 only
// the header and that many body lines are sent.
func writeDotStuffed(w *bufio.Writer, r io.Reader, bodyLines int) error {
	br := bufio.NewReaderSize(r, 32<<10)
	inBody, n, bol := false, 0, true
	for {
		if inBody && bodyLines >= 0 && n >= bodyLines && bol {
			break
		}
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if bol && chunk[0] == '.' {
				_ = w.WriteByte('.')
			}
			line := bytes.TrimRight(chunk, "\r\n")
			ended := bytes.HasSuffix(chunk, []byte("\n"))
			_, _ = w.Write(line)
			if ended {
				_, _ = w.WriteString("\r\n")
				if inBody {
					n++
				} else if len(line) == 0 && bol {
					inBody = true
				}
			}
			bol = ended
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if !bol {
		_, _ = w.WriteString("\r\n")
	}
	_, err := w.WriteString(".\r\n")
	return err
}
