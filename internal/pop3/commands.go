package pop3

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"posthorn/internal/sasl"
)

// command handles one POP3 keyword in the states it is valid in; arg is
// the rest of the line after the first space.
type command struct {
	run    func(c *conn, arg string)
	states state
}

// commands is the dispatch table. Keywords are case-insensitive
// (RFC 1939 §3). APOP is not offered: it needs stored plaintext passwords.
var commands = map[string]command{
	"CAPA": {(*conn).cmdCapa, authorization | transaction}, // RFC 2449 §5
	"QUIT": {(*conn).cmdQuit, authorization | transaction}, // RFC 1939 §4, §6
	"STLS": {(*conn).cmdStls, authorization},               // RFC 2595 §4
	"USER": {(*conn).cmdUser, authorization},               // RFC 1939 §7
	"PASS": {(*conn).cmdPass, authorization},               // RFC 1939 §7
	"AUTH": {(*conn).cmdAuth, authorization},               // RFC 5034 §4
	"STAT": {(*conn).cmdStat, transaction},                 // RFC 1939 §5
	"LIST": {(*conn).cmdList, transaction},                 // RFC 1939 §5
	"UIDL": {(*conn).cmdUidl, transaction},                 // RFC 1939 §7
	"RETR": {(*conn).cmdRetr, transaction},                 // RFC 1939 §5
	"TOP":  {(*conn).cmdTop, transaction},                  // RFC 1939 §7
	"DELE": {(*conn).cmdDele, transaction},                 // RFC 1939 §5
	"RSET": {(*conn).cmdRset, transaction},                 // RFC 1939 §5
	"NOOP": {(*conn).cmdNoop, transaction},                 // RFC 1939 §5
}

func (c *conn) dispatch(line string) {
	keyword, arg, _ := strings.Cut(line, " ")
	cmd, ok := commands[strings.ToUpper(keyword)]
	switch {
	case !ok:
		c.fail(errUnknown)
	case cmd.states&c.state == 0:
		c.fail(errWrongState)
	default:
		cmd.run(c, arg)
	}
}

// noArgs reports whether a command that takes no argument got none
// (trailing spaces forgiven).
func noArgs(arg string) bool { return strings.TrimSpace(arg) == "" }

// capabilities lists CAPA's answer (RFC 2449 §6). RFC 2449 §5: what is
// available in AUTHORIZATION is announced in both states, so USER and
// SASL depend on TLS only (TRANSACTION implies TLS).
func (c *conn) capabilities() []string {
	caps := []string{
		"TOP",            // RFC 2449 §6.1
		"UIDL",           // RFC 2449 §6.8
		"RESP-CODES",     // RFC 2449 §6.4
		"AUTH-RESP-CODE", // RFC 3206 §6
		"PIPELINING",     // RFC 2449 §6.6
		"EXPIRE NEVER",   // RFC 2449 §6.7
		"LOGIN-DELAY 0",  // RFC 2449 §6.5
	}
	switch {
	case c.secure:
		caps = append(caps, "USER", "SASL "+strings.Join(mechanisms, " ")) // RFC 2449 §6.2, §6.3
	case c.s.opts.TLS != nil:
		caps = append(caps, "STLS") // RFC 2595 §4
	}
	return append(caps, "IMPLEMENTATION Posthorn") // RFC 2449 §6.9
}

func (c *conn) cmdCapa(arg string) {
	if !noArgs(arg) {
		c.fail(errSyntax)
		return
	}
	c.multiline("capability list follows", c.capabilities())
}

// cmdQuit ends the session; in TRANSACTION it first commits the deletions
// (RFC 1939 §6, the UPDATE state).
func (c *conn) cmdQuit(arg string) {
	if !noArgs(arg) {
		c.fail(errSyntax)
		return
	}
	c.quit = true
	if c.state == transaction {
		c.update()
		return
	}
	c.ok("%s POP3 server signing off", c.s.opts.Hostname)
}

// cmdStls starts TLS (RFC 2595 §4). The session stays in AUTHORIZATION
// and forgets what it learnt before.
func (c *conn) cmdStls(arg string) {
	switch {
	case c.secure:
		c.fail(errTLSActive)
		return
	case c.s.opts.TLS == nil:
		c.fail(errTLSAvailable)
		return
	case !noArgs(arg):
		c.fail(errSyntax)
		return
	}
	c.ok("Begin TLS negotiation")
	if err := c.bw.Flush(); err != nil {
		c.quit = true
		return
	}
	if n := c.br.Buffered(); n > 0 {
		// The STARTTLS command injection (CVE-2011-0411): plaintext
		// pipelined behind STLS must never be read as if it came
		// through TLS. handshake drops it.
		c.log.Warn("pop3 discarding plaintext sent after STLS", "bytes", n)
	}
	if !c.handshake() {
		c.quit = true // the stream is in an unknown state
		return
	}
	c.user = ""
}

func (c *conn) cmdUser(arg string) {
	name := strings.TrimSpace(arg)
	switch {
	case !c.secure:
		c.user = ""
		c.fail(errNeedTLS)
	case name == "":
		c.fail(errSyntax)
	default:
		c.user = name
		c.ok("send PASS")
	}
}

// cmdPass checks USER's name with this password. RFC 1939 §7: PASS has
// exactly one argument, so spaces in it are part of the password.
func (c *conn) cmdPass(arg string) {
	user := c.user
	c.user = "" // RFC 1939 §7: after PASS, right or wrong, start again with USER
	switch {
	case !c.secure:
		c.fail(errNeedTLS)
		return
	case user == "":
		c.fail(errNeedUser)
		return
	case arg == "":
		c.fail(errSyntax)
		return
	}
	id, err := c.s.opts.Backend.Login(c.ctx, c.remote.Addr(), user, arg)
	if err != nil {
		c.authFailed("USER", err)
		return
	}
	c.login(id, "USER")
}

// authFailed answers a failed login, USER/PASS or AUTH. The password is
// never logged.
func (c *conn) authFailed(mech string, err error) {
	switch {
	case errors.Is(err, ErrBlocked):
		c.log.Info("pop3 login blocked", "mech", mech)
		c.fail(errBlocked)
	case errors.Is(err, ErrAuth), errors.Is(err, sasl.ErrAuthFailed):
		c.log.Info("pop3 login failed", "mech", mech)
		c.fail(errAuthFailed)
	case errors.Is(err, sasl.ErrSyntax), errors.Is(err, sasl.ErrTooLong):
		c.log.Info("pop3 login failed", "mech", mech, "err", err)
		c.fail(errAuthSyntax)
	default:
		c.log.Error("pop3 login", "mech", mech, "err", err)
		c.fail(errAuthTemp)
	}
}

// login opens the maildrop of an authenticated identity and enters
// TRANSACTION (RFC 1939 §4).
func (c *conn) login(id, mech string) {
	drop, err := c.s.opts.Backend.Open(c.ctx, id)
	switch {
	case errors.Is(err, ErrLocked):
		c.log.Info("pop3 maildrop locked", "account", id)
		c.reply(errLocked) // RFC 2449 §8.1.2
		return
	case err != nil:
		c.log.Error("pop3 open maildrop", "account", id, "err", err)
		c.reply(errMaildrop)
		return
	}
	c.drop = drop
	msgs := slices.Clone(drop.Messages())
	if err := checkMessages(msgs); err != nil {
		c.log.Error("pop3 open maildrop", "account", id, "err", err)
		c.reply(errMaildrop)
		return
	}
	c.state, c.msgs, c.deleted = transaction, msgs, make([]bool, len(msgs))
	c.log = c.log.With("account", id)
	c.log.Info("pop3 login", "mech", mech, "messages", len(msgs))
	n, size := c.totals()
	c.ok("logged in, maildrop has %d messages (%d octets)", n, size)
}

// checkMessages refuses a snapshot the wire cannot carry.
func checkMessages(msgs []Message) error {
	for i, m := range msgs {
		if !validUID(m.UID) || m.Size < 0 {
			return fmt.Errorf("pop3: backend gave message %d a bad UID or size", i+1)
		}
	}
	return nil
}
