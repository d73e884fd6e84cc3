package managesieve

import (
	"strconv"
	"strings"
)

// command handles one ManageSieve command in the states it is valid in;
// it reads its arguments from a (which has read the command name).
type command struct {
	run    func(c *conn, a *args)
	states state
}

const anyState = nonAuth | authenticated

// commands is the dispatch table. Command names are case-insensitive
// (RFC 5804 §4: ABNF strings).
var commands = map[string]command{
	"AUTHENTICATE":   {(*conn).cmdAuthenticate, nonAuth},         // RFC 5804 §2.1
	"STARTTLS":       {(*conn).cmdStartTLS, nonAuth},             // RFC 5804 §2.2
	"LOGOUT":         {(*conn).cmdLogout, anyState},              // RFC 5804 §2.3
	"CAPABILITY":     {(*conn).cmdCapability, anyState},          // RFC 5804 §2.4
	"HAVESPACE":      {(*conn).cmdHaveSpace, authenticated},      // RFC 5804 §2.5
	"PUTSCRIPT":      {(*conn).cmdPutScript, authenticated},      // RFC 5804 §2.6
	"LISTSCRIPTS":    {(*conn).cmdListScripts, authenticated},    // RFC 5804 §2.7
	"SETACTIVE":      {(*conn).cmdSetActive, authenticated},      // RFC 5804 §2.8
	"GETSCRIPT":      {(*conn).cmdGetScript, authenticated},      // RFC 5804 §2.9
	"DELETESCRIPT":   {(*conn).cmdDeleteScript, authenticated},   // RFC 5804 §2.10
	"RENAMESCRIPT":   {(*conn).cmdRenameScript, authenticated},   // RFC 5804 §2.11
	"CHECKSCRIPT":    {(*conn).cmdCheckScript, authenticated},    // RFC 5804 §2.12
	"NOOP":           {(*conn).cmdNoop, anyState},                // RFC 5804 §2.13
	"UNAUTHENTICATE": {(*conn).cmdUnauthenticate, authenticated}, // RFC 5804 §2.14
}

// dispatch runs the command on line. A command refused before it was read
// whole has its literals skipped, so their content is never taken for
// commands, and is answered with NO.
func (c *conn) dispatch(line []byte) {
	a := &args{c: c, seg: line}
	name := a.atom()
	cmd, ok := commands[strings.ToUpper(name)]
	switch {
	case !ok:
		a.fail(errUnknown)
	case cmd.states&c.state == 0:
		a.fail(errWrongState)
	default:
		cmd.run(c, a)
	}
	if a.bad != nil && c.skipLiterals(a.seg) {
		c.fail(a.bad)
	}
}

// capabilities queues the capability lines (RFC 5804 §1.7) for the
// session's state; the caller adds the OK.
func (c *conn) capabilities() {
	c.capability("IMPLEMENTATION", "Posthorn")
	if c.secure {
		c.capability("SASL", strings.Join(c.s.mechs, " "))
	} else {
		// RFC 5804 §1.7: the list may be empty only next to STARTTLS;
		// nothing is offered before TLS.
		c.capability("SASL", "")
		c.capability("STARTTLS")
	}
	c.capability("SIEVE", c.s.extensions)
	if len(c.s.opts.NotifyMethods) > 0 {
		c.capability("NOTIFY", strings.Join(c.s.opts.NotifyMethods, " "))
	}
	if n := c.s.opts.MaxRedirects; n > 0 {
		c.capability("MAXREDIRECTS", strconv.Itoa(n))
	}
	if c.state == authenticated {
		c.capability("OWNER", c.identity) // RFC 5804 §1.7: authenticated state only
	}
	c.capability("UNAUTHENTICATE") // RFC 5804 §2.14
	c.capability("VERSION", "1.0")
}

func (c *conn) cmdCapability(a *args) {
	if a.end() {
		c.capabilities()
		c.ok("", "Capability completed")
	}
}

// cmdLogout says OK and closes (RFC 5804 §2.3).
func (c *conn) cmdLogout(a *args) {
	if a.end() {
		c.ok("", "Logout completed")
		c.quit = true
	}
}

// cmdNoop echoes its optional string in a TAG response code (RFC 5804
// §2.13), which clients use to resynchronize after STARTTLS.
func (c *conn) cmdNoop(a *args) {
	var tag string
	hasTag := a.more()
	if hasTag {
		if !a.space() {
			return
		}
		var ok bool
		if tag, ok = a.str(maxQuoted, errStringTooLong); !ok {
			return
		}
	}
	if !a.end() {
		return
	}
	if hasTag {
		c.ok(string(appendString([]byte("TAG "), tag)), "Done")
		return
	}
	c.ok("", "Done")
}

// cmdStartTLS starts TLS (RFC 5804 §2.2), then sends the capabilities
// again unasked: those before TLS may have been tampered with.
func (c *conn) cmdStartTLS(a *args) {
	if !a.end() {
		return
	}
	if c.secure {
		c.fail(errTLSActive)
		return
	}
	c.ok("", "Begin TLS negotiation now")
	if err := c.bw.Flush(); err != nil {
		c.quit = true
		return
	}
	if n := c.br.Buffered(); n > 0 {
		// The STARTTLS command injection (CVE-2011-0411): plaintext
		// pipelined behind STARTTLS must never be read as if it came
		// through TLS. handshake drops it.
		c.log.Warn("managesieve discarding plaintext sent after STARTTLS", "bytes", n)
	}
	if !c.handshake() {
		c.quit = true // the stream is in an unknown state
		return
	}
	c.capabilities()
	c.ok("", "TLS negotiation successful")
}

// cmdUnauthenticate returns to the non-authenticated state (RFC 5804
// §2.14); TLS stays on.
func (c *conn) cmdUnauthenticate(a *args) {
	if !a.end() {
		return
	}
	c.release()
	c.log.Info("managesieve unauthenticate")
	c.state, c.identity, c.log = nonAuth, "", c.baseLog
	c.ok("", "Unauthenticate completed")
}
