package smtp

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"posthorn/internal/sasl"
)

var (
	errAuthFailed   = &Error{Code: 535, Enhanced: "5.7.8", Msg: "Authentication credentials invalid"}
	errAuthSyntax   = &Error{Code: CodeParamSyntax, Enhanced: "5.5.2", Msg: "Invalid authentication response"}
	errAuthCanceled = &Error{Code: CodeParamSyntax, Enhanced: "5.0.0", Msg: "Authentication canceled"}
	errAuthTemp     = &Error{Code: CodeTLSNotAvailable, Enhanced: "4.7.0", Msg: "Temporary authentication failure"}
	// RFC 4954 §6: mechanisms that send passwords need encryption first.
	errEncryptFirst = &Error{Code: 538, Enhanced: "5.7.11", Msg: "Encryption required for requested authentication mechanism"}
	errNeedTLS      = &Error{Code: CodeAuthRequired, Enhanced: "5.7.0", Msg: "Must issue a STARTTLS command first"}
	errNeedAuth     = &Error{Code: CodeAuthRequired, Enhanced: "5.7.0", Msg: "Authentication required"}
)

// authOffered reports whether AUTH is advertised now.
func (c *conn) authOffered() bool {
	_, ok := c.sess.(AuthSession)
	return ok && len(c.s.opts.AuthMechanisms) > 0 && c.info.TLS != nil && c.info.Auth == ""
}

// cmdAuth runs one SASL exchange (RFC 4954 §4).
func (c *conn) cmdAuth(arg string) {
	as, ok := c.sess.(AuthSession)
	switch {
	case !ok || len(c.s.opts.AuthMechanisms) == 0:
		c.fail(&Error{Code: CodeNotImplemented, Enhanced: "5.5.1", Msg: "AUTH not available"})
		return
	case c.info.TLS == nil:
		c.fail(errEncryptFirst)
		return
	case !c.helo:
		c.fail(errNeedHelo)
		return
	case c.info.Auth != "":
		c.fail(&Error{Code: CodeBadSequence, Enhanced: "5.5.1", Msg: "Already authenticated"})
		return
	case c.mail:
		c.fail(&Error{Code: CodeBadSequence, Enhanced: "5.5.1", Msg: "AUTH not allowed during a mail transaction"})
		return
	}
	mech, initial, hasInitial := strings.Cut(strings.TrimSpace(arg), " ")
	mech = strings.ToUpper(mech)
	if !slices.Contains(c.s.opts.AuthMechanisms, mech) {
		c.fail(&Error{Code: CodeParamNotImpl, Enhanced: "5.5.4", Msg: "Unrecognized authentication mechanism"})
		return
	}
	var resp []byte
	if hasInitial {
		var err error
		if resp, err = decodeSASL(initial); err != nil {
			c.fail(errAuthSyntax)
			return
		}
	}
	srv, err := as.Auth(c.ctx, mech)
	if err != nil {
		c.replyErr(err)
		return
	}
	if id, e := c.saslLoop(srv, resp); e != nil {
		if e.Code == 0 { // reading the client's answer failed (timeout, EOF)
			c.readFailed(e.Err)
			c.quit = true
			return
		}
		c.log.Info("smtp auth failed", "mech", mech, "code", e.Code)
		c.fail(e)
		if e.Code == CodeTLSNotAvailable {
			c.quit = true // a block: do not let the client go on trying
		}
	} else {
		c.info.Auth = id
		c.log.Info("smtp auth", "mech", mech, "account", id)
		c.reply(235, "2.7.0", "Authentication successful")
	}
}

// decodeSASL decodes one base64 response; "=" is the empty response.
func decodeSASL(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// saslLoop exchanges challenges and responses until the server is done.
func (c *conn) saslLoop(srv sasl.Server, resp []byte) (string, *Error) {
	for {
		ch, done, err := srv.Next(resp)
		if err != nil {
			return "", saslError(err)
		}
		if done && ch == nil {
			return srv.Identity(), nil
		}
		// A challenge, or additional data with success, which RFC 4954 §4
		// sends as a challenge that the client answers with an empty line.
		c.writeReply(Reply{Code: 334, Lines: []string{base64.StdEncoding.EncodeToString(ch)}})
		line, rerr := c.readLine()
		if rerr != nil {
			return "", rerr
		}
		if line == "*" {
			return "", errAuthCanceled
		}
		if resp, err = decodeSASL(line); err != nil {
			return "", errAuthSyntax
		}
		if done {
			if len(resp) != 0 {
				return "", errAuthSyntax
			}
			return srv.Identity(), nil
		}
	}
}

func saslError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, sasl.ErrAuthFailed):
		return errAuthFailed
	case errors.Is(err, sasl.ErrSyntax), errors.Is(err, sasl.ErrTooLong):
		return errAuthSyntax
	}
	return errAuthTemp.Wrap(err)
}
