package delivery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"posthorn/internal/message"
	"posthorn/internal/smtp"
	"posthorn/internal/store"
	"posthorn/internal/users"
)

// session is one SMTP connection's view of the policy.
type session struct {
	r    *Router
	conn *smtp.ConnInfo
	log  *slog.Logger

	from  smtp.Path
	utf8  bool
	rcpts []recipient
}

// recipient is an accepted RCPT and the accounts it reaches.
type recipient struct {
	addr     smtp.Address
	accounts []string
}

func (s *session) Mail(ctx context.Context, from smtp.Path, opts smtp.MailOptions) error {
	if s.r.opts.MinFreeBytes > 0 {
		free, err := freeBytes(s.r.opts.TempDir)
		if err == nil && free < s.r.opts.MinFreeBytes+uint64(max(opts.Size, 0)) {
			s.log.Warn("refusing mail: low disk space", "free", free)
			return errStorage
		}
	}
	s.from, s.utf8 = from, opts.UTF8
	return nil
}

// Rcpt accepts only addresses that reach a local account: mail to other
// domains is relaying, refused here in every form (the address parser has
// already reduced %-hacks, bang paths and source routes to local parts or
// to their real final domain).
func (s *session) Rcpt(ctx context.Context, to smtp.Path, _ smtp.RcptOptions) error {
	a := to.Addr
	if a.IsLiteral() {
		return errRelayDenied
	}
	res, err := s.r.opts.Users.Resolve(ctx, a.Local, a.ASCIIDomain())
	switch {
	case errors.Is(err, users.ErrNotLocal):
		s.log.Info("relay denied", "from", s.from.String(), "rcpt", a.String())
		return errRelayDenied
	case errors.Is(err, users.ErrNoSuchUser):
		s.log.Info("unknown recipient", "from", s.from.String(), "rcpt", a.String())
		return errNoSuchUser
	case errors.Is(err, users.ErrAliasLoop):
		return errAliasLoop.Wrap(err)
	case err != nil:
		return errTempFail.Wrap(err)
	case len(res.Remote) > 0:
		s.log.Error("alias forwards to other domains, which needs the outbound queue", "rcpt", a.String(), "targets", strings.Join(res.Remote, ","))
		return errNoForward
	}
	s.rcpts = append(s.rcpts, recipient{addr: a, accounts: res.Accounts})
	return nil
}

func (s *session) Reset() {
	s.from, s.utf8, s.rcpts = smtp.Path{}, false, nil
}

func (s *session) Close() {}

// Data stages the message in a temporary file (not fsynced: it is never the
// only copy of acknowledged mail), checks its header, then delivers one copy
// per account and returns only when all are durable.
func (s *session) Data(ctx context.Context, r io.Reader) (string, error) {
	id := newID()
	stage, info, err := s.stage(r)
	if stage != nil {
		defer os.Remove(stage.Name())
		defer stage.Close()
	}
	if err != nil {
		return "", err
	}
	log := s.log.With("msgid", id, "from", s.from.String())
	if err := s.checkHeader(info); err != nil {
		log.Info("message refused", "code", err.Code, "err", err.Msg)
		return "", err
	}
	size, err := stage.Seek(0, io.SeekEnd)
	if err != nil {
		return "", errTempFail.Wrap(err)
	}
	log.Info("received", "size", size, "rcpts", len(s.rcpts), "message_id", info.MessageID, "proto", s.conn.Protocol(s.utf8))
	return id, s.deliver(ctx, log, id, stage, size)
}

// stage copies the message into a temporary file through the header filter.
func (s *session) stage(r io.Reader) (*os.File, message.HeaderInfo, error) {
	f, err := os.CreateTemp(s.r.opts.TempDir, "in-*")
	if err != nil {
		return nil, message.HeaderInfo{}, storageErr(err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	flt := &message.Filter{
		W: bw, MaxBytes: s.r.opts.MaxHeaderBytes, MaxCount: s.r.opts.MaxHeaders,
		// RFC 5321 §4.4: Return-Path is added at final delivery; any the
		// message brings along is stale or forged.
		Drop: func(name string) bool { return name == "return-path" },
	}
	_, err = io.Copy(flt, r)
	if err == nil {
		err = flt.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	return f, flt.Info, s.stageErr(err)
}

// stageErr maps a failure while receiving: input-rule errors from the wire
// come back unchanged, header limits get their reply, the rest is ours.
func (s *session) stageErr(err error) error {
	var se *smtp.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return se
	case errors.Is(err, message.ErrHeaderTooBig):
		return errHeaderBig
	case errors.Is(err, message.ErrTooManyHeaders):
		return errHeaderMany
	}
	return storageErr(err)
}

// checkHeader refuses loops: too many hops (RFC 5321 §6.3) or a
// Delivered-To of an account we are about to deliver to again.
func (s *session) checkHeader(info message.HeaderInfo) *smtp.Error {
	if info.Received > s.r.opts.MaxReceived {
		return errTooManyHops
	}
	for _, rc := range s.rcpts {
		for _, acct := range rc.accounts {
			if slices.Contains(info.DeliveredTo, acct) {
				return errLoop
			}
		}
	}
	return nil
}

// deliver writes one copy per distinct account.
func (s *session) deliver(ctx context.Context, log *slog.Logger, id string, body *os.File, size int64) error {
	now := s.r.opts.Now()
	var ds []store.Delivery
	var rcptOf []string
	seen := map[string]bool{}
	for _, rc := range s.rcpts {
		for _, acct := range rc.accounts {
			if seen[acct] {
				continue
			}
			seen[acct] = true
			hdr := message.TraceFields(s.trace(id, rc.addr.String(), acct, now))
			ds = append(ds, store.Delivery{Account: acct, Mailbox: "INBOX", Date: now, Header: hdr, Body: body, BodySize: size})
			rcptOf = append(rcptOf, rc.addr.String())
		}
	}
	errs := s.r.opts.Store.Deliver(ctx, ds)
	var failed error
	for i, err := range errs {
		if err != nil {
			log.Error("delivery failed", "rcpt", rcptOf[i], "account", ds[i].Account, "err", err)
			failed = err
			continue
		}
		log.Info("delivered", "rcpt", rcptOf[i], "account", ds[i].Account, "mailbox", "INBOX")
	}
	if failed != nil {
		return storageErr(failed)
	}
	return nil
}

func (s *session) trace(id, rcpt, acct string, now time.Time) message.Trace {
	t := message.Trace{
		From: s.from.Addr.String(), Recipient: rcpt, Account: acct,
		HELO: s.conn.HELO, RemoteIP: s.conn.Remote.Addr().Unmap().String(),
		By: s.r.opts.Hostname, With: s.conn.Protocol(s.utf8), ID: id, Time: now,
	}
	if s.from.Null {
		t.From = ""
	}
	if st := s.conn.TLS; st != nil {
		t.TLSVersion = tlsVersion(st.Version)
		t.TLSCipher = tlsCipher(st.CipherSuite)
	}
	return t
}

// storageErr turns a storage failure into the client reply: 452 4.3.1 when
// out of space, else 451 4.3.0. The cause is kept for the log.
func storageErr(err error) *smtp.Error {
	if errors.Is(err, store.ErrFull) || isNoSpace(err) {
		return errStorage.Wrap(err)
	}
	return errTempFail.Wrap(fmt.Errorf("delivery: %w", err))
}
