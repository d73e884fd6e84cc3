package local

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"posthorn/internal/store"
)

// markNow writes every mark, as KeepUIDMarks does at its next tick.
func markNow(t *testing.T, s *Store, ctx context.Context) {
	t.Helper()
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := s.writeMarks(ctx, conn, map[int64]uidMark{}); err != nil {
		t.Fatal(err)
	}
}

func deliverN(t *testing.T, s *Store, ctx context.Context, n int) {
	t.Helper()
	for range n {
		if errs := s.Deliver(ctx, []store.Delivery{delivery("me@example.test", "Subject: m\r\n\r\nbody\r\n")}); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
}

func inboxUIDs(t *testing.T, s *Store, ctx context.Context) (uint32, []uint32) {
	t.Helper()
	st, err := s.MailboxStatus(ctx, "me@example.test", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Messages(ctx, "me@example.test", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var uids []uint32
	for _, m := range msgs {
		uids = append(uids, m.UID)
	}
	return st.UIDValidity, uids
}

// TestUIDMarksCatchLostCommits: an index that went back in time (here
// posthorn.db restored from before three deliveries and two expunges;
// a lost -wal file does the same) gave the next file an expunged
// message's UID under the same UIDVALIDITY. Its mark shows it is behind:
// the mailbox gets a new UIDVALIDITY and its files new UIDs.
func TestUIDMarksCatchLostCommits(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	dir := s.dir
	deliverN(t, s, ctx, 2)
	validity, _ := inboxUIDs(t, s, ctx)
	s.Close()
	backup, err := os.ReadFile(filepath.Join(dir, "posthorn.db")) // clean close: no -wal left
	if err != nil {
		t.Fatal(err)
	}

	s, err = Open(Options{Dir: dir, Hostname: "mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	deliverN(t, s, ctx, 3) // UIDs 3, 4, 5
	if _, err := s.Expunge(ctx, "me@example.test", "INBOX", []uint32{3, 4}); err != nil {
		t.Fatal(err)
	}
	markNow(t, s, ctx)
	s.Close()

	for _, f := range []string{"posthorn.db-wal", "posthorn.db-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	if err := os.WriteFile(filepath.Join(dir, "posthorn.db"), backup, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir, Hostname: "mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.CheckUIDMarks(ctx)
	if err != nil || n != 1 {
		t.Fatalf("CheckUIDMarks = %d, %v; want the inbox renewed", n, err)
	}
	after, uids := inboxUIDs(t, s, ctx)
	if after == validity || !slices.Equal(uids, []uint32{1, 2, 3}) {
		t.Errorf("UIDVALIDITY %d → %d, UIDs %v; want a new UIDVALIDITY and the three files indexed", validity, after, uids)
	}
	if n, err := s.CheckUIDMarks(ctx); err != nil || n != 0 {
		t.Errorf("second check: %d, %v; want nothing more to do", n, err)
	}
}

// TestUIDMarksNoFalseAlarm: a mark equal to the index, or behind it (not
// written since the last deliveries), changes nothing; neither does a
// mailbox without a mark, or a mark that is not one.
func TestUIDMarksNoFalseAlarm(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	deliverN(t, s, ctx, 2)
	markNow(t, s, ctx)
	deliverN(t, s, ctx, 2)
	validity, _ := inboxUIDs(t, s, ctx)
	if n, err := s.CheckUIDMarks(ctx); err != nil || n != 0 {
		t.Fatalf("mark behind: %d, %v", n, err)
	}
	markNow(t, s, ctx)
	if n, err := s.CheckUIDMarks(ctx); err != nil || n != 0 {
		t.Fatalf("mark equal: %d, %v", n, err)
	}
	md, _ := s.MaildirPath(ctx, "me@example.test")
	for _, junk := range []string{"", "uidnext 99\n", "uidvalidity x\nuidnext 1\nhighestmodseq 1\n"} {
		if err := os.WriteFile(filepath.Join(md, markName), []byte(junk), 0o600); err != nil {
			t.Fatal(err)
		}
		if n, err := s.CheckUIDMarks(ctx); err != nil || n != 0 {
			t.Fatalf("mark %q: %d, %v", junk, n, err)
		}
	}
	if after, uids := inboxUIDs(t, s, ctx); after != validity || len(uids) != 4 {
		t.Errorf("UIDVALIDITY %d → %d, %d messages", validity, after, len(uids))
	}
}

// TestKeepUIDMarks: the writer writes a mark for each mailbox, and again
// once its state changes.
func TestKeepUIDMarks(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	deliverN(t, s, ctx, 1)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.KeepUIDMarks(ctx) }()
	defer func() { cancel(); <-done }()
	md, _ := s.MaildirPath(ctx, "me@example.test")
	read := func() uidMark {
		b, _ := os.ReadFile(filepath.Join(md, markName))
		m, _ := parseMark(b)
		return m
	}
	waitFor(t, func() bool { return read().next == 2 })
	deliverN(t, s, ctx, 1)
	waitFor(t, func() bool { return read().next == 3 })
	if m := read(); m.validity == 0 || m.modseq == 0 {
		t.Errorf("mark %+v", m)
	}
}

// waitFor polls cond for up to 10 s (the writer ticks every markEvery).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
