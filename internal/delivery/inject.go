package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"posthorn/internal/message"
	"posthorn/internal/queue"
	"posthorn/internal/smtp"
	"posthorn/internal/store"
	"posthorn/internal/users"
)

var (
	_ queue.Injector  = (*Router)(nil)
	_ queue.Transport = Transport{}
)

// Inject delivers a message we made ourselves (a DSN) to each address:
// locally when it is ours, through the queue otherwise. Mail for a local
// address that does not exist is dropped with a log line: it is a report
// about a report, and nobody could read it.
func (r *Router) Inject(ctx context.Context, from string, to []string, msg []byte) error {
	var remote []store.QueuedRcpt
	var lastErr error
	id := newID()
	seen := map[string]bool{} // Unix targets reached
	for _, addr := range to {
		local, domain := users.Split(addr)
		targets, unixRemote, isUnix, err := r.unixResolve(local, domain)
		res := users.Resolution{Remote: unixRemote}
		if !isUnix {
			res, err = r.opts.Users.Resolve(ctx, local, domain)
		}
		switch {
		case errors.Is(err, users.ErrNotLocal):
			remote = append(remote, store.QueuedRcpt{Addr: addr})
			continue
		case errors.Is(err, users.ErrNoSuchUser), errors.Is(err, users.ErrAliasLoop):
			r.log.Warn("dropping generated message for unknown local address", "msgid", id, "rcpt", addr)
			continue
		case err != nil:
			lastErr = err
			continue
		}
		for _, a := range res.Remote {
			remote = append(remote, store.QueuedRcpt{Addr: a})
		}
		if len(targets) > 0 {
			content := func() io.Reader {
				return io.MultiReader(strings.NewReader("Delivered-To: "+addr+"\r\n"), bytes.NewReader(msg))
			}
			if err := r.deliverUnix(ctx, r.log.With("msgid", id, "rcpt", addr), id, addr, targets, from, content, seen); err != nil {
				remote = append(remote, store.QueuedRcpt{Addr: addr}) // retry through the queue
			}
		}
		for _, acct := range res.Accounts {
			err := r.roomFor(ctx, acct, int64(len(localHeader(from, acct))+len(msg)))
			if err == nil {
				err = r.deliverLocal(ctx, id, from, addr, acct, bytes.NewReader(msg), int64(len(msg)))
			}
			if err != nil {
				remote = append(remote, store.QueuedRcpt{Addr: acct}) // retry through the queue
			}
		}
	}
	if len(remote) > 0 {
		if r.opts.Queue == nil {
			return errNoForward
		}
		m := store.QueuedMessage{ID: id, From: from, Created: r.opts.Now(), Size: int64(len(msg)), Rcpts: remote,
			UTF8: generatedUTF8(msg, append([]string{from}, rcptAddrs(remote)...)...)}
		if _, err := r.opts.Queue.Enqueue(ctx, m, bytes.NewReader(msg)); err != nil {
			return err
		}
	}
	return lastErr
}

// deliverLocal writes one copy of an already complete message (it has its
// Received fields) for an account, adding Return-Path and Delivered-To,
// through the account's Sieve script. rcpt is the address as addressed.
func (r *Router) deliverLocal(ctx context.Context, id, from, rcpt, acct string, body io.ReaderAt, size int64) error {
	var h bytes.Buffer
	h.WriteString(localHeader(from, acct)) // the caller checked the quota (roomFor)
	d := store.Delivery{Account: acct, Mailbox: "INBOX", Date: r.opts.Now(), Header: h.Bytes(), Body: body, BodySize: size}
	ds := []store.Delivery{d}
	if r.opts.Filter != nil {
		ds, _ = r.opts.Filter.Apply(ctx, Local{Delivery: d, Rcpt: rcpt, From: from})
	}
	for i, err := range r.opts.Store.Deliver(ctx, ds) {
		if err != nil {
			r.log.Error("local delivery failed", "msgid", id, "account", acct, "mailbox", ds[i].Mailbox, "err", err)
			return err
		}
		mDelivered.Inc()
		r.log.Info("delivered", "msgid", id, "from", from, "account", acct, "mailbox", ds[i].Mailbox)
	}
	return nil
}

// localHeader is what deliverLocal puts before a message it stores.
func localHeader(from, acct string) string {
	return "Return-Path: <" + from + ">\r\nDelivered-To: " + acct + "\r\n"
}

func rcptAddrs(rs []store.QueuedRcpt) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Addr
	}
	return out
}

// roomFor returns store.ErrOverQuota when n more octets would take acct
// past its quota. The SMTP session checks at RCPT and after DATA
// (quotaCut); mail that reaches an account through the queue (an alias
// retried, a Sieve redirect, a DSN or vacation reply) was stored whatever
// the quota said.
func (r *Router) roomFor(ctx context.Context, acct string, n int64) error {
	q, ok := r.opts.Store.(quotaReader)
	if !ok {
		return nil
	}
	used, limit, err := q.Quota(ctx, acct)
	if err != nil {
		return err
	}
	if limit > 0 && used+n > limit {
		return fmt.Errorf("%s: %w", acct, store.ErrOverQuota)
	}
	return nil
}

// successDSN tells the sender, when asked (NOTIFY=SUCCESS, RFC 3461 §4.1),
// that we delivered the message to rcpts. It carries the original's
// header section: RET=FULL asks for the whole message in "failed" DSNs
// only (RFC 3461 §4.3), and the sender has the message.
func (r *Router) successDSN(ctx context.Context, from smtp.Path, o smtp.MailOptions, id string, rcpts []store.QueuedRcpt, original io.Reader) {
	if from.Null || len(rcpts) == 0 {
		return
	}
	d := message.DSN{ReportingMTA: r.opts.Hostname, To: from.Addr.String(), EnvID: o.EnvID, Arrival: r.opts.Now(),
		Original: original, HeadersOnly: true}
	for _, rc := range rcpts {
		d.Recipients = append(d.Recipients, message.DSNRecipient{Final: rc.Addr, Original: rc.ORcpt,
			Action: message.ActionDelivered, Status: "2.0.0", LastTry: r.opts.Now()})
	}
	raw, err := d.Build(r.opts.Now())
	if err == nil {
		err = r.Inject(ctx, "", []string{from.Addr.String()}, raw)
	}
	if err != nil {
		r.log.Error("success DSN not sent", "msgid", id, "err", err)
	}
}

// Transport sends queued mail: recipients in our domains are delivered
// here (retries of failed local deliveries), the rest go to Remote.
type Transport struct {
	Router *Router
	Remote queue.Transport
}

// Deliver implements queue.Transport.
func (t Transport) Deliver(ctx context.Context, env queue.Envelope, body io.ReaderAt, size int64) []queue.Result {
	local, err := t.Router.opts.Users.IsLocalDomain(ctx, env.Domain)
	// A classic Unix domain is ours too: a local delivery that failed for
	// a while (a reader holding the mbox lock, a full spool) is retried
	// here. Sent to the outbound transport, it bounced, or went to the
	// domain's MX.
	local = local || t.Router.opts.Unix.HasDomain(strings.TrimSuffix(env.Domain, "."))
	switch {
	case err != nil:
		return sameResult(env, queue.Result{Code: 451, Enhanced: "4.3.0", Text: "directory lookup failed"})
	case local:
		return t.Router.deliverQueued(ctx, env, body, size)
	case t.Remote == nil:
		return sameResult(env, queue.Result{Code: 451, Enhanced: "4.4.0", Text: "no outbound transport"})
	}
	return t.Remote.Deliver(ctx, env, body, size)
}

func sameResult(env queue.Envelope, r queue.Result) []queue.Result {
	out := make([]queue.Result, len(env.Rcpts))
	for i := range out {
		out[i] = r
	}
	return out
}

// deliverQueued delivers queued recipients of our own domains. Several
// recipients that reach one account (me, me+tag, an alias of me: a Sieve
// redirect to one's own addresses) get one copy, as in an SMTP
// transaction (localCopies); it got one per recipient.
func (r *Router) deliverQueued(ctx context.Context, env queue.Envelope, body io.ReaderAt, size int64) []queue.Result {
	out := make([]queue.Result, len(env.Rcpts))
	stored := map[string]bool{} // accounts given a copy in this run
	seen := map[string]bool{}   // Unix targets reached in this run
	for i, rc := range env.Rcpts {
		out[i] = r.deliverOne(ctx, env, rc.Addr, body, size, stored, seen)
	}
	return out
}

func (r *Router) deliverOne(ctx context.Context, env queue.Envelope, addr string, body io.ReaderAt, size int64, stored, seen map[string]bool) queue.Result {
	local, domain := users.Split(addr)
	targets, remote, isUnix, err := r.unixResolve(local, domain)
	res := users.Resolution{Remote: remote}
	if !isUnix {
		res, err = r.opts.Users.Resolve(ctx, local, domain)
	}
	switch {
	case errors.Is(err, users.ErrNoSuchUser), errors.Is(err, users.ErrNotLocal):
		return queue.Result{Code: 550, Enhanced: "5.1.1", Text: "no such user here"}
	case errors.Is(err, users.ErrAliasLoop): // as at RCPT: retrying cannot help
		return queue.Result{Code: 550, Enhanced: "5.4.6", Text: "alias or forward expansion loop"}
	case err != nil:
		return queue.Result{Code: 451, Enhanced: "4.3.0", Text: "directory lookup failed"}
	}
	// Every account must have room before anything is delivered: a full
	// one fails the recipient for now, and its retry would deliver the
	// others (and the Unix targets) again.
	for _, acct := range res.Accounts {
		if stored[acct] {
			continue
		}
		if err := r.roomFor(ctx, acct, int64(len(localHeader(env.From, acct)))+size); err != nil {
			if errors.Is(err, store.ErrOverQuota) {
				return queue.Result{Code: 452, Enhanced: "4.2.2", Text: "mailbox full"}
			}
			return queue.Result{Code: 451, Enhanced: "4.3.0", Text: "quota lookup failed"}
		}
	}
	if len(targets) > 0 {
		content := func() io.Reader {
			h := "Return-Path: <" + env.From + ">\r\nDelivered-To: " + addr + "\r\n"
			return io.MultiReader(strings.NewReader(h), io.NewSectionReader(body, 0, size))
		}
		if err := r.deliverUnix(ctx, r.log.With("msgid", env.ID, "rcpt", addr), env.ID, addr, targets, env.From, content, seen); err != nil {
			return unixResult(err)
		}
	}
	for _, acct := range res.Accounts {
		if stored[acct] {
			continue
		}
		if err := r.deliverLocal(ctx, env.ID, env.From, addr, acct, body, size); err != nil {
			if errors.Is(err, store.ErrOverQuota) { // as at RCPT: it may have room later
				return queue.Result{Code: 452, Enhanced: "4.2.2", Text: "mailbox full"}
			}
			if errors.Is(err, store.ErrFull) || isNoSpace(err) {
				return queue.Result{Code: 452, Enhanced: "4.3.1", Text: "insufficient storage"}
			}
			return queue.Result{Code: 451, Enhanced: "4.3.0", Text: "local delivery failed"}
		}
		stored[acct] = true
	}
	if len(res.Remote) > 0 {
		m := store.QueuedMessage{From: env.From, Created: r.opts.Now(), Size: size, UTF8: env.UTF8 || nonASCII(res.Remote...)}
		for _, a := range res.Remote {
			m.Rcpts = append(m.Rcpts, store.QueuedRcpt{Addr: a})
		}
		if r.opts.Queue == nil {
			return queue.Result{Code: 451, Enhanced: "4.3.0", Text: "forwarding unavailable"}
		}
		if _, err := r.opts.Queue.Enqueue(ctx, m, io.NewSectionReader(body, 0, size)); err != nil {
			return queue.Result{Code: 451, Enhanced: "4.3.0", Text: "forwarding failed"}
		}
	}
	return queue.Result{Code: 250, Enhanced: "2.0.0", Text: "delivered to " + strings.Join(res.Accounts, ", ")}
}
