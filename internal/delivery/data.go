package delivery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"slices"
	"sync"
	"time"

	"posthorn/internal/message"
	"posthorn/internal/smtp"
	"posthorn/internal/store"
)

var selfUID = os.Getuid()

// Data stages the message in a temporary file (not fsynced: it is never the
// only copy of acknowledged mail), checks it, then delivers local copies
// and queues the rest, returning only when all of it is durable. With one
// reply for all recipients, any failure is a 4xx for the whole message.
func (s *session) Data(ctx context.Context, r io.Reader) (string, error) {
	id, results, err := s.receive(ctx, r)
	if err != nil {
		return "", err
	}
	for _, e := range results {
		if e != nil {
			return "", e
		}
	}
	return id, nil
}

// LMTPData implements smtp.LMTPSession: the same as Data, with one result
// per recipient (RFC 2033 §4.2).
func (s *session) LMTPData(ctx context.Context, r io.Reader) (string, []error, error) {
	s.perRcpt = true
	return s.receive(ctx, r)
}

// receive stages, checks and dispatches a message.
func (s *session) receive(ctx context.Context, r io.Reader) (string, []error, error) {
	id := newID()
	stage, info, err := s.stage(r)
	defer stage.Close()
	if err != nil {
		return "", nil, err
	}
	log := s.log.With("msgid", id, "from", s.from.String())
	if err := s.checkHeader(ctx, info); err != nil {
		log.Info("message refused", "code", err.Code, "err", err.Msg)
		return "", nil, err
	}
	size := stage.Size()
	added := s.addedFields(id, info)
	mReceived.Inc()
	log.Info("received", "size", size, "rcpts", len(s.rcpts), "message_id", info.MessageID, "proto", s.conn.Protocol(s.mopts.UTF8), "account", s.conn.Auth)
	return id, s.dispatch(ctx, log, id, added, stage, size), nil
}

// stageWriters and copyBufs are reused from one message to the next
// rather than allocated for each (they drove the garbage collector).
var (
	stageWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}
	copyBufs     = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

// stage copies the message through the header filter into memory or a
// temporary file. The result is never nil; the caller closes it.
func (s *session) stage(r io.Reader) (*staged, message.HeaderInfo, error) {
	f := &staged{dir: s.r.opts.TempDir}
	bw := stageWriters.Get().(*bufio.Writer)
	bw.Reset(f)
	defer func() { bw.Reset(nil); stageWriters.Put(bw) }()
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	flt := &message.Filter{
		W: bw, MaxBytes: s.r.opts.MaxHeaderBytes, MaxCount: s.r.opts.MaxHeaders,
		// RFC 5321 §4.4: Return-Path is added at final delivery; any the
		// message brings along is stale or forged.
		Drop: func(name string) bool { return name == "return-path" },
	}
	_, err := io.CopyBuffer(flt, struct{ io.Reader }{r}, *buf)
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

// checkHeader refuses loops, too many hops (RFC 5321 §6.3) or a
// Delivered-To of an account we are about to deliver to again, and, on
// submission, a From that is not the user's.
func (s *session) checkHeader(ctx context.Context, info message.HeaderInfo) *smtp.Error {
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
	if s.mode == modeSubmit {
		if info.FromFields > 1 {
			// RFC 5322 §3.6: exactly one From field. Readers differ on
			// which of several they show, so only one can be checked.
			return errManyFrom
		}
		return s.checkFrom(ctx, info.From)
	}
	return nil
}

// checkFrom requires every address of every From field to be the
// authenticated user's (RFC 6409 §8 lets an MSA enforce this).
func (s *session) checkFrom(ctx context.Context, froms []string) *smtp.Error {
	for _, f := range froms {
		list, err := mail.ParseAddressList(f)
		if err != nil {
			return errFromHeader.Wrap(err)
		}
		for _, a := range list {
			ok, err := s.r.opts.Users.Owns(ctx, s.conn.Auth, a.Address)
			if err != nil {
				return errTempFail.Wrap(err)
			}
			if !ok {
				s.log.Info("From header refused", "account", s.conn.Auth, "from_header", a.Address)
				return errFromHeader
			}
		}
	}
	return nil
}

// addedFields are the header fields an MSA adds when missing (RFC 6409
// §8.2, §8.3): Message-ID and Date, and From from the envelope.
func (s *session) addedFields(id string, info message.HeaderInfo) []byte {
	if s.mode == modeMTA {
		return nil
	}
	var b bytes.Buffer
	if s.setBy != "" {
		// Sendmail's field for a sender set by an untrusted user:
		// recipients (and spam filters) can see who really sent it.
		fmt.Fprintf(&b, "X-Authentication-Warning: %s: %s set sender to %s using -f\r\n", s.r.opts.Hostname, s.setBy, s.from.Addr.String())
	}
	if len(info.From) == 0 && !s.from.Null {
		fmt.Fprintf(&b, "From: <%s>\r\n", s.from.Addr.String())
	}
	if info.MessageID == "" {
		fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", id, s.r.opts.Hostname)
	}
	if !info.HasDate {
		fmt.Fprintf(&b, "Date: %s\r\n", s.r.opts.Now().Format(message.DateLayout))
	}
	return b.Bytes()
}

// dispatch delivers local copies, then queues remote recipients and any
// local copy that failed. It returns one result per recipient: nil when
// everything that recipient reaches is durable (delivered or queued).
func (s *session) dispatch(ctx context.Context, log *slog.Logger, id string, added []byte, body io.ReaderAt, size int64) []error {
	now := s.r.opts.Now()
	locals, from := s.localCopies(id, added, body, size, now)
	locals, from, refused := s.filter(ctx, locals, from)
	locals, from, full := s.quotaCut(ctx, locals, from, size)
	errs := s.r.opts.Store.Deliver(ctx, locals)
	var queued []store.QueuedRcpt
	var queuedFrom []int // recipient index of each queued address
	var delivered []store.QueuedRcpt
	failed := map[string]bool{} // accounts with a copy that failed
	for i, err := range errs {
		rc := s.rcpts[from[i]]
		acct := locals[i].Account
		if err != nil {
			log.Error("local delivery failed, queueing it", "rcpt", rc.addr.String(), "account", acct, "mailbox", locals[i].Mailbox, "err", err)
			if !failed[acct] {
				failed[acct] = true
				queued, queuedFrom = append(queued, queuedRcpt(acct, rc.opts)), append(queuedFrom, from[i])
			}
			continue
		}
		mDelivered.Inc()
		log.Info("delivered", "rcpt", rc.addr.String(), "account", acct, "mailbox", locals[i].Mailbox)
		if slices.Contains(rc.opts.Notify, "SUCCESS") && !slices.ContainsFunc(delivered, func(q store.QueuedRcpt) bool { return q.Addr == rc.addr.String() }) {
			delivered = append(delivered, queuedRcpt(rc.addr.String(), rc.opts))
		}
	}
	seen := map[string]bool{} // Unix targets reached
	for i, rc := range s.rcpts {
		if len(rc.unix) == 0 {
			continue
		}
		content := func() io.Reader {
			hdr := message.TraceFields(s.trace(id, rc.addr.String(), rc.addr.String(), now))
			return io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(added), io.NewSectionReader(body, 0, size))
		}
		if err := s.r.deliverUnix(ctx, log.With("rcpt", rc.addr.String()), id, rc.addr.String(), rc.unix, s.from.Addr.String(), content, seen); err != nil {
			queued, queuedFrom = append(queued, queuedRcpt(rc.addr.String(), rc.opts)), append(queuedFrom, i)
		}
	}
	for i, rc := range s.rcpts {
		for _, addr := range rc.remote {
			queued, queuedFrom = append(queued, queuedRcpt(addr, rc.opts)), append(queuedFrom, i)
		}
	}
	results := make([]error, len(s.rcpts))
	for i, err := range refused {
		results[i] = err
	}
	s.refuseFull(ctx, log, full, from, results)
	s.shareRefusals(results)
	if len(queued) > 0 {
		if err := s.enqueue(ctx, log, id, added, body, size, now, queued); err != nil {
			for _, i := range queuedFrom {
				results[i] = storageErr(err)
			}
		}
	}
	s.r.successDSN(ctx, s.from, s.mopts, id, delivered, io.MultiReader(bytes.NewReader(added), io.NewSectionReader(body, 0, size)))
	return results
}

// quotaCut drops the copies that would take an account past its quota,
// now that the message's real size is known: RCPT checked the size MAIL
// declared, which a client may leave out or make up (SIZE=1, then 5 MB).
// Copies made by Sieve (fileinto) count too. full maps each recipient
// index that lost a copy to the accounts it lost.
func (s *session) quotaCut(ctx context.Context, ds []store.Delivery, from []int, size int64) ([]store.Delivery, []int, map[int][]string) {
	q, ok := s.r.opts.Store.(quotaReader)
	if !ok {
		return ds, from, nil
	}
	var keep []store.Delivery
	var keepFrom []int
	var full map[int][]string
	room := map[string]int64{} // account → octets left, -1: no limit
	for i, d := range ds {
		left, seen := room[d.Account]
		if !seen {
			used, limit, err := q.Quota(ctx, d.Account)
			left = -1
			if err == nil && limit > 0 {
				left = limit - used
			}
		}
		n := size + int64(len(d.Header))
		if left >= 0 && n > left {
			if full == nil {
				full = map[int][]string{}
			}
			full[from[i]] = append(full[from[i]], d.Account)
			room[d.Account] = left
			continue
		}
		if left >= 0 {
			left -= n
		}
		room[d.Account] = left
		keep, keepFrom = append(keep, d), append(keepFrom, from[i])
	}
	return keep, keepFrom, full
}

// refuseFull answers the recipients whose copies quotaCut dropped: with
// 452 4.2.2 when the reply is theirs alone (LMTP, or SMTP with one
// recipient) and nothing else of theirs was delivered, as RCPT would
// have; otherwise the mail is accepted for the others and the sender
// gets a DSN for them (as Postfix does when Dovecot's LMTP says 552).
func (s *session) refuseFull(ctx context.Context, log *slog.Logger, full map[int][]string, delivered []int, results []error) {
	var failed []message.DSNRecipient
	for i, accts := range full {
		rc := s.rcpts[i]
		log.Info("mailbox full", "rcpt", rc.addr.String(), "accounts", accts)
		alone := s.perRcpt || len(s.rcpts) == 1
		if alone && !slices.Contains(delivered, i) && len(rc.remote) == 0 && len(rc.unix) == 0 && results[i] == nil {
			results[i] = errMailboxFull
			continue
		}
		failed = append(failed, message.DSNRecipient{Final: rc.addr.String(), Original: rc.opts.ORcpt, Action: message.ActionFailed,
			Status: "5.2.2", Diagnostic: "552 5.2.2 Mailbox full", LastTry: s.r.opts.Now()})
	}
	s.r.refusedDSN(ctx, s.from, s.mopts.EnvID, failed)
}

// shareRefusals gives a recipient whose accounts were all served by an
// earlier recipient's copy (me@ and me+tag@ in one transaction) that
// recipient's refusal: with one reply per recipient (LMTP), it said 250
// for a message it never stored.
func (s *session) shareRefusals(results []error) {
	owner := map[string]int{}
	for i, rc := range s.rcpts {
		shared, refusal := len(rc.accounts) > 0 && len(rc.remote) == 0 && len(rc.unix) == 0, error(nil)
		for _, acct := range rc.accounts {
			j, seen := owner[acct]
			if !seen {
				owner[acct] = i
				shared = false
				continue
			}
			if results[j] == nil {
				shared = false
			} else if refusal == nil {
				refusal = results[j]
			}
		}
		if shared && results[i] == nil {
			results[i] = refusal
		}
	}
}

func queuedRcpt(addr string, o smtp.RcptOptions) store.QueuedRcpt {
	return store.QueuedRcpt{Addr: addr, Notify: o.Notify, ORcpt: o.ORcpt}
}

// localCopies builds one delivery per distinct account, with its trace
// fields; from gives, for each, the index of the recipient it came from.
func (s *session) localCopies(id string, added []byte, body io.ReaderAt, size int64, now time.Time) ([]store.Delivery, []int) {
	var ds []store.Delivery
	var from []int
	seen := map[string]bool{}
	for i, rc := range s.rcpts {
		for _, acct := range rc.accounts {
			if seen[acct] {
				continue
			}
			seen[acct] = true
			hdr := append(message.TraceFields(s.trace(id, rc.addr.String(), acct, now)), added...)
			ds = append(ds, store.Delivery{Account: acct, Mailbox: "INBOX", Date: now, Header: hdr, Body: body, BodySize: size})
			from = append(from, i)
		}
	}
	return ds, from
}

// filter applies the Sieve scripts: each local copy becomes zero or more
// deliveries, with from kept in step.
//
// A recipient that reaches one account can be refused on its own by an
// ereject when the protocol allows it: refused maps its index to the reply.
func (s *session) filter(ctx context.Context, locals []store.Delivery, from []int) (ds []store.Delivery, idx []int, refused map[int]error) {
	if s.r.opts.Filter == nil {
		return locals, from, nil
	}
	refused = map[int]error{}
	for i, d := range locals {
		rc := s.rcpts[from[i]]
		l := Local{Delivery: d, Rcpt: rc.addr.String(), From: s.from.Addr.String(), AuthUser: s.conn.Auth,
			Refusable: (s.perRcpt || len(s.rcpts) == 1) && len(rc.accounts) == 1 && len(rc.remote) == 0 && len(rc.unix) == 0}
		if s.from.Null {
			l.From = ""
		}
		out, err := s.r.opts.Filter.Apply(ctx, l)
		if err != nil {
			refused[from[i]] = err
		}
		for _, d := range out {
			ds, idx = append(ds, d), append(idx, from[i])
		}
	}
	return ds, idx, refused
}

// enqueue stores one queue message for rcpts: our Received field, the
// added fields, then the message.
func (s *session) enqueue(ctx context.Context, log *slog.Logger, id string, added []byte, body io.ReaderAt, size int64, now time.Time, rcpts []store.QueuedRcpt) error {
	if s.r.opts.Queue == nil {
		return errNoForward
	}
	forRcpt := ""
	if len(rcpts) == 1 {
		forRcpt = rcpts[0].Addr
	}
	t := s.trace(id, forRcpt, "", now)
	prefix := append([]byte(message.Received(t)), added...)
	m := store.QueuedMessage{ID: id, From: t.From, EnvID: s.mopts.EnvID, Ret: s.mopts.Ret, UTF8: s.mopts.UTF8,
		Created: now, Size: int64(len(prefix)) + size, Rcpts: rcpts}
	content := io.MultiReader(bytes.NewReader(prefix), io.NewSectionReader(body, 0, size))
	if _, err := s.r.opts.Queue.Enqueue(ctx, m, content); err != nil {
		log.Error("queueing failed", "err", err)
		return err
	}
	mQueued.Add(int64(len(rcpts)))
	return nil
}

func (s *session) trace(id, rcpt, acct string, now time.Time) message.Trace {
	remote := "127.0.0.1"
	if s.conn.Remote.IsValid() {
		remote = s.conn.Remote.Addr().Unmap().String()
	}
	t := message.Trace{
		From: s.from.Addr.String(), Recipient: rcpt, Account: acct,
		HELO: s.conn.HELO, RemoteIP: remote,
		By: s.r.opts.Hostname, With: s.conn.Protocol(s.mopts.UTF8), ID: id, Time: now,
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
	var se *smtp.Error
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, store.ErrFull) || isNoSpace(err) {
		return errStorage.Wrap(err)
	}
	return errTempFail.Wrap(fmt.Errorf("delivery: %w", err))
}
