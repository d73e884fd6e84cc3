package imap

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"posthorn/internal/sasl"
)

// capabilities lists what the server offers in the current state. Before
// TLS on a STARTTLS port no login is possible (LOGINDISABLED).
func (c *conn) capabilities() string {
	caps := []string{"IMAP4rev1", "IMAP4rev2", "SASL-IR", "LITERAL+", "ENABLE", "IDLE", "ID", "NAMESPACE", "UNSELECT", "UIDPLUS", "CHILDREN"}
	switch {
	case !c.tls && c.s.opts.TLS != nil:
		caps = append(caps, "STARTTLS", "LOGINDISABLED")
	case !c.tls:
		caps = append(caps, "LOGINDISABLED")
	case c.state == stateNotAuth:
		caps = append(caps, "AUTH=PLAIN", "AUTH=SCRAM-SHA-256")
	}
	if c.state != stateNotAuth {
		caps = append(caps, "MOVE", "SPECIAL-USE", "CREATE-SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "ESEARCH", "CONDSTORE", "QRESYNC",
			"QUOTA", "QUOTA=RES-STORAGE", "STATUS=SIZE", "BINARY", "SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "COMPRESS=DEFLATE", "UTF8=ACCEPT", fmt.Sprintf("APPENDLIMIT=%d", c.s.opts.AppendLimit))
	}
	return strings.Join(caps, " ")
}

func (c *conn) cmdCapability(tag string, s *scanner) error {
	if err := s.crlf(); err != nil {
		return err
	}
	c.writef("* CAPABILITY %s\r\n", c.capabilities())
	c.ok(tag, "", "CAPABILITY completed")
	return nil
}

func (c *conn) cmdNoop(tag string, s *scanner) error {
	if err := s.crlf(); err != nil {
		return err
	}
	c.ok(tag, "", "NOOP completed")
	return nil
}

// cmdCheck is IMAP4rev1's CHECK (RFC 3501 §6.4.1), which RFC 9051 drops:
// a checkpoint, which for us (every change durable when answered) is a
// NOOP. Clients of rev1 still send it: mbsync after each change, which
// failed on BAD.
func (c *conn) cmdCheck(tag string, s *scanner) error {
	if err := s.crlf(); err != nil {
		return err
	}
	c.ok(tag, "", "CHECK completed")
	return nil
}

func (c *conn) cmdLogout(tag string, s *scanner) error {
	if err := s.crlf(); err != nil {
		return err
	}
	c.writef("* BYE Logging out\r\n")
	c.tagged(tag, "OK", "", "LOGOUT completed")
	c.quit = true
	return nil
}

// cmdID answers RFC 2971 ID; the client's parameters are parsed and
// ignored.
func (c *conn) cmdID(tag string, s *scanner) error {
	if err := s.sp(); err != nil {
		return err
	}
	if c, _ := s.peek(); c == '(' {
		n := 0
		if err := s.list(func() error {
			n++
			if n > 60 {
				return syntaxf("too many ID fields")
			}
			_, _, err := s.nstring()
			return err
		}); err != nil {
			return err
		}
	} else if _, nilOK, err := s.nstring(); err != nil || !nilOK {
		return syntaxf("ID needs a list or NIL")
	}
	if err := s.crlf(); err != nil {
		return err
	}
	c.writef("* ID (\"name\" \"Posthorn\" \"vendor\" \"Posthorn\")\r\n")
	c.ok(tag, "", "ID completed")
	return nil
}

// cmdStartTLS upgrades the connection (RFC 9051 §6.2.1). Anything the
// client pipelined after the command is thrown away, never read as if it
// had come through TLS (STARTTLS command injection).
func (c *conn) cmdStartTLS(tag string, s *scanner) error {
	if err := s.crlf(); err != nil {
		return err
	}
	if c.tls || c.s.opts.TLS == nil {
		return bad("", "TLS not available")
	}
	c.tagged(tag, "OK", "", "Begin TLS negotiation now")
	if err := c.flush(); err != nil {
		return err
	}
	if n := c.br.Buffered(); n > 0 {
		c.log.Warn("imap discarding plaintext sent after STARTTLS", "bytes", n)
	}
	if !c.handshake() {
		c.quit = true
	}
	return nil
}

func (c *conn) cmdLogin(tag string, s *scanner) error {
	if err := s.sp(); err != nil {
		return err
	}
	user, err := s.astring()
	if err != nil {
		return err
	}
	if err := s.sp(); err != nil {
		return err
	}
	pw, err := s.astring()
	if err != nil {
		return err
	}
	if err := s.crlf(); err != nil {
		return err
	}
	if !c.tls {
		return no("PRIVACYREQUIRED", "LOGIN needs TLS: use STARTTLS first")
	}
	u, err := c.s.opts.Backend.Login(c.ctx, c.remote.Addr(), user, pw)
	if err != nil {
		return c.authFailed(err)
	}
	return c.loggedIn(tag, u)
}

// authFailed maps a failed login; a blocked client is disconnected.
func (c *conn) authFailed(err error) error {
	switch {
	case errors.Is(err, ErrBlocked):
		c.writef("* BYE [UNAVAILABLE] Too many failed logins, try again later\r\n")
		c.quit = true
		return no("UNAVAILABLE", "Too many failed logins")
	case errors.Is(err, ErrAuth), errors.Is(err, sasl.ErrAuthFailed):
		return no("AUTHENTICATIONFAILED", "Authentication failed")
	case errors.Is(err, sasl.ErrSyntax), errors.Is(err, sasl.ErrTooLong):
		return bad("", "Invalid authentication exchange")
	}
	c.log.Error("imap login", "err", err)
	return no("UNAVAILABLE", "Temporary authentication failure")
}

// loggedIn enters the authenticated state.
func (c *conn) loggedIn(tag string, u User) error {
	release, ok := c.s.admitUser(u.Name())
	if !ok {
		u.Close()
		return no("LIMIT", "Too many connections for this account")
	}
	c.user, c.release, c.state = u, release, stateAuth
	c.log = c.log.With("account", u.Name())
	c.log.Info("imap login")
	c.tagged(tag, "OK", "CAPABILITY "+c.capabilities(), "Logged in")
	return nil
}

// cmdAuthenticate runs a SASL exchange (RFC 9051 §6.2.2, SASL-IR RFC 4959).
func (c *conn) cmdAuthenticate(tag string, s *scanner) error {
	if err := s.sp(); err != nil {
		return err
	}
	mech, err := s.atom()
	if err != nil {
		return err
	}
	mech = strings.ToUpper(mech)
	var ir []byte
	if s.maybeSP() {
		enc, err := s.atom()
		if err != nil {
			return err
		}
		if ir, err = decodeSASL(enc); err != nil {
			return bad("", "Invalid base64")
		}
	}
	if err := s.crlf(); err != nil {
		return err
	}
	if !c.tls {
		return no("PRIVACYREQUIRED", "Authentication needs TLS: use STARTTLS first")
	}
	if mech != sasl.Plain && mech != sasl.ScramSHA256 {
		return no("CANNOT", "Unsupported mechanism")
	}
	srv, err := c.s.opts.Backend.SASL(c.ctx, mech, c.remote.Addr())
	if err != nil {
		return c.authFailed(err)
	}
	id, err := c.saslLoop(srv, ir)
	if err != nil {
		return err
	}
	u, err := c.s.opts.Backend.Open(c.ctx, id)
	if err != nil {
		return c.authFailed(err)
	}
	return c.loggedIn(tag, u)
}

func decodeSASL(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// saslLoop exchanges challenges ("+ base64") and responses until done.
// Additional data with success goes in a last challenge that the client
// answers with an empty line (RFC 9051 §6.2.2).
func (c *conn) saslLoop(srv sasl.Server, resp []byte) (string, error) {
	for {
		ch, done, err := srv.Next(resp)
		if err != nil {
			return "", c.authFailed(err)
		}
		if done && ch == nil {
			return srv.Identity(), nil
		}
		c.writef("+ %s\r\n", base64.StdEncoding.EncodeToString(ch))
		line, err := c.readLine(sasl.MaxResponse*4/3 + 8)
		if err != nil {
			return "", err
		}
		if line == "*" {
			return "", bad("", "Authentication canceled")
		}
		if resp, err = decodeSASL(line); err != nil {
			return "", bad("", "Invalid base64")
		}
		if done {
			return srv.Identity(), nil
		}
	}
}

// readLine reads one CRLF line of at most max octets. A longer line is
// read to its end and refused: what follows its first max octets is not
// a command of its own.
func (c *conn) readLine(max int) (string, error) {
	var b []byte
	for {
		chunk, err := c.br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > max {
			skipped := len(b)
			for errors.Is(err, bufio.ErrBufferFull) {
				if skipped > maxSkip {
					return "", errLineTooLong
				}
				chunk, err = c.br.ReadSlice('\n')
				skipped += len(chunk)
			}
			if err != nil {
				return "", err
			}
			return "", bad("", "Line too long")
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", err
		}
		if len(b) < 2 || b[len(b)-2] != '\r' {
			return "", bad("", "Lines must end with CRLF")
		}
		return string(b[:len(b)-2]), nil
	}
}

// cmdEnable turns on extensions (RFC 5161).
func (c *conn) cmdEnable(tag string, s *scanner) error {
	var names []string
	for s.maybeSP() {
		a, err := s.atom()
		if err != nil {
			return err
		}
		names = append(names, strings.ToUpper(a))
	}
	if err := s.crlf(); err != nil {
		return err
	}
	if len(names) == 0 {
		return syntaxf("ENABLE needs a capability")
	}
	var on []string
	for _, n := range names {
		switch n {
		case "CONDSTORE":
			c.condstore = true
		case "QRESYNC": // RFC 7162 §3.2.3: implies CONDSTORE
			c.condstore, c.qresync = true, true
		case "UTF8=ACCEPT":
			c.utf8 = true
		case "IMAP4REV2":
			c.rev2, c.utf8 = true, true
		default:
			continue
		}
		if !slices.Contains(on, n) {
			on = append(on, n)
		}
	}
	// RFC 5161 §4: "ENABLED" *(SP capability), nothing after the word
	// when nothing was enabled.
	c.writef("* ENABLED%s\r\n", strings.Join(append([]string{""}, on...), " "))
	c.ok(tag, "", "ENABLE completed")
	return nil
}
