package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"posthorn/internal/store"
)

// indexed is one index row as Sync compares it with the disk.
type indexed struct {
	uid   uint32
	file  string
	flags []string
	was   string // for a rename: the file the row named when the sync planned it
}

// Sync implements store.Mail: it makes the index of one mailbox agree with
// its Maildir. Files the index lacks get new UIDs (after a crash between
// rename and commit, or mail dropped in by another program); rows whose file
// is gone are expunged with a tombstone; a renamed file (new/ to cur/,
// changed flags) updates its row. Every change takes a new MODSEQ.
func (s *Store) Sync(ctx context.Context, account, mailbox string) error {
	id, dir, err := s.mailbox(ctx, account, mailbox)
	if err != nil {
		return err
	}
	return s.syncDir(ctx, id, dir)
}

// syncDir reconciles one Maildir with its index. Where inotify serves
// the mail directories (dirwatch_linux.go), it looks only at the file
// names reported changed since the last sync, and at nothing when none
// were; elsewhere it compares directory mtimes.
func (s *Store) syncDir(ctx context.Context, id int64, dir string) error {
	if s.fsw != nil {
		if done, err := s.syncWatched(ctx, id, dir); done {
			return err
		}
	}
	return s.syncByMtime(ctx, id, dir)
}

// syncByMtime does nothing when neither new/ nor cur/ has changed (mtime)
// since the last sync: a rename or unlink always changes the directory's
// mtime.
//
// Otherwise it lists the directory and compares the listing with the one
// of the last sync: only the files whose names differ (new, gone, renamed)
// are looked up in the index. After the last sync the index agreed with
// that listing, and every change the store makes itself renames, adds or
// removes a file, so an unchanged name is an unchanged message. The
// server's own flag changes therefore cost two directory reads, not a
// comparison of every row (the listing of a large mailbox still costs its
// readdir). A full comparison runs when there is no listing, and once a
// minute at most as a safety net.
func (s *Store) syncByMtime(ctx context.Context, id int64, dir string) error {
	mark, ok := s.synced.changed(id, dir)
	if !ok {
		return nil
	}
	unlock := s.synced.lock(id)
	defer unlock()
	// Another session may have synced while this one waited for the lock.
	if mark, ok = s.synced.changed(id, dir); !ok {
		return nil
	}
	if err := s.syncListing(ctx, id, dir, time.Now()); err != nil {
		return err
	}
	// A directory changed moments ago may change again within the same
	// timestamp tick, unseen: trust its mark only once it is old enough
	// (Dovecot does the same with its "dirty" window).
	if time.Since(mark.new) > dirtyWindow && time.Since(mark.cur) > dirtyWindow {
		s.synced.set(id, mark)
	} else {
		s.synced.forget(id)
	}
	return nil
}

// syncWatched is syncDir through inotify; done is false when the
// mailbox's directories cannot be watched (the caller compares mtimes).
//
// A mailbox with a listing and no event since the last sync is up to date
// without a system call beyond reading the empty event queue. Reported
// names are looked at one by one (syncNames); a new listing is taken when
// there is none, when a full comparison is due, and when events were lost.
// Any error drops the listing, so the next sync lists the directory.
func (s *Store) syncWatched(ctx context.Context, id int64, dir string) (done bool, err error) {
	if prev, _ := s.synced.listing(id, dir, time.Now()); prev != nil && s.fsw.clean(id, dir) {
		return true, nil
	}
	unlock := s.synced.lock(id)
	defer unlock()
	defer func() {
		if err != nil {
			s.synced.drop(id) // before settle: a fast path must not see the old listing as clean
		}
		s.fsw.settle(id)
	}()
	now := time.Now()
	if prev, _ := s.synced.listing(id, dir, now); prev != nil {
		switch st, names := s.fsw.take(id, dir); st {
		case unchanged:
			return true, nil
		case changedNames:
			return true, s.syncNames(ctx, id, dir, prev, names, now)
		}
	}
	if !s.fsw.add(id, dir) {
		return false, nil
	}
	s.fsw.take(id, dir) // the listing below covers them
	s.synced.forget(id) // mtime marks are not kept up to date meanwhile
	return true, s.syncListing(ctx, id, dir, now)
}

// syncListing lists dir and makes the index agree with it; the caller
// holds id's sync lock.
func (s *Store) syncListing(ctx context.Context, id int64, dir string, now time.Time) error {
	prev, since := s.synced.listing(id, dir, now)
	var modseq uint64
	if err := s.rdb.QueryRowContext(ctx, `SELECT highestmodseq FROM mailboxes WHERE id = ?`, id).Scan(&modseq); err != nil {
		return classify(err)
	}
	s.synced.lists.Add(1)
	files, err := listMaildir(dir, len(prev))
	if err != nil {
		return classify(err)
	}
	cost := time.Since(now)
	letters := readKeywords(dir)
	var plan syncPlan
	if touched, ok := prev.touched(files); ok {
		// The store's own changes since the last listing: a message it
		// delivered and another program deleted before this sync is in
		// neither listing, but in the index.
		own, err := queryColumn[string](ctx, s.rdb, `SELECT base FROM messages WHERE mailbox_id = ? AND modseq > ?`, id, since)
		if err != nil {
			return err
		}
		touched = union(touched, own)
		if len(touched) > 0 {
			rows, err := s.indexRowsFor(ctx, id, touched)
			if err != nil {
				return err
			}
			plan = diff(files.scanned(touched, letters), rows, letters)
		}
	} else {
		cleanTmp(dir)
		rows, err := s.indexRows(ctx, id)
		if err != nil {
			return err
		}
		plan = diff(files.scanned(nil, letters), rows, letters)
	}
	if err := s.applyPlan(ctx, id, dir, plan); err != nil {
		return err
	}
	if evicted, ok := s.synced.record(id, dir, files, prev == nil, now, cost, modseq); ok && s.fsw != nil {
		s.fsw.remove(evicted)
	}
	return nil
}

// syncNames makes the index agree with the files of the given names
// ("new/…", "cur/…"), which inotify reported changed since the listing
// prev was taken; prev is updated in place. A name that exists replaces
// its base's entry; one that is gone removes the entry only when the
// entry is that name (a move to cur/ reports both names, in either
// order). Every base named is compared with the index, the gone ones too:
// a message the store delivered and another program deleted before this
// sync was never in the listing, but is in the index.
func (s *Store) syncNames(ctx context.Context, id int64, dir string, prev listing, names []string, now time.Time) error {
	touched := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	// A file renamed again while its names are looked at is gone under
	// the name reported, and its new name is reported only since: the
	// kernel queued that event before the rename returned, so reading
	// the queue once more after the lookups finds it. Without this round,
	// a message renamed twice quickly (two STOREs) was expunged and came
	// back with a new UID.
	for round := 0; len(names) > 0; round++ {
		if round == maxNameRounds {
			return s.syncListing(ctx, id, dir, now) // renamed faster than looked at
		}
		for _, n := range names {
			b := baseName(filepath.Base(n))
			fi, err := os.Lstat(filepath.Join(dir, n))
			switch {
			case err == nil && fi.Mode().IsRegular():
				prev[b] = n
			case err == nil || errors.Is(err, os.ErrNotExist):
				if prev[b] == n {
					delete(prev, b)
				}
			default:
				return classify(err)
			}
			if !seen[b] {
				seen[b] = true
				touched = append(touched, b)
			}
		}
		var st watchState
		if st, names = s.fsw.more(id, dir); st == relistDir || st == notWatched {
			return s.syncListing(ctx, id, dir, now)
		}
	}
	if len(touched) > 0 {
		letters := readKeywords(dir)
		rows, err := s.indexRowsFor(ctx, id, touched)
		if err != nil {
			return err
		}
		if err := s.applyPlan(ctx, id, dir, diff(prev.scanned(touched, letters), rows, letters)); err != nil {
			return err
		}
	}
	s.synced.touch(id, now)
	return nil
}

// maxNameRounds bounds the rounds of syncNames before it lists the
// directory instead.
const maxNameRounds = 8

// union returns a with the strings of b it lacks.
func union(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	in := make(map[string]bool, len(a))
	for _, x := range a {
		in[x] = true
	}
	for _, x := range b {
		if !in[x] {
			in[x] = true
			a = append(a, x)
		}
	}
	return a
}

// applyPlan writes a sync's changes to the index and wakes the mailbox's
// watchers.
func (s *Store) applyPlan(ctx context.Context, id int64, dir string, plan syncPlan) error {
	if plan.empty() {
		return nil
	}
	var err error
	for i := range plan.add {
		if plan.add[i].vsize, plan.add[i].date, err = fileFacts(dir, plan.add[i].file); err != nil {
			return err
		}
	}
	if err := s.write(ctx, func(tx *sql.Tx) error { return plan.apply(s, tx, id) }); err != nil {
		return err
	}
	s.watch.notify(id)
	return nil
}

// pollDir is syncDir for the frequent callers (Changes: every IMAP
// session after every command, and IDLE): it does nothing when the
// mailbox was synced less than pollFresh ago. Changes the store makes
// itself reach sessions through the index at once; only changes by other
// programs in the Maildir may wait, and for no longer than that. SELECT,
// STATUS and Sync always look at the disk.
//
// The wait grows with the cost of reading the directory, so that polls
// never spend more than about 5% of the time listing a large mailbox: 100
// ms for an ordinary one, up to 2 s for one of some hundred thousand
// messages.
func (s *Store) pollDir(ctx context.Context, id int64, dir string) error {
	if s.synced.syncedWithin(id, dir) {
		return nil
	}
	return s.syncDir(ctx, id, dir)
}

// pollFresh and pollStale bound how stale a poll may find a mailbox;
// pollFresh caps the directory reads of a busy mailbox at ten a second,
// however many sessions have it selected.
const (
	pollFresh = 100 * time.Millisecond
	pollStale = 2 * time.Second
)

// dirtyWindow is how old a directory mtime must be before a sync made at
// it is trusted; well above any file system's timestamp granularity.
const dirtyWindow = time.Second

// fullSyncEvery bounds how long incremental syncs go on before the whole
// index is compared with the disk again.
const fullSyncEvery = time.Minute

// maxListings bounds how many mailboxes' listings are kept in memory
// (about 150 bytes per message); beyond it the least recently synced is
// dropped and its next sync is a full one.
const maxListings = 512

// listing is a Maildir's message files by base name: base → "new/…" or
// "cur/…" (the name carries the flags).
type listing map[string]string

// listMaildir reads new/ and cur/ (unsorted: the order does not matter).
// A missing one is an error, never an empty mailbox: a Maildir moved away
// (RENAME) under a sync must not read as "every message deleted".
func listMaildir(dir string, sizeHint int) (listing, error) {
	out := make(listing, sizeHint) // the last listing's size: no rehashing as it fills
	for _, sd := range []string{"new", "cur"} {
		ents, err := readDirUnsorted(filepath.Join(dir, sd))
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s/%s is missing", store.ErrNoMailbox, dir, sd)
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			n := e.Name()
			if !e.Type().IsRegular() || strings.HasPrefix(n, ".") {
				continue
			}
			out[baseName(n)] = sd + "/" + n
		}
	}
	return out, nil
}

func readDirUnsorted(dir string) ([]os.DirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// touched returns the bases whose file differs between the last sync's
// listing l and now; ok is false when there is no listing to compare with.
func (l listing) touched(now listing) (bases []string, ok bool) {
	if l == nil {
		return nil, false
	}
	for b, f := range now {
		if l[b] != f {
			bases = append(bases, b)
		}
	}
	for b := range l {
		if _, ok := now[b]; !ok {
			bases = append(bases, b)
		}
	}
	return bases, true
}

// scanned returns the files of the given bases (all when bases is nil)
// that exist, in base order: new files get UIDs in delivery order.
func (l listing) scanned(bases []string, letters []string) []scanned {
	var out []scanned
	add := func(b string) {
		if f, ok := l[b]; ok {
			out = append(out, scanned{file: f, base: b, flags: fileFlags(letters, filepath.Base(f))})
		}
	}
	if bases == nil {
		for b := range l {
			add(b)
		}
	} else {
		for _, b := range bases {
			add(b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].base < out[j].base })
	return out
}

// syncMarks remembers, per mailbox, the directory mtimes it was synced at
// and the listing the index agreed with then.
type syncMarks struct {
	lists    atomic.Int64 // directory listings taken (tests count them)
	mu       sync.Mutex
	m        map[int64]dirMark
	listings map[int64]*dirListing
	locks    map[int64]*sync.Mutex
}

type dirMark struct{ new, cur time.Time }

type dirListing struct {
	dir      string
	files    listing
	fullAt   time.Time // last full comparison
	syncedAt time.Time
	cost     time.Duration // of the last directory listing
	modseq   uint64        // the mailbox's HIGHESTMODSEQ before the listing was read
}

// changed returns the current mark of dir and whether it differs from
// the one of the last sync.
func (m *syncMarks) changed(id int64, dir string) (dirMark, bool) {
	var mark dirMark
	if fi, err := os.Stat(filepath.Join(dir, "new")); err == nil {
		mark.new = fi.ModTime()
	}
	if fi, err := os.Stat(filepath.Join(dir, "cur")); err == nil {
		mark.cur = fi.ModTime()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.m[id]
	return mark, !ok || old != mark
}

func (m *syncMarks) forget(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, id)
}

func (m *syncMarks) set(id int64, mark dirMark) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[int64]dirMark{}
	}
	m.m[id] = mark
}

// lock serialises the syncs of one mailbox: concurrent sessions would
// otherwise each compare the same changes.
func (m *syncMarks) lock(id int64) func() {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = map[int64]*sync.Mutex{}
	}
	l := m.locks[id]
	if l == nil {
		l = &sync.Mutex{}
		m.locks[id] = l
	}
	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// lockPair holds the sync locks of two mailboxes (of one, if a and b are
// the same), in id order: a copy each way at once cannot deadlock.
func (m *syncMarks) lockPair(a, b int64) func() {
	if a == b {
		return m.lock(a)
	}
	if a > b {
		a, b = b, a
	}
	ua := m.lock(a)
	ub := m.lock(b)
	return func() { ub(); ua() }
}

// listing returns the listing of the last sync of id, and the mailbox's
// HIGHESTMODSEQ before it was read; nil when a full comparison is due.
func (m *syncMarks) listing(id int64, dir string, now time.Time) (listing, uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.listings[id]
	if l == nil || l.dir != dir || now.Sub(l.fullAt) > fullSyncEvery {
		return nil, 0
	}
	return l.files, l.modseq
}

// fullDue reports whether id's next sync of dir compares the whole
// directory: it has no listing of dir, or its last full comparison is
// older than fullSyncEvery.
func (m *syncMarks) fullDue(id int64, dir string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.listings[id]
	return l == nil || l.dir != dir || now.Sub(l.fullAt) > fullSyncEvery
}

// syncedWithin reports whether id was synced recently enough for a poll:
// within pollFresh, or twenty times the cost of its last listing.
func (m *syncMarks) syncedWithin(id int64, dir string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.listings[id]
	if l == nil || l.dir != dir {
		return false
	}
	fresh := min(max(pollFresh, 20*l.cost), pollStale)
	return time.Since(l.syncedAt) < fresh
}

// record keeps the listing the index now agrees with; cost is how long
// reading the directory took. It returns the mailbox whose listing it
// dropped to stay within maxListings, if any.
func (m *syncMarks) record(id int64, dir string, files listing, full bool, now time.Time, cost time.Duration, modseq uint64) (evicted int64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.listings == nil {
		m.listings = map[int64]*dirListing{}
	}
	l := m.listings[id]
	if l == nil || l.dir != dir {
		if !full {
			return 0, false
		}
		l = &dirListing{dir: dir}
		m.listings[id] = l
	}
	l.files, l.syncedAt, l.cost, l.modseq = files, now, cost, modseq
	if full {
		l.fullAt = now
	}
	if len(m.listings) <= maxListings {
		return 0, false
	}
	var oldest int64
	var at time.Time
	for k, v := range m.listings {
		if at.IsZero() || v.syncedAt.Before(at) {
			oldest, at = k, v.syncedAt
		}
	}
	delete(m.listings, oldest)
	return oldest, true
}

// touch notes a sync of id's listing that changed it in place.
func (m *syncMarks) touch(id int64, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.listings[id]; l != nil {
		l.syncedAt = now
	}
}

// drop forgets id's listing and marks: its next sync lists the directory
// and compares it with the whole index.
func (m *syncMarks) drop(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.listings, id)
	delete(m.m, id)
}

func (s *Store) indexRows(ctx context.Context, id int64) (map[string]indexed, error) {
	rs, err := s.rdb.QueryContext(ctx, `SELECT uid, base, file, flags FROM messages WHERE mailbox_id = ?`, id)
	if err != nil {
		return nil, err
	}
	out := map[string]indexed{}
	return out, scanIndexed(rs, out)
}

// indexRowsFor returns the index rows of the given base names.
func (s *Store) indexRowsFor(ctx context.Context, id int64, bases []string) (map[string]indexed, error) {
	out := map[string]indexed{}
	for len(bases) > 0 {
		n := min(len(bases), 500) // well under SQLite's bound on parameters
		args := []any{id}
		for _, b := range bases[:n] {
			args = append(args, b)
		}
		q := `SELECT uid, base, file, flags FROM messages WHERE mailbox_id = ? AND base IN (?` + strings.Repeat(", ?", n-1) + `)`
		rs, err := s.rdb.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		if err := scanIndexed(rs, out); err != nil {
			return nil, err
		}
		bases = bases[n:]
	}
	return out, nil
}

func scanIndexed(rs *sql.Rows, out map[string]indexed) error {
	defer rs.Close()
	for rs.Next() {
		var r indexed
		var base, flags string
		if err := rs.Scan(&r.uid, &base, &r.file, &flags); err != nil {
			return err
		}
		r.flags = strings.Fields(flags)
		out[base] = r
	}
	return rs.Err()
}

// syncPlan is what Sync must change in the index.
type syncPlan struct {
	add     []placed
	remove  []uint32
	renamed []indexed // uid with its new file and flags
}

func (p syncPlan) empty() bool { return len(p.add)+len(p.remove)+len(p.renamed) == 0 }

func diff(files []scanned, rows map[string]indexed, letters []string) syncPlan {
	var p syncPlan
	for _, f := range files {
		r, ok := rows[f.base]
		switch {
		case !ok:
			p.add = append(p.add, placed{file: f.file, flags: f.flags})
		case r.file != f.file:
			p.renamed = append(p.renamed, indexed{uid: r.uid, file: f.file, flags: mergeFlags(r.flags, f.flags, letters), was: r.file})
		}
		delete(rows, f.base)
	}
	for _, r := range rows {
		p.remove = append(p.remove, r.uid)
	}
	return p
}

// mergeFlags takes the flags of the file name, which the Maildir owns, and
// keeps keywords the name cannot carry (index-only, beyond 26 letters).
func mergeFlags(old, fromName, letters []string) []string {
	out := append([]string(nil), fromName...)
	for _, f := range old {
		if !strings.HasPrefix(f, `\`) && indexFold(fromName, f) < 0 && indexFold(letters, f) < 0 {
			out = append(out, f)
		}
	}
	return out
}

// fileFacts returns a message file's CRLF size and internal date (mtime).
func fileFacts(dir, file string) (int64, time.Time, error) {
	path := filepath.Join(dir, file)
	fi, err := os.Stat(path)
	if err != nil {
		return 0, time.Time{}, err
	}
	if v, ok := vsizeFromName(filepath.Base(file)); ok {
		return v, fi.ModTime(), nil
	}
	v, err := countVsize(path)
	return v, fi.ModTime(), err
}

func (p syncPlan) apply(s *Store, tx *sql.Tx, id int64) error {
	for _, uid := range p.remove {
		if _, err := tx.Exec(`UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM messages WHERE mailbox_id = ? AND uid = ?`, id, uid); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) SELECT id, ?, highestmodseq FROM mailboxes WHERE id = ?`, uid, id); err != nil {
			return err
		}
	}
	for _, r := range p.renamed {
		if _, err := tx.Exec(`UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?`, id); err != nil {
			return err
		}
		// Only if the row still names the file the plan saw: the rows
		// were read before this transaction, and a STORE that renamed the
		// file and committed meanwhile has the flags right, including the
		// keywords beyond the 26 letters that the name cannot carry (they
		// were lost when the stale plan overwrote them).
		if _, err := tx.Exec(`UPDATE messages SET file = ?, flags = ?, modseq = (SELECT highestmodseq FROM mailboxes WHERE id = ?) WHERE mailbox_id = ? AND uid = ? AND file = ?`,
			r.file, strings.Join(r.flags, " "), id, id, r.uid, r.was); err != nil {
			return err
		}
	}
	for _, a := range p.add {
		a.mailboxID = id
		if _, err := s.insertMessage(tx, a); err != nil {
			return err
		}
	}
	return nil
}
