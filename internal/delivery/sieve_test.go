package delivery_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"posthorn/internal/delivery"
	"posthorn/internal/smtp"
)

// sieveFixture is a Router with a Filter and a recording queue, and a
// script active for me@example.test.
func sieveFixture(t *testing.T, script string) (*fixture, *fakeQueue) {
	t.Helper()
	q := &fakeQueue{}
	f := newFixture(t, func(o *delivery.Options) {
		o.Filter = &delivery.Filter{Sieve: o.Store.(delivery.SieveStore), Mail: o.Store, Hostname: "mx.test"}
		o.Queue = q
	})
	f.router.SetQueue(q)
	ctx := context.Background()
	if err := f.st.PutSieveScript(ctx, "me@example.test", "s", script); err != nil {
		t.Fatal(err)
	}
	if err := f.st.ActivateSieveScript(ctx, "me@example.test", "s"); err != nil {
		t.Fatal(err)
	}
	return f, q
}

func TestSieveRedirect(t *testing.T) {
	f, q := sieveFixture(t, `redirect "elsewhere@remote.test";`)
	msg := crlf("From: a@remote.test", "Subject: fwd me", "", "body")
	if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.copies(t, "me")); n != 0 {
		t.Errorf("redirect kept %d copies", n)
	}
	if len(q.msgs) != 1 || q.msgs[0].From != "a@remote.test" || q.msgs[0].Rcpts[0].Addr != "elsewhere@remote.test" {
		t.Fatalf("queued = %+v", q.msgs)
	}
	if !strings.HasPrefix(q.body[0], "Delivered-To: me@example.test\r\n") || !strings.Contains(q.body[0], "Subject: fwd me") {
		t.Errorf("redirected copy:\n%s", q.body[0])
	}
	// The copy coming back names me in Delivered-To: refused as a loop.
	_, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(q.body[0]))
	wantReply(t, "redirect loop", err, 554, "5.4.6")
	if len(q.msgs) != 1 {
		t.Errorf("loop: %d queued, want 1", len(q.msgs))
	}
}

func TestSieveReject(t *testing.T) {
	f, q := sieveFixture(t, `require "reject"; reject "I do not want this.";`)
	msg := crlf("From: a@remote.test", "Subject: spam", "", "body")
	if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.copies(t, "me")); n != 0 {
		t.Errorf("rejected message stored: %d copies", n)
	}
	if len(q.msgs) != 1 || q.msgs[0].From != "" || q.msgs[0].Rcpts[0].Addr != "a@remote.test" {
		t.Fatalf("queued = %+v", q.msgs)
	}
	for _, want := range []string{"multipart/report", "Status: 5.7.1", "I do not want this."} {
		if !strings.Contains(q.body[0], want) {
			t.Errorf("reject notice lacks %q:\n%s", want, q.body[0])
		}
	}
	// From the null sender: no notice, nothing stored.
	if _, err := f.send(t, "<>", []string{"<me@example.test>"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if len(q.msgs) != 1 {
		t.Errorf("null sender got a reject notice")
	}
}

func TestSieveBrokenScriptKeeps(t *testing.T) {
	f, q := sieveFixture(t, `keep;`)
	// Stored behind the CLI's back: the filter must not trust it.
	if err := f.st.PutSieveScript(context.Background(), "me@example.test", "s", "if {"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>", "<you@example.test>"}, strings.NewReader(crlf("Subject: x", "", "b"))); err != nil {
		t.Fatal(err)
	}
	if len(f.copies(t, "me")) != 1 || len(f.copies(t, "you")) != 1 || len(q.msgs) != 0 {
		t.Error("a broken script lost or moved mail")
	}
}

// TestQuotaFullRefusesAtRcpt: an account at its quota gets 452 4.2.2 at
// RCPT, so the sender keeps the message and retries; others are served.
func TestQuotaFullRefusesAtRcpt(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(crlf("Subject: x", "", "body"))); err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetQuota(ctx, "me@example.test", 10); err != nil {
		t.Fatal(err)
	}
	s := f.session(t)
	if err := s.Mail(ctx, path(t, "<a@remote.test>"), smtp.MailOptions{}); err != nil {
		t.Fatal(err)
	}
	wantReply(t, "RCPT to a full mailbox", s.Rcpt(ctx, path(t, "<me@example.test>"), smtp.RcptOptions{}), 452, "4.2.2")
	if err := s.Rcpt(ctx, path(t, "<you@example.test>"), smtp.RcptOptions{}); err != nil {
		t.Errorf("RCPT to an account with room: %v", err)
	}
}

// TestSieveERejectInProtocol: with one recipient, ereject refuses the
// message in SMTP itself (RFC 5429 §2.1) and no DSN is queued.
func TestSieveERejectInProtocol(t *testing.T) {
	f, q := sieveFixture(t, `require "ereject"; ereject "No thanks.";`)
	_, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(crlf("Subject: x", "", "b")))
	wantReply(t, "ereject", err, 550, "5.7.1")
	if len(q.msgs) != 0 || len(f.copies(t, "me")) != 0 {
		t.Errorf("ereject in protocol: %d queued, %d stored", len(q.msgs), len(f.copies(t, "me")))
	}
	// With two recipients one reply cannot refuse only me: a DSN instead.
	if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>", "<you@example.test>"}, strings.NewReader(crlf("Subject: y", "", "b"))); err != nil {
		t.Fatal(err)
	}
	if len(q.msgs) != 1 || len(f.copies(t, "you")) != 1 {
		t.Errorf("two recipients: %d queued (want the DSN), you has %d", len(q.msgs), len(f.copies(t, "you")))
	}
}

// mailboxes returns the names of an account's mailboxes and their
// message counts.
func mailboxes(t *testing.T, f *fixture, acct string) map[string]int {
	t.Helper()
	boxes, err := f.st.Mailboxes(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, b := range boxes {
		out[b.Name] = b.Messages
	}
	return out
}

// TestSieveActionCap: 300 × fileinto :create (fileinto_amplify.py) is
// past the cap: the run fails safe, one copy in INBOX, no mailbox made.
func TestSieveActionCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(`require ["fileinto", "mailbox"];` + "\n")
	for i := range 300 {
		fmt.Fprintf(&b, "fileinto :create \"amp%d\";\n", i)
	}
	f, _ := sieveFixture(t, b.String())
	before := len(mailboxes(t, f, "me@example.test"))
	if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(crlf("Subject: amp", "", "body"))); err != nil {
		t.Fatal(err)
	}
	if n := len(f.copies(t, "me")); n != 1 {
		t.Errorf("INBOX holds %d copies, want 1", n)
	}
	if after := len(mailboxes(t, f, "me@example.test")); after != before {
		t.Errorf("%d mailboxes made", after-before)
	}
}

// TestSieveFileintoWithinQuota: copies past the first are stored only
// while the quota has room; the first always is. Router.Inject takes
// the path of the queue's local transport and `posthorn deliver`, which
// has no quota check of its own after the filter.
func TestSieveFileintoWithinQuota(t *testing.T) {
	f, q := sieveFixture(t, `require ["fileinto", "mailbox"]; fileinto :create "a"; fileinto :create "b"; fileinto :create "c";`)
	ctx := context.Background()
	msg := []byte(crlf("Subject: quota", "", strings.Repeat("z", 10_000)))
	if err := f.st.SetQuota(ctx, "you@example.test", 1<<30); err != nil { // a limit makes the store count
		t.Fatal(err)
	}
	if err := f.router.Inject(ctx, "a@remote.test", []string{"you@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	size, _, err := f.st.Quota(ctx, "you@example.test")
	if err != nil || size == 0 {
		t.Fatal(size, err)
	}
	limit := size*5/2 + 1 // room for two copies, not three
	if err := f.st.SetQuota(ctx, "me@example.test", limit); err != nil {
		t.Fatal(err)
	}
	if err := f.router.Inject(ctx, "a@remote.test", []string{"me@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	boxes := mailboxes(t, f, "me@example.test")
	if boxes["a"] != 1 || boxes["b"] != 1 || boxes["c"] != 0 {
		t.Errorf("stored copies: %v, want one in a and one in b", boxes)
	}
	used, _, _ := f.st.Quota(ctx, "me@example.test")
	if used > limit {
		t.Errorf("used %d of a quota of %d", used, limit)
	}
	// Full already: nothing is stored, and the message waits in the
	// queue for room, as a sender's would get 452 4.2.2 at RCPT.
	if err := f.st.SetQuota(ctx, "me@example.test", used); err != nil {
		t.Fatal(err)
	}
	if err := f.router.Inject(ctx, "a@remote.test", []string{"me@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	if boxes := mailboxes(t, f, "me@example.test"); boxes["a"] != 1 || boxes["b"] != 1 || boxes["c"] != 0 {
		t.Errorf("at the quota: %v, want nothing more stored", boxes)
	}
	if len(q.msgs) != 1 || q.msgs[0].Rcpts[0].Addr != "me@example.test" {
		t.Errorf("queued %+v, want the message waiting for me@", q.msgs)
	}
}

// TestSieveFileintoKeptMailbox: fileinto INBOX and keep make one copy.
func TestSieveFileintoKeptMailbox(t *testing.T) {
	f, _ := sieveFixture(t, `require "fileinto"; fileinto "inbox"; keep;`)
	if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(crlf("Subject: x", "", "b"))); err != nil {
		t.Fatal(err)
	}
	if n := len(f.copies(t, "me")); n != 1 {
		t.Errorf("INBOX holds %d copies, want 1", n)
	}
}

// TestSieveFileintoInvalidNames: names IMAP CREATE refuses
// (fileinto_names.py) are not made; the message stays in INBOX.
func TestSieveFileintoInvalidNames(t *testing.T) {
	names := []string{`x${hex:00}nul`, `cr${hex:0d 0a}lf`, `~root`, `a//b`, `%`, `INBOX/`, `../escape`}
	src := `require ["fileinto", "mailbox", "encoded-character"];` + "\n"
	for i, n := range names {
		src += fmt.Sprintf("if header :is \"X-T\" \"%d\" { fileinto :create \"%s\"; stop; }\n", i, n)
	}
	f, _ := sieveFixture(t, src)
	before := mailboxes(t, f, "me@example.test")
	for i, n := range names {
		msg := crlf(fmt.Sprintf("X-T: %d", i), "Subject: names", "", "b")
		if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		if got := len(f.copies(t, "me")); got != i+1 {
			t.Errorf("fileinto %q: INBOX holds %d, want %d", n, got, i+1)
		}
	}
	if after := mailboxes(t, f, "me@example.test"); len(after) != len(before) {
		t.Errorf("mailboxes made: %v", after)
	}
}

// TestSieveRedirectInvalidTargets: targets that are no address
// (redirect_badaddr.py) are never queued, the message is kept, and a
// valid one goes out in its canonical form.
func TestSieveRedirectInvalidTargets(t *testing.T) {
	f, q := sieveFixture(t, `require "variables";
redirect "Elsewhere@REMOTE.test";
if header :matches "X-A" "*" { redirect "${1}"; }
if header :matches "X-B" "*" { redirect "${1}"; }
if header :matches "X-C" "*" { redirect "${1}"; }
if header :matches "X-D" "*" { redirect "${1}"; }`)
	msg := crlf("X-A: victim@x.invalid> NOTIFY=SUCCESS ORCPT=rfc822;boss@x.invalid", "X-B: noatsign-xyz.invalid",
		"X-C: a b c@@x.invalid", "X-D: <>", "Subject: r", "", "hi")
	if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if len(q.msgs) != 1 || len(q.msgs[0].Rcpts) != 1 || q.msgs[0].Rcpts[0].Addr != "Elsewhere@remote.test" {
		t.Errorf("queued = %+v", q.msgs)
	}
	if n := len(f.copies(t, "me")); n != 1 {
		t.Errorf("INBOX holds %d copies, want the message kept", n)
	}
}

// TestSieveVacationFromInjection: a :from with CR LF (vacation_inject.py)
// adds no field to the reply, which comes from the recipient.
func TestSieveVacationFromInjection(t *testing.T) {
	f, q := sieveFixture(t, `require ["vacation", "variables", "encoded-character"];
vacation :days 1 :from "me@example.test${hex:0d 0a}Bcc: victim@evil.test${hex:0d 0a}X-Injected-Static: yes" :subject "away" "I am away";`)
	msg := crlf("From: other@remote.test", "To: me@example.test", "Subject: hi", "Message-ID: <x1@a>", "", "hello")
	if _, err := f.send(t, "<other@remote.test>", []string{"<me@example.test>"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if len(q.body) != 1 {
		t.Fatalf("%d queued, want the reply", len(q.body))
	}
	head, _, _ := strings.Cut(q.body[0], "\r\n\r\n")
	if strings.Contains(head, "\r\nBcc:") || strings.Contains(head, "\r\nX-Injected-Static:") || !strings.HasPrefix(head, "From: <me@example.test>\r\n") {
		t.Errorf("reply header:\n%s", head)
	}
}

// TestSievePanicKeeps: a header that makes the interpreter panic (a
// reference it cannot resolve, expanded a second time from a captured
// value) leaves the message in INBOX; the delivery succeeds.
func TestSievePanicKeeps(t *testing.T) {
	f, _ := sieveFixture(t, `require ["variables", "fileinto"];
if header :matches "X-Evil" "*" { set "p" "${1}"; }
if header :contains "Subject" "${p}" { fileinto "x"; }`)
	msg := crlf("Subject: s", "X-Evil: ${foo.bar}", "", "b")
	if _, err := f.send(t, "<a@remote.test>", []string{"<me@example.test>"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("delivery: %v", err)
	}
	if n := len(f.copies(t, "me")); n != 1 {
		t.Errorf("%d copies in INBOX, want 1", n)
	}
}

// TestGeneratedMailAsksForSMTPUTF8: mail we make or pass on for a UTF-8
// address or header (a DSN, a redirect, a vacation reply) is queued as
// needing SMTPUTF8 (RFC 6531 §3.4), so that it never goes to a server
// that did not offer it. All three went without (red-team run).
func TestGeneratedMailAsksForSMTPUTF8(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	msg := []byte(crlf("From: jörg@remote.test", "Subject: grüße", "", "b"))

	f, q := sieveFixture(t, `redirect "x@remote.test";`)
	if err := f.router.Inject(ctx, "jörg@remote.test", []string{"me@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	if len(q.msgs) != 1 || !q.msgs[0].UTF8 {
		t.Errorf("redirect of a UTF-8 sender's mail: %+v, want UTF8", q.msgs)
	}

	f, q = sieveFixture(t, `require "vacation"; vacation "away";`)
	if err := f.router.Inject(ctx, "jörg@remote.test", []string{"me@example.test"}, crlf2(msg)); err != nil {
		t.Fatal(err)
	}
	if len(q.msgs) != 1 || !q.msgs[0].UTF8 {
		t.Errorf("vacation reply to a UTF-8 sender: %+v, want UTF8", q.msgs)
	}

	f, q = sieveFixture(t, `keep;`)
	if err := f.router.Inject(ctx, "", []string{"jörg@remote.test"}, []byte(crlf("From: MAILER-DAEMON@mx.test", "Subject: report", "", "r"))); err != nil {
		t.Fatal(err)
	}
	if len(q.msgs) != 1 || !q.msgs[0].UTF8 {
		t.Errorf("a DSN to a UTF-8 address: %+v, want UTF8", q.msgs)
	}
	_ = f
}

// crlf2 returns msg with a Message-ID and To: me@example.test: vacation
// answers only mail addressed to the user (RFC 5230 §4.5).
func crlf2(msg []byte) []byte {
	return append([]byte("Message-ID: <v1@remote.test>\r\nTo: me@example.test\r\n"), msg...)
}
