package smtp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"posthorn/internal/message"
)

// Envelope is one outgoing transaction.
type Envelope struct {
	From  string // reverse-path address, "" for <>
	Size  int64  // message size, for SIZE= (RFC 1870)
	Body8 bool   // the body has 8-bit octets: BODY=8BITMIME (RFC 6152)
	UTF8  bool   // SMTPUTF8 (RFC 6531)
	Ret   string // DSN RET (RFC 3461), sent only if the server has DSN
	EnvID string // DSN ENVID
	Rcpts []EnvelopeRcpt
}

// EnvelopeRcpt is one recipient with its DSN parameters.
type EnvelopeRcpt struct {
	Addr   string
	Notify []string
	ORcpt  string // "type;address", decoded
}

// SendResult holds every reply of a transaction. Rcpts has one reply per
// recipient; Data is the final reply for the accepted ones (zero Code when
// the transaction ended before DATA).
type SendResult struct {
	Mail  Reply
	Rcpts []Reply
	Data  Reply
}

// ErrNeedsSMTPUTF8 means the message needs SMTPUTF8 and the server lacks it.
var ErrNeedsSMTPUTF8 = errors.New("smtp: server does not support SMTPUTF8")

// Send runs MAIL, RCPT and DATA, pipelined when the server allows
// (RFC 2920). Refusals are in the result; an error means the connection
// or the protocol failed and the outcome is unknown.
func (c *Client) Send(env Envelope, body io.Reader) (SendResult, error) {
	var res SendResult
	if env.UTF8 {
		if _, ok := c.Ext("SMTPUTF8"); !ok {
			return res, ErrNeedsSMTPUTF8
		}
	}
	if err := env.check(); err != nil {
		return res, err
	}
	cmds := []string{c.mailCmd(env)}
	for _, r := range env.Rcpts {
		cmds = append(cmds, c.rcptCmd(r))
	}
	if _, ok := c.Ext("PIPELINING"); ok {
		return c.sendPipelined(cmds, body)
	}
	return c.sendLockstep(cmds, body)
}

// check refuses an envelope address that is no RFC 5321 mailbox: its
// text goes between "<" and ">" as it is, and one like "a@b> NOTIFY=…"
// would add parameters of someone else's choosing to the command.
func (env Envelope) check() error {
	addrs := []string{env.From}
	for _, r := range env.Rcpts {
		addrs = append(addrs, r.Addr)
	}
	for i, a := range addrs {
		if i == 0 && a == "" {
			continue // the null reverse-path
		}
		if _, err := ParseAddress(a, true); err != nil {
			return fmt.Errorf("smtp: envelope address %q: %w", a, err)
		}
	}
	return nil
}

func (c *Client) mailCmd(env Envelope) string {
	var b strings.Builder
	fmt.Fprintf(&b, "MAIL FROM:<%s>", env.From)
	if _, ok := c.Ext("SIZE"); ok && env.Size > 0 {
		fmt.Fprintf(&b, " SIZE=%d", env.Size)
	}
	if _, ok := c.Ext("8BITMIME"); ok && env.Body8 {
		b.WriteString(" BODY=8BITMIME")
	}
	if env.UTF8 {
		b.WriteString(" SMTPUTF8")
	}
	if _, ok := c.Ext("DSN"); ok {
		if env.Ret != "" {
			b.WriteString(" RET=" + env.Ret)
		}
		if env.EnvID != "" {
			b.WriteString(" ENVID=" + EncodeXtext(env.EnvID))
		}
	}
	return b.String()
}

func (c *Client) rcptCmd(r EnvelopeRcpt) string {
	s := "RCPT TO:<" + r.Addr + ">"
	if _, ok := c.Ext("DSN"); ok {
		if len(r.Notify) > 0 {
			s += " NOTIFY=" + strings.Join(r.Notify, ",")
		}
		if typ, addr, ok := strings.Cut(r.ORcpt, ";"); ok {
			if strings.EqualFold(typ, "utf-8") {
				s += " ORCPT=" + typ + ";" + message.EncodeUTF8AddrXtext(addr) // RFC 6533 §3
			} else {
				s += " ORCPT=" + typ + ";" + EncodeXtext(addr)
			}
		}
	}
	return s
}

// sendPipelined writes MAIL, every RCPT and DATA in one go, then reads the
// replies in order.
func (c *Client) sendPipelined(cmds []string, body io.Reader) (SendResult, error) {
	var res SendResult
	for _, cmd := range append(cmds, "DATA") {
		if strings.ContainsAny(cmd, "\r\n") {
			return res, errors.New("smtp: CR or LF in a command")
		}
		_, _ = c.bw.WriteString(cmd + "\r\n")
	}
	if err := c.bw.Flush(); err != nil {
		return res, err
	}
	var err error
	if res.Mail, err = c.readReply(); err != nil {
		return res, err
	}
	for range cmds[1:] {
		r, err := c.readReply()
		if err != nil {
			return res, err
		}
		res.Rcpts = append(res.Rcpts, r)
	}
	dr, err := c.readReply()
	if err != nil {
		return res, err
	}
	if dr.Code != CodeStartData {
		if dr.Code < 400 {
			// RFC 5321 §4.3.2: DATA is answered 354 or refused. A 250
			// must not count as delivered: no octet was sent.
			_ = c.nc.Close()
			return res, dr.errUnless("DATA")
		}
		// Refused. With MAIL and some RCPT accepted, its reply is those
		// recipients' result (RFC 2920 §3.1): dropped, a 554 to DATA was
		// retried as 451 4.4.2 until the message expired. Otherwise it
		// only says there was nothing to send.
		if res.Mail.Code == CodeOK && anyAccepted(res.Rcpts) {
			res.Data = dr
		}
		return res, nil
	}
	if code := res.Mail.Code; code != CodeOK && code < 400 {
		// A positive MAIL reply other than 250 (a 252 was seen) made the
		// server take the transaction while we count it failed: an empty
		// message would reach the recipients. Drop the connection, so the
		// transaction never ends (QUIT now would be message text).
		_ = c.nc.Close()
		return res, fmt.Errorf("%w: %d to MAIL, then 354 to DATA", ErrBadReply, code)
	}
	if res.Mail.Code != CodeOK || !anyAccepted(res.Rcpts) {
		// RFC 2920 §3.1: a server may answer 354 anyway; end it empty.
		_, err = c.finishData(strings.NewReader(""))
		return res, err
	}
	res.Data, err = c.finishData(body)
	return res, err
}

// sendLockstep waits for each reply before the next command.
func (c *Client) sendLockstep(cmds []string, body io.Reader) (SendResult, error) {
	var res SendResult
	var err error
	if res.Mail, err = c.cmd("%s", cmds[0]); err != nil || res.Mail.Code != CodeOK {
		return res, err
	}
	for _, cmd := range cmds[1:] {
		r, err := c.cmd("%s", cmd)
		if err != nil {
			return res, err
		}
		res.Rcpts = append(res.Rcpts, r)
	}
	if !anyAccepted(res.Rcpts) {
		return res, nil
	}
	r, err := c.cmd("DATA")
	if err == nil && r.Code != CodeStartData && r.Code < 400 {
		// RFC 5321 §4.3.2: DATA is answered 354 or refused. A 250 counted
		// as delivered though no octet of the message had been sent.
		_ = c.nc.Close()
		return res, r.errUnless("DATA")
	}
	if err != nil || r.Code != CodeStartData {
		res.Data = r
		return res, err
	}
	res.Data, err = c.finishData(body)
	return res, err
}

// anyAccepted: a positive reply to RCPT (250, 251, or another 2xx such as
// 252, as Postfix takes it) accepts the recipient; the outbound results
// count it so too, so the message itself must then be sent (it was ended
// empty).
func anyAccepted(rs []Reply) bool {
	for _, r := range rs {
		if r.Code >= 200 && r.Code < 300 {
			return true
		}
	}
	return false
}

// finishData sends the message dot-stuffed and ends it with CRLF.CRLF.
func (c *Client) finishData(body io.Reader) (Reply, error) {
	dw := &dotWriter{w: c.bw, bol: true}
	if _, err := io.Copy(dw, body); err != nil {
		return Reply{}, err
	}
	if err := dw.close(); err != nil {
		return Reply{}, err
	}
	if err := c.bw.Flush(); err != nil {
		return Reply{}, err
	}
	// RFC 5321 §4.5.3.2.6: 10 minutes for the reply to the final dot (the
	// server may be scanning the message); giving up early only makes a
	// duplicate likelier. Twice the command timeout: 10 minutes by default.
	r, err := c.readReplyWithin(2 * c.timeout)
	if err != nil {
		// As Postfix says it: the server may have the message already,
		// and what follows (a retry) may deliver it twice.
		return r, fmt.Errorf("%w: %w", ErrAfterData, err)
	}
	return r, nil
}

// ErrAfterData wraps a failure to read the reply to the end of the data:
// the message may be delivered more than once.
var ErrAfterData = errors.New("no reply to the end of the data: the message may arrive more than once")

// dotWriter dot-stuffs (RFC 5321 §4.5.2) and makes every line end CRLF: a
// bare CR or LF in the input becomes CRLF, so no smuggling sequence can
// ever leave this server.
type dotWriter struct {
	w   *bufio.Writer
	bol bool // at the beginning of a line
	cr  bool // a CR is pending
}

func (d *dotWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if d.cr {
			d.cr = false
			d.newline()
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\r':
			d.cr = true
		case '\n':
			d.newline()
		default:
			if d.bol && b == '.' {
				_ = d.w.WriteByte('.')
			}
			_ = d.w.WriteByte(b)
			d.bol = false
		}
	}
	return len(p), nil
}

func (d *dotWriter) newline() {
	_, _ = d.w.WriteString("\r\n")
	d.bol = true
}

func (d *dotWriter) close() error {
	if d.cr {
		d.cr = false
		d.newline()
	}
	if !d.bol {
		d.newline()
	}
	_, err := d.w.WriteString(".\r\n")
	return err
}
