package sieve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/migadu/go-sieve/interp"
)

// Input is one message for one recipient.
type Input struct {
	From string // envelope sender; "" for the null sender
	To   string // envelope recipient as it was addressed (user+tag@domain)
	// Account is the recipient account; AuthUser the sender's login when
	// the message was submitted here, or "".
	Account, AuthUser string
	Header            Header
	Size              int64
	// Body returns the message body (after the header). It is called only
	// when a body test runs; it may return a prefix of a very large body.
	Body func() ([]byte, error)
	// Timeout bounds one run; 0 means one second.
	Timeout time.Duration
}

// Result is what the script decided. A Result with no action at all
// (nothing kept, filed, redirected or rejected) means the message was
// discarded on purpose.
type Result struct {
	Keep     bool     // store in the default mailbox (explicit or implicit keep)
	Flags    []string // imap4flags: flags for every stored copy
	FileInto []Target
	Redirect []string // addresses to forward a copy to (RFC 5228 §4.2)
	// Reject is set by reject or ereject (RFC 5429) with the reason text;
	// Ereject tells which.
	Reject   string
	Rejected bool
	Ereject  bool
	Vacation *Vacation // nil unless vacation asked for a reply
}

// Target is a fileinto destination.
type Target struct {
	Mailbox string
	Create  bool // RFC 5490 :create: make the mailbox when missing
}

// Vacation is a vacation action's parameters (RFC 5230 §4).
type Vacation struct {
	Days    int
	Subject string
	From    string
	Reason  string
	Mime    bool
	Handle  string
}

// ErrConflict: the script asked for actions that cannot go together
// (RFC 5429 §2.1: reject with keep, fileinto, redirect or vacation).
var ErrConflict = errors.New("sieve: reject cannot be combined with keep, fileinto, redirect or vacation")

// ErrTooManyActions: the run asked for more than MaxActions actions.
var ErrTooManyActions = errors.New("sieve: too many actions")

// Run executes the script. On error the caller must deliver the message
// as if there were no script (RFC 5228 §2.10.6 implicit keep) and log it.
func (s *Script) Run(ctx context.Context, in Input) (Result, error) {
	if in.Timeout <= 0 {
		in.Timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, in.Timeout)
	defer cancel()
	script := s.full
	if in.From == "" {
		script = s.withoutVacat
	}
	env := interp.EnvelopeStatic{From: clip(in.From, MaxValueLen), To: clip(in.To, MaxValueLen), Auth: clip(in.AuthUser, MaxValueLen)}
	d := interp.NewRuntimeData(script, policy{}, env, &msg{in: in})
	if err := execute(ctx, script, d); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	return result(d, in.From)
}

// ErrPanic: the interpreter panicked. go-sieve expands a test's key a
// second time and panics on a reference it cannot resolve, so a header
// holding "${foo.bar}", captured by :matches and used in a key, made any
// sender's message crash the run (and, unrecovered, the goroutine that
// delivers it).
var ErrPanic = errors.New("sieve: interpreter failure")

// execute runs the interpreter, turning a panic into ErrPanic: the
// caller then keeps the message, as for any failed run.
func execute(ctx context.Context, script *interp.Script, d *interp.RuntimeData) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	return script.Execute(ctx, d)
}

func result(d *interp.RuntimeData, sender string) (Result, error) {
	r := Result{Keep: d.Keep || d.ImplicitKeep, Flags: imapFlags(d.Flags)}
	for _, a := range d.RedirectAddr {
		if !slices.Contains(r.Redirect, a) { // RFC 5228 §2.10.3: no duplicates
			r.Redirect = append(r.Redirect, a)
		}
	}
	for _, m := range d.Mailboxes {
		switch {
		case strings.HasPrefix(m, rejectMark):
			r.Rejected, r.Reject = true, strings.TrimPrefix(m, rejectMark)
		case strings.HasPrefix(m, erejectMark):
			r.Rejected, r.Ereject, r.Reject = true, true, strings.TrimPrefix(m, erejectMark)
		default:
			r.FileInto = addTarget(r.FileInto, Target{Mailbox: m, Create: slices.Contains(d.MailboxesCreate, m)})
		}
	}
	if v, ok := d.VacationResponses[sender]; ok && sender != "" {
		r.Vacation = &Vacation{Days: v.Days, Subject: v.Subject, From: v.From, Reason: v.Body, Mime: v.IsMime, Handle: v.Handle}
	}
	if r.Rejected && (d.Keep || len(r.FileInto) > 0 || len(r.Redirect) > 0 || r.Vacation != nil) {
		return Result{}, ErrConflict
	}
	if n := r.actions(); n > MaxActions {
		return Result{}, fmt.Errorf("%w: %d, at most %d", ErrTooManyActions, n, MaxActions)
	}
	return r, nil
}

// addTarget adds t unless its mailbox is there already (RFC 5228
// §2.10.3: a message is filed into one mailbox once); INBOX compares
// without case (RFC 9051 §5.1).
func addTarget(ts []Target, t Target) []Target {
	for i, o := range ts {
		if SameMailbox(o.Mailbox, t.Mailbox) {
			ts[i].Create = o.Create || t.Create
			return ts
		}
	}
	return append(ts, t)
}

// SameMailbox tells whether two mailbox names name one mailbox: equal,
// or both INBOX in any case.
func SameMailbox(a, b string) bool {
	return a == b || (strings.EqualFold(a, "INBOX") && strings.EqualFold(b, "INBOX"))
}

// actions counts what the run does, as Pigeonhole counts toward
// sieve_max_actions.
func (r Result) actions() int {
	n := len(r.FileInto) + len(r.Redirect)
	for _, b := range []bool{r.Keep, r.Rejected, r.Vacation != nil} {
		if b {
			n++
		}
	}
	return n
}

// Discarded tells whether the script threw the message away.
func (r Result) Discarded() bool {
	return !r.Keep && len(r.FileInto) == 0 && len(r.Redirect) == 0 && !r.Rejected
}

// policy allows every redirect; the delivery agent checks loops.
type policy struct{}

func (policy) RedirectAllowed(context.Context, *interp.RuntimeData, string) (bool, error) {
	return true, nil
}

// msg adapts Input to the library's Message.
type msg struct {
	in   Input
	body []byte
	read bool
	err  error
}

// HeaderGet gives the interpreter each value cut to MaxValueLen.
func (m *msg) HeaderGet(key string) ([]string, error) {
	vs := m.in.Header.Values(key)
	for i, v := range vs {
		vs[i] = clip(v, MaxValueLen)
	}
	return vs, nil
}

func (m *msg) MessageSize() int { return int(m.in.Size) }

func (m *msg) BodyRaw() ([]byte, bool, error) {
	if m.in.Body == nil {
		return nil, false, nil
	}
	if !m.read {
		m.body, m.err = m.in.Body()
		m.read = true
	}
	return m.body, m.err == nil, m.err
}

// systemFlags are IMAP's system flags in their usual spelling (RFC 9051
// §2.3.2); the library lowercases every flag.
var systemFlags = map[string]string{`\seen`: `\Seen`, `\answered`: `\Answered`, `\flagged`: `\Flagged`,
	`\deleted`: `\Deleted`, `\draft`: `\Draft`}

// imapFlags spells flags for the store; an unknown backslash flag is
// dropped, since clients cannot have set it (RFC 5232 §3).
func imapFlags(in []string) []string {
	var out []string
	for _, f := range in {
		if c, ok := systemFlags[strings.ToLower(f)]; ok {
			out = append(out, c)
		} else if f != "" && !strings.HasPrefix(f, `\`) {
			out = append(out, f)
		}
	}
	return out
}
