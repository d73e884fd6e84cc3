package delivery

import (
	"context"
	"errors"
	"log/slog"
	"os/user"
	"strconv"
	"strings"

	"posthorn/internal/sasl"
	"posthorn/internal/smtp"
	"posthorn/internal/unixmail"
	"posthorn/internal/users"
)

// session is one SMTP connection's view of the policy.
type session struct {
	r    *Router
	conn *smtp.ConnInfo
	mode mode
	log  *slog.Logger

	from    smtp.Path
	mopts   smtp.MailOptions
	rcpts   []recipient
	perRcpt bool // LMTP: one reply per recipient after DATA
	// setBy is the local user who set an envelope sender other than
	// their own (see Options.LocalAnySender), for the warning field.
	setBy string
}

// recipient is an accepted RCPT and where it goes.
type recipient struct {
	addr     smtp.Address
	opts     smtp.RcptOptions
	accounts []string // local accounts
	remote   []string // addresses in other domains (relay, forwarding)
	unix     []unixmail.Target
}

var _ smtp.AuthSession = (*session)(nil)

// Auth implements smtp.AuthSession: the users service checks credentials
// and counts failures; a blocked client gets 454 4.7.0.
func (s *session) Auth(ctx context.Context, mech string) (sasl.Server, error) {
	srv, err := s.r.opts.Users.SASL(ctx, mech, "smtp", s.conn.Remote.Addr())
	if err != nil {
		return nil, err
	}
	return blockMapped{srv}, nil
}

type blockMapped struct{ sasl.Server }

func (b blockMapped) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := b.Server.Next(resp)
	if errors.Is(err, users.ErrBlocked) {
		err = errBlocked
	}
	return ch, done, err
}

func (s *session) Mail(ctx context.Context, from smtp.Path, opts smtp.MailOptions) error {
	if s.r.opts.MinFreeBytes > 0 {
		free, err := freeBytes(s.r.opts.TempDir)
		if err == nil && free < s.r.opts.MinFreeBytes+uint64(max(opts.Size, 0)) {
			s.log.Warn("refusing mail: low disk space", "free", free)
			return errStorage
		}
	}
	s.setBy = ""
	if err := s.checkSender(ctx, from); err != nil {
		return err
	}
	s.from, s.mopts = from, opts
	return nil
}

// checkSender applies the sender rules of submission and local mail.
func (s *session) checkSender(ctx context.Context, from smtp.Path) error {
	switch {
	case s.mode == modeMTA || from.Null:
		return nil
	case s.mode == modeLocal:
		own := s.localSender()
		if s.trustedLocal() || strings.EqualFold(from.Addr.String(), own) {
			return nil
		}
		if s.r.opts.LocalAnySender {
			s.setBy, _, _ = strings.Cut(own, "@")
			return nil
		}
		return errNotOwner
	}
	ok, err := s.r.opts.Users.Owns(ctx, s.conn.Auth, from.Addr.Local+"@"+from.Addr.ASCIIDomain())
	if err != nil {
		return errTempFail.Wrap(err)
	}
	if !ok {
		s.log.Info("sender refused", "account", s.conn.Auth, "from", from.String())
		return errNotOwner
	}
	return nil
}

// trustedLocal: root and our own user may send as anyone (like Postfix's
// trusted users for sendmail -f).
func (s *session) trustedLocal() bool {
	return s.conn.PeerUID == 0 || s.conn.PeerUID == selfUID
}

// localSender is the address of the local user on the other end.
func (s *session) localSender() string {
	name := "uid" + strconv.Itoa(s.conn.PeerUID)
	if u, err := user.LookupId(strconv.Itoa(s.conn.PeerUID)); err == nil {
		name = u.Username
	}
	return name + "@" + s.r.opts.Hostname
}

// Rcpt decides where a recipient's mail goes. On port 25 only addresses
// that reach a local account are accepted: mail to other domains is
// relaying, refused in every form (the address parser has already reduced
// %-hacks, bang paths and source routes to local parts or to their real
// final domain). Submission and local mail may go anywhere.
func (s *session) Rcpt(ctx context.Context, to smtp.Path, opts smtp.RcptOptions) error {
	err := s.rcpt(ctx, to, opts)
	if err != nil {
		mRefused.Inc()
	}
	return err
}

func (s *session) rcpt(ctx context.Context, to smtp.Path, opts smtp.RcptOptions) error {
	a := to.Addr
	if a.IsLiteral() {
		return errRelayDenied
	}
	targets, remote, isUnix, err := s.r.unixResolve(a.Local, a.ASCIIDomain())
	res := users.Resolution{Remote: remote}
	if !isUnix {
		res, err = s.r.opts.Users.Resolve(ctx, a.Local, a.ASCIIDomain())
	}
	switch {
	case errors.Is(err, users.ErrNotLocal) && s.mode != modeMTA:
		res = users.Resolution{Remote: []string{a.String()}}
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
	}
	if len(res.Remote) > 0 && s.r.opts.Queue == nil {
		s.log.Error("relaying needs the outbound queue", "rcpt", a.String())
		return errNoForward
	}
	if err := s.checkQuota(ctx, res.Accounts); err != nil {
		s.log.Info("mailbox full", "rcpt", a.String())
		return err
	}
	s.rcpts = append(s.rcpts, recipient{addr: a, opts: opts, accounts: res.Accounts, remote: res.Remote, unix: targets})
	return nil
}

// checkQuota refuses a recipient whose account is at its quota, or would
// be with the size MAIL FROM declared (RFC 3463 4.2.2: a temporary
// failure, so the mail comes back once the user has made room).
func (s *session) checkQuota(ctx context.Context, accounts []string) error {
	q, ok := s.r.opts.Store.(quotaReader)
	if !ok {
		return nil
	}
	for _, acct := range accounts {
		used, limit, err := q.Quota(ctx, acct)
		if err != nil {
			return errTempFail.Wrap(err)
		}
		if limit > 0 && used+s.mopts.Size >= limit {
			return errMailboxFull
		}
	}
	return nil
}

type quotaReader interface {
	Quota(ctx context.Context, account string) (used, limit int64, err error)
}

func (s *session) Reset() {
	s.from, s.mopts, s.rcpts, s.setBy = smtp.Path{}, smtp.MailOptions{}, nil, ""
}

func (s *session) Close() {}
