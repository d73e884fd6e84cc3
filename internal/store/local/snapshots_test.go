package local

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"posthorn/internal/store"
)

func TestApplyChanges(t *testing.T) {
	t.Parallel()
	m := func(uid uint32, modseq uint64) store.MessageMeta { return store.MessageMeta{UID: uid, ModSeq: modseq} }
	list := []store.MessageMeta{m(1, 1), m(3, 3), m(5, 5)}
	got := applyChanges(list, []store.MessageMeta{m(3, 9), m(6, 10), m(7, 11)}, []uint32{1, 2, 7})
	want := []store.MessageMeta{m(3, 9), m(5, 5), m(6, 10)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("applyChanges = %v, want %v", got, want)
	}
	if list[1].ModSeq != 3 {
		t.Error("applyChanges changed its input")
	}
	if got := applyChanges(nil, nil, []uint32{4}); len(got) != 0 {
		t.Errorf("empty = %v", got)
	}
}

// After any sequence of deliveries, flag changes, expunges, moves and
// changes made behind the store's back, a SELECT served from the cached
// list is exactly what reading every row gives.
func TestSnapshotCacheMatchesFullRead(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	const acct = "me@example.test"
	must(t, s.CreateMailbox(ctx, acct, "Other", ""))
	rng := rand.New(rand.NewPCG(3, 4))
	dir, _ := s.MaildirPath(ctx, acct)
	for step := range 300 {
		snap, err := s.Snapshot(ctx, acct, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		uids := make([]uint32, len(snap.Messages))
		for i, m := range snap.Messages {
			uids[i] = m.UID
		}
		pick := func() []uint32 {
			var out []uint32
			for _, u := range uids {
				if rng.IntN(4) == 0 {
					out = append(out, u)
				}
			}
			return out
		}
		var op string
		switch rng.IntN(6) {
		case 0, 1:
			op = "deliver"
			body := fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", step)
			if errs := s.Deliver(ctx, []store.Delivery{delivery(acct, body)}); errs[0] != nil {
				t.Fatal(errs[0])
			}
		case 2:
			op = "flags"
			_, _, err = s.SetFlags(ctx, acct, "INBOX", pick(), store.FlagsAdd, []string{`\Seen`, "$Label"}, 0)
		case 3:
			op = "expunge"
			_, err = s.Expunge(ctx, acct, "INBOX", pick())
		case 4:
			op = "move"
			_, _, _, err = s.Copy(ctx, acct, "INBOX", "Other", pick(), true)
		case 5:
			op = "outside" // a file renamed by another program (mutt marking it read)
			ents, _ := os.ReadDir(filepath.Join(dir, "new"))
			if len(ents) > 0 {
				e := ents[rng.IntN(len(ents))]
				must(t, os.Rename(filepath.Join(dir, "new", e.Name()), filepath.Join(dir, "cur", e.Name()+":2,S")))
			}
		}
		if err != nil {
			t.Fatalf("step %d %s: %v", step, op, err)
		}
		got, err := s.Snapshot(ctx, acct, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		want := fullSnapshot(t, s, ctx, acct, "INBOX")
		if len(got.Messages) == 0 && len(want.Messages) == 0 {
			got.Messages, want.Messages = nil, nil // empty either way
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d (%s): cached snapshot differs from a full read\n got %+v\nwant %+v", step, op, brief(got), brief(want))
		}
	}
}

func fullSnapshot(t *testing.T, s *Store, ctx context.Context, acct, mailbox string) store.Snapshot {
	t.Helper()
	id, _, err := s.mailbox(ctx, acct, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	var snap store.Snapshot
	must(t, s.rdb.QueryRowContext(ctx, `SELECT uidvalidity, uidnext, highestmodseq FROM mailboxes WHERE id = ?`, id).
		Scan(&snap.UIDValidity, &snap.UIDNext, &snap.HighestModSeq))
	snap.Messages, err = queryMetas(ctx, s.rdb, `WHERE mailbox_id = ? ORDER BY uid`, id)
	must(t, err)
	return snap
}

func brief(s store.Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hms=%d next=%d [", s.HighestModSeq, s.UIDNext)
	for _, m := range s.Messages {
		fmt.Fprintf(&b, " %d/%d%v", m.UID, m.ModSeq, m.Flags)
	}
	return b.String() + " ]"
}

// A mailbox deleted and made again may get the same id: its old list must
// not be served.
func TestSnapshotCacheMailboxRecreated(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	const acct = "me@example.test"
	must(t, s.CreateMailbox(ctx, acct, "Tmp", ""))
	for i := range 3 {
		if _, _, err := s.Append(ctx, acct, "Tmp", nil, time.Now(), strings.NewReader("Subject: x\r\n\r\n"+fmt.Sprint(i)+"\r\n"), int64(16+len(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	if snap, _ := s.Snapshot(ctx, acct, "Tmp"); len(snap.Messages) != 3 {
		t.Fatalf("%d messages", len(snap.Messages))
	}
	must(t, s.DeleteMailbox(ctx, acct, "Tmp"))
	must(t, s.CreateMailbox(ctx, acct, "Tmp", ""))
	if snap, _ := s.Snapshot(ctx, acct, "Tmp"); len(snap.Messages) != 0 {
		t.Errorf("recreated mailbox shows %d messages", len(snap.Messages))
	}
}

// TestSnapshotCacheBounds: the cache holds at most maxCachedMailboxes
// lists however small they are, and at most its message limit, dropping
// the least recently used first.
func TestSnapshotCacheBounds(t *testing.T) {
	t.Parallel()
	var c snapshots
	for id := range int64(maxCachedMailboxes + 100) {
		c.put(id, store.Snapshot{HighestModSeq: 1})
	}
	if len(c.byID) != maxCachedMailboxes {
		t.Fatalf("%d empty lists cached, want %d", len(c.byID), maxCachedMailboxes)
	}
	if _, ok := c.get(0); ok {
		t.Error("the oldest list survived")
	}
	if _, ok := c.get(maxCachedMailboxes + 99); !ok {
		t.Error("the newest list was dropped")
	}

	c = snapshots{max: 10}
	four := store.Snapshot{HighestModSeq: 1, Messages: make([]store.MessageMeta, 4)}
	c.put(1, four)
	c.put(2, four)
	c.get(1) // 2 is now the least recently used
	c.put(3, four)
	if _, ok := c.get(2); ok || c.total != 8 {
		t.Errorf("after 12 messages with room for 10: list 2 cached %v, total %d; want dropped, 8", ok, c.total)
	}
}
