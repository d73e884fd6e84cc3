package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"posthorn/internal/message"
	"posthorn/internal/sieve"
	"posthorn/internal/smtp"
	"posthorn/internal/store"
	"posthorn/internal/users"
)

// Filter applies each account's active Sieve script (RFC 5228) to the
// messages delivered to it. Every local delivery path goes through it:
// SMTP and LMTP, the queue's local transport, and `posthorn deliver`.
//
// Rules it keeps:
//   - A script never loses mail. A script that does not compile, fails at
//     run time or asks for something impossible gets the message stored in
//     the default mailbox, with a log line.
//   - Side effects (redirect, vacation, reject notices) go through the
//     queue, which makes them durable before delivery goes on. If storing
//     the message then fails, the sender retries and a redirect may be
//     sent twice; the vacation record prevents a second reply.
//   - A redirect loop is cut: a message that already went through this
//     account (a Delivered-To field names it) is not redirected again.
//   - Copies a script adds respect the quota: the first copy is stored
//     as any delivery would be (RCPT checked the quota), each further
//     one only while the quota has room.
//   - Nothing the script names goes out unchecked: a redirect target
//     must parse as an SMTP address and is queued in its canonical form;
//     a fileinto name must be one IMAP CREATE accepts. A refused one
//     keeps the message in the default mailbox, with a log line.
type Filter struct {
	Sieve    SieveStore
	Mail     store.Mail
	Queue    Queue // may be nil: then redirect, vacation and reject fall back to keep
	Hostname string
	Logger   *slog.Logger
	Now      func() time.Time

	mu    sync.Mutex
	cache map[string]compiled // account → compiled active script
}

// SieveStore is the part of the store the filter reads and writes.
type SieveStore interface {
	ActiveSieveScript(ctx context.Context, account string) (store.SieveScript, string, error)
	VacationDue(ctx context.Context, account, key, sender string, period time.Duration, now time.Time) (bool, error)
}

type compiled struct {
	name     string
	modified time.Time
	size     int64
	script   *sieve.Script
	err      error
}

// Local is one message for one account, before filtering.
type Local struct {
	// Delivery is the unfiltered delivery; its Mailbox is where keep puts
	// the message (INBOX unless `deliver -m` chose another).
	Delivery store.Delivery
	Rcpt     string // envelope recipient as addressed
	From     string // envelope sender, "" for the null sender
	AuthUser string // the submitting account, if any
	// Refusable: the protocol can still refuse this recipient on its own
	// (LMTP, or SMTP with one recipient), so ereject refuses it there
	// (RFC 5429 §2.1) instead of sending a DSN.
	Refusable bool
}

// Limits on what a script sees.
const (
	sieveMaxHeader = 1 << 20
	sieveMaxBody   = 1 << 20 // a body test sees at most this prefix
)

// Apply runs the account's script and returns the deliveries to store:
// none when the script discarded or rejected the message. The error is
// set only for an ereject of a Refusable recipient: the reply to give.
func (f *Filter) Apply(ctx context.Context, l Local) ([]store.Delivery, error) {
	if f == nil || f.Sieve == nil {
		return []store.Delivery{l.Delivery}, nil
	}
	log := f.log().With("account", l.Delivery.Account)
	script, name := f.script(ctx, l.Delivery.Account, log)
	if script == nil {
		return []store.Delivery{l.Delivery}, nil
	}
	in, err := f.input(l)
	if err != nil {
		log.Warn("sieve: message unreadable, kept", "script", name, "err", err)
		return []store.Delivery{l.Delivery}, nil
	}
	res, err := script.Run(ctx, in)
	if err != nil {
		log.Error("sieve: run failed, kept in the default mailbox", "script", name, "err", err)
		return []store.Delivery{l.Delivery}, nil
	}
	if res.Rejected && res.Ereject && l.Refusable {
		log.Info("sieve: ereject, refused in the protocol", "from", l.From)
		return nil, &smtp.Error{Code: 550, Enhanced: "5.7.1", Msg: oneLine(res.Reject)}
	}
	return f.carryOut(ctx, log, l, in, res), nil
}

func (f *Filter) log() *slog.Logger {
	if f.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Logger
}

func (f *Filter) now() time.Time {
	if f.Now == nil {
		return time.Now()
	}
	return f.Now()
}

// script returns the account's compiled active script, or nil.
func (f *Filter) script(ctx context.Context, acct string, log *slog.Logger) (*sieve.Script, string) {
	meta, text, err := f.Sieve.ActiveSieveScript(ctx, acct)
	if errors.Is(err, users.ErrNotFound) {
		return nil, ""
	}
	if err != nil {
		log.Error("sieve: cannot load the active script, kept", "err", err)
		return nil, ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cache == nil {
		f.cache = map[string]compiled{}
	}
	c, ok := f.cache[acct]
	if !ok || c.name != meta.Name || !c.modified.Equal(meta.Modified) || c.size != int64(len(text)) {
		c = compiled{name: meta.Name, modified: meta.Modified, size: int64(len(text))}
		c.script, c.err = sieve.Compile(text)
		f.cache[acct] = c
	}
	if c.err != nil {
		log.Error("sieve: active script does not compile, kept", "script", c.name, "err", c.err)
		return nil, ""
	}
	return c.script, c.name
}

// input reads the header and, when asked, the body of the message as it
// will be stored.
func (f *Filter) input(l Local) (sieve.Input, error) {
	d := l.Delivery
	full := io.MultiReader(bytes.NewReader(d.Header), io.NewSectionReader(d.Body, 0, d.BodySize))
	h, n, err := sieve.ReadHeader(full, sieveMaxHeader)
	if err != nil && !errors.Is(err, sieve.ErrHeaderTooLarge) {
		return sieve.Input{}, err
	}
	bodyAt := n - int64(len(d.Header))
	body := func() ([]byte, error) {
		if bodyAt < 0 || bodyAt >= d.BodySize {
			return nil, nil
		}
		return io.ReadAll(io.NewSectionReader(d.Body, bodyAt, min(d.BodySize-bodyAt, sieveMaxBody)))
	}
	return sieve.Input{From: l.From, To: l.Rcpt, Account: d.Account, AuthUser: l.AuthUser, Header: h,
		Size: int64(len(d.Header)) + d.BodySize, Body: body}, nil
}

// carryOut turns a Result into deliveries and queued side effects. The
// kept copy comes first: it is the one stored when the quota has room
// for no other.
func (f *Filter) carryOut(ctx context.Context, log *slog.Logger, l Local, in sieve.Input, res sieve.Result) []store.Delivery {
	d := l.Delivery
	keep := res.Keep
	if len(res.Redirect) > 0 && !f.redirect(ctx, log, l, in, res.Redirect) {
		keep = true // never lose what could not be forwarded
	}
	if res.Rejected && !f.reject(ctx, log, l, res) {
		keep = true
	}
	if res.Vacation != nil {
		f.vacation(ctx, log, l, in, res.Vacation)
	}
	var filed []store.Delivery
	for _, t := range res.FileInto {
		if !f.mailboxReady(ctx, log, d.Account, t) {
			keep = true
			continue
		}
		c := d
		c.Mailbox, c.Flags = t.Mailbox, res.Flags
		filed = append(filed, c)
	}
	var out []store.Delivery
	if keep {
		c := d
		c.Flags = res.Flags
		out = append(out, c)
		// RFC 5228 §2.10.3: fileinto the kept copy's mailbox is that copy.
		filed = slices.DeleteFunc(filed, func(c store.Delivery) bool { return sieve.SameMailbox(c.Mailbox, mailboxOf(d)) })
	}
	out = f.withinQuota(ctx, log, d.Account, append(out, filed...))
	if len(out) == 0 {
		log.Info("sieve: message not stored", "discarded", res.Discarded(), "rejected", res.Rejected)
	}
	return out
}

// mailboxOf is where a delivery goes: "" means INBOX.
func mailboxOf(d store.Delivery) string {
	if d.Mailbox == "" {
		return "INBOX"
	}
	return d.Mailbox
}

// withinQuota drops the copies the account's quota has no room for. The
// first is always kept: RCPT admitted the message by the quota as any
// delivery (session.checkQuota), and a filter never loses mail. Every
// further copy needs room as an IMAP APPEND would (used + size ≤ limit).
func (f *Filter) withinQuota(ctx context.Context, log *slog.Logger, acct string, out []store.Delivery) []store.Delivery {
	q, ok := f.Mail.(quotaReader)
	if len(out) < 2 || !ok {
		return out
	}
	used, limit, err := q.Quota(ctx, acct)
	if err != nil {
		log.Error("sieve: cannot read the quota, one copy stored", "mailbox", out[0].Mailbox, "err", err)
		return out[:1]
	}
	if limit <= 0 {
		return out
	}
	size := int64(len(out[0].Header)) + out[0].BodySize
	n := 1
	for n < len(out) && used+int64(n+1)*size <= limit {
		n++
	}
	for _, c := range out[n:] {
		log.Warn("sieve: fileinto over quota, copy not stored", "mailbox", c.Mailbox, "err", store.ErrOverQuota)
	}
	return out[:n]
}

// mailboxReady checks a fileinto target, creating it for :create
// (RFC 5490 §3.2). A missing mailbox without :create, or a name IMAP
// would refuse, means keep.
func (f *Filter) mailboxReady(ctx context.Context, log *slog.Logger, acct string, t sieve.Target) bool {
	if err := sieve.ValidMailbox(t.Mailbox); err != nil {
		log.Warn("sieve: fileinto an invalid mailbox name, kept", "mailbox", t.Mailbox, "err", err)
		return false
	}
	boxes, err := f.Mail.Mailboxes(ctx, acct)
	if err != nil {
		log.Error("sieve: cannot list mailboxes, kept", "err", err)
		return false
	}
	for _, b := range boxes {
		if sieve.SameMailbox(b.Name, t.Mailbox) {
			return true
		}
	}
	if !t.Create {
		log.Warn("sieve: fileinto a mailbox that does not exist, kept", "mailbox", t.Mailbox)
		return false
	}
	if err := f.Mail.CreateMailbox(ctx, acct, t.Mailbox, ""); err != nil && !errors.Is(err, store.ErrExists) {
		log.Error("sieve: cannot create mailbox, kept", "mailbox", t.Mailbox, "err", err)
		return false
	}
	return true
}

// redirect queues a copy for each address with the original envelope
// sender (RFC 5228 §4.2). It reports false unless every address was
// valid and queued: then the message must be kept.
func (f *Filter) redirect(ctx context.Context, log *slog.Logger, l Local, in sieve.Input, targets []string) bool {
	addrs, valid := redirectTargets(log, targets)
	if len(addrs) == 0 {
		return false
	}
	to := make([]string, len(addrs))
	for i, a := range addrs {
		to[i] = a.String()
	}
	acct := l.Delivery.Account
	n := 0
	for _, v := range in.Header.Values("Delivered-To") {
		if strings.EqualFold(strings.TrimSpace(v), acct) {
			n++
		}
	}
	if n > 1 {
		log.Warn("sieve: redirect loop cut, kept", "to", to)
		return false
	}
	if f.Queue == nil {
		log.Warn("sieve: no queue for redirect, kept", "to", to)
		return false
	}
	d := l.Delivery
	prefix := []byte("Delivered-To: " + acct + "\r\n")
	m := store.QueuedMessage{From: l.From, Created: f.now(), Size: int64(len(prefix)) + d.BodySize}
	for _, a := range addrs {
		m.Rcpts = append(m.Rcpts, store.QueuedRcpt{Addr: a.String()})
		m.UTF8 = m.UTF8 || !a.IsASCII() // RFC 6531 §3.4: a UTF-8 recipient needs SMTPUTF8
	}
	// So does a UTF-8 sender, or a header section in UTF-8 (the message
	// came with SMTPUTF8).
	m.UTF8 = m.UTF8 || nonASCII(l.From) || headerNonASCII(in.Header)
	body := io.MultiReader(bytes.NewReader(prefix), io.NewSectionReader(d.Body, 0, d.BodySize))
	id, err := f.Queue.Enqueue(ctx, m, body)
	if err != nil {
		log.Error("sieve: redirect not queued, kept", "to", to, "err", err)
		return false
	}
	log.Info("sieve: redirected", "to", to, "msgid", id)
	return valid
}

// redirectTargets parses each target as RFC 5228 §4.2 asks ("MUST be
// syntactically valid"), with the SMTP parser, UTF-8 allowed (RFC 6531):
// a target is used only in its canonical form, so nothing after ">" can
// become an ESMTP parameter. It returns the distinct valid addresses and
// whether every target was valid.
func redirectTargets(log *slog.Logger, to []string) ([]smtp.Address, bool) {
	var out []smtp.Address
	valid := true
	for _, s := range to {
		a, err := smtp.ParseAddress(s, true)
		if err != nil || a.IsZero() {
			log.Warn("sieve: redirect to an invalid address refused, kept", "to", s, "err", err)
			valid = false
			continue
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, valid
}

// reject tells the sender (RFC 5429 §2.1) with a DSN. The null sender
// gets nothing: the message is simply not stored.
func (f *Filter) reject(ctx context.Context, log *slog.Logger, l Local, res sieve.Result) bool {
	if l.From == "" {
		log.Info("sieve: rejected a message from the null sender: dropped")
		return true
	}
	if f.Queue == nil {
		return false
	}
	d := l.Delivery
	rc := message.DSNRecipient{Final: l.Rcpt, Action: message.ActionFailed, Status: "5.7.1",
		Diagnostic: "550 5.7.1 " + oneLine(res.Reject)}
	dsn := message.DSN{ReportingMTA: f.Hostname, To: l.From, Arrival: f.now(), Recipients: []message.DSNRecipient{rc},
		HeadersOnly: true, Original: io.NewSectionReader(d.Body, 0, d.BodySize)}
	raw, err := dsn.Build(f.now())
	if err == nil {
		_, err = f.Queue.Enqueue(ctx, store.QueuedMessage{Created: f.now(), Size: int64(len(raw)),
			Rcpts: []store.QueuedRcpt{{Addr: l.From}}, UTF8: generatedUTF8(raw, l.From)}, bytes.NewReader(raw))
	}
	if err != nil {
		log.Error("sieve: reject notice not queued, kept", "err", err)
		return false
	}
	log.Info("sieve: rejected", "from", l.From, "ereject", res.Ereject)
	return true
}

// vacation sends one reply per sender per period (RFC 5230).
func (f *Filter) vacation(ctx context.Context, log *slog.Logger, l Local, in sieve.Input, v *sieve.Vacation) {
	own := []string{l.Delivery.Account, l.Rcpt} // :from counts only when it is one of these
	if ok, why := sieve.ShouldAnswer(in, own); !ok {
		log.Debug("sieve: vacation not answered", "reason", why)
		return
	}
	if f.Queue == nil {
		return
	}
	due, err := f.Sieve.VacationDue(ctx, l.Delivery.Account, v.Key(), l.From, v.Period(), f.now())
	if err != nil || !due {
		if err != nil {
			log.Error("sieve: vacation record failed, no reply", "err", err)
		}
		return
	}
	from := l.Rcpt
	if from == "" {
		from = l.Delivery.Account
	}
	raw := v.Reply(in, from, f.Hostname, f.now())
	m := store.QueuedMessage{Created: f.now(), Size: int64(len(raw)), Rcpts: []store.QueuedRcpt{{Addr: l.From}}, UTF8: generatedUTF8(raw, l.From)}
	if _, err := f.Queue.Enqueue(ctx, m, bytes.NewReader(raw)); err != nil {
		log.Error("sieve: vacation reply not queued", "err", err)
		return
	}
	log.Info("sieve: vacation reply queued", "to", l.From)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400]
	}
	return s
}

// headerNonASCII reports whether a field of h holds an octet outside
// ASCII: UTF-8 header fields (RFC 6532), which only SMTPUTF8 may carry.
func headerNonASCII(h sieve.Header) bool {
	for _, f := range h {
		if nonASCII(f.Name, f.Value) {
			return true
		}
	}
	return false
}
