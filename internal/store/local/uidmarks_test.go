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
	if err := s.writeMarks(ctx, conn, nil, map[int64]uidMark{}); err != nil {
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

// TestUIDMarkOfAnotherMailbox: a mark that names another mailbox (a
// RENAME moved a directory while the writer wrote into it, so that one
// mailbox's mark sits in another's directory) is not that mailbox's: it
// changed nothing, where it once renewed a healthy mailbox.
func TestUIDMarkOfAnotherMailbox(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	for _, name := range []string{"Old", "New"} {
		if err := s.CreateMailbox(ctx, "me@example.test", name, ""); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	boxes, err := s.markedBoxes(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	var oldBox, newBox markedBox
	for _, b := range boxes {
		switch filepath.Base(b.dir) {
		case ".Old":
			oldBox = b
		case ".New":
			newBox = b
		}
	}
	if newBox.mark.validity <= oldBox.mark.validity {
		t.Fatalf("UIDVALIDITY of New %d, of Old %d: the test needs New's newer", newBox.mark.validity, oldBox.mark.validity)
	}
	// The writer listed New; then RENAME New X, RENAME Old New; then it
	// wrote New's mark into .New/, Old's directory now.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.RenameMailbox(ctx, "me@example.test", "New", "X"))
	must(s.RenameMailbox(ctx, "me@example.test", "Old", "New"))
	must(writeMark(newBox.dir, newBox.mark))
	if n, err := s.CheckUIDMarks(ctx); err != nil || n != 0 {
		t.Errorf("CheckUIDMarks = %d, %v; want no mailbox renewed", n, err)
	}
}

// TestUIDMarkRenewAboveMark: a renewed mailbox's UIDVALIDITY is above the
// one its mark shows, even when the clock is behind it (a machine
// without a real-time clock, after the crash).
func TestUIDMarkRenewAboveMark(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	deliverN(t, s, ctx, 1)
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	boxes, err := s.markedBoxes(ctx, conn, nil)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	inbox, _ := s.MaildirPath(ctx, "me@example.test")
	i := slices.IndexFunc(boxes, func(b markedBox) bool { return b.dir == inbox })
	if i < 0 {
		t.Fatalf("no INBOX among %+v", boxes)
	}
	b := boxes[i]
	future := b.mark
	future.validity += 1 << 20 // set in a future the clock has not reached
	if err := writeMark(b.dir, future); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CheckUIDMarks(ctx); err != nil || n != 1 {
		t.Fatalf("CheckUIDMarks = %d, %v", n, err)
	}
	st, err := s.MailboxStatus(ctx, "me@example.test", "INBOX")
	if err != nil || st.UIDValidity <= future.validity {
		t.Errorf("new UIDVALIDITY %d, mark's %d: %v", st.UIDValidity, future.validity, err)
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
