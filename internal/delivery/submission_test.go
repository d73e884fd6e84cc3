package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"posthorn/internal/delivery"
	"posthorn/internal/queue"
	"posthorn/internal/sasl"
	"posthorn/internal/smtp"
	"posthorn/internal/store"
	"posthorn/internal/users"
)

// fakeQueue records what is queued.
type fakeQueue struct {
	mu   sync.Mutex
	msgs []store.QueuedMessage
	body []string
	err  error
}

func (q *fakeQueue) Enqueue(ctx context.Context, m store.QueuedMessage, body io.Reader) (string, error) {
	if q.err != nil {
		return "", q.err
	}
	b, _ := io.ReadAll(body)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, m)
	q.body = append(q.body, string(b))
	return m.ID, nil
}

func submitFixture(t *testing.T) (*fixture, *fakeQueue) {
	q := &fakeQueue{}
	f := newFixture(t, func(o *delivery.Options) { o.Queue = q })
	return f, q
}

// submitSession is a session on the submission port after AUTH as me.
func (f *fixture) submitSession(t *testing.T) smtp.Session {
	t.Helper()
	s, err := f.router.NewSession(context.Background(), &smtp.ConnInfo{
		ID: "s1", Service: "submission", Remote: netip.MustParseAddrPort("192.0.2.9:5000"),
		HELO: "laptop", ESMTP: true, Auth: "me@example.test", Hostname: "mx.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestSubmissionSenderMustBeOwned(t *testing.T) {
	t.Parallel()
	f, _ := submitFixture(t)
	ctx := context.Background()
	for from, ok := range map[string]bool{
		"me@example.test": true, "me+x@example.test": true, "info@example.test": true, "": true,
		"you@example.test": false, "boss@remote.test": false,
	} {
		s := f.submitSession(t)
		err := s.Mail(ctx, path(t, "<"+from+">"), smtp.MailOptions{})
		if ok && err != nil {
			t.Errorf("MAIL FROM:<%s>: %v", from, err)
		}
		if !ok {
			wantReply(t, "MAIL FROM:<"+from+">", err, 553, "5.7.1")
		}
	}
}

func TestSubmissionRelaysAndDeliversLocally(t *testing.T) {
	t.Parallel()
	f, q := submitFixture(t)
	ctx := context.Background()
	s := f.submitSession(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Mail(ctx, path(t, "<me@example.test>"), smtp.MailOptions{Ret: "HDRS", EnvID: "e1"}))
	must(s.Rcpt(ctx, path(t, "<friend@remote.test>"), smtp.RcptOptions{Notify: []string{"FAILURE"}}))
	must(s.Rcpt(ctx, path(t, "<you@example.test>"), smtp.RcptOptions{}))
	if _, err := s.Data(ctx, strings.NewReader(crlf("From: Me <me@example.test>", "Subject: hi", "", "body"))); err != nil {
		t.Fatal(err)
	}
	if len(q.msgs) != 1 || len(q.msgs[0].Rcpts) != 1 || q.msgs[0].Rcpts[0].Addr != "friend@remote.test" ||
		q.msgs[0].EnvID != "e1" || q.msgs[0].Ret != "HDRS" || q.msgs[0].Rcpts[0].Notify[0] != "FAILURE" {
		t.Fatalf("queued %+v", q.msgs)
	}
	qb := q.body[0]
	if int64(len(qb)) != q.msgs[0].Size || !strings.HasPrefix(qb, "Received: from laptop") ||
		!strings.Contains(qb, "with ESMTPA") || !strings.Contains(qb, "\r\nMessage-ID: <") || !strings.Contains(qb, "\r\nDate: ") {
		t.Errorf("queued body:\n%s", qb)
	}
	if c := f.copies(t, "you"); len(c) != 1 || !strings.Contains(c[0], "Message-ID: <") {
		t.Errorf("local copy: %q", c)
	}
}

func TestSubmissionFromHeaderChecked(t *testing.T) {
	t.Parallel()
	f, q := submitFixture(t)
	ctx := context.Background()
	for hdr, ok := range map[string]bool{
		"From: me@example.test":                   true,
		"From: \"Info\" <info@example.test>":      true,
		"From: you@example.test":                  false,
		"From: me@example.test, boss@remote.test": false,
		"From: not an address <<<":                false,
	} {
		s := f.submitSession(t)
		_ = s.Mail(ctx, path(t, "<me@example.test>"), smtp.MailOptions{})
		_ = s.Rcpt(ctx, path(t, "<x@remote.test>"), smtp.RcptOptions{})
		_, err := s.Data(ctx, strings.NewReader(crlf(hdr, "Subject: s", "", "b")))
		if ok && err != nil {
			t.Errorf("%q: %v", hdr, err)
		}
		if !ok {
			wantReply(t, hdr, err, 553, "5.7.1")
		}
	}
	if len(q.msgs) != 2 {
		t.Errorf("%d queued, want 2", len(q.msgs))
	}
	// Several From fields: refused whoever they name, however many come
	// first (the ninth used to pass unchecked).
	for _, n := range []int{2, 9, 20} {
		lines := slices.Repeat([]string{"From: me@example.test"}, n-1)
		lines = append(lines, "From: boss@remote.test", "Subject: s", "", "b")
		s := f.submitSession(t)
		_ = s.Mail(ctx, path(t, "<me@example.test>"), smtp.MailOptions{})
		_ = s.Rcpt(ctx, path(t, "<x@remote.test>"), smtp.RcptOptions{})
		_, err := s.Data(ctx, strings.NewReader(crlf(lines...)))
		wantReply(t, fmt.Sprintf("%d From fields", n), err, 550, "5.6.0")
	}
	if len(q.msgs) != 2 {
		t.Errorf("%d queued after the many-From tries, want 2", len(q.msgs))
	}
}

func TestMTAForwardingAliasUsesQueue(t *testing.T) {
	t.Parallel()
	f, q := submitFixture(t)
	id, err := f.send(t, "<a@remote.test>", []string{"<fwd@example.test>", "<me@example.test>"}, strings.NewReader(crlf("Subject: f", "", "x")))
	if err != nil {
		t.Fatal(err)
	}
	if id == "" || len(q.msgs) != 1 || q.msgs[0].Rcpts[0].Addr != "someone@remote.test" || q.msgs[0].From != "a@remote.test" {
		t.Fatalf("queued %+v", q.msgs)
	}
	if len(f.copies(t, "me")) != 1 {
		t.Error("local recipient not delivered")
	}
}

func TestQueueFailureGives4xx(t *testing.T) {
	t.Parallel()
	f, q := submitFixture(t)
	q.err = store.ErrFull
	ctx := context.Background()
	s := f.submitSession(t)
	_ = s.Mail(ctx, path(t, "<me@example.test>"), smtp.MailOptions{})
	_ = s.Rcpt(ctx, path(t, "<x@remote.test>"), smtp.RcptOptions{})
	_, err := s.Data(ctx, strings.NewReader(crlf("Subject: s", "", "b")))
	wantReply(t, "DATA", err, 452, "4.3.1")
}

func TestAuthThroughSession(t *testing.T) {
	t.Parallel()
	f, _ := submitFixture(t)
	ctx := context.Background()
	us, _ := users.New(users.Options{Directory: f.st})
	if err := us.SetPassword(ctx, "me@example.test", "s3cret"); err != nil {
		t.Fatal(err)
	}
	s := f.submitSession(t).(smtp.AuthSession)
	srv, err := s.Auth(ctx, sasl.Plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, done, err := srv.Next(sasl.PlainResponse("", "me@example.test", "s3cret")); !done || err != nil || srv.Identity() != "me@example.test" {
		t.Fatalf("PLAIN: %v %v %q", done, err, srv.Identity())
	}
	srv, _ = s.Auth(ctx, sasl.Plain)
	if _, _, err := srv.Next(sasl.PlainResponse("", "me@example.test", "nope")); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestInjectAndLocalTransport(t *testing.T) {
	t.Parallel()
	f, q := submitFixture(t)
	ctx := context.Background()
	msg := []byte(crlf("From: MAILER-DAEMON@mx.test", "Subject: report", "", "r"))
	if err := f.router.Inject(ctx, "", []string{"me@example.test", "x@remote.test", "ghost@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	c := f.copies(t, "me")
	if len(c) != 1 || !strings.HasPrefix(c[0], "Return-Path: <>\nDelivered-To: me@example.test\n") {
		t.Fatalf("injected copy: %q", c)
	}
	if len(q.msgs) != 1 || q.msgs[0].Rcpts[0].Addr != "x@remote.test" || q.msgs[0].From != "" {
		t.Fatalf("queued %+v", q.msgs)
	}
	// The queue's transport delivers local recipients here.
	tr := delivery.Transport{Router: f.router}
	env := queue.Envelope{ID: "Q1", From: "a@remote.test", Domain: "example.test",
		Rcpts: []store.QueuedRcpt{{Addr: "you@example.test"}, {Addr: "ghost@example.test"}}}
	body := []byte(crlf("Received: from x", "Subject: q", "", "b"))
	res := tr.Deliver(ctx, env, bytes.NewReader(body), int64(len(body)))
	if res[0].Code != 250 || res[1].Code != 550 {
		t.Fatalf("results %+v", res)
	}
	if c := f.copies(t, "you"); len(c) != 1 || !strings.Contains(c[0], "Return-Path: <a@remote.test>") {
		t.Errorf("queued local copy: %q", c)
	}
	res = tr.Deliver(ctx, queue.Envelope{Domain: "remote.test", Rcpts: []store.QueuedRcpt{{Addr: "z@remote.test"}}}, bytes.NewReader(body), int64(len(body)))
	if res[0].Code != 451 {
		t.Errorf("no remote transport: %+v", res)
	}
}
