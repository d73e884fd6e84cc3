package delivery_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"posthorn/internal/delivery"
	"posthorn/internal/queue"
	"posthorn/internal/store"
	"posthorn/internal/unixmail"
)

// TestUnixTargetsNotDeliveredTwice: when one target of a Unix recipient
// fails for now (a pipe exiting 75) after another was delivered (a
// mailbox), the recipient is queued, and its retries must not deliver the
// mailbox copy again. Each retry added one more copy (found by a
// red-team run: five copies after three queue runs).
func TestUnixTargetsNotDeliveredTwice(t *testing.T) {
	t.Parallel()
	sys, spool := unixSystem(t, "multi: u1, \"|exit 75\"\n", true)
	q := &fakeQueue{}
	f := newFixture(t, func(o *delivery.Options) { o.Queue = q; o.Unix = sys })
	mboxCopies := func() int {
		b, _ := os.ReadFile(filepath.Join(spool, "u1"))
		return strings.Count(string(b), "\nSubject: twice?\n")
	}
	if _, err := f.send(t, "<a@remote.test>", []string{"<multi@host.test>"}, strings.NewReader(crlf("Subject: twice?", "", "b"))); err != nil {
		t.Fatal(err)
	}
	if n := mboxCopies(); n != 1 || len(q.msgs) != 1 {
		t.Fatalf("after SMTP: %d copies, %d queued; want 1 and 1", n, len(q.msgs))
	}
	m := q.msgs[0]
	tr := delivery.Transport{Router: f.router}
	env := queue.Envelope{ID: m.ID, From: m.From, Domain: "host.test", Rcpts: []store.QueuedRcpt{{Addr: m.Rcpts[0].Addr}}}
	body := []byte(q.body[0])
	for try := range 3 {
		res := tr.Deliver(context.Background(), env, bytes.NewReader(body), int64(len(body)))
		if res[0].Code/100 != 4 {
			t.Fatalf("retry %d: %+v, want a temporary failure (the pipe exits 75)", try, res)
		}
	}
	if n := mboxCopies(); n != 1 {
		t.Errorf("%d copies in the mailbox after three retries, want 1", n)
	}
}

// TestQueuedRecipientsOfOneAccountOneCopy: a queued message whose
// recipients all reach one account (a Sieve redirect to one's own
// addresses) is stored once there, as in an SMTP transaction; it was
// stored once per recipient (found by a red-team run).
func TestQueuedRecipientsOfOneAccountOneCopy(t *testing.T) {
	t.Parallel()
	f, _ := submitFixture(t)
	tr := delivery.Transport{Router: f.router}
	env := queue.Envelope{ID: "Q2", From: "a@remote.test", Domain: "example.test",
		Rcpts: []store.QueuedRcpt{{Addr: "me@example.test"}, {Addr: "me+tag@example.test"}, {Addr: "info@example.test"}, {Addr: "you@example.test"}}}
	body := []byte(crlf("Subject: once", "", "b"))
	res := tr.Deliver(context.Background(), env, bytes.NewReader(body), int64(len(body)))
	for i, r := range res {
		if r.Code != 250 {
			t.Errorf("recipient %d: %+v", i, r)
		}
	}
	if c := f.copies(t, "me"); len(c) != 1 {
		t.Errorf("%d copies for me, want 1", len(c))
	}
	if c := f.copies(t, "you"); len(c) != 1 {
		t.Errorf("%d copies for you, want 1", len(c))
	}
}

// TestQueuedUnixLoopBounces: a Unix alias loop met by the queue's retry
// bounces (5.4.6), as at RCPT, instead of being retried until the queue
// gives up.
func TestQueuedUnixLoopBounces(t *testing.T) {
	t.Parallel()
	sys, _ := unixSystem(t, "ping: pong\npong: ping\n", false)
	f := newFixture(t, func(o *delivery.Options) { o.Unix = sys })
	tr := delivery.Transport{Router: f.router}
	env := queue.Envelope{ID: "Q3", From: "a@remote.test", Domain: "host.test", Rcpts: []store.QueuedRcpt{{Addr: "ping@host.test"}}}
	body := []byte(crlf("Subject: loop", "", "b"))
	if res := tr.Deliver(context.Background(), env, bytes.NewReader(body), int64(len(body))); res[0].Code != 550 || res[0].Enhanced != "5.4.6" {
		t.Errorf("loop: %+v, want 550 5.4.6", res[0])
	}
}

// TestUnixRecipientsOfOneMailboxOneCopy: recipients of one message that
// reach the same Unix mailbox (u1 and an alias of u1) put one copy there,
// as Postfix's duplicate filter does; each put its own.
func TestUnixRecipientsOfOneMailboxOneCopy(t *testing.T) {
	t.Parallel()
	sys, spool := unixSystem(t, "mu: u1\n", false)
	f := newFixture(t, func(o *delivery.Options) { o.Unix = sys })
	if _, err := f.send(t, "<a@remote.test>", []string{"<u1@host.test>", "<mu@host.test>"}, strings.NewReader(crlf("Subject: dup?", "", "b"))); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(spool, "u1"))
	if n := strings.Count(string(b), "\nSubject: dup?\n"); n != 1 {
		t.Errorf("%d copies in u1's mailbox, want 1", n)
	}
}

// unixSystem is a classic Unix mail domain host.test with the user u1
// (uid 65534, mailbox in the returned spool directory) and the given
// alias file.
func unixSystem(t *testing.T, aliasFile string, pipes bool) (*unixmail.System, string) {
	t.Helper()
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	os.Mkdir(spool, 0o1777)
	passwd := filepath.Join(dir, "passwd")
	os.WriteFile(passwd, []byte("u1:x:65534:65534::/nonexistent:/bin/sh\n"), 0o644)
	aliases := filepath.Join(dir, "aliases")
	os.WriteFile(aliases, []byte(aliasFile), 0o644)
	sys, err := unixmail.New(unixmail.Options{Domains: []string{"host.test"}, PasswdFile: passwd, Mailbox: "mbox",
		SpoolDir: spool, Aliases: []string{aliases}, AllowPipes: pipes})
	if err != nil {
		t.Fatal(err)
	}
	return sys, spool
}

// TestQueuedDeliveryKeepsQuota: mail that reaches an account through the
// queue (an alias retried, a Sieve redirect, a DSN) gets the quota the
// SMTP session applies: 452 4.2.2, retried, nothing stored. It was stored
// past the quota (red-team run: a redirect to a full account).
func TestQueuedDeliveryKeepsQuota(t *testing.T) {
	t.Parallel()
	f, _ := submitFixture(t)
	ctx := context.Background()
	if err := f.st.SetQuota(ctx, "you@example.test", 3000); err != nil {
		t.Fatal(err)
	}
	tr := delivery.Transport{Router: f.router}
	big := []byte(crlf("Subject: big", "", strings.Repeat("x", 5000)))
	env := queue.Envelope{ID: "Q4", From: "a@remote.test", Domain: "example.test", Rcpts: []store.QueuedRcpt{{Addr: "you@example.test"}}}
	if res := tr.Deliver(ctx, env, bytes.NewReader(big), int64(len(big))); res[0].Code != 452 || res[0].Enhanced != "4.2.2" {
		t.Errorf("over quota: %+v, want 452 4.2.2", res[0])
	}
	if n := len(f.copies(t, "you")); n != 0 {
		t.Errorf("%d copies stored past the quota", n)
	}
	small := []byte(crlf("Subject: small", "", "x"))
	if res := tr.Deliver(ctx, env, bytes.NewReader(small), int64(len(small))); res[0].Code != 250 {
		t.Errorf("within the quota: %+v", res[0])
	}
}

// TestQueuedAliasWaitsForEveryRoom: a queued recipient that reaches two
// accounts, one of them full, stores nothing until both have room: its
// retry would give the other account one more copy each time (found in
// review).
func TestQueuedAliasWaitsForEveryRoom(t *testing.T) {
	t.Parallel()
	f, _ := submitFixture(t)
	ctx := context.Background()
	for _, to := range []string{"me@example.test", "you@example.test"} {
		if err := f.st.AddAlias(ctx, "team@example.test", to); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.st.SetQuota(ctx, "you@example.test", 100); err != nil {
		t.Fatal(err)
	}
	tr := delivery.Transport{Router: f.router}
	env := queue.Envelope{ID: "Q5", From: "a@remote.test", Domain: "example.test", Rcpts: []store.QueuedRcpt{{Addr: "team@example.test"}}}
	body := []byte(crlf("Subject: team", "", strings.Repeat("x", 500)))
	for try := range 2 {
		if res := tr.Deliver(ctx, env, bytes.NewReader(body), int64(len(body))); res[0].Code != 452 {
			t.Fatalf("try %d: %+v, want 452 4.2.2", try, res[0])
		}
	}
	if n := len(f.copies(t, "me")); n != 0 {
		t.Errorf("me got %d copies while you had no room, want 0", n)
	}
}

// TestUnixTargetSeenThenRetried: a target one recipient reached (u1's
// mailbox) and another recipient of the same message skipped as seen is
// skipped on that recipient's retries too (found in review: it was
// delivered again).
func TestUnixTargetSeenThenRetried(t *testing.T) {
	t.Parallel()
	sys, spool := unixSystem(t, "multi: u1, \"|exit 75\"\n", true)
	q := &fakeQueue{}
	f := newFixture(t, func(o *delivery.Options) { o.Queue = q; o.Unix = sys })
	if _, err := f.send(t, "<a@remote.test>", []string{"<u1@host.test>", "<multi@host.test>"}, strings.NewReader(crlf("Subject: seen", "", "b"))); err != nil {
		t.Fatal(err)
	}
	if len(q.msgs) != 1 {
		t.Fatalf("queued %d, want multi@ for its pipe", len(q.msgs))
	}
	m := q.msgs[0]
	tr := delivery.Transport{Router: f.router}
	env := queue.Envelope{ID: m.ID, From: m.From, Domain: "host.test", Rcpts: []store.QueuedRcpt{{Addr: m.Rcpts[0].Addr}}}
	tr.Deliver(context.Background(), env, bytes.NewReader([]byte(q.body[0])), int64(len(q.body[0])))
	b, _ := os.ReadFile(filepath.Join(spool, "u1"))
	if n := strings.Count(string(b), "\nSubject: seen\n"); n != 1 {
		t.Errorf("%d copies in u1's mailbox after a retry, want 1", n)
	}
}
