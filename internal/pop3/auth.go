package pop3

import (
	"encoding/base64"
	"slices"
	"strings"

	"posthorn/internal/sasl"
)

// mechanisms are the SASL mechanisms offered, after TLS only. PLAIN sends
// the password, which RFC 2595 §2.3 allows under TLS.
var mechanisms = []string{sasl.Plain}

// cmdAuth runs one SASL exchange (RFC 5034 §4): AUTH mech [initial-response].
func (c *conn) cmdAuth(arg string) {
	c.user = ""
	args := strings.Fields(arg)
	switch {
	case !c.secure:
		c.fail(errNeedTLS)
		return
	case len(args) == 0:
		// Not in RFC 5034, but older clients (Outlook) probe with a bare
		// AUTH and expect the mechanisms as a multi-line list.
		c.multiline("mechanism list follows", mechanisms)
		return
	case len(args) > 2:
		c.fail(errSyntax)
		return
	}
	mech := strings.ToUpper(args[0])
	if !slices.Contains(mechanisms, mech) {
		c.fail(errMechanism)
		return
	}
	var resp []byte // nil: no initial response
	if len(args) == 2 {
		var err error
		if resp, err = decodeSASL(args[1]); err != nil {
			c.fail(errBase64) // RFC 5034 §4: undecodable response
			return
		}
	}
	c.authenticate(mech, resp)
}

// authenticate asks the backend for the exchange and logs in on success.
func (c *conn) authenticate(mech string, resp []byte) {
	srv, err := c.s.opts.Backend.SASL(c.ctx, mech, c.remote.Addr())
	if err != nil {
		c.authFailed(mech, err)
		return
	}
	id, bad, err := c.exchange(srv, resp)
	switch {
	case bad == errConnLost: // readFailed has ended the session
	case bad != nil:
		c.fail(bad)
	case err != nil:
		c.authFailed(mech, err)
	default:
		c.login(id, mech)
	}
}

// decodeSASL decodes one response; "=" is the empty response (RFC 5034 §4).
func decodeSASL(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// exchange sends challenges as "+ base64" lines and reads the responses
// until the mechanism is done. bad is a protocol failure of the client;
// err is the mechanism's verdict.
func (c *conn) exchange(srv sasl.Server, resp []byte) (id string, bad *failure, err error) {
	for {
		ch, done, err := srv.Next(resp)
		if err != nil {
			return "", nil, err
		}
		if done && ch == nil {
			return srv.Identity(), nil, nil
		}
		// A challenge, or additional data with success, which POP3 can
		// only send as a challenge answered by an empty response
		// (RFC 5034 §4).
		_, _ = c.bw.WriteString("+ " + base64.StdEncoding.EncodeToString(ch) + "\r\n")
		if resp, bad = c.readResponse(); bad != nil {
			return "", bad, nil
		}
		if done {
			if len(resp) != 0 {
				return "", errAuthSyntax, nil
			}
			return srv.Identity(), nil, nil
		}
	}
}

// errConnLost marks an exchange ended by the connection; the client gets
// no answer.
var errConnLost = &failure{text: "connection lost"}

// readResponse reads one client response of an exchange. A lost
// connection ends the session.
func (c *conn) readResponse() ([]byte, *failure) {
	line, bad, err := c.readLine(saslLineMax)
	switch {
	case err != nil:
		c.readFailed(err)
		return nil, errConnLost
	case bad != nil:
		return nil, bad
	case line == "*":
		return nil, errAuthCanceled // RFC 5034 §4: "*" cancels
	}
	resp, err := decodeSASL(line)
	if err != nil {
		return nil, errBase64
	}
	return resp, nil
}
