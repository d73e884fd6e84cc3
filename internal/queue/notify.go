package queue

import (
	"context"
	"io"
	"strconv"
	"strings"

	"posthorn/internal/message"
	"posthorn/internal/store"
)

// notify sends the DSNs that m's recipients call for, then deletes m if
// nothing is pending. Failures and successes are reported once, when the
// message is done; delays when the warning time has passed.
func (q *Queue) notify(ctx context.Context, m store.QueuedMessage, body store.Body) {
	done := true
	for _, r := range m.Rcpts {
		if pending(r) {
			done = false
		}
	}
	if !done {
		q.warnDelayed(ctx, m, body)
		return
	}
	var rs []message.DSNRecipient
	for _, r := range m.Rcpts {
		switch {
		case r.State == store.RcptFailed && notifies(r, "FAILURE"):
			rs = append(rs, dsnRecipient(r, message.ActionFailed))
		case r.State == store.RcptDelivered && notifies(r, "SUCCESS") && !strings.HasPrefix(r.Text, passedOn):
			rs = append(rs, dsnRecipient(r, successAction(r)))
		}
	}
	if len(rs) > 0 && !q.sendDSN(ctx, m, body, rs) {
		q.retryDSN(ctx, m)
		return
	}
	if err := q.opts.Store.QueueDelete(ctx, m.ID); err != nil {
		q.log.Error("queue delete", "msgid", m.ID, "err", err)
	}
}

// warnDelayed sends one "delayed" DSN for recipients that asked for it
// (NOTIFY=DELAY) once they have waited DelayWarning.
func (q *Queue) warnDelayed(ctx context.Context, m store.QueuedMessage, body store.Body) {
	now := q.opts.Now()
	var rs []message.DSNRecipient
	var warned []store.QueuedRcpt
	for _, r := range m.Rcpts {
		if r.State == store.RcptQueued && !r.Warned && notifies(r, "DELAY") && now.Sub(m.Created) >= q.opts.DelayWarning {
			d := dsnRecipient(r, message.ActionDelayed)
			d.WillRetry = m.Created.Add(q.opts.Lifetime)
			rs = append(rs, d)
			r.Warned = true
			warned = append(warned, r)
		}
	}
	if len(rs) == 0 || !q.sendDSN(ctx, m, body, rs) {
		return
	}
	if err := q.opts.Store.QueueUpdate(ctx, m.ID, warned); err != nil {
		q.log.Error("queue update", "msgid", m.ID, "err", err)
	}
}

// passedOn starts the text of a recipient that a DSN-capable server
// accepted: it reports success itself, so we send no "delivered" DSN,
// which the sender would get twice.
const passedOn = "passed on: "

func successAction(r store.QueuedRcpt) message.DSNAction {
	if len(r.Text) >= 8 && r.Text[:8] == "relayed:" {
		return message.ActionRelayed
	}
	return message.ActionDelivered
}

func dsnRecipient(r store.QueuedRcpt, a message.DSNAction) message.DSNRecipient {
	status := r.Enhanced
	if status == "" {
		status = map[message.DSNAction]string{message.ActionFailed: "5.0.0", message.ActionDelayed: "4.0.0"}[a]
		if status == "" {
			status = "2.0.0"
		}
	}
	diag := ""
	if r.Code != 0 {
		diag = (&replyText{r.Code, r.Enhanced, r.Text}).String()
	}
	return message.DSNRecipient{Final: r.Addr, Original: r.ORcpt, Action: a, Status: status,
		RemoteMTA: r.Remote, Diagnostic: diag, LastTry: r.LastAttempt}
}

type replyText struct {
	code     int
	enhanced string
	text     string
}

func (r *replyText) String() string {
	s := strconv.Itoa(r.code)
	if r.enhanced != "" {
		s += " " + r.enhanced
	}
	return s + " " + r.text
}

// sendDSN builds and hands over one report. The null sender gets none
// (RFC 5321 §4.5.5: that is how bounce loops are prevented).
func (q *Queue) sendDSN(ctx context.Context, m store.QueuedMessage, body store.Body, rs []message.DSNRecipient) bool {
	if m.From == "" {
		q.log.Info("no DSN for the null sender", "msgid", m.ID)
		return true
	}
	q.mu.Lock()
	in := q.injector
	q.mu.Unlock()
	if in == nil {
		q.log.Error("no DSN injector: report dropped", "msgid", m.ID)
		return true
	}
	// The whole message only where it failed somewhere and RET=HDRS was
	// not asked (RFC 3461 §4.3: RET=FULL is for "failed" DSNs); a report
	// of delays or successes carries the header section.
	d := message.DSN{ReportingMTA: q.opts.Hostname, To: m.From, EnvID: m.EnvID, Arrival: m.Created,
		Recipients: rs, HeadersOnly: m.Ret == "HDRS" || !anyFailed(rs)}
	if body != nil {
		d.Original = io.NewSectionReader(body, 0, body.Size())
	}
	raw, err := d.Build(q.opts.Now())
	if err == nil {
		err = in.Inject(ctx, "", []string{m.From}, raw)
	}
	if err != nil {
		q.log.Error("DSN not sent", "msgid", m.ID, "to", m.From, "err", err)
		return false
	}
	q.log.Info("dsn sent", "msgid", m.ID, "to", m.From, "rcpts", len(rs))
	return true
}

func anyFailed(rs []message.DSNRecipient) bool {
	for _, r := range rs {
		if r.Action == message.ActionFailed {
			return true
		}
	}
	return false
}

// retryDSN keeps a finished message whose DSN could not be handed over and
// makes it due again after MinBackoff (store.Queue.QueueDue returns
// finished messages whose recipients are all past their next attempt).
func (q *Queue) retryDSN(ctx context.Context, m store.QueuedMessage) {
	next := q.opts.Now().Add(q.opts.MinBackoff)
	for i := range m.Rcpts {
		m.Rcpts[i].NextAttempt = next
	}
	if err := q.opts.Store.QueueUpdate(ctx, m.ID, m.Rcpts); err != nil {
		q.log.Error("queue update", "msgid", m.ID, "err", err)
	}
}
