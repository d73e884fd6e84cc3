package local

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every caller of group.do must get a run that began after its call (its
// work was done before it called, so only such a run covers it), and runs
// must be shared: fewer runs than callers under contention.
func TestGroupRunBeginsAfterCall(t *testing.T) {
	t.Parallel()
	var g group
	var clock, runs atomic.Int64
	var runStart atomic.Int64 // clock value when the current run began
	const callers = 50
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				called := clock.Add(1)
				var covered int64
				err := g.do(func() error {
					runs.Add(1)
					runStart.Store(clock.Add(1))
					time.Sleep(50 * time.Microsecond)
					return nil
				})
				covered = runStart.Load()
				if err != nil {
					t.Error(err)
				}
				// The run that returned to us began after our call; a
				// later one may have begun since, which is later still.
				if covered <= called {
					t.Errorf("call at %d returned after a run that began at %d", called, covered)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := runs.Load(); n >= callers*20 {
		t.Errorf("%d runs for %d calls: nothing was shared", n, callers*20)
	}
}

// A failed run fails every caller it covered; later runs start afresh.
func TestGroupErrors(t *testing.T) {
	t.Parallel()
	var g group
	boom := errors.New("boom")
	if err := g.do(func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	if err := g.do(func() error { return nil }); err != nil {
		t.Errorf("after a failed run, a good one returned %v", err)
	}
}

// Writers share transactions, every one gets its own outcome, a failing
// request does not undo the others, and Close waits for all of them.
func TestWriteQueueGroupCommit(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	if _, err := s.wdb.Exec(`CREATE TABLE t(n INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	const writers, each = 20, 50
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := w*each + i
				err := s.write(ctx, func(tx *sql.Tx) error {
					if _, err := tx.Exec(`INSERT INTO t(n) VALUES (?)`, n); err != nil {
						return err
					}
					if n%10 == 0 {
						return errors.New("refused") // rolled back alone
					}
					return nil
				})
				if (err != nil) != (n%10 == 0) {
					t.Errorf("write %d: err = %v", n, err)
				}
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	var rows int
	if err := s.wdb.QueryRow(`SELECT count(*) FROM t`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := writers*each - int(failed.Load()); rows != want {
		t.Errorf("%d rows committed, want %d", rows, want)
	}
}

// A panic in one request's function fails its batch, leaves the queue
// usable and reaches the caller that was leading.
func TestWriteQueuePanic(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not reach the leader")
			}
		}()
		_ = s.write(ctx, func(*sql.Tx) error { panic("bad request") })
	}()
	done := make(chan error, 1)
	go func() { done <- s.write(ctx, func(*sql.Tx) error { return nil }) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("write after a panic: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the queue is stuck after a panic")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.write(context.Background(), func(*sql.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
}
