package managesieve

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"posthorn/internal/sasl"
)

// saslMax bounds one client response as it travels: sasl.MaxResponse in
// base64.
const saslMax = (sasl.MaxResponse + 2) / 3 * 4

// cmdAuthenticate runs one SASL exchange (RFC 5804 §2.1):
// AUTHENTICATE mechanism [initial-response]. The command is read whole,
// initial response included, before anything is checked.
func (c *conn) cmdAuthenticate(a *args) {
	if !a.space() {
		return
	}
	mech, ok := a.word(maxQuoted, errStringTooLong)
	if !ok {
		return
	}
	var ir *string
	if a.more() {
		if !a.space() {
			return
		}
		s, ok := a.str(saslMax, errAuthSyntax)
		if !ok {
			return
		}
		ir = &s
	}
	if !a.end() {
		return
	}
	mech = strings.ToUpper(mech)
	switch {
	case !c.secure:
		c.fail(errNeedTLS)
		return
	case !slices.Contains(c.s.mechs, mech):
		c.fail(errMechanism)
		return
	}
	var resp []byte // nil: no initial response
	if ir != nil {
		var err error
		if resp, err = base64.StdEncoding.DecodeString(*ir); err != nil {
			c.fail(errBase64)
			return
		}
	}
	c.authenticate(mech, resp)
}

// authenticate runs the exchange and logs in on success. Challenges go
// as strings of base64 on lines of their own (RFC 5804 §2.1).
func (c *conn) authenticate(mech string, resp []byte) {
	srv, err := c.s.opts.Backend.SASL(c.ctx, mech, c.remote.Addr())
	if err != nil {
		c.authFailed(mech, err)
		return
	}
	for {
		ch, done, err := srv.Next(resp)
		switch {
		case err != nil:
			c.authFailed(mech, err)
			return
		case done:
			c.login(srv.Identity(), mech, ch)
			return
		}
		line := appendString(nil, base64.StdEncoding.EncodeToString(ch))
		_, _ = c.bw.Write(append(line, "\r\n"...))
		var bad *failure
		if resp, bad = c.readResponse(); bad == errConnLost {
			return
		} else if bad != nil {
			c.fail(bad)
			return
		}
	}
}

// errConnLost marks an exchange ended by the connection; readFailed has
// answered.
var errConnLost = &failure{text: "connection lost"}

// readResponse reads one client response of an exchange: a line with a
// string (quoted or literal; RFC 5804 §2.1), or the bare base64 some
// clients send. "*" cancels.
func (c *conn) readResponse() ([]byte, *failure) {
	line, bad, err := c.readLine(true)
	if err != nil {
		c.readFailed(err)
		return nil, errConnLost
	}
	a := &args{c: c, seg: line, bad: bad}
	s, _ := a.word(saslMax, errAuthSyntax)
	switch {
	case a.lost:
		return nil, errConnLost
	case !a.end():
		if !c.skipLiterals(a.seg) {
			return nil, errConnLost
		}
		return nil, a.bad
	case s == "*":
		return nil, errAuthCanceled
	}
	resp, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errBase64
	}
	return resp, nil
}

// authFailed answers a failed exchange. No credential is ever logged.
func (c *conn) authFailed(mech string, err error) {
	switch {
	case errors.Is(err, ErrBlocked):
		c.log.Info("managesieve login blocked", "mech", mech)
		c.reply(errBlocked)
	case errors.Is(err, ErrAuth), errors.Is(err, sasl.ErrAuthFailed):
		c.log.Info("managesieve login failed", "mech", mech)
		c.fail(errAuthFailed)
	case errors.Is(err, ErrTransition):
		c.log.Info("managesieve login needs transition", "mech", mech)
		c.fail(errTransition)
	case errors.Is(err, sasl.ErrSyntax), errors.Is(err, sasl.ErrTooLong):
		c.log.Info("managesieve login failed", "mech", mech, "err", err)
		c.fail(errAuthSyntax)
	default:
		c.log.Error("managesieve login", "mech", mech, "err", err)
		c.reply(errAuthTemp)
	}
}

// login opens the identity's scripts and enters the authenticated state.
// final is the mechanism's additional data with success, which goes in
// the SASL response code (RFC 5804 §2.1).
func (c *conn) login(id, mech string, final []byte) {
	sc, err := c.s.opts.Backend.Scripts(c.ctx, id)
	if err != nil {
		c.log.Error("managesieve open scripts", "account", id, "err", err)
		c.reply(errOpen)
		return
	}
	c.scripts, c.identity, c.state = sc, id, authenticated
	c.log = c.baseLog.With("account", id)
	c.log.Info("managesieve login", "mech", mech)
	code := ""
	if final != nil {
		code = string(appendString([]byte("SASL "), base64.StdEncoding.EncodeToString(final)))
	}
	c.ok(code, "Logged in")
}
