package pop3

import (
	"encoding/base64"
	"errors"
	"strings"

	"posthorn/internal/sasl"
)

// cmdAuth runs a SASL exchange (RFC 5034). Without arguments it lists the
// mechanisms (RFC 5034 §4, as clients probe).
func (c *conn) cmdAuth(args []string) {
	if !c.tls {
		c.fail("[AUTH] TLS required: use STLS first")
		return
	}
	if len(args) == 0 {
		c.ok("Mechanisms follow")
		c.bw.WriteString("PLAIN\r\n.\r\n")
		return
	}
	if len(args) > 2 || !strings.EqualFold(args[0], sasl.Plain) {
		c.fail("Unsupported mechanism")
		return
	}
	var resp []byte
	if len(args) == 2 {
		var err error
		if resp, err = decode(args[1]); err != nil {
			c.fail("Invalid base64")
			return
		}
	}
	srv, err := c.s.opts.Backend.SASL(c.ctx, sasl.Plain, c.remote.Addr())
	if err != nil {
		c.authFailed(err)
		return
	}
	id, err := c.exchange(srv, resp)
	if err != nil {
		c.authFailed(err)
		return
	}
	c.open(id)
}

func decode(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

var errCanceled = errors.New("canceled")

// exchange sends "+ challenge" lines and reads responses until done.
func (c *conn) exchange(srv sasl.Server, resp []byte) (string, error) {
	for {
		ch, done, err := srv.Next(resp)
		if err != nil {
			if errors.Is(err, sasl.ErrAuthFailed) {
				return "", ErrAuth
			}
			return "", err
		}
		if done && ch == nil {
			return srv.Identity(), nil
		}
		c.bw.WriteString("+ " + base64.StdEncoding.EncodeToString(ch) + "\r\n")
		line, err := c.readCommand()
		if err != nil {
			return "", err
		}
		if line == "*" {
			return "", ErrAuth
		}
		if resp, err = decode(line); err != nil {
			return "", ErrAuth
		}
		if done {
			return srv.Identity(), nil
		}
	}
}
