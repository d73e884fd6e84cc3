package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"posthorn/internal/users"
)

// damagedStore fills a store, closes it, damages its index with hurt and
// opens it again.
func damagedStore(t *testing.T, hurt func(path string)) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Hostname: "mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	must(t, s.AddDomain(ctx, "example.test"))
	must(t, s.AddAccount(ctx, users.Account{Address: acct, PasswordHash: "x", Created: time.Now()}))
	must(t, s.CreateMailbox(ctx, acct, "Lists/dev", ""))
	must(t, s.PutSieveScript(ctx, acct, "s", "keep;"))
	for i := 0; i < 30; i++ {
		appendMsg(t, s, "INBOX", "Subject: m\r\n\r\n"+strings.Repeat("body\r\n", 200), "")
	}
	appendMsg(t, s, "Lists/dev", "Subject: l\r\n\r\nx\r\n", `\Seen`)
	must(t, s.Close())
	hurt(filepath.Join(dir, "posthorn.db"))
	s, err = Open(Options{Dir: dir, Hostname: "mx.example.test"})
	if err != nil {
		t.Fatalf("open after damage: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func TestRecoverTruncatedIndex(t *testing.T) {
	s, dir := damagedStore(t, func(path string) {
		os.Remove(path + "-wal")
		fi, _ := os.Stat(path)
		must(t, os.Truncate(path, fi.Size()/2))
	})
	checkRecovered(t, s, dir)
}

func TestRecoverGarbledIndex(t *testing.T) {
	s, dir := damagedStore(t, func(path string) {
		os.Remove(path + "-wal")
		b, err := os.ReadFile(path)
		must(t, err)
		// Garble every page after the schema: table contents, not the header.
		for i := 4096 * 3; i < len(b); i++ {
			b[i] ^= 0x5a
		}
		must(t, os.WriteFile(path, b, 0o600))
	})
	checkRecovered(t, s, dir)
}

// TestRecoverLostIndex: a posthorn.db emptied or deleted (a zero-length
// file is a valid empty database) is rebuilt from directory.json and the
// Maildirs; it was served empty, refusing all mail for our own domains
// with 554 and every login, and the next admin command then overwrote
// directory.json with the empty directory.
func TestRecoverLostIndex(t *testing.T) {
	for name, hurt := range map[string]func(string){
		"truncated": func(path string) { os.Remove(path + "-wal"); must(t, os.Truncate(path, 0)) },
		"deleted":   func(path string) { os.Remove(path + "-wal"); must(t, os.Remove(path)) },
	} {
		t.Run(name, func(t *testing.T) {
			s, dir := damagedStore(t, hurt)
			checkRecovered(t, s, dir)
			// An admin change now keeps the accounts in the copy too.
			must(t, s.AddDomain(context.Background(), "other.test"))
			b, err := os.ReadFile(filepath.Join(dir, directoryFile))
			if err != nil || !strings.Contains(string(b), acct) {
				t.Errorf("directory.json after an admin change: %v\n%.300s", err, b)
			}
		})
	}
}

// TestFreshStoreIsNotLost: a new store, and one whose directory was
// emptied on purpose, open as they are: their copy is empty too.
func TestFreshStoreIsNotLost(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Hostname: "mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	must(t, s.AddDomain(ctx, "example.test"))
	must(t, s.DeleteDomain(ctx, "example.test"))
	must(t, s.Close())
	s, err = Open(Options{Dir: dir, Hostname: "mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if aside, _ := filepath.Glob(filepath.Join(dir, "posthorn.db.damaged-*")); len(aside) != 0 {
		t.Errorf("an emptied store was taken for a lost one: %v", aside)
	}
}

// checkRecovered: the account and its mail are served again, the damaged
// copy is kept.
func checkRecovered(t *testing.T, s *Store, dir string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Account(ctx, acct); err != nil {
		t.Fatalf("account after recovery: %v", err)
	}
	for box, want := range map[string]int{"INBOX": 30, "Lists/dev": 1} {
		must(t, s.Sync(ctx, acct, box))
		st, err := s.MailboxStatus(ctx, acct, box)
		if err != nil || st.Messages != want {
			t.Errorf("%s after recovery: %+v %v, want %d messages", box, st, err, want)
		}
	}
	if text, err := s.SieveScript(ctx, acct, "s"); err != nil || text != "keep;" {
		t.Errorf("Sieve script after recovery: %q %v", text, err)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, "posthorn.db.damaged-*"))
	if len(aside) == 0 {
		t.Error("damaged index not kept aside")
	}
}

// closedStoreWithDomain makes a store with the domain example.test, closes
// it and returns its directory.
func closedStoreWithDomain(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Hostname: "mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	must(t, s.AddDomain(context.Background(), "example.test"))
	must(t, s.Close())
	return dir
}

// TestRecoverRefusesWithoutAccounts: with the index unreadable and no
// directory copy, Open refuses with a message rather than serving an
// index without accounts.
func TestRecoverRefusesWithoutAccounts(t *testing.T) {
	dir := closedStoreWithDomain(t)
	os.Remove(filepath.Join(dir, directoryFile))
	os.Remove(filepath.Join(dir, "posthorn.db-wal"))
	must(t, os.WriteFile(filepath.Join(dir, "posthorn.db"), []byte(strings.Repeat("garbage!", 1000)), 0o600))
	if _, err := Open(Options{Dir: dir, Hostname: "mx.example.test"}); err == nil || !strings.Contains(err.Error(), "backup") {
		t.Errorf("Open = %v, want a refusal that points to a backup", err)
	}
}

// TestDirectoryCopyConcurrent: many processes' worth of admin changes at
// once leave a complete, current directory.json.
func TestDirectoryCopyConcurrent(t *testing.T) {
	dir := t.TempDir()
	var stores []*Store
	for range 4 { // as separate CLI processes would: one Store each
		s, err := Open(Options{Dir: dir, Hostname: "mx.example.test"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	ctx := context.Background()
	must(t, stores[0].AddDomain(ctx, "example.test"))
	done := make(chan error)
	for i, s := range stores {
		go func() {
			var err error
			for k := range 10 {
				if e := s.AddAccount(ctx, users.Account{Address: fmt.Sprintf("u%d-%d@example.test", i, k), PasswordHash: "x", Created: time.Now()}); e != nil {
					err = e
				}
			}
			done <- err
		}()
	}
	for range stores {
		must(t, <-done)
	}
	b, err := os.ReadFile(filepath.Join(dir, directoryFile))
	must(t, err)
	var dump map[string][]map[string]any
	must(t, json.Unmarshal(b, &dump))
	if len(dump["accounts"]) != 40 {
		t.Errorf("directory copy holds %d accounts, want 40", len(dump["accounts"]))
	}
}

// TestDirectoryCopyUnescaped: a script costs about its own size in the
// directory copy, and comes back from it the same. json.Marshal wrote
// each '<', '>' and '&' as six octets: 8 valid scripts of 1 MiB of '<'
// (a comment) made a copy of 48 MiB, rewritten on every directory change.
func TestDirectoryCopyUnescaped(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	text := "# " + strings.Repeat("<>&", 20_000) + "\r\nkeep;\r\n"
	must(t, s.PutSieveScript(ctx, acct, "big", text))
	fi, err := os.Stat(filepath.Join(s.dir, directoryFile))
	must(t, err)
	if fi.Size() > int64(len(text))+4096 {
		t.Errorf("directory copy of %d octets for a script of %d", fi.Size(), len(text))
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "restored.db"))
	must(t, err)
	defer db.Close()
	must(t, migrate(db))
	must(t, s.restoreDirectory(db))
	var got string
	must(t, db.QueryRow(`SELECT content FROM sieve_scripts WHERE name = 'big'`).Scan(&got))
	if got != text {
		t.Errorf("restored script of %d octets differs from the %d stored", len(got), len(text))
	}
}

// TestEmptiedIndexIsNotLost: an index emptied by admin commands whose
// directory.json save has not happened yet (a moment after the commit,
// or for good after a crash there) is not taken for a lost one: only an
// index made from nothing by this Open is. Restoring it would bring back
// the deleted domain and rename the files under a running daemon.
func TestEmptiedIndexIsNotLost(t *testing.T) {
	dir := closedStoreWithDomain(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "posthorn.db"))
	must(t, err)
	_, err = db.Exec(`DELETE FROM domains`) // as DeleteDomain, without the copy
	must(t, err)
	must(t, db.Close())
	s, err := Open(Options{Dir: dir, Hostname: "mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if aside, _ := filepath.Glob(filepath.Join(dir, "posthorn.db.damaged-*")); len(aside) != 0 {
		t.Errorf("an emptied index was taken for a lost one: %v", aside)
	}
	if ds, err := s.Domains(context.Background()); err != nil || len(ds) != 0 {
		t.Errorf("domains after reopening: %v %v, want none (deleted)", ds, err)
	}
}
