package queue

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"posthorn/internal/store"
	"posthorn/internal/store/local"
)

// scriptTransport answers per recipient from a table: code, or 250.
type scriptTransport struct {
	mu    sync.Mutex
	codes map[string]int
	calls []Envelope
	body  []string
}

func (s *scriptTransport) Deliver(ctx context.Context, env Envelope, body io.ReaderAt, size int64) []Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, env)
	b, _ := io.ReadAll(io.NewSectionReader(body, 0, size))
	s.body = append(s.body, string(b))
	var out []Result
	for _, r := range env.Rcpts {
		c := s.codes[r.Addr]
		if c == 0 {
			c = 250
		}
		enh := map[int]string{250: "2.0.0", 450: "4.2.0", 550: "5.1.1"}[c]
		out = append(out, Result{Code: c, Enhanced: enh, Text: "scripted", Remote: "mx." + env.Domain})
	}
	return out
}

type captured struct {
	from string
	to   []string
	msg  string
}

type captureInjector struct {
	mu   sync.Mutex
	msgs []captured
}

func (c *captureInjector) Inject(ctx context.Context, from string, to []string, msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, captured{from, to, string(msg)})
	return nil
}

type env struct {
	q     *Queue
	st    *local.Store
	tr    *scriptTransport
	inj   *captureInjector
	now   time.Time
	clock sync.Mutex
	dir   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := local.Open(local.Options{Dir: dir, Hostname: "mx.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{st: st, tr: &scriptTransport{codes: map[string]int{}}, inj: &captureInjector{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), dir: dir}
	e.q, err = New(Options{Store: st, Transport: e.tr, Injector: e.inj, Hostname: "mx.test",
		MinBackoff: time.Minute, MaxBackoff: 8 * time.Minute, Lifetime: time.Hour, DelayWarning: 10 * time.Minute,
		Now: e.clockNow})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) clockNow() time.Time { e.clock.Lock(); defer e.clock.Unlock(); return e.now }
func (e *env) advance(d time.Duration) {
	e.clock.Lock()
	e.now = e.now.Add(d)
	e.clock.Unlock()
}

// run does one scan and waits for the attempts it started.
func (e *env) run() {
	e.q.runDue(context.Background())
	e.q.wg.Wait()
}

const msgBody = "From: a@mx.test\r\nSubject: hello\r\n\r\nbody\r\n"

func (e *env) enqueue(t *testing.T, from string, rcpts ...store.QueuedRcpt) string {
	t.Helper()
	id, err := e.q.Enqueue(context.Background(), store.QueuedMessage{From: from, Size: int64(len(msgBody)), Rcpts: rcpts}, strings.NewReader(msgBody))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func rc(addr string, notify ...string) store.QueuedRcpt {
	return store.QueuedRcpt{Addr: addr, Notify: notify}
}

func (e *env) queued(t *testing.T) []store.QueuedMessage {
	t.Helper()
	ms, err := e.st.QueueList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestDeliveredMessageLeavesQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.enqueue(t, "a@mx.test", rc("x@one.test"), rc("y@one.test"), rc("z@two.test"))
	e.run()
	if len(e.tr.calls) != 2 {
		t.Fatalf("%d transport calls, want one per domain", len(e.tr.calls))
	}
	if e.tr.body[0] != msgBody {
		t.Errorf("body %q", e.tr.body[0])
	}
	if q := e.queued(t); len(q) != 0 {
		t.Errorf("still queued: %+v", q)
	}
	if len(e.inj.msgs) != 0 {
		t.Errorf("unexpected DSN: %+v", e.inj.msgs)
	}
}

func TestTemporaryFailureRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tr.codes["x@one.test"] = 450
	e.enqueue(t, "a@mx.test", rc("x@one.test"))
	e.run()
	q := e.queued(t)
	if len(q) != 1 || q[0].Rcpts[0].Attempts != 1 || !q[0].Rcpts[0].NextAttempt.Equal(e.now.Add(time.Minute)) {
		t.Fatalf("after first try: %+v", q)
	}
	e.run() // not due yet
	if len(e.tr.calls) != 1 {
		t.Fatalf("retried before its time")
	}
	e.advance(time.Minute)
	e.run()
	q = e.queued(t)
	if len(e.tr.calls) != 2 || q[0].Rcpts[0].NextAttempt.Sub(e.now) != 2*time.Minute {
		t.Fatalf("second try: calls %d, next in %v", len(e.tr.calls), q[0].Rcpts[0].NextAttempt.Sub(e.now))
	}
	delete(e.tr.codes, "x@one.test")
	e.advance(2 * time.Minute)
	e.run()
	if len(e.queued(t)) != 0 {
		t.Error("not delivered on the third try")
	}
}

func TestBackoffIsCapped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 8 * time.Minute}
	for i, w := range want {
		if got := e.q.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestPermanentFailureBounces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tr.codes["bad@one.test"] = 550
	e.enqueue(t, "a@mx.test", rc("good@one.test"), rc("bad@one.test"))
	e.run()
	if len(e.inj.msgs) != 1 {
		t.Fatalf("%d DSNs, want 1", len(e.inj.msgs))
	}
	d := e.inj.msgs[0]
	if d.from != "" || d.to[0] != "a@mx.test" {
		t.Errorf("DSN envelope from %q to %v: must be <> to the sender", d.from, d.to)
	}
	for _, want := range []string{"Final-Recipient: rfc822; bad@one.test", "Action: failed", "Status: 5.1.1", "Remote-MTA: dns; mx.one.test"} {
		if !strings.Contains(d.msg, want) {
			t.Errorf("DSN lacks %q", want)
		}
	}
	if strings.Contains(d.msg, "good@one.test") {
		t.Error("DSN lists the delivered recipient")
	}
	if len(e.queued(t)) != 0 {
		t.Error("message kept after bounce")
	}
}

func TestNullSenderNeverBounced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tr.codes["bad@one.test"] = 550
	e.enqueue(t, "", rc("bad@one.test"))
	e.run()
	if len(e.inj.msgs) != 0 || len(e.queued(t)) != 0 {
		t.Errorf("DSNs %d, queued %d", len(e.inj.msgs), len(e.queued(t)))
	}
}

func TestNotifyNeverAndSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tr.codes["bad@one.test"] = 550
	e.enqueue(t, "a@mx.test", rc("bad@one.test", "NEVER"), rc("ok@two.test", "SUCCESS"))
	e.run()
	if len(e.inj.msgs) != 1 || !strings.Contains(e.inj.msgs[0].msg, "Action: delivered") || strings.Contains(e.inj.msgs[0].msg, "bad@one.test") {
		t.Fatalf("DSNs: %+v", e.inj.msgs)
	}
}

func TestLifetimeExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tr.codes["slow@one.test"] = 450
	e.enqueue(t, "a@mx.test", rc("slow@one.test", "DELAY", "FAILURE"))
	for i := 0; i < 20 && len(e.queued(t)) > 0; i++ {
		e.advance(8 * time.Minute)
		e.run()
	}
	if len(e.queued(t)) != 0 {
		t.Fatal("never expired")
	}
	if len(e.inj.msgs) != 2 || !strings.Contains(e.inj.msgs[0].msg, "Action: delayed") ||
		!strings.Contains(e.inj.msgs[1].msg, "Action: failed") || !strings.Contains(e.inj.msgs[1].msg, "Status: 4.4.7") {
		t.Fatalf("want one delay then one failure DSN, got %d", len(e.inj.msgs))
	}
}

func TestHoldReleaseFlush(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tr.codes["x@one.test"] = 450
	id := e.enqueue(t, "a@mx.test", rc("x@one.test"))
	ctx := context.Background()
	if err := e.q.Hold(ctx, id); err != nil {
		t.Fatal(err)
	}
	e.run()
	if len(e.tr.calls) != 0 {
		t.Fatal("held message attempted")
	}
	if err := e.q.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	e.run()
	if len(e.tr.calls) != 1 {
		t.Fatal("released message not attempted")
	}
	if err := e.q.Flush(ctx, ""); err != nil {
		t.Fatal(err)
	}
	e.run()
	if len(e.tr.calls) != 2 {
		t.Fatal("flush did not retry at once")
	}
}

func TestDamagedBodyIsSetAsideAndReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.enqueue(t, "a@mx.test", rc("x@one.test"))
	path := filepath.Join(e.dir, "queue", id)
	if err := os.Truncate(path, 5); err != nil {
		t.Fatal(err)
	}
	e.run()
	if len(e.tr.calls) != 0 || len(e.queued(t)) != 0 {
		t.Fatal("damaged message delivered or kept")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "queue", "corrupt", id)); err != nil {
		t.Errorf("not set aside: %v", err)
	}
	if len(e.inj.msgs) != 1 || !strings.Contains(e.inj.msgs[0].msg, "Status: 5.3.0") {
		t.Errorf("sender not told: %+v", e.inj.msgs)
	}
}
