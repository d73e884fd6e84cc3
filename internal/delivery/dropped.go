package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"posthorn/internal/message"
	"posthorn/internal/pickup"
	"posthorn/internal/smtp"
)

var _ pickup.Submitter = (*Router)(nil)

// permanent marks a refusal that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string   { return p.err.Error() }
func (p permanent) Unwrap() error   { return p.err }
func (p permanent) Permanent() bool { return true }

// SubmitDropped takes a message that sendmail left in the maildrop while
// the daemon was down. It goes through the same policy as the sendmail
// socket, for the file owner's uid. Nobody waits for an answer, so
// refused recipients are reported to the sender with a DSN.
func (r *Router) SubmitDropped(ctx context.Context, uid int, env pickup.Envelope, msg io.Reader) error {
	s := &session{r: r, mode: modeLocal, log: r.log.With("cid", "maildrop", "uid", uid),
		conn: &smtp.ConnInfo{ID: newID(), Service: "local", PeerUID: uid, HELO: "localhost", ESMTP: true, Hostname: r.opts.Hostname}}
	if err := checkDropParams(env); err != nil {
		return permanent{err}
	}
	msg = &textChecker{r: msg, maxLine: r.opts.MaxLineLength}
	from := smtp.Path{Null: env.From == ""}
	if !from.Null {
		a, err := smtp.ParseAddress(env.From, true)
		if err != nil {
			return permanent{fmt.Errorf("bad sender %q: %w", env.From, err)}
		}
		from.Addr = a
	}
	if err := s.Mail(ctx, from, smtp.MailOptions{Ret: env.Ret, EnvID: env.EnvID, UTF8: needsUTF8(env)}); err != nil {
		return classifyRefusal(err)
	}
	failed, err := s.droppedRcpts(ctx, env)
	if err != nil {
		return err
	}
	if len(s.rcpts) > 0 {
		if _, err := s.Data(ctx, msg); err != nil {
			if perr := classifyRefusal(err); !isPermanent(perr) {
				return perr
			}
			failed = s.allFailed(err, failed)
		}
	}
	r.refusedDSN(ctx, from, env.EnvID, failed)
	if len(s.rcpts) == 0 {
		return permanent{errors.New("no recipient accepted")}
	}
	return nil
}

// checkDropParams holds a maildrop file's DSN parameters to what MAIL
// accepts on the socket (RFC 3461 §4.3, §4.4): sendmail never writes
// others, but any local user can write a file by hand.
func checkDropParams(env pickup.Envelope) error {
	switch env.Ret {
	case "", "FULL", "HDRS":
	default:
		return fmt.Errorf("bad RET %q", env.Ret)
	}
	if len(env.EnvID) > 100 {
		return errors.New("ENVID longer than 100 characters")
	}
	for i := 0; i < len(env.EnvID); i++ {
		if env.EnvID[i] >= 0x80 {
			return errors.New("ENVID holds a character that is not US-ASCII")
		}
	}
	return nil
}

// textChecker refuses, as the SMTP servers do on the socket, a NUL octet
// (smtp.ErrNUL) and a line longer than maxLine octets, line ends not
// counted (smtp.ErrLineTooLong). A maildrop file skipped both checks.
type textChecker struct {
	r       io.Reader
	maxLine int
	line    int
}

func (t *textChecker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	for _, c := range p[:n] {
		switch c {
		case 0:
			return 0, smtp.ErrNUL
		case '\n':
			t.line = 0
		case '\r':
		default:
			if t.line++; t.line > t.maxLine {
				return 0, smtp.ErrLineTooLong
			}
		}
	}
	return n, err
}

// droppedRcpts offers each recipient; it returns those refused for good.
// A temporary refusal of any recipient defers the whole file.
func (s *session) droppedRcpts(ctx context.Context, env pickup.Envelope) ([]message.DSNRecipient, error) {
	var failed []message.DSNRecipient
	for _, rc := range env.Rcpts {
		a, err := smtp.ParseAddress(rc, true)
		if err == nil {
			err = s.Rcpt(ctx, smtp.Path{Addr: a}, smtp.RcptOptions{Notify: env.Notify})
		}
		if err == nil {
			continue
		}
		if e := classifyRefusal(err); !isPermanent(e) {
			return nil, e
		}
		failed = append(failed, refusedRcpt(rc, err))
	}
	return failed, nil
}

// allFailed adds every accepted recipient to failed, for a message refused
// as a whole.
func (s *session) allFailed(err error, failed []message.DSNRecipient) []message.DSNRecipient {
	for _, rc := range s.rcpts {
		failed = append(failed, refusedRcpt(rc.addr.String(), err))
	}
	s.rcpts = nil
	return failed
}

func refusedRcpt(addr string, err error) message.DSNRecipient {
	d := message.DSNRecipient{Final: addr, Action: message.ActionFailed, Status: "5.0.0", Diagnostic: err.Error()}
	var se *smtp.Error
	if errors.As(err, &se) {
		d.Status, d.Diagnostic = se.Enhanced, fmt.Sprintf("%d %s %s", se.Code, se.Enhanced, se.Msg)
	}
	return d
}

// classifyRefusal marks 5xx replies permanent.
func classifyRefusal(err error) error {
	var se *smtp.Error
	if errors.As(err, &se) && se.Code >= 500 {
		return permanent{err}
	}
	return err
}

func isPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// refusedDSN reports recipients refused for a dropped message.
func (r *Router) refusedDSN(ctx context.Context, from smtp.Path, envid string, failed []message.DSNRecipient) {
	if from.Null || len(failed) == 0 {
		return
	}
	d := message.DSN{ReportingMTA: r.opts.Hostname, To: from.Addr.String(), EnvID: envid, Arrival: r.opts.Now(), Recipients: failed}
	raw, err := d.Build(r.opts.Now())
	if err == nil {
		err = r.Inject(ctx, "", []string{from.Addr.String()}, raw)
	}
	if err != nil {
		r.log.Error("DSN for dropped message not sent", "err", err)
	}
}

// needsUTF8 reports whether any address of env is not ASCII (RFC 6531).
func needsUTF8(env pickup.Envelope) bool {
	return nonASCII(append([]string{env.From}, env.Rcpts...)...)
}

// nonASCII reports whether any of ss holds an octet outside ASCII.
func nonASCII(ss ...string) bool {
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return true
			}
		}
	}
	return false
}

// generatedUTF8 tells whether mail we make or pass on (a DSN, a vacation
// reply, a redirect, a forward) needs SMTPUTF8 (RFC 6531 §3.4): a sender
// or recipient address, or the message's own header section, that is
// not ASCII. Without it, such mail went to servers that never offered
// SMTPUTF8, with a UTF-8 RCPT TO and UTF-8 header fields.
func generatedUTF8(msg []byte, addrs ...string) bool {
	if nonASCII(addrs...) {
		return true
	}
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(msg)
	}
	return nonASCII(string(msg[:end]))
}
