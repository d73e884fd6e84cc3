package local

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"posthorn/internal/store"
	"posthorn/internal/users"
)

func newStore(t *testing.T) (*Store, context.Context) {
	t.Helper()
	s, err := Open(Options{Dir: t.TempDir(), Hostname: "mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.AddDomain(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAccount(ctx, users.Account{Address: "me@example.test", PasswordHash: "x", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return s, ctx
}

func delivery(account, body string) store.Delivery {
	b := strings.NewReader(body)
	return store.Delivery{Account: account, Header: []byte("Delivered-To: " + account + "\r\n"), Body: b, BodySize: int64(len(body))}
}

func TestDeliverWritesMaildirAndIndex(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	body := "Subject: hi\r\n\r\nline1\r\nline2\r\n"
	errs := s.Deliver(ctx, []store.Delivery{delivery("me@example.test", body)})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	dir, _ := s.MaildirPath(ctx, "me@example.test")
	ents, err := os.ReadDir(filepath.Join(dir, "new"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("new/ has %d entries, err %v", len(ents), err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "new", ents[0].Name()))
	want := "Delivered-To: me@example.test\nSubject: hi\n\nline1\nline2\n"
	if string(got) != want {
		t.Errorf("file = %q, want %q", got, want)
	}
	crlf := int64(len(want) + strings.Count(want, "\n"))
	if !strings.Contains(ents[0].Name(), fmt.Sprintf(",S=%d,W=%d", len(want), crlf)) {
		t.Errorf("name %q lacks S=/W=", ents[0].Name())
	}
	if fi, _ := ents[0].Info(); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	msgs, err := s.Messages(ctx, "me@example.test", "INBOX")
	if err != nil || len(msgs) != 1 || msgs[0].UID != 1 || msgs[0].Size != crlf {
		t.Fatalf("Messages = %+v, %v", msgs, err)
	}
}

func TestDeliverConcurrentUniqueUIDs(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	const n = 50
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Deliver(ctx, []store.Delivery{delivery("me@example.test", fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i))})[0]; err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	msgs, _ := s.Messages(ctx, "me@example.test", "INBOX")
	if len(msgs) != n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if m.UID != uint32(i+1) {
			t.Fatalf("uid %d at %d", m.UID, i)
		}
	}
	boxes, _ := s.Mailboxes(ctx, "me@example.test")
	if boxes[0].Name != "INBOX" || boxes[0].UIDNext != n+1 || boxes[0].HighestModSeq != n+1 {
		t.Errorf("INBOX = %+v", boxes[0])
	}
}

func TestDeliverUnknownAccount(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	err := s.Deliver(ctx, []store.Delivery{delivery("nobody@example.test", "x\r\n")})[0]
	if !errors.Is(err, store.ErrNoMailbox) {
		t.Fatalf("err = %v, want ErrNoMailbox", err)
	}
}

func TestSyncPicksUpChangesBehindOurBack(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	for i := 0; i < 2; i++ {
		if err := s.Deliver(ctx, []store.Delivery{delivery("me@example.test", "Subject: x\r\n\r\nbody\r\n")})[0]; err != nil {
			t.Fatal(err)
		}
	}
	dir, _ := s.MaildirPath(ctx, "me@example.test")
	// mutt reads the first (moves it to cur/ with S), deletes the second,
	// and another program drops in a third. The files are found by UID:
	// the order of their names is not the order of delivery (M999 sorts
	// after M1000 within one second), which made this test fail now and
	// then.
	fileOf := func(uid int) string {
		var f string
		must(t, s.rdb.QueryRow(`SELECT file FROM messages WHERE uid = ?`, uid).Scan(&f))
		return filepath.Base(f)
	}
	first, second := fileOf(1), fileOf(2)
	must(t, os.Rename(filepath.Join(dir, "new", first), filepath.Join(dir, "cur", first+":2,S")))
	must(t, os.Remove(filepath.Join(dir, "new", second)))
	must(t, os.WriteFile(filepath.Join(dir, "new", "9999999999.dropped"), []byte("Subject: y\n\nhi\n"), 0o600))

	must(t, s.Sync(ctx, "me@example.test", "INBOX"))
	msgs, _ := s.Messages(ctx, "me@example.test", "INBOX")
	if len(msgs) != 2 {
		t.Fatalf("after sync %d messages: %+v", len(msgs), msgs)
	}
	if msgs[0].UID != 1 || len(msgs[0].Flags) != 1 || msgs[0].Flags[0] != `\Seen` {
		t.Errorf("first = %+v, want uid 1 \\Seen", msgs[0])
	}
	if msgs[1].UID != 3 || msgs[1].Size != int64(len("Subject: y\r\n\r\nhi\r\n")) {
		t.Errorf("dropped = %+v, want uid 3 with CRLF size", msgs[1])
	}
	var tomb int
	must(t, s.rdb.QueryRow(`SELECT count(*) FROM expunged WHERE uid = 2`).Scan(&tomb))
	if tomb != 1 {
		t.Error("no tombstone for expunged uid 2")
	}
	// A second sync changes nothing.
	boxes, _ := s.Mailboxes(ctx, "me@example.test")
	must(t, s.Sync(ctx, "me@example.test", "INBOX"))
	again, _ := s.Mailboxes(ctx, "me@example.test")
	if boxes[0].HighestModSeq != again[0].HighestModSeq {
		t.Error("idle sync changed HIGHESTMODSEQ")
	}
}

func TestAccountPathCannotEscape(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"../../etc@example.test", "a/b@example.test", ".hidden@example.test", "a..b@example.test", "Ünï@example.test"} {
		p, err := accountPath(addr)
		if err != nil {
			continue
		}
		local := strings.TrimPrefix(p, "example.test/")
		if strings.ContainsAny(local, "/\\") || strings.HasPrefix(local, ".") || strings.Contains(local, "..") {
			t.Errorf("accountPath(%q) = %q escapes", addr, p)
		}
	}
}

func TestLFWriter(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a\r\nb\r\n": "a\nb\n",
		"a\rb\r\n":   "a\rb\n",
		"a\r":        "a\r",
		"\r\n\r\n":   "\n\n",
		"a\r\r\nb":   "a\r\r\nb",
	} {
		var b bytes.Buffer
		w := &lfWriter{w: bufioWriter(&b)}
		// feed one byte at a time to cross every boundary
		for i := 0; i < len(in); i++ {
			w.Write([]byte{in[i]})
		}
		must(t, w.flush())
		if b.String() != want {
			t.Errorf("lfWriter(%q) = %q, want %q", in, b.String(), want)
		}
	}
}

// toLF is the plain definition lfWriter must agree with: drop the CR of
// each CRLF unless the octet before it is a CR; keep everything else.
func toLF(in []byte) []byte {
	var out []byte
	for i, b := range in {
		if b == '\r' && i+1 < len(in) && in[i+1] == '\n' && (i == 0 || in[i-1] != '\r') {
			continue
		}
		out = append(out, b)
	}
	return out
}

// Written in chunks of every size, random text with CRs and LFs comes out
// as with the simple rule of toLF, and the counts match: bare counts the
// LFs not preceded by a CR in the file (the ones read as CRLF).
func TestLFWriterChunks(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab\r\n")
	for range 500 {
		in := make([]byte, rng.IntN(200))
		for i := range in {
			in[i] = alphabet[rng.IntN(len(alphabet))]
		}
		want := string(toLF(in))
		chunk := 1 + rng.IntN(16)
		var b bytes.Buffer
		w := &lfWriter{w: bufioWriter(&b)}
		for p := in; len(p) > 0; {
			n := min(chunk, len(p))
			w.Write(p[:n])
			p = p[n:]
		}
		must(t, w.flush())
		if b.String() != want {
			t.Fatalf("lfWriter(%q) in chunks of %d = %q, want %q", in, chunk, b.String(), want)
		}
		bare := strings.Count(want, "\n") - strings.Count(want, "\r\n")
		if w.n != int64(len(want)) || w.bare != int64(bare) {
			t.Fatalf("counts %d/%d for %q", w.n, w.bare, want)
		}
	}
}

func TestDirectory(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	if err := s.AddDomain(ctx, "example.test"); !errors.Is(err, users.ErrExists) {
		t.Errorf("duplicate domain: %v", err)
	}
	must(t, s.AddAlias(ctx, "@example.test", "me@example.test"))
	must(t, s.AddAlias(ctx, "info@example.test", "me@example.test"))
	must(t, s.AddAlias(ctx, "info@example.test", "you@elsewhere.test"))
	al, _ := s.Aliases(ctx, "example.test")
	if len(al) != 2 || len(al[1].Targets) != 2 {
		t.Errorf("aliases = %+v", al)
	}
	if err := s.DeleteAccount(ctx, "nobody@example.test"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("delete unknown: %v", err)
	}
	must(t, s.DeleteAccount(ctx, "me@example.test"))
	if _, err := s.Mailboxes(ctx, "me@example.test"); err != nil {
		t.Error(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestIncrementalSync: after a full sync, later syncs compare only the
// files whose names changed; the server's own flag changes and another
// program's changes in the same moment must all come out right. With
// inotify the directory is not listed again at all.
func TestIncrementalSync(t *testing.T) {
	bothModes(t, func(t *testing.T, s *Store, ctx context.Context) {
		const acct = "me@example.test"
		for range 4 {
			must(t, s.Deliver(ctx, []store.Delivery{delivery(acct, "Subject: x\r\n\r\nbody\r\n")})[0])
		}
		must(t, s.Sync(ctx, acct, "INBOX"))
		id, dir, err := s.mailbox(ctx, acct, "INBOX")
		must(t, err)
		fullAt, lists := s.synced.listings[id].fullAt, s.synced.lists.Load()

		// Our own change, then another program's, within the dirty window.
		if _, _, err := s.SetFlags(ctx, acct, "INBOX", []uint32{1}, store.FlagsAdd, []string{`\Flagged`}, 0); err != nil {
			t.Fatal(err)
		}
		must(t, s.Sync(ctx, acct, "INBOX"))
		// Maildir names do not sort in delivery order: take UIDs 2 and 3.
		var second, third string
		must(t, s.rdb.QueryRow(`SELECT file FROM messages WHERE mailbox_id = ? AND uid = 2`, id).Scan(&second))
		must(t, s.rdb.QueryRow(`SELECT file FROM messages WHERE mailbox_id = ? AND uid = 3`, id).Scan(&third))
		must(t, os.Rename(filepath.Join(dir, second), filepath.Join(dir, "cur", filepath.Base(second)+":2,S")))
		must(t, os.Remove(filepath.Join(dir, third)))
		must(t, os.WriteFile(filepath.Join(dir, "new", "9999999999.dropped"), []byte("Subject: y\n\nhi\n"), 0o600))
		must(t, s.Sync(ctx, acct, "INBOX"))
		must(t, s.Sync(ctx, acct, "INBOX"))

		if got := s.synced.listings[id].fullAt; !got.Equal(fullAt) {
			t.Fatal("the later syncs were full ones; want incremental")
		}
		if n := s.synced.lists.Load() - lists; s.fsw != nil && n != 0 {
			t.Errorf("with inotify the directory was listed %d times after the first sync, want 0", n)
		}
		msgs, _ := s.Messages(ctx, acct, "INBOX")
		var got []string
		for _, m := range msgs {
			got = append(got, fmt.Sprint(m.UID, m.Flags))
		}
		want := []string{`1 [\Flagged]`, `2 [\Seen]`, `4 []`, `5 []`}
		if strings.Join(got, ";") != strings.Join(want, ";") {
			t.Fatalf("after incremental sync: %v, want %v", got, want)
		}
		diskAgrees(t, s, ctx, acct, "INBOX", "after the incremental syncs")
	})
}

// TestWatchSeesOtherPrograms: a watched mailbox is polled by the store, so
// a file another program drops into the Maildir wakes the watchers with no
// session polling; renaming the watched mailbox loses nothing.
func TestWatchSeesOtherPrograms(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	const acct = "me@example.test"
	must(t, s.CreateMailbox(ctx, acct, "Lists", ""))
	if err := s.Deliver(ctx, []store.Delivery{{Account: acct, Mailbox: "Lists", Body: strings.NewReader("Subject: a\r\n\r\nb\r\n"), BodySize: 15}})[0]; err != nil {
		t.Fatal(err)
	}
	must(t, s.Sync(ctx, acct, "Lists"))
	ch, stop := s.Watch(acct, "Lists")
	defer stop()
	_, dir, err := s.mailbox(ctx, acct, "Lists")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "new", "1234567890.other"), []byte("Subject: y\n\nhi\n"), 0o600))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no notice within 5 s of a file dropped into new/")
	}
	msgs, _ := s.Messages(ctx, acct, "Lists")
	if len(msgs) != 2 {
		t.Fatalf("%d messages after the notice, want 2", len(msgs))
	}
	// Renamed, and a new mailbox takes the old name (and directory): the
	// poller must follow the watched mailbox, not the name.
	must(t, s.RenameMailbox(ctx, acct, "Lists", "Archive/Lists"))
	must(t, s.CreateMailbox(ctx, acct, "Lists", ""))
	if err := s.Deliver(ctx, []store.Delivery{{Account: acct, Mailbox: "Lists", Body: strings.NewReader("Subject: n\r\n\r\nb\r\n"), BodySize: 15}})[0]; err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the poller runs at least twice
	msgs, err = s.Messages(ctx, acct, "Archive/Lists")
	must(t, err)
	if len(msgs) != 2 || msgs[0].UID != 1 || msgs[1].UID != 2 {
		t.Fatalf("renamed watched mailbox: %+v, want UIDs 1 and 2", msgs)
	}
	msgs, err = s.Messages(ctx, acct, "Lists")
	must(t, err)
	if len(msgs) != 1 {
		t.Fatalf("new mailbox at the old name: %d messages, want 1", len(msgs))
	}
}

// TestWatchManyMailboxes: the store's one poller serves every watched
// mailbox of every account, a watcher that stops is no longer served, and
// a mailbox deleted while watched does not stop the others.
func TestWatchManyMailboxes(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	must(t, s.AddAccount(ctx, users.Account{Address: "you@example.test", PasswordHash: "x", Created: time.Now()}))
	type box struct{ acct, name string }
	boxes := []box{{"me@example.test", "INBOX"}, {"me@example.test", "A"}, {"you@example.test", "INBOX"}, {"you@example.test", "B"}}
	chans := make([]<-chan struct{}, len(boxes))
	for i, b := range boxes {
		if b.name != "INBOX" {
			must(t, s.CreateMailbox(ctx, b.acct, b.name, ""))
		}
		must(t, s.Sync(ctx, b.acct, b.name))
		ch, stop := s.Watch(b.acct, b.name)
		defer stop()
		chans[i] = ch
	}
	must(t, s.DeleteMailbox(ctx, "me@example.test", "A")) // its watcher stays
	drain := func(ch <-chan struct{}) {
		for {
			select {
			case <-ch:
			default:
				return
			}
		}
	}
	for round := range 2 {
		for i, b := range boxes {
			if b.name == "A" {
				continue
			}
			drain(chans[i])
			_, dir, err := s.mailbox(ctx, b.acct, b.name)
			must(t, err)
			name := fmt.Sprintf("%d.R%dM%d.other", time.Now().Unix(), round, i)
			must(t, os.WriteFile(filepath.Join(dir, "new", name), []byte("Subject: y\n\nhi\n"), 0o600))
		}
		for i, b := range boxes {
			if b.name == "A" {
				continue
			}
			select {
			case <-chans[i]:
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: no notice for %s %s within 5 s of a file dropped into new/", round, b.acct, b.name)
			}
		}
	}
}

// TestMailboxLimit: a client cannot create mailboxes without end; the
// refusal is a quota error and leaves no directory behind.
func TestMailboxLimit(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	const acct = "me@example.test"
	boxes, _ := s.Mailboxes(ctx, acct)
	s.maxBoxes = len(boxes) + 2
	must(t, s.CreateMailbox(ctx, acct, "one", ""))
	must(t, s.CreateMailbox(ctx, acct, "two", ""))
	if err := s.CreateMailbox(ctx, acct, "three", ""); !errors.Is(err, store.ErrOverQuota) {
		t.Fatalf("mailbox over the limit: %v, want ErrOverQuota", err)
	}
	root, _ := s.MaildirPath(ctx, acct)
	if _, err := os.Stat(filepath.Join(root, ".three")); !os.IsNotExist(err) {
		t.Errorf("the refused mailbox left a directory: %v", err)
	}
}

// TestStandInKey: the key is made once and kept: a second open of the
// same directory reads the same 32 octets, and the file is the owner's
// alone.
func TestStandInKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	k1, err := st.StandInKey()
	if err != nil || len(k1) != 32 {
		t.Fatalf("StandInKey: %x, %v", k1, err)
	}
	st.Close()
	st, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k2, err := st.StandInKey()
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("after reopening: %x, %v; want %x", k2, err, k1)
	}
	fi, err := os.Stat(filepath.Join(dir, standInKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	if err := os.WriteFile(filepath.Join(dir, standInKeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := st.StandInKey(); err == nil {
		t.Fatalf("a 5-octet key file gave %x", k)
	}
}

// TestDateNanos: internal dates outside what int64 nanoseconds hold are
// kept as the nearest end, not wrapped round.
func TestDateNanos(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   time.Time
		want time.Time
	}{
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), maxDate},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), minDate},
		{time.Date(1999, 3, 2, 9, 11, 12, 0, time.UTC), time.Date(1999, 3, 2, 9, 11, 12, 0, time.UTC)},
	} {
		if got := time.Unix(0, dateNanos(tc.in)); !got.Equal(tc.want) {
			t.Errorf("%v kept as %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestDeliverDirSyncFails: the directory fsync runs beside the index
// commit; when it fails, the delivery fails, its file is gone, and the
// row committed meanwhile is expunged, so no client is shown a message
// the sender was told to send again.
func TestDeliverDirSyncFails(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	s.dirSync.fsync = func(dir string) error {
		if filepath.Base(dir) == "new" {
			return syscall.EIO
		}
		return syncDir(dir)
	}
	err := s.Deliver(ctx, []store.Delivery{delivery("me@example.test", "Subject: lost\r\n\r\nx\r\n")})[0]
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("Deliver = %v, want EIO", err)
	}
	dir, _ := s.MaildirPath(ctx, "me@example.test")
	if ents, _ := os.ReadDir(filepath.Join(dir, "new")); len(ents) != 0 {
		t.Errorf("new/ still holds %d files", len(ents))
	}
	var rows, tombs int
	must(t, s.rdb.QueryRow(`SELECT count(*) FROM messages`).Scan(&rows))
	must(t, s.rdb.QueryRow(`SELECT count(*) FROM expunged`).Scan(&tombs))
	if rows != 0 || tombs != 1 {
		t.Errorf("index: %d rows, %d expunged; want 0 and 1", rows, tombs)
	}

	s.dirSync.fsync = syncDir
	must(t, s.Deliver(ctx, []store.Delivery{delivery("me@example.test", "Subject: kept\r\n\r\nx\r\n")})[0])
	msgs, err := s.Messages(ctx, "me@example.test", "INBOX")
	if err != nil || len(msgs) != 1 || msgs[0].UID != 2 {
		t.Fatalf("Messages = %+v, %v; want one message, UID 2 (1 is spent)", msgs, err)
	}
}

// TestWatchSeesOtherPosthornProcess: another posthorn process (the
// deliver LDA) writes the file and the index row itself, so the sync its
// inotify events set off here finds nothing to do; the watchers must hear
// of the message all the same, within the poller's second, not at a
// session's backstop timer minutes later.
func TestWatchSeesOtherPosthornProcess(t *testing.T) {
	t.Parallel()
	bothModes(t, watchOtherProcess) // "mtime" is as on NFS: polled once a second
}

func watchOtherProcess(t *testing.T, s *Store, ctx context.Context) {
	const acct = "me@example.test"
	must(t, s.Deliver(ctx, []store.Delivery{delivery(acct, "Subject: first\r\n\r\nx\r\n")})[0])
	must(t, s.Sync(ctx, acct, "INBOX"))
	other, err := Open(Options{Dir: s.dir, Hostname: "mx.example.test"})
	must(t, err)
	defer other.Close()
	ch, stop := s.Watch(acct, "INBOX")
	defer stop()
	time.Sleep(1500 * time.Millisecond) // the poller has taken the mailbox in
	for i := range 3 {
		must(t, other.Deliver(ctx, []store.Delivery{delivery(acct, fmt.Sprintf("Subject: lda %d\r\n\r\nx\r\n", i))})[0])
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("delivery %d by another process: no notice within 5 s", i)
		}
		time.Sleep(200 * time.Millisecond) // notices of one delivery coalesce
		for len(ch) > 0 {
			<-ch
		}
	}
	msgs, err := s.Messages(ctx, acct, "INBOX")
	if err != nil || len(msgs) != 4 {
		t.Fatalf("Messages: %d, %v; want 4", len(msgs), err)
	}
	// A flag set by the other process: it renames the file and updates
	// the row in one go, so no sync here can find anything left to do.
	for i, uid := range []uint32{1, 2} {
		if _, _, err := other.SetFlags(ctx, acct, "INBOX", []uint32{uid}, store.FlagsAdd, []string{`\Seen`}, 0); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("flag %d set by another process: no notice within 5 s", i)
		}
		time.Sleep(200 * time.Millisecond)
		for len(ch) > 0 {
			<-ch
		}
	}
}

// TestDeliverDirSyncPanics: a panic in the directory fsync fails that
// delivery (file gone, row expunged) and leaves the store working; it
// used to be fatal: the group's deferred unlock hit an unlocked mutex.
func TestDeliverDirSyncPanics(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	s.dirSync.fsync = func(dir string) error { panic("boom") }
	if err := s.Deliver(ctx, []store.Delivery{delivery("me@example.test", "Subject: x\r\n\r\nx\r\n")})[0]; err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("Deliver = %v, want the panic as an error", err)
	}
	dir, _ := s.MaildirPath(ctx, "me@example.test")
	if ents, _ := os.ReadDir(filepath.Join(dir, "new")); len(ents) != 0 {
		t.Errorf("new/ still holds %d files", len(ents))
	}
	s.dirSync.fsync = syncDir
	must(t, s.Deliver(ctx, []store.Delivery{delivery("me@example.test", "Subject: y\r\n\r\ny\r\n")})[0])
	if msgs, err := s.Messages(ctx, "me@example.test", "INBOX"); err != nil || len(msgs) != 1 {
		t.Fatalf("Messages = %+v, %v; want one", msgs, err)
	}
}

// TestWatchFullComparisonBackstop: for a watched mailbox that inotify
// serves, the poller itself runs the once-a-minute full comparison (the
// backstop for a change no event reported; idle sessions no longer poll
// on timers of their own). Here the index loses a row behind inotify's
// back and the listing's last full comparison is made two minutes old.
func TestWatchFullComparisonBackstop(t *testing.T) {
	t.Parallel()
	s, ctx := newStore(t)
	if s.fsw == nil {
		t.Fatal("no inotify on this Linux system")
	}
	const acct = "me@example.test"
	must(t, s.Deliver(ctx, []store.Delivery{delivery(acct, "Subject: a\r\n\r\nx\r\n")})[0])
	must(t, s.Sync(ctx, acct, "INBOX"))
	id, dir, err := s.mailbox(ctx, acct, "INBOX")
	must(t, err)
	ch, stop := s.Watch(acct, "INBOX")
	defer stop()
	time.Sleep(1200 * time.Millisecond) // the poller has taken the mailbox in
	for len(ch) > 0 {
		<-ch
	}
	must(t, s.write(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(`DELETE FROM messages WHERE mailbox_id = ?`, id); return err }))
	s.synced.mu.Lock()
	s.synced.listings[id].fullAt = time.Now().Add(-2 * fullSyncEvery)
	s.synced.mu.Unlock()
	if !s.synced.fullDue(id, dir, time.Now()) {
		t.Fatal("the listing is not overdue")
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no full comparison (and no notice) within 5 s of it falling due")
	}
	var rows int
	must(t, s.rdb.QueryRow(`SELECT count(*) FROM messages WHERE mailbox_id = ?`, id).Scan(&rows))
	if rows != 1 {
		t.Errorf("%d rows after the full comparison, want the file indexed again", rows)
	}
}
