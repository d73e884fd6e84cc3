package local

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"posthorn/internal/store"
	"posthorn/internal/users"
)

func TestSieveScripts(t *testing.T) {
	s, ctx := newStore(t)
	const acct = "me@example.test"
	if _, _, err := s.ActiveSieveScript(ctx, acct); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("no script: err = %v", err)
	}
	for _, n := range []string{"a", "b"} {
		if err := s.PutSieveScript(ctx, acct, n, "keep; # "+n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ActivateSieveScript(ctx, acct, "nosuch"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("activate missing: %v", err)
	}
	if err := s.ActivateSieveScript(ctx, acct, "b"); err != nil {
		t.Fatal(err)
	}
	sc, text, err := s.ActiveSieveScript(ctx, acct)
	if err != nil || sc.Name != "b" || text != "keep; # b" {
		t.Errorf("active = %+v %q %v", sc, text, err)
	}
	if err := s.DeleteSieveScript(ctx, acct, "b"); !errors.Is(err, store.ErrActive) {
		t.Errorf("delete active: %v", err)
	}
	if err := s.RenameSieveScript(ctx, acct, "a", "b"); !errors.Is(err, users.ErrExists) {
		t.Errorf("rename onto existing: %v", err)
	}
	if err := s.RenameSieveScript(ctx, acct, "b", "c"); err != nil {
		t.Fatal(err)
	}
	// Replacing the active script keeps it active.
	if err := s.PutSieveScript(ctx, acct, "c", "discard;"); err != nil {
		t.Fatal(err)
	}
	list, err := s.SieveScripts(ctx, acct)
	if err != nil || len(list) != 2 || list[1].Name != "c" || !list[1].Active || list[1].Size != 8 || list[0].Active {
		t.Errorf("list = %+v %v", list, err)
	}
	if err := s.ActivateSieveScript(ctx, acct, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSieveScript(ctx, acct, "c"); err != nil {
		t.Errorf("delete after deactivating: %v", err)
	}
	if _, err := s.SieveScript(ctx, acct, "c"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("deleted script still there: %v", err)
	}
}

func TestVacationDue(t *testing.T) {
	s, ctx := newStore(t)
	const acct = "me@example.test"
	now := time.Unix(1_800_000_000, 0)
	day := 24 * time.Hour
	steps := []struct {
		sender string
		at     time.Duration
		want   bool
	}{
		{"a@remote.test", 0, true},
		{"A@remote.test", time.Hour, false}, // same sender, any case
		{"b@remote.test", time.Hour, true},
		{"a@remote.test", 2 * day, false},
		{"a@remote.test", 3*day + time.Second, true},
	}
	for i, st := range steps {
		got, err := s.VacationDue(ctx, acct, "k", st.sender, 3*day, now.Add(st.at))
		if err != nil || got != st.want {
			t.Errorf("step %d: due = %v, %v; want %v", i, got, err, st.want)
		}
	}
	if got, _ := s.VacationDue(ctx, acct, "other", "a@remote.test", 3*day, now); !got {
		t.Error("another vacation key was not due")
	}
}

func TestSweepQueue(t *testing.T) {
	s, ctx := newStore(t)
	dir := s.queueDir()
	old := time.Now().Add(-2 * time.Hour)
	os.MkdirAll(filepath.Join(dir, "tmp"), 0o700)
	for _, f := range []string{filepath.Join("tmp", "HALFWRITTEN"), "ORPHANBODY", "FRESHBODY"} {
		p := filepath.Join(dir, f)
		must(t, os.WriteFile(p, []byte("x"), 0o600))
		if f != "FRESHBODY" {
			must(t, os.Chtimes(p, old, old))
		}
	}
	m := store.QueuedMessage{ID: "KEPTMESSAGE", From: "a@b.test", Created: time.Now(), Size: 1,
		Rcpts: []store.QueuedRcpt{{Addr: "c@d.test", State: store.RcptQueued, NextAttempt: time.Now()}}}
	must(t, s.Enqueue(ctx, m, strings.NewReader("x")))
	must(t, os.Chtimes(filepath.Join(dir, "KEPTMESSAGE"), old, old))
	must(t, s.SweepQueue(ctx))
	exists := func(p string) bool { _, err := os.Stat(filepath.Join(dir, p)); return err == nil }
	if exists("tmp/HALFWRITTEN") || exists("ORPHANBODY") || !exists("corrupt/ORPHANBODY") {
		t.Error("leftovers not swept")
	}
	if !exists("FRESHBODY") || !exists("KEPTMESSAGE") {
		t.Error("a fresh body or a queued message was swept")
	}
}

func TestQueueCounts(t *testing.T) {
	s, ctx := newStore(t)
	now := time.Now()
	m := store.QueuedMessage{ID: "COUNTEDMESSAGE", From: "a@b.test", Created: now, Size: 1,
		Rcpts: []store.QueuedRcpt{
			{Addr: "c@d.test", State: store.RcptQueued, NextAttempt: now},
			{Addr: "e@d.test", State: store.RcptQueued, NextAttempt: now},
			{Addr: "f@d.test", State: store.RcptHeld, NextAttempt: now},
		}}
	must(t, s.Enqueue(ctx, m, strings.NewReader("x")))
	n, err := s.QueueCounts(ctx)
	if err != nil || n[store.RcptQueued] != 2 || n[store.RcptHeld] != 1 || len(n) != 2 {
		t.Errorf("QueueCounts = %v, %v; want 2 queued, 1 held", n, err)
	}
}
