package delivery_test

import (
	"context"
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
