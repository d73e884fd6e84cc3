package local

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"posthorn/internal/store"
)

// withoutWatch turns inotify off, as on a network file system: the store
// compares directory mtimes.
func withoutWatch(s *Store) {
	if s.fsw != nil {
		s.fsw.close()
		s.fsw = nil
	}
}

// bothModes runs f with inotify and with directory mtimes.
func bothModes(t *testing.T, f func(t *testing.T, s *Store, ctx context.Context)) {
	for _, mode := range []string{"inotify", "mtime"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s, ctx := newStore(t)
			if mode == "mtime" {
				withoutWatch(s)
			} else if s.fsw == nil {
				t.Fatal("no inotify on this Linux system")
			}
			f(t, s, ctx)
		})
	}
}

// diskAgrees fails unless the index of mailbox has exactly the files of
// its Maildir, each under its base name.
func diskAgrees(t *testing.T, s *Store, ctx context.Context, acct, mailbox, when string) {
	t.Helper()
	id, dir, err := s.mailbox(ctx, acct, mailbox)
	must(t, err)
	files, err := listMaildir(dir, 0)
	must(t, err)
	rows, err := s.indexRows(ctx, id)
	must(t, err)
	var bad []string
	for b, f := range files {
		if r, ok := rows[b]; !ok || r.file != f {
			bad = append(bad, fmt.Sprintf("disk %s, index %q", f, r.file))
		}
	}
	for b, r := range rows {
		if _, ok := files[b]; !ok {
			bad = append(bad, fmt.Sprintf("index %s, not on disk", r.file))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Fatalf("%s: index and Maildir differ:\n%s", when, strings.Join(bad, "\n"))
	}
}

// TestWatchedSyncRandom: the store's own deliveries, flag changes and
// expunges mixed at random with another program's moves, flag renames,
// deletions and new files, synced at random moments: after every sync
// the index has exactly the files of the Maildir, with inotify and
// without.
func TestWatchedSyncRandom(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Store, ctx context.Context) {
		const acct = "me@example.test"
		_, dir, err := s.mailbox(ctx, acct, "INBOX")
		must(t, err)
		rng := rand.New(rand.NewPCG(7, uint64(len(t.Name()))))
		pick := func(sub string) (string, bool) {
			ents, _ := os.ReadDir(filepath.Join(dir, sub))
			if len(ents) == 0 {
				return "", false
			}
			return ents[rng.IntN(len(ents))].Name(), true
		}
		for step := range 400 {
			switch rng.IntN(8) {
			case 0:
				must(t, s.Deliver(ctx, []store.Delivery{delivery(acct, "Subject: x\r\n\r\nbody\r\n")})[0])
			case 1:
				msgs, _ := s.Messages(ctx, acct, "INBOX")
				if len(msgs) > 0 {
					uid := msgs[rng.IntN(len(msgs))].UID
					flag := []string{`\Seen`, `\Flagged`, `\Answered`, `$Work`}[rng.IntN(4)]
					op := []store.FlagOp{store.FlagsAdd, store.FlagsRemove}[rng.IntN(2)]
					if _, _, err := s.SetFlags(ctx, acct, "INBOX", []uint32{uid}, op, []string{flag}, 0); err != nil {
						t.Fatal(err)
					}
				}
			case 2:
				msgs, _ := s.Messages(ctx, acct, "INBOX")
				if len(msgs) > 0 {
					uid := msgs[rng.IntN(len(msgs))].UID
					if _, _, err := s.SetFlags(ctx, acct, "INBOX", []uint32{uid}, store.FlagsAdd, []string{`\Deleted`}, 0); err != nil {
						t.Fatal(err)
					}
					if _, err := s.Expunge(ctx, acct, "INBOX", []uint32{uid}); err != nil {
						t.Fatal(err)
					}
				}
			case 3: // another program reads a new message
				if n, ok := pick("new"); ok {
					must(t, os.Rename(filepath.Join(dir, "new", n), filepath.Join(dir, "cur", n+":2,S")))
				}
			case 4: // another program changes flags
				if n, ok := pick("cur"); ok {
					flags := []string{"", "F", "FS", "RS", "S", "T"}[rng.IntN(6)]
					must(t, os.Rename(filepath.Join(dir, "cur", n), filepath.Join(dir, "cur", baseName(n)+":2,"+flags)))
				}
			case 5: // another program deletes a message
				sub := []string{"new", "cur"}[rng.IntN(2)]
				if n, ok := pick(sub); ok {
					must(t, os.Remove(filepath.Join(dir, sub, n)))
				}
			case 6: // another program delivers, the Maildir way
				name := fmt.Sprintf("%d.R%dP%d.other", time.Now().Unix(), rng.Uint32(), step)
				tmp := filepath.Join(dir, "tmp", name)
				must(t, os.WriteFile(tmp, []byte("Subject: y\n\nhi\n"), 0o600))
				must(t, os.Rename(tmp, filepath.Join(dir, []string{"new", "cur"}[rng.IntN(2)], name)))
			case 7:
				must(t, s.Sync(ctx, acct, "INBOX"))
				diskAgrees(t, s, ctx, acct, "INBOX", fmt.Sprintf("step %d", step))
			}
		}
		must(t, s.Sync(ctx, acct, "INBOX"))
		diskAgrees(t, s, ctx, acct, "INBOX", "at the end")
	})
}

// TestWatchLostEventsRelist: when the kernel drops events (queue
// overflow) or too many names pile up, the next sync lists the directory
// and misses nothing.
func TestWatchLostEventsRelist(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	if s.fsw == nil {
		t.Fatal("no inotify on this Linux system")
	}
	const acct = "me@example.test"
	must(t, s.Sync(ctx, acct, "INBOX"))
	_, dir, err := s.mailbox(ctx, acct, "INBOX")
	must(t, err)
	drop := func(n int, tag string) {
		for i := range n {
			must(t, os.WriteFile(filepath.Join(dir, "new", fmt.Sprintf("1700000000.%s%d.other", tag, i)), []byte("Subject: y\n\nhi\n"), 0o600))
		}
	}

	lists := s.synced.lists.Load()
	drop(2, "a")
	s.fsw.mu.Lock()
	s.fsw.drain()
	s.fsw.event(-1, syscall.IN_Q_OVERFLOW, "")
	s.fsw.mu.Unlock()
	must(t, s.Sync(ctx, acct, "INBOX"))
	if s.synced.lists.Load() != lists+1 {
		t.Error("no listing after a queue overflow")
	}
	diskAgrees(t, s, ctx, acct, "INBOX", "after an overflow")

	lists = s.synced.lists.Load()
	drop(maxWatchNames+5, "b")
	must(t, s.Sync(ctx, acct, "INBOX"))
	if s.synced.lists.Load() != lists+1 {
		t.Errorf("no listing after %d names", maxWatchNames+5)
	}
	diskAgrees(t, s, ctx, acct, "INBOX", "after too many names")

	lists = s.synced.lists.Load()
	drop(3, "c")
	must(t, s.Sync(ctx, acct, "INBOX"))
	if s.synced.lists.Load() != lists {
		t.Error("listed again although the names were few")
	}
	diskAgrees(t, s, ctx, acct, "INBOX", "after a few names")
}

// TestWatchWakesWithoutPolling: with the poller's tick an hour away, a
// file another program drops into a watched mailbox still wakes its
// watchers (inotify), and a mailbox deleted and created again under the
// same name is watched afresh.
func TestWatchWakesWithoutPolling(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	if s.fsw == nil {
		t.Fatal("no inotify on this Linux system")
	}
	s.pollEvery = time.Hour
	const acct = "me@example.test"
	must(t, s.CreateMailbox(ctx, acct, "A", ""))
	for round := range 2 {
		must(t, s.Sync(ctx, acct, "A"))
		ch, stop := s.Watch(acct, "A")
		_, dir, err := s.mailbox(ctx, acct, "A")
		must(t, err)
		start := time.Now()
		must(t, os.WriteFile(filepath.Join(dir, "new", fmt.Sprintf("1700000000.R%d.other", round)), []byte("Subject: y\n\nhi\n"), 0o600))
		select {
		case <-ch:
			t.Logf("round %d: notice %v after the file appeared", round, time.Since(start))
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: no notice within 5 s with polling off", round)
		}
		msgs, _ := s.Messages(ctx, acct, "A")
		if len(msgs) != 1 {
			t.Fatalf("round %d: %d messages after the notice, want 1", round, len(msgs))
		}
		stop()
		must(t, s.DeleteMailbox(ctx, acct, "A"))
		must(t, s.CreateMailbox(ctx, acct, "A", ""))
	}
}

// TestWatchedSyncSeesItsOwnPast: a sync sees every change completed before
// it began, even while other syncs of the same mailbox run: each of eight
// goroutines drops a file, syncs, and must find the file indexed.
func TestWatchedSyncSeesItsOwnPast(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Store, ctx context.Context) {
		const acct = "me@example.test"
		id, dir, err := s.mailbox(ctx, acct, "INBOX")
		must(t, err)
		must(t, s.Sync(ctx, acct, "INBOX"))
		errs := make(chan error, 8)
		for g := range 8 {
			go func() {
				for i := range 40 {
					name := fmt.Sprintf("1700000000.G%dI%d.other", g, i)
					if err := os.WriteFile(filepath.Join(dir, "new", name), []byte("Subject: y\n\nhi\n"), 0o600); err != nil {
						errs <- err
						return
					}
					if err := s.Sync(ctx, acct, "INBOX"); err != nil {
						errs <- err
						return
					}
					var n int
					if err := s.rdb.QueryRow(`SELECT count(*) FROM messages WHERE mailbox_id = ? AND base = ?`, id, name).Scan(&n); err != nil || n != 1 {
						errs <- fmt.Errorf("%s: %d rows after its sync (%v)", name, n, err)
						return
					}
				}
				errs <- nil
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		diskAgrees(t, s, ctx, acct, "INBOX", "at the end")
	})
}

// TestSyncDuringOwnRenames: one goroutine toggles a flag on a message
// (each STORE renames its file) while another syncs, as the poller does
// on every inotify event: the message keeps its UID throughout. A sync
// that looked a name up after a second rename took the message for
// deleted and expunged it; it came back with a new UID.
func TestSyncDuringOwnRenames(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Store, ctx context.Context) {
		const acct = "me@example.test"
		must(t, s.Deliver(ctx, []store.Delivery{delivery(acct, "Subject: x\r\n\r\nbody\r\n")})[0])
		must(t, s.Sync(ctx, acct, "INBOX"))
		msgs, _ := s.Messages(ctx, acct, "INBOX")
		uid := msgs[0].UID
		done := make(chan error, 1)
		go func() {
			for i := range 2000 {
				op := []store.FlagOp{store.FlagsAdd, store.FlagsRemove}[i%2]
				if _, _, err := s.SetFlags(ctx, acct, "INBOX", []uint32{uid}, op, []string{`\Seen`}, 0); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for syncs := 0; ; syncs++ {
			select {
			case err := <-done:
				must(t, err)
				must(t, s.Sync(ctx, acct, "INBOX"))
				msgs, _ = s.Messages(ctx, acct, "INBOX")
				if len(msgs) != 1 || msgs[0].UID != uid {
					t.Fatalf("at the end: UID %d became %+v", uid, msgs)
				}
				return
			default:
			}
			must(t, s.Sync(ctx, acct, "INBOX"))
			if msgs, _ = s.Messages(ctx, acct, "INBOX"); len(msgs) != 1 || msgs[0].UID != uid {
				<-done
				t.Fatalf("after %d syncs: UID %d became %+v", syncs, uid, msgs)
			}
		}
	})
}
