// Package delivery is the inbound mail policy: it decides, recipient by
// recipient, whether mail is accepted, and writes accepted mail into the
// store. It implements smtp.Backend for the MTA listener.
//
// What must hold before a 250 reply to DATA/BDAT: every account's copy is
// durable in the store (store.Mail.Deliver returned nil for it). If any copy
// fails, the reply is 4xx and the client retries: a duplicate for the
// accounts that did get a copy is possible, a loss is not.
package delivery

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"posthorn/internal/metrics"
	"syscall"
	"time"

	"posthorn/internal/smtp"
	"posthorn/internal/store"
	"posthorn/internal/unixmail"
	"posthorn/internal/users"
)

// Queue takes mail that cannot be delivered here and now: recipients in
// other domains, and local copies whose delivery failed. It is
// implemented by package queue.
type Queue interface {
	Enqueue(ctx context.Context, m store.QueuedMessage, body io.Reader) (string, error)
}

// Options configure a Router.
type Options struct {
	Hostname string
	Users    *users.Service
	Store    store.Mail
	// Queue, if set, makes relaying (submission, forwarding aliases) and
	// retried local delivery possible. Without it they get 451.
	Queue Queue
	// Unix, if set, serves the classic Unix mail domains (host accounts,
	// /var/mail, /etc/aliases, .forward).
	Unix *unixmail.System
	// Filter, if set, applies users' Sieve scripts to local deliveries.
	Filter *Filter
	// TempDir holds a message while it arrives, before it is delivered.
	TempDir string
	// Limits on the header section (see config.SMTP).
	MaxHeaderBytes int64
	MaxHeaders     int
	MaxReceived    int
	// MaxLineLength bounds a line of a message left in the maildrop, as
	// the SMTP servers bound one sent to them (default 998, RFC 5322
	// §2.1.1).
	MaxLineLength int
	// MinFreeBytes: below this much free space in TempDir, MAIL gets
	// 452 4.3.1 (RFC 3463) instead of a transaction that would fail.
	MinFreeBytes uint64
	// LocalAnySender lets every local user of sendmail set the envelope
	// sender (-f), as Postfix does by default; the message then carries
	// an X-Authentication-Warning naming the user. Without it only root
	// and posthorn's own user may, and others get 553 5.7.1.
	LocalAnySender bool
	Logger         *slog.Logger
	Now            func() time.Time // for tests; time.Now if nil
}

// Counters for the http listener's /metrics.
var (
	mReceived  = metrics.Default.Counter("posthorn_messages_received_total", "Messages accepted over SMTP, LMTP, the sendmail socket and the maildrop.")
	mDelivered = metrics.Default.Counter("posthorn_local_deliveries_total", "Copies stored in local mailboxes (store accounts and Unix mailboxes).")
	mQueued    = metrics.Default.Counter("posthorn_queued_recipients_total", "Recipients handed to the outbound queue.")
	mRefused   = metrics.Default.Counter("posthorn_recipients_refused_total", "RCPT commands refused (relaying, unknown user, full mailbox).")
)

// Router accepts or refuses mail for our domains and delivers it.
type Router struct {
	opts Options
	log  *slog.Logger
	done doneTargets // Unix targets delivered before a sibling failed
}

var _ smtp.Backend = (*Router)(nil)

// New validates opts and returns a Router.
func New(opts Options) (*Router, error) {
	switch {
	case opts.Users == nil || opts.Store == nil:
		return nil, errors.New("delivery: Users and Store are required")
	case opts.Hostname == "":
		return nil, errors.New("delivery: Hostname is required")
	case opts.TempDir == "":
		return nil, errors.New("delivery: TempDir is required")
	}
	if err := os.MkdirAll(opts.TempDir, 0o700); err != nil {
		return nil, err
	}
	removeStale(opts.TempDir)
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 1 << 20
	}
	if opts.MaxHeaders <= 0 {
		opts.MaxHeaders = 1000
	}
	if opts.MaxLineLength <= 0 {
		opts.MaxLineLength = 998
	}
	if opts.MaxReceived <= 0 {
		opts.MaxReceived = 50
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{opts: opts, log: log}, nil
}

// Modes of a session, from the listener it came in on.
type mode int

const (
	modeMTA    mode = iota // port 25: mail for our domains only
	modeSubmit             // 587/465: authenticated users send anywhere (RFC 6409)
	modeLocal              // the sendmail socket: local users, trusted by uid
)

func modeOf(service string) mode {
	switch service {
	case "submission", "submissions":
		return modeSubmit
	case "local":
		return modeLocal
	}
	return modeMTA
}

// SetQueue sets the queue after New: the queue and the router refer to
// each other (the router queues mail, the queue injects DSNs through the
// router). Call it before the router serves any session.
func (r *Router) SetQueue(q Queue) {
	r.opts.Queue = q
	if r.opts.Filter != nil {
		r.opts.Filter.Queue = q
	}
}

// NewSession implements smtp.Backend.
func (r *Router) NewSession(ctx context.Context, c *smtp.ConnInfo) (smtp.Session, error) {
	remote := "local"
	if c.Remote.IsValid() {
		remote = c.Remote.Addr().String()
	}
	return &session{r: r, conn: c, mode: modeOf(c.Service), log: r.log.With("cid", c.ID, "remote", remote)}, nil
}

// Replies of the inbound policy.
var (
	errRelayDenied = &smtp.Error{Code: 554, Enhanced: "5.7.1", Msg: "Relay access denied"}
	errNoSuchUser  = &smtp.Error{Code: 550, Enhanced: "5.1.1", Msg: "No such user here"}
	errAliasLoop   = &smtp.Error{Code: 550, Enhanced: "5.4.6", Msg: "Alias expansion loop"}
	errNoForward   = &smtp.Error{Code: 451, Enhanced: "4.3.0", Msg: "Forwarding to other domains is not available, try again later"}
	errNotOwner    = &smtp.Error{Code: 553, Enhanced: "5.7.1", Msg: "Sender address not owned by the authenticated user"}
	errFromHeader  = &smtp.Error{Code: 553, Enhanced: "5.7.1", Msg: "From header does not match the authenticated user"}
	errManyFrom    = &smtp.Error{Code: 550, Enhanced: "5.6.0", Msg: "Message has more than one From field"}
	errBlocked     = &smtp.Error{Code: 454, Enhanced: "4.7.0", Msg: "Too many failed logins, try again later"}
	errTempFail    = &smtp.Error{Code: 451, Enhanced: "4.3.0", Msg: "Local error in processing, try again later"}
	errStorage     = &smtp.Error{Code: 452, Enhanced: "4.3.1", Msg: "Insufficient system storage"}
	errMailboxFull = &smtp.Error{Code: 452, Enhanced: "4.2.2", Msg: "Mailbox full, try again later"}
	errTooManyHops = &smtp.Error{Code: 554, Enhanced: "5.4.6", Msg: "Too many hops: mail loop?"}
	errLoop        = &smtp.Error{Code: 554, Enhanced: "5.4.6", Msg: "Mail forwarding loop detected"}
	errHeaderBig   = &smtp.Error{Code: 552, Enhanced: "5.3.4", Msg: "Message header too large"}
	errHeaderMany  = &smtp.Error{Code: 552, Enhanced: "5.3.4", Msg: "Too many header fields"}
)

// newID returns a message id for logs and Received.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// freeBytes returns the space available to us in dir.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// removeStale deletes staging files left by a crash. Only the daemon stages
// messages, and New runs before it serves, so any "in-*" file is stale; it
// was never the only copy of an acknowledged message.
func removeStale(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, "in-*"))
	for _, n := range names {
		_ = os.Remove(n)
	}
}
