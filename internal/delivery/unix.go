package delivery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"posthorn/internal/queue"
	"posthorn/internal/unixmail"
	"posthorn/internal/users"
)

// unixResolve expands an address of a classic Unix mail domain into its
// mailbox, pipe and file targets and its addresses elsewhere. ok is false
// when the domain is not a Unix one. Errors are those of users.Resolve.
func (r *Router) unixResolve(local, domain string) (targets []unixmail.Target, remote []string, ok bool, err error) {
	if !r.opts.Unix.HasDomain(strings.TrimSuffix(domain, ".")) {
		return nil, nil, false, nil
	}
	ts, err := r.opts.Unix.Resolve(local)
	switch {
	case errors.Is(err, unixmail.ErrNoSuchUser):
		return nil, nil, true, users.ErrNoSuchUser
	case errors.Is(err, unixmail.ErrLoop):
		return nil, nil, true, users.ErrAliasLoop
	case err != nil:
		return nil, nil, true, err
	}
	for _, t := range ts {
		if t.Kind == unixmail.Address {
			remote = append(remote, t.Addr)
		} else {
			targets = append(targets, t)
		}
	}
	return targets, remote, true, nil
}

// deliverUnix writes message id for rcpt to each of its targets; content
// returns a fresh reader of the whole message (trace fields included) each
// time. It stops at the first failure, which may wrap unixmail.Permanent;
// the targets delivered before it are remembered (doneTargets), so that
// the queue's retry of rcpt does not deliver them again. seen holds the
// targets this message already reached through another recipient
// (alice, alice+x and an alias of alice): each gets one copy, as
// Postfix's local(8) duplicate filter does.
func (r *Router) deliverUnix(ctx context.Context, log *slog.Logger, id, rcpt string, targets []unixmail.Target, from string, content func() io.Reader, seen map[string]bool) error {
	for _, t := range targets {
		name := t.String()
		if seen[name] {
			log.Info("reached through another recipient, skipped", "target", name)
			if len(targets) > 1 { // a retry of rcpt must skip it too
				r.done.add(id, rcpt, name, time.Now())
			}
			continue
		}
		if r.done.has(id, rcpt, name) {
			log.Info("delivered on an earlier try, skipped", "target", name)
			seen[name] = true
			continue
		}
		if err := r.opts.Unix.Deliver(ctx, t, from, content()); err != nil {
			log.Error("unix delivery failed", "target", name, "err", err)
			return err
		}
		mDelivered.Inc()
		log.Info("delivered", "target", name)
		seen[name] = true
		if len(targets) > 1 {
			r.done.add(id, rcpt, name, time.Now())
		}
	}
	r.done.forget(id, rcpt)
	return nil
}

// unixResult turns a Unix delivery error into a queue result.
func unixResult(err error) queue.Result {
	var p unixmail.Permanent
	if errors.As(err, &p) {
		return queue.Result{Code: 550, Enhanced: "5.3.0", Text: "local delivery failed: " + oneLine(p.Error())}
	}
	if isNoSpace(err) {
		return queue.Result{Code: 452, Enhanced: "4.3.1", Text: "insufficient storage"}
	}
	return queue.Result{Code: 451, Enhanced: "4.3.0", Text: "local delivery failed"}
}
