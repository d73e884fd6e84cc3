package local

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"posthorn/internal/users"
)

// Admin commands change the directory from their own processes: a second
// Store on the same directory stands for one. Every answer the daemon's
// Store had cached, positive or negative, must give way at once.
func TestDirCacheSeesOtherProcessChanges(t *testing.T) {
	t.Parallel()
	daemon, ctx := newStore(t)
	admin, err := Open(Options{Dir: daemon.dir, Hostname: "mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	// Negative answers, cached.
	for range 2 {
		if ok, err := daemon.HasDomain(ctx, "other.test"); ok || err != nil {
			t.Fatalf("HasDomain(other.test) = %v, %v before it exists", ok, err)
		}
		if _, err := daemon.Account(ctx, "you@example.test"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("Account before it exists: %v", err)
		}
		if ts, err := daemon.AliasTargets(ctx, "sales@example.test"); len(ts) != 0 || err != nil {
			t.Fatalf("AliasTargets before: %v, %v", ts, err)
		}
	}
	if err := admin.AddDomain(ctx, "other.test"); err != nil {
		t.Fatal(err)
	}
	if ok, err := daemon.HasDomain(ctx, "other.test"); !ok || err != nil {
		t.Errorf("HasDomain(other.test) = %v, %v after another process added it", ok, err)
	}
	if err := admin.AddAccount(ctx, users.Account{Address: "you@example.test", PasswordHash: "h1", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if a, err := daemon.Account(ctx, "you@example.test"); err != nil || a.PasswordHash != "h1" {
		t.Errorf("Account after add = %+v, %v", a, err)
	}
	if err := admin.AddAlias(ctx, "sales@example.test", "you@example.test"); err != nil {
		t.Fatal(err)
	}
	if ts, err := daemon.AliasTargets(ctx, "sales@example.test"); len(ts) != 1 || err != nil {
		t.Errorf("AliasTargets after add = %v, %v", ts, err)
	}

	// Positive answers, cached, then changed or removed elsewhere.
	if err := admin.SetPassword(ctx, "you@example.test", "h2", ""); err != nil {
		t.Fatal(err)
	}
	if a, _ := daemon.Account(ctx, "you@example.test"); a.PasswordHash != "h2" {
		t.Errorf("password hash = %q after another process changed it, want h2", a.PasswordHash)
	}
	if err := admin.DeleteAccount(ctx, "you@example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.Account(ctx, "you@example.test"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("Account after another process deleted it: %v", err)
	}
	if err := admin.SetQuota(ctx, "me@example.test", 1000); err != nil {
		t.Fatal(err)
	}
	if _, limit, err := daemon.Quota(ctx, "me@example.test"); limit != 1000 || err != nil {
		t.Errorf("quota limit = %d, %v after another process set it", limit, err)
	}
}

// Changes made by the Store itself are seen at once too, and callers
// cannot alter a cached answer through the slice they were given.
func TestDirCacheOwnChanges(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	if err := s.AddAlias(ctx, "team@example.test", "me@example.test"); err != nil {
		t.Fatal(err)
	}
	ts, _ := s.AliasTargets(ctx, "team@example.test")
	ts[0] = "changed@example.test"
	if again, _ := s.AliasTargets(ctx, "team@example.test"); again[0] != "me@example.test" {
		t.Errorf("cached targets altered through a returned slice: %v", again)
	}
	if err := s.DeleteAlias(ctx, "team@example.test", ""); err != nil {
		t.Fatal(err)
	}
	if ts, _ := s.AliasTargets(ctx, "team@example.test"); len(ts) != 0 {
		t.Errorf("targets after delete = %v", ts)
	}
	if err := s.PutSieveScript(ctx, "me@example.test", "a", "keep;"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ActiveSieveScript(ctx, "me@example.test"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("active script before activation: %v", err)
	}
	if err := s.ActivateSieveScript(ctx, "me@example.test", "a"); err != nil {
		t.Fatal(err)
	}
	if sc, content, err := s.ActiveSieveScript(ctx, "me@example.test"); err != nil || sc.Name != "a" || content != "keep;" {
		t.Errorf("active script = %+v %q %v", sc, content, err)
	}
}

// Without its generation file the cache keeps nothing, and entries expire
// even when no change is signalled.
func TestDirCacheFallbacks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newDirCache(dir)
	loads := 0
	load := func() (int, bool, error) { loads++; return loads, true, nil }
	if v, _ := get(c, "k", load); v != 1 {
		t.Fatalf("first load = %d", v)
	}
	if v, _ := get(c, "k", load); v != 2 {
		t.Errorf("without %s the answer was cached (%d)", directoryFile, v)
	}
	if err := os.WriteFile(filepath.Join(dir, directoryFile), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	get(c, "k", load)
	if v, _ := get(c, "k", load); v != 3 {
		t.Errorf("with the file, second get = %d, want the cached 3", v)
	}
	c.ttl = 0
	time.Sleep(time.Millisecond)
	if v, _ := get(c, "k", load); v != 4 {
		t.Errorf("expired entry served: %d", v)
	}
	errLoad := func() (int, bool, error) { loads++; return 0, true, errors.New("boom") }
	c.ttl = time.Hour
	get(c, "e", errLoad)
	if _, err := get(c, "e", errLoad); err == nil {
		t.Error("an error was cached as an answer")
	}
}
