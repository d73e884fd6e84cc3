package smtp

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// command handles one SMTP verb; arg is the rest of the line after one space.
type command func(c *conn, arg string)

// commands is the dispatch table. Verbs are matched case-insensitively
// (RFC 5321 §2.4).
var commands = map[string]command{
	"EHLO":     func(c *conn, arg string) { c.hello(arg, true) },
	"HELO":     func(c *conn, arg string) { c.hello(arg, false) },
	"LHLO":     func(c *conn, arg string) { c.hello(arg, true) },
	"MAIL":     (*conn).cmdMail,
	"RCPT":     (*conn).cmdRcpt,
	"DATA":     (*conn).cmdData,
	"BDAT":     (*conn).cmdBdat,
	"RSET":     (*conn).cmdRset,
	"NOOP":     (*conn).cmdNoop,
	"QUIT":     (*conn).cmdQuit,
	"VRFY":     (*conn).cmdVrfy,
	"EXPN":     (*conn).cmdExpn,
	"HELP":     (*conn).cmdHelp,
	"STARTTLS": (*conn).cmdStartTLS,
	"AUTH":     (*conn).cmdAuth,
}

// crossProtocol are first words of other protocols. A client that sends
// them is not an SMTP client (or is a browser tricked into talking to us),
// so the connection is closed at once.
var crossProtocol = map[string]bool{
	"GET": true, "POST": true, "HEAD": true, "PUT": true, "CONNECT": true, "OPTIONS": true,
	"USER": true, "PASS": true,
}

// junkLimit bounds commands that move no mail, like Postfix's
// smtpd_junk_command_limit.
const junkLimit = 100

func (c *conn) dispatch(line string) {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	if crossProtocol[verb] {
		c.reply(CodeTransFailed, "5.7.0", "This is an SMTP server; closing connection")
		c.log.Info("smtp cross-protocol request", "verb", verb)
		c.quit = true
		return
	}
	cmd, ok := commands[verb]
	// RFC 2033 §4.1: LMTP uses LHLO only; SMTP knows no LHLO.
	if isHello := verb == "EHLO" || verb == "HELO"; c.s.opts.LMTP && isHello || !c.s.opts.LMTP && verb == "LHLO" {
		ok = false
	}
	if !ok {
		c.fail(&Error{Code: CodeSyntax, Enhanced: "5.5.1", Msg: "Command not recognized"})
		return
	}
	switch verb {
	case "NOOP", "RSET", "VRFY", "EXPN", "HELP", "EHLO", "HELO":
		if c.junk++; c.junk > junkLimit {
			c.reply(CodeUnavailable, "4.7.0", "Too many commands without mail, closing connection")
			c.quit = true
			return
		}
	}
	cmd(c, arg)
}

var (
	errNeedHelo    = &Error{Code: CodeBadSequence, Enhanced: "5.5.1", Msg: "Send EHLO or HELO first"}
	errNestedMail  = &Error{Code: CodeBadSequence, Enhanced: "5.5.1", Msg: "Nested MAIL command"}
	errNeedMail    = &Error{Code: CodeBadSequence, Enhanced: "5.5.1", Msg: "Send MAIL first"}
	errNoRcpts     = &Error{Code: CodeTransFailed, Enhanced: "5.5.1", Msg: "No valid recipients"}
	errTooManyRcpt = &Error{Code: CodeInsufficient, Enhanced: "4.5.3", Msg: "Too many recipients"}
	errNoArgs      = &Error{Code: CodeParamSyntax, Enhanced: "5.5.4", Msg: "No arguments allowed"}
	errSync        = &Error{Code: CodeTransFailed, Enhanced: "5.5.0", Msg: "Protocol synchronization error: data sent before the 354 reply"}
)

// hello handles EHLO and HELO (RFC 5321 §4.1.1.1). Like RSET, it ends any
// transaction.
func (c *conn) hello(arg string, esmtp bool) {
	arg = strings.TrimSpace(arg)
	if !validHelo(arg) {
		verb := "EHLO"
		if c.s.opts.LMTP {
			verb = "LHLO"
		}
		c.fail(&Error{Code: CodeParamSyntax, Enhanced: "5.5.4", Msg: "Give your host name: " + verb + " domain or " + verb + " [address]"})
		return
	}
	c.resetTx()
	c.helo = true
	c.info.HELO, c.info.ESMTP = arg, esmtp
	if !esmtp {
		c.reply(CodeOK, "", "%s", c.s.opts.Hostname)
		return
	}
	c.writeReply(Reply{Code: CodeOK, Lines: c.extensions()})
}

// validHelo accepts a domain or address literal loosely: many real clients
// send bare host names with underscores; only spaces, controls and absurd
// lengths are refused.
func validHelo(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// extensions lists the EHLO keywords, first line our name.
func (c *conn) extensions() []string {
	ext := []string{
		c.s.opts.Hostname,
		"PIPELINING", // RFC 2920
		"SIZE " + strconv.FormatInt(c.s.opts.MaxMessageBytes, 10), // RFC 1870
		"8BITMIME",            // RFC 6152
		"SMTPUTF8",            // RFC 6531
		"ENHANCEDSTATUSCODES", // RFC 2034
		"CHUNKING",            // RFC 3030
	}
	if c.tlsAvailable() {
		ext = append(ext, "STARTTLS") // RFC 3207
	}
	if c.s.opts.DSN {
		ext = append(ext, "DSN") // RFC 3461
	}
	if c.authOffered() {
		ext = append(ext, "AUTH "+strings.Join(c.s.opts.AuthMechanisms, " ")) // RFC 4954
	}
	return ext
}

func (c *conn) tlsAvailable() bool {
	return c.s.opts.TLS != nil && c.info.TLS == nil
}

func (c *conn) cmdMail(arg string) {
	switch {
	case !c.helo:
		c.fail(errNeedHelo)
		return
	case c.mail:
		c.fail(errNestedMail)
		return
	case c.s.opts.RequireAuth && c.info.TLS == nil:
		c.fail(errNeedTLS)
		return
	case c.s.opts.RequireAuth && c.info.Auth == "":
		c.fail(errNeedAuth)
		return
	}
	rest, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		c.fail(&Error{Code: CodeParamSyntax, Enhanced: "5.5.4", Msg: "Syntax: MAIL FROM:<address>"})
		return
	}
	path, params, err := ParsePath(strings.TrimLeft(rest, " "), PathOptions{AllowNull: true, UTF8: true})
	if err != nil {
		c.fail(addrError(err, "5.1.7", "sender"))
		return
	}
	opts, perr := c.mailOptions(params)
	if perr != nil {
		c.fail(perr)
		return
	}
	if !path.Null && !path.Addr.IsASCII() && !opts.UTF8 {
		c.fail(errNeedsUTF8)
		return
	}
	if err := c.sess.Mail(c.ctx, path, opts); err != nil {
		c.replyErr(err)
		return
	}
	c.mail, c.utf8 = true, opts.UTF8
	c.reply(CodeOK, "2.1.0", "Ok")
}

var errNeedsUTF8 = &Error{Code: CodeNameNotAllowed, Enhanced: "5.6.7", Msg: "Non-ASCII address needs SMTPUTF8"}

// addrError maps an address parse error to a reply (RFC 3463 §3.2: X.1.7
// bad sender syntax, X.1.3 bad destination syntax).
func addrError(err error, enhanced, who string) *Error {
	switch {
	case errors.Is(err, ErrNeedsUTF8):
		return errNeedsUTF8
	case errors.Is(err, ErrPathTooLong):
		return &Error{Code: CodeParamSyntax, Enhanced: enhanced, Msg: "Bad " + who + " address: too long", Err: err}
	}
	return &Error{Code: CodeParamSyntax, Enhanced: enhanced, Msg: "Bad " + who + " address syntax", Err: err}
}

// mailOptions interprets MAIL parameters; unknown ones are refused
// (RFC 5321 §4.1.1.11: 555).
func (c *conn) mailOptions(s string) (MailOptions, *Error) {
	var o MailOptions
	params, err := ParseParams(s, true)
	if err != nil {
		return o, &Error{Code: CodeParamSyntax, Enhanced: "5.5.4", Msg: "Bad parameter syntax", Err: err}
	}
	for _, p := range params {
		if e := c.mailParam(&o, p); e != nil {
			return o, e
		}
	}
	return o, nil
}

func (c *conn) mailParam(o *MailOptions, p Param) *Error {
	switch p.Key {
	case "SIZE": // RFC 1870 §6: size-value = 1*20DIGIT (no sign)
		n, err := strconv.ParseInt(p.Value, 10, 64)
		if err != nil || n < 0 || !allDigits(p.Value) {
			return &Error{Code: CodeParamSyntax, Enhanced: "5.5.4", Msg: "Bad SIZE value"}
		}
		if n > c.s.opts.MaxMessageBytes {
			return &Error{Code: CodeExceededStorage, Enhanced: "5.3.4", Msg: "Message too big"}
		}
		o.Size = n
	case "BODY": // RFC 6152 §2
		v := strings.ToUpper(p.Value)
		if v != "7BIT" && v != "8BITMIME" {
			return &Error{Code: CodeParamNotImpl, Enhanced: "5.5.4", Msg: "Unsupported BODY type"}
		}
		o.Body = v
	case "SMTPUTF8": // RFC 6531 §3.4
		if p.HasValue {
			return &Error{Code: CodeParamSyntax, Enhanced: "5.5.4", Msg: "SMTPUTF8 takes no value"}
		}
		o.UTF8 = true
	case "RET": // RFC 3461 §4.3
		v := strings.ToUpper(p.Value)
		if !c.s.opts.DSN || (v != "FULL" && v != "HDRS") || o.Ret != "" {
			return badParam(p.Key, c.s.opts.DSN)
		}
		o.Ret = v
	case "ENVID": // RFC 3461 §4.4: xtext, at most 100 characters
		v, err := DecodeXtext(p.Value)
		// The envelope id is printable US-ASCII (RFC 3461 §4.4).
		if !c.s.opts.DSN || err != nil || len(v) > 100 || v == "" || !isASCII(v) {
			return badParam(p.Key, c.s.opts.DSN)
		}
		o.EnvID = v
	case "AUTH": // RFC 4954 §5: the original submitter, or <>
		v, err := DecodeXtext(p.Value)
		if (!c.authOffered() && c.info.Auth == "") || err != nil {
			return badParam(p.Key, c.authOffered() || c.info.Auth != "")
		}
		o.AuthArg = v
	default:
		return &Error{Code: CodeParamsNotRecog, Enhanced: "5.5.4", Msg: "Unsupported MAIL parameter " + p.Key}
	}
	return nil
}

func (c *conn) cmdRcpt(arg string) {
	if !c.mail {
		c.fail(errNeedMail)
		return
	}
	if c.bdat != nil {
		// RFC 3030 §2: the recipients are fixed once a BDAT transfer
		// has begun (Postfix answers 503 too).
		c.fail(&Error{Code: CodeBadSequence, Enhanced: "5.5.1", Msg: "RCPT not allowed during BDAT"})
		return
	}
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		c.fail(&Error{Code: CodeParamSyntax, Enhanced: "5.5.4", Msg: "Syntax: RCPT TO:<address>"})
		return
	}
	path, params, err := c.parseRcptPath(strings.TrimLeft(rest, " "))
	if err != nil {
		c.fail(addrError(err, "5.1.3", "recipient"))
		return
	}
	opts, perr := c.rcptOptions(params)
	if perr != nil {
		c.fail(perr)
		return
	}
	if !path.Addr.IsASCII() && !c.utf8 {
		c.fail(errNeedsUTF8)
		return
	}
	if c.rcpts >= c.s.opts.MaxRecipients {
		c.refuseOvershoot()
		return
	}
	if err := c.sess.Rcpt(c.ctx, path, opts); err != nil {
		c.replyErr(err)
		return
	}
	c.rcpts++
	c.reply(CodeOK, "2.1.5", "Ok")
}

// refuseOvershoot answers a RCPT over the recipient limit. RFC 5321
// §4.5.3.1.10: a server with a limit "MUST behave in an orderly fashion,
// such as rejecting additional addresses over its limit rather than
// silently discarding addresses previously accepted", and the client then
// sends the message to those it got. So, like Postfix's
// smtpd_recipient_overshoot_limit, these 452s are not protocol errors
// until a transaction has had as many of them as the limit itself (1000 by
// default, Postfix's default too); past that the client is flooding, and
// each one counts toward MaxErrors and the 421.
func (c *conn) refuseOvershoot() {
	if c.overshoot++; c.overshoot > c.s.opts.MaxRecipients {
		c.fail(errTooManyRcpt)
		return
	}
	c.reply(errTooManyRcpt.Code, errTooManyRcpt.Enhanced, "%s", errTooManyRcpt.Msg)
}

// badParam refuses a parameter: 501 when we know it but the value is bad,
// 555 when the extension is not on (RFC 5321 §4.1.1.11).
func badParam(key string, known bool) *Error {
	if known {
		return &Error{Code: CodeParamSyntax, Enhanced: "5.5.4", Msg: "Bad " + key + " parameter"}
	}
	return &Error{Code: CodeParamsNotRecog, Enhanced: "5.5.4", Msg: "Unsupported parameter " + key}
}

// rcptOptions interprets RCPT parameters: NOTIFY and ORCPT (RFC 3461).
func (c *conn) rcptOptions(s string) (RcptOptions, *Error) {
	var o RcptOptions
	params, err := ParseParams(s, c.utf8)
	if err != nil {
		return o, &Error{Code: CodeParamSyntax, Enhanced: "5.5.4", Msg: "Bad parameter syntax", Err: err}
	}
	for _, p := range params {
		switch {
		case p.Key == "NOTIFY" && c.s.opts.DSN:
			n, ok := parseNotify(p.Value)
			if !ok {
				return o, badParam(p.Key, true)
			}
			o.Notify = n
		case p.Key == "ORCPT" && c.s.opts.DSN:
			v, ok := parseORcpt(p.Value, c.utf8)
			if !ok {
				return o, badParam(p.Key, true)
			}
			o.ORcpt = v
		default:
			return o, badParam(p.Key, false)
		}
	}
	return o, nil
}

// parseNotify checks "NEVER" or a list of SUCCESS, FAILURE, DELAY
// (RFC 3461 §4.1).
func parseNotify(v string) ([]string, bool) {
	list := strings.Split(strings.ToUpper(v), ",")
	if len(list) == 1 && list[0] == "NEVER" {
		return list, true
	}
	seen := map[string]bool{}
	for _, n := range list {
		if (n != "SUCCESS" && n != "FAILURE" && n != "DELAY") || seen[n] {
			return nil, false
		}
		seen[n] = true
	}
	return list, true
}

// parseORcpt checks "addr-type;xtext" (RFC 3461 §4.2) and returns it
// decoded. The address type is an atom such as rfc822 or utf-8; utf-8
// has an encoding of its own (RFC 6533 §3), with raw UTF-8 allowed in a
// SMTPUTF8 transaction.
func parseORcpt(v string, utf8 bool) (string, bool) {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok || typ == "" || addr == "" || len(v) > 500 {
		return "", false
	}
	for _, r := range typ {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return "", false
		}
	}
	var dec string
	var err error
	if strings.EqualFold(typ, "utf-8") {
		dec, err = DecodeUTF8AddrXtext(addr, utf8)
	} else {
		dec, err = DecodeXtext(addr)
	}
	if err != nil {
		return "", false
	}
	return typ + ";" + dec, true
}

// parseRcptPath accepts "<Postmaster>" without a domain, which RFC 5321
// §4.1.1.3 requires every server to take, as postmaster at our hostname.
func (c *conn) parseRcptPath(s string) (Path, string, error) {
	if len(s) >= 12 && strings.EqualFold(s[:12], "<postmaster>") {
		rest := s[12:]
		if rest != "" && rest[0] != ' ' { // [SP Rcpt-parameters], as for any path
			return Path{}, "", pathErr(ErrPathSyntax, "no space after \">\"")
		}
		return Path{Addr: Address{Local: "postmaster", Domain: strings.ToLower(c.s.opts.Hostname)}}, strings.TrimLeft(rest, " "), nil
	}
	return ParsePath(s, PathOptions{UTF8: true})
}

func (c *conn) limits() dataLimits {
	return dataLimits{maxBytes: c.s.opts.MaxMessageBytes, maxLine: c.s.opts.MaxLineLength}
}

// cmdData receives a message (RFC 5321 §4.1.1.4).
func (c *conn) cmdData(arg string) {
	switch {
	case arg != "":
		c.fail(errNoArgs)
		return
	case !c.mail:
		c.fail(errNeedMail)
		return
	case c.bdat != nil:
		c.fail(&Error{Code: CodeBadSequence, Enhanced: "5.5.1", Msg: "DATA not allowed after BDAT"})
		return
	case c.rcpts == 0:
		c.fail(errNoRcpts)
		return
	case c.br.Buffered() > 0:
		// RFC 2920 §3.1: DATA ends a pipelined group; the message may
		// only follow our 354. Data sent early is a smuggling attempt or
		// a broken client, and we cannot tell where it ends: hang up.
		c.fail(errSync)
		c.quit = true
		return
	}
	c.reply(CodeStartData, "", "End data with <CR><LF>.<CR><LF>")
	c.deadline = time.Now().Add(c.s.opts.DataTimeout)
	defer c.bigReader()()
	dr := newDotReader(c.br, c.limits())
	if c.s.opts.LMTP {
		c.lmtpData(dr)
		return
	}
	id, err := c.sess.Data(c.ctx, dr)
	if derr := dr.drain(); derr != nil {
		c.log.Info("smtp data aborted", "err", derr)
		c.quit = true
		c.resetTx()
		return
	}
	c.finishMessage(id, err, dr.check.err)
}

// lmtpData receives a message and replies once per accepted recipient
// (RFC 2033 §4.2).
func (c *conn) lmtpData(dr *dotReader) {
	ls, ok := c.sess.(LMTPSession)
	var id string
	var results []error
	var err error
	if ok {
		id, results, err = ls.LMTPData(c.ctx, dr)
	} else {
		err = &Error{Code: CodeLocalError, Enhanced: "4.3.0", Msg: "LMTP not supported by the backend"}
	}
	if derr := dr.drain(); derr != nil {
		c.log.Info("lmtp data aborted", "err", derr)
		c.quit = true
		c.resetTx()
		return
	}
	c.lmtpReplies(id, results, err, dr.check.err)
}

// lmtpReplies writes one reply per recipient; an input error or a
// whole-message error applies to all.
func (c *conn) lmtpReplies(id string, results []error, err error, inputErr *Error) {
	for i := 0; i < c.rcpts; i++ {
		e := err
		if inputErr != nil {
			e = inputErr
		} else if e == nil && i < len(results) {
			e = results[i]
		} else if e == nil {
			e = &Error{Code: CodeLocalError, Enhanced: "4.3.0", Msg: "No result for this recipient"}
		}
		if e == nil {
			c.reply(CodeOK, "2.0.0", "Ok: delivered as %s", id)
			continue
		}
		c.replyErr(e)
	}
	c.junk = 0
	c.resetTx()
}

// finishMessage replies to the end of a message. A broken input rule wins
// over whatever the backend said, since the backend saw an error too.
func (c *conn) finishMessage(id string, err error, inputErr *Error) {
	switch {
	case inputErr != nil:
		c.log.Info("smtp message refused", "code", inputErr.Code, "err", inputErr.Msg)
		c.fail(inputErr)
	case err != nil:
		c.replyErr(err)
	default:
		c.junk = 0
		c.reply(CodeOK, "2.0.0", "Ok: queued as %s", id)
	}
	c.resetTx()
}

func (c *conn) cmdRset(arg string) {
	if arg != "" {
		c.fail(errNoArgs)
		return
	}
	c.resetTx()
	c.reply(CodeOK, "2.0.0", "Ok")
}

func (c *conn) cmdNoop(string) { c.reply(CodeOK, "2.0.0", "Ok") }

func (c *conn) cmdQuit(string) {
	c.reply(CodeClosing, "2.0.0", "Bye")
	c.quit = true
}

// cmdVrfy never confirms an address: that would help address harvesting
// (RFC 5321 §3.5.3 allows 252).
func (c *conn) cmdVrfy(string) {
	c.reply(CodeCannotVerify, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
}

func (c *conn) cmdExpn(string) {
	c.reply(CodeNotImplemented, "5.5.1", "EXPN not available")
}

func (c *conn) cmdHelp(string) {
	c.reply(CodeHelp, "2.0.0", "See RFC 5321")
}

// cmdStartTLS upgrades the connection (RFC 3207).
func (c *conn) cmdStartTLS(arg string) {
	switch {
	case !c.tlsAvailable():
		c.fail(&Error{Code: CodeNotImplemented, Enhanced: "5.5.1", Msg: "STARTTLS not available"})
		return
	case arg != "":
		c.fail(errNoArgs)
		return
	}
	c.reply(CodeReady, "2.0.0", "Ready to start TLS")
	if err := c.bw.Flush(); err != nil {
		c.quit = true
		return
	}
	if n := c.br.Buffered(); n > 0 {
		// CVE-2011-0411: plaintext pipelined after STARTTLS must never be
		// read as if it came through TLS. Drop it.
		c.log.Warn("smtp discarding plaintext sent after STARTTLS", "bytes", n)
	}
	if !c.handshake() {
		c.quit = true
		return
	}
	// RFC 3207 §4.2: forget everything learnt before TLS.
	c.resetTx()
	c.helo = false
	c.info.HELO, c.info.ESMTP, c.info.Auth = "", false, ""
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
