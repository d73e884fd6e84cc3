package queue

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"posthorn/internal/store"
	"posthorn/internal/store/local"
)

// scriptTransport answers per recipient from a table: code, or 250.
type scriptTransport struct {
	mu       sync.Mutex
	codes    map[string]int
	calls    []Envelope
	body     []string
	passedOn bool // answer as a DSN-capable server that took NOTIFY along
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
		if c == -1 {
			panic("transport panic for " + r.Addr)
		}
		enh := map[int]string{250: "2.0.0", 450: "4.2.0", 550: "5.1.1"}[c]
		out = append(out, Result{Code: c, Enhanced: enh, Text: "scripted", Remote: "mx." + env.Domain, PassedOn: s.passedOn && c == 250})
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

// TestTransportPanicIsTemporary: a panic in the transport (it runs on a
// goroutine of its own per domain) is that attempt's temporary failure:
// the message stays queued, the other domain is served, and the process
// lives on (a hostile MX's greeting crashed the daemon on every start).
func TestTransportPanicIsTemporary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tr.codes["x@one.test"] = -1
	e.enqueue(t, "a@mx.test", rc("x@one.test"), rc("y@two.test"))
	e.run()
	if n := e.q.Panics(); n != 1 {
		t.Errorf("Panics() = %d, want 1 (posthorn_panics_total must show it)", n)
	}
	q := e.queued(t)
	if len(q) != 1 || len(q[0].Rcpts) != 2 {
		t.Fatalf("after the panic: %+v", q)
	}
	for _, r := range q[0].Rcpts {
		want := store.RcptDelivered
		if r.Addr == "x@one.test" {
			want = store.RcptQueued
		}
		if r.State != want || r.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts, want %s after 1", r.Addr, r.State, r.Attempts, want)
		}
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
	// A success report carries the header section, not the message
	// (RET=FULL is for failed DSNs, RFC 3461 §4.3).
	if m := e.inj.msgs[0].msg; !strings.Contains(m, "Content-Type: text/rfc822-headers") || strings.Contains(m, "message/rfc822") {
		t.Errorf("success DSN does not return just the header section:\n%s", m)
	}
}

// TestSuccessPassedOnNotReported: a recipient accepted by a server that
// supports DSN, to which NOTIFY went along, gets no "delivered" DSN from
// us: that server reports success (RFC 3461 §5.2.1); the sender got two.
func TestSuccessPassedOnNotReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tr.passedOn = true
	e.enqueue(t, "a@mx.test", rc("ok@two.test", "SUCCESS"))
	e.run()
	if len(e.inj.msgs) != 0 || len(e.queued(t)) != 0 {
		t.Errorf("DSNs %+v, queued %d; want none and none", e.inj.msgs, len(e.queued(t)))
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

// blockingTransport holds every delivery to slow.test until release is
// closed; others go at once.
type blockingTransport struct {
	scriptTransport
	release chan struct{}
	mu2     sync.Mutex
	slowNow int
	slowMax int
}

func (b *blockingTransport) Deliver(ctx context.Context, env Envelope, body io.ReaderAt, size int64) []Result {
	if env.Domain == "slow.test" {
		b.mu2.Lock()
		b.slowNow++
		b.slowMax = max(b.slowMax, b.slowNow)
		b.mu2.Unlock()
		<-b.release
		b.mu2.Lock()
		b.slowNow--
		b.mu2.Unlock()
	}
	return b.scriptTransport.Deliver(ctx, env, body, size)
}

// TestSlowDomainDoesNotStarveOthers: with every delivery to one domain
// stuck (a tarpit), at most PerDomain workers wait on it; the others
// deliver elsewhere, and the recipients that found their domain busy are
// put off without it counting as an attempt.
func TestSlowDomainDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bt := &blockingTransport{scriptTransport: scriptTransport{codes: map[string]int{}}, release: make(chan struct{})}
	q, err := New(Options{Store: e.st, Transport: bt, Injector: e.inj, Hostname: "mx.test", Workers: 4, PerDomain: 2,
		MinBackoff: time.Minute, Now: e.clockNow})
	if err != nil {
		t.Fatal(err)
	}
	e.q = q
	for range 6 {
		e.enqueue(t, "a@mx.test", rc("x@slow.test"))
	}
	fast := e.enqueue(t, "a@mx.test", rc("y@fast.test"))
	defer func() { close(bt.release); q.wg.Wait() }()

	for range 3 { // scans while the slow ones hang
		q.runDue(context.Background())
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range e.queued(t) {
		if m.ID == fast {
			t.Fatalf("the message to fast.test is still queued: %+v", m.Rcpts)
		}
	}
	bt.mu2.Lock()
	slowMax := bt.slowMax
	bt.mu2.Unlock()
	if slowMax != 2 {
		t.Errorf("%d deliveries to slow.test at once, want PerDomain (2)", slowMax)
	}
	busy := 0
	for _, m := range e.queued(t) {
		for _, r := range m.Rcpts {
			if r.Addr == "x@slow.test" && r.NextAttempt.After(e.clockNow()) {
				busy++
				if r.Attempts != 0 {
					t.Errorf("a recipient put off for a busy domain has %d attempts, want 0", r.Attempts)
				}
			}
		}
	}
	if busy != 4 {
		t.Errorf("%d recipients put off for the busy domain, want 4", busy)
	}
}

// staleDue answers QueueDue with a list taken earlier, as a scan's list
// is by the time a worker frees up for its last entries.
type staleDue struct {
	*local.Store
	list []store.QueuedMessage
}

func (s staleDue) QueueDue(context.Context, time.Time, int) ([]store.QueuedMessage, error) {
	return s.list, nil
}

// TestAttemptReadsTheMessageAgain: an attempt works from the message as
// it is stored now, not as the scan listed it: a recipient delivered
// meanwhile (by the attempt that was running when the list was taken)
// was sent again and written back as not delivered.
func TestAttemptReadsTheMessageAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tr.codes["slow@two.test"] = 450
	id := e.enqueue(t, "a@mx.test", rc("ok@one.test"), rc("slow@two.test"))
	old, err := e.st.QueueGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	e.run() // ok@one.test delivered, slow@two.test deferred
	e.advance(2 * time.Minute)
	q, err := New(Options{Store: staleDue{e.st, []store.QueuedMessage{old}}, Transport: e.tr, Injector: e.inj, Hostname: "mx.test",
		MinBackoff: time.Minute, MaxBackoff: 8 * time.Minute, Lifetime: time.Hour, DelayWarning: 10 * time.Minute, Now: e.clockNow})
	if err != nil {
		t.Fatal(err)
	}
	q.runDue(context.Background())
	q.wg.Wait()
	sent := 0
	for _, c := range e.tr.calls {
		for _, r := range c.Rcpts {
			if r.Addr == "ok@one.test" {
				sent++
			}
		}
	}
	if sent != 1 {
		t.Errorf("ok@one.test sent %d times, want once", sent)
	}
	m, err := e.st.QueueGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Rcpts {
		if r.Addr == "ok@one.test" && r.State != store.RcptDelivered {
			t.Errorf("ok@one.test is %v again, want delivered", r.State)
		}
	}
}

// TestDeliveriesBoundedByWorkers: one message to many domains opens no
// more deliveries at once than Workers (it opened one per domain).
func TestDeliveriesBoundedByWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tr := &countingTransport{}
	q, err := New(Options{Store: e.st, Transport: tr, Injector: e.inj, Hostname: "mx.test", Workers: 2,
		MinBackoff: time.Minute, MaxBackoff: 8 * time.Minute, Lifetime: time.Hour, DelayWarning: 10 * time.Minute, Now: e.clockNow})
	if err != nil {
		t.Fatal(err)
	}
	var rcpts []store.QueuedRcpt
	for i := range 40 {
		rcpts = append(rcpts, rc(fmt.Sprintf("a@d%d.test", i)))
	}
	if _, err := q.Enqueue(context.Background(), store.QueuedMessage{From: "a@mx.test", Size: int64(len(msgBody)), Rcpts: rcpts}, strings.NewReader(msgBody)); err != nil {
		t.Fatal(err)
	}
	q.runDue(context.Background())
	q.wg.Wait()
	if tr.max.Load() > 2 || tr.total.Load() != 40 {
		t.Errorf("%d deliveries at most at once (want ≤ 2), %d in all (want 40)", tr.max.Load(), tr.total.Load())
	}
}

// countingTransport accepts everything slowly and counts deliveries in
// progress.
type countingTransport struct {
	now, max, total atomic.Int32
}

func (c *countingTransport) Deliver(ctx context.Context, env Envelope, body io.ReaderAt, size int64) []Result {
	n := c.now.Add(1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	c.total.Add(1)
	time.Sleep(5 * time.Millisecond)
	c.now.Add(-1)
	out := make([]Result, len(env.Rcpts))
	for i := range out {
		out[i] = Result{Code: 250, Enhanced: "2.0.0", Text: "ok"}
	}
	return out
}

// TestTooManyRecipientsSentAtOnce: recipients a server refused with 452
// 4.5.3 (too many in one transaction) next to accepted ones go in the
// next scan, not after a backoff (RFC 5321 §4.5.3.1.10), as Postfix sends
// them; a 452 4.5.3 for every recipient waits its backoff.
func TestTooManyRecipientsSentAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tr := &limitTransport{max: 2}
	q, err := New(Options{Store: e.st, Transport: tr, Injector: e.inj, Hostname: "mx.test",
		MinBackoff: time.Minute, MaxBackoff: 8 * time.Minute, Lifetime: time.Hour, DelayWarning: 10 * time.Minute, Now: e.clockNow})
	if err != nil {
		t.Fatal(err)
	}
	var rcpts []store.QueuedRcpt
	for i := range 5 {
		rcpts = append(rcpts, rc(fmt.Sprintf("u%d@one.test", i)))
	}
	if _, err := q.Enqueue(context.Background(), store.QueuedMessage{From: "a@mx.test", Size: int64(len(msgBody)), Rcpts: rcpts}, strings.NewReader(msgBody)); err != nil {
		t.Fatal(err)
	}
	for range 3 { // three scans, no time passing
		q.runDue(context.Background())
		q.wg.Wait()
	}
	if got := tr.delivered.Load(); got != 5 {
		t.Errorf("%d of 5 recipients delivered in three scans without a backoff", got)
	}
}

// limitTransport takes at most max recipients per transaction and
// answers 452 4.5.3 to the others.
type limitTransport struct {
	max       int
	delivered atomic.Int32
}

func (l *limitTransport) Deliver(ctx context.Context, env Envelope, body io.ReaderAt, size int64) []Result {
	out := make([]Result, len(env.Rcpts))
	for i := range out {
		if i < l.max {
			out[i] = Result{Code: 250, Enhanced: "2.0.0", Text: "ok"}
			l.delivered.Add(1)
		} else {
			out[i] = Result{Code: 452, Enhanced: "4.5.3", Text: "too many recipients"}
		}
	}
	return out
}
