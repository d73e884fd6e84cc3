package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"posthorn/internal/store"
	"posthorn/internal/users"
)

var _ store.Access = (*Store)(nil)

// MailboxStatus implements store.Access.
func (s *Store) MailboxStatus(ctx context.Context, account, name string) (store.Mailbox, error) {
	id, dir, err := s.mailbox(ctx, account, name)
	if err != nil {
		return store.Mailbox{}, err
	}
	if err := s.syncDir(ctx, id, dir); err != nil {
		return store.Mailbox{}, err
	}
	var m store.Mailbox
	err = s.rdb.QueryRowContext(ctx, `
		SELECT m.name, m.special_use, m.uidvalidity, m.uidnext, m.highestmodseq, m.subscribed,
		       count(x.uid), coalesce(sum(x.size), 0),
		       coalesce(sum(instr(' ' || x.flags || ' ', ' \Seen ') = 0), 0),
		       coalesce(sum(instr(' ' || x.flags || ' ', ' \Deleted ') > 0), 0)
		FROM mailboxes m LEFT JOIN messages x ON x.mailbox_id = m.id
		WHERE m.id = ? GROUP BY m.id`, id).Scan(&m.Name, &m.SpecialUse, &m.UIDValidity, &m.UIDNext,
		&m.HighestModSeq, &m.Subscribed, &m.Messages, &m.Size, &m.Unseen, &m.Deleted)
	return m, err
}

// DeleteMailbox implements store.Access. INBOX cannot be deleted. The
// folder's directory goes; sub-folders are their own directories and stay.
func (s *Store) DeleteMailbox(ctx context.Context, account, name string) error {
	s.layout.Add(1) // watched mailboxes look their directory up again
	defer s.layout.Add(1)
	name = canonicalMailbox(name)
	if name == "INBOX" {
		return fmt.Errorf("%w: INBOX cannot be deleted", store.ErrBadName)
	}
	id, dir, err := s.mailbox(ctx, account, name)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		// Its subscription stays (RFC 9051 §6.3.7), as a lone one, as
		// long as the account has fewer than maxBoxes of those: a loop
		// of CREATE and DELETE must not grow them without end.
		if _, err := tx.Exec(`INSERT OR IGNORE INTO lone_subscriptions(account_id, name)
			SELECT m.account_id, m.name FROM mailboxes m WHERE m.id = ? AND m.subscribed
			AND (SELECT count(*) FROM lone_subscriptions l WHERE l.account_id = m.account_id) < ?`, id, s.maxBoxes); err != nil {
			return err
		}
		return affected(tx.Exec(`DELETE FROM mailboxes WHERE id = ?`, id))
	})
	if err != nil {
		return err
	}
	s.snaps.drop(id)
	s.watch.notify(id)
	if err := os.RemoveAll(dir); err != nil {
		// Once more: a file created meanwhile (another program's, or a
		// UID mark written just before the layout changed) made the
		// directory's removal fail.
		return os.RemoveAll(dir)
	}
	return nil
}

// RenameMailbox implements store.Access.
func (s *Store) RenameMailbox(ctx context.Context, account, from, to string) error {
	s.layout.Add(1) // watched mailboxes look their directory up again
	defer s.layout.Add(1)
	from, to = canonicalMailbox(from), canonicalMailbox(to)
	if to == "INBOX" {
		return fmt.Errorf("%w: cannot rename to INBOX", store.ErrExists)
	}
	if from == "INBOX" {
		return s.renameInbox(ctx, account, to)
	}
	root, err := s.MaildirPath(ctx, account)
	if err != nil {
		return err
	}
	boxes, err := s.Mailboxes(ctx, account)
	if err != nil {
		return err
	}
	moves, err := renames(boxes, from, to)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(tx, account)
		if err != nil {
			return err
		}
		for _, m := range moves { // rows first: a failure leaves the files alone
			if _, err := tx.Exec(`UPDATE mailboxes SET name = ? WHERE account_id = ? AND name = ?`, m[1], id, m[0]); err != nil {
				return uniqueErr(err)
			}
			if err := dropLoneSubscription(tx, id, m[1]); err != nil {
				return err
			}
		}
		return moveFolders(root, moves)
	})
}

// renames lists [old, new] names for a mailbox and its children.
func renames(boxes []store.Mailbox, from, to string) ([][2]string, error) {
	var moves [][2]string
	for _, b := range boxes {
		switch {
		case b.Name == to || strings.HasPrefix(b.Name, to+"/"):
			return nil, fmt.Errorf("%w: %s", store.ErrExists, b.Name)
		case b.Name == from:
			moves = append(moves, [2]string{b.Name, to})
		case strings.HasPrefix(b.Name, from+"/"):
			moves = append(moves, [2]string{b.Name, to + b.Name[len(from):]})
		}
	}
	if len(moves) == 0 || moves[0][0] != from && !slices.ContainsFunc(moves, func(m [2]string) bool { return m[0] == from }) {
		return nil, store.ErrNoMailbox
	}
	for _, m := range moves {
		if _, err := folderDir(m[1]); err != nil {
			return nil, err
		}
	}
	return moves, nil
}

func moveFolders(root string, moves [][2]string) error {
	for _, m := range moves {
		a, _ := folderDir(m[0])
		b, _ := folderDir(m[1])
		if err := os.Rename(filepath.Join(root, a), filepath.Join(root, b)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// renameInbox creates the new mailbox and moves INBOX's messages there
// (RFC 9051 §6.3.6); INBOX stays, empty.
func (s *Store) renameInbox(ctx context.Context, account, to string) error {
	s.layout.Add(1) // watched mailboxes look their directory up again
	defer s.layout.Add(1)
	if err := s.CreateMailbox(ctx, account, to, ""); err != nil {
		return err
	}
	snap, err := s.Snapshot(ctx, account, "INBOX")
	if err != nil {
		return err
	}
	uids := make([]uint32, len(snap.Messages))
	for i, m := range snap.Messages {
		uids[i] = m.UID
	}
	_, _, _, err = s.Copy(ctx, account, "INBOX", to, uids, true)
	return err
}

// Subscribe implements store.Access. A name that is no mailbox may be
// subscribed too (RFC 9051 §6.3.7 lets a server refuse, Dovecot does
// not): at most maxMailboxes of them per account.
func (s *Store) Subscribe(ctx context.Context, account, name string, on bool) error {
	id, _, err := s.mailbox(ctx, account, name)
	if errors.Is(err, store.ErrNoMailbox) {
		return s.subscribeLone(ctx, account, canonicalMailbox(name), on)
	}
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		return affected(tx.Exec(`UPDATE mailboxes SET subscribed = ? WHERE id = ?`, on, id))
	})
}

func (s *Store) subscribeLone(ctx context.Context, account, name string, on bool) error {
	if _, err := folderDir(name); err != nil && name != "INBOX" {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		acct, err := accountID(tx, account)
		if err != nil {
			return err
		}
		if !on {
			return dropLoneSubscription(tx, acct, name)
		}
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM lone_subscriptions WHERE account_id = ?`, acct).Scan(&n); err != nil {
			return err
		}
		if n >= s.maxBoxes {
			return fmt.Errorf("%w: at most %d subscriptions without a mailbox", store.ErrOverQuota, s.maxBoxes)
		}
		_, err = tx.Exec(`INSERT OR IGNORE INTO lone_subscriptions(account_id, name) VALUES (?, ?)`, acct, name)
		return err
	})
}

// LoneSubscriptions implements store.Access.
func (s *Store) LoneSubscriptions(ctx context.Context, account string) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, `
		SELECT l.name FROM lone_subscriptions l JOIN accounts a ON a.id = l.account_id
		WHERE a.address = ? AND NOT EXISTS
			(SELECT 1 FROM mailboxes m WHERE m.account_id = l.account_id AND m.name = l.name)
		ORDER BY l.name`, account)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Snapshot implements store.Access.
func (s *Store) Snapshot(ctx context.Context, account, mailbox string) (store.Snapshot, error) {
	id, dir, err := s.mailbox(ctx, account, mailbox)
	if err != nil {
		return store.Snapshot{}, err
	}
	if err := s.syncDir(ctx, id, dir); err != nil {
		return store.Snapshot{}, err
	}
	return s.readSnapshot(ctx, id)
}

// Changes implements store.Access.
func (s *Store) Changes(ctx context.Context, account, mailbox string, since uint64) (store.Changes, error) {
	id, dir, err := s.mailbox(ctx, account, mailbox)
	if err != nil {
		return store.Changes{}, err
	}
	if err := s.pollDir(ctx, id, dir); err != nil {
		return store.Changes{}, err
	}
	var c store.Changes
	if err := s.rdb.QueryRowContext(ctx, `SELECT uidnext, highestmodseq FROM mailboxes WHERE id = ?`, id).
		Scan(&c.UIDNext, &c.HighestModSeq); err != nil {
		return c, err
	}
	if since >= c.HighestModSeq {
		return c, nil
	}
	c.Updated, c.Expunged, err = changedSince(ctx, s.rdb, id, since)
	return c, err
}

// queryMetas reads the message rows selected by where.
func queryMetas(ctx context.Context, q querier, where string, args ...any) ([]store.MessageMeta, error) {
	rows, err := q.QueryContext(ctx, `SELECT uid, modseq, flags, internal_date, size FROM messages `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.MessageMeta
	for rows.Next() {
		var m store.MessageMeta
		var flags string
		var date int64
		if err := rows.Scan(&m.UID, &m.ModSeq, &flags, &date, &m.Size); err != nil {
			return nil, err
		}
		m.Flags = strings.Fields(flags)
		m.InternalDate = time.Unix(0, date).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// changedSince reads what changed in mailbox id after MODSEQ since: the
// messages added or changed, and the UIDs expunged, both in UID order.
func changedSince(ctx context.Context, q querier, id int64, since uint64) ([]store.MessageMeta, []uint32, error) {
	updated, err := queryMetas(ctx, q, `WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`, id, since)
	if err != nil {
		return nil, nil, err
	}
	gone, err := queryColumn[uint32](ctx, q, `SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`, id, since)
	return updated, gone, err
}

// Open implements store.Access.
// One query finds the mailbox and the message: SEARCH and FETCH open
// thousands in a row.
func (s *Store) Open(ctx context.Context, account, mailbox string, uid uint32) (store.Content, error) {
	name := canonicalMailbox(mailbox)
	var rel, file string
	var size int64
	var validity uint32
	err := s.rdb.QueryRowContext(ctx, `
		SELECT a.maildir, g.file, g.size, m.uidvalidity FROM mailboxes m
		JOIN accounts a ON a.id = m.account_id
		JOIN messages g ON g.mailbox_id = m.id AND g.uid = ?
		WHERE a.address = ? AND m.name = ?`, uid, account, name).Scan(&rel, &file, &size, &validity)
	if v, ok := expectedValidity(ctx, name); ok && err == nil && v != validity {
		return nil, store.ErrNoMailbox
	}
	if errors.Is(err, sql.ErrNoRows) {
		if _, _, err := s.mailbox(ctx, account, mailbox); err != nil {
			return nil, err
		}
		return nil, users.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	dir, err := s.dirOf(rel, name)
	if err != nil {
		return nil, err
	}
	return fileContent{path: filepath.Join(dir, file), size: size, base: baseName(filepath.Base(file)), dir: dir}, nil
}

// Append implements store.Access.
func (s *Store) Append(ctx context.Context, account, mailbox string, flags []string, date time.Time, r io.Reader, size int64) (uint32, uint32, error) {
	if used, limit, err := s.Quota(ctx, account); err != nil {
		return 0, 0, err
	} else if limit > 0 && used+size > limit {
		return 0, 0, store.ErrOverQuota
	}
	p, err := s.placeReader(ctx, account, mailbox, canonicalFlags(flags), date, io.LimitReader(r, size))
	if err != nil {
		return 0, 0, err
	}
	ps, errs := []placed{p}, []error{nil}
	s.settle(ctx, []store.Delivery{{Account: account}}, ps, errs)
	if errs[0] != nil {
		return 0, 0, errs[0]
	}
	var v uint32
	err = s.rdb.QueryRowContext(ctx, `SELECT uidvalidity FROM mailboxes WHERE id = ?`, p.mailboxID).Scan(&v)
	return v, ps[0].uid, err
}

// Quota implements store.Access.
func (s *Store) Quota(ctx context.Context, account string) (used, limit int64, err error) {
	// Most accounts have no quota: do not sum their mail. The limit is a
	// directory field (SetQuota goes through writeDir), so it is cached.
	type quota struct {
		limit int64
		ok    bool
	}
	q, err := get(s.dcache, "q:"+account, func() (quota, bool, error) {
		var q quota
		err := s.rdb.QueryRowContext(ctx, `SELECT quota FROM accounts WHERE address = ?`, account).Scan(&q.limit)
		if errors.Is(err, sql.ErrNoRows) {
			return q, true, nil
		}
		q.ok = true
		return q, true, err
	})
	if err == nil && !q.ok {
		return 0, 0, users.ErrNotFound
	}
	if limit = q.limit; err != nil || limit == 0 {
		return 0, limit, err
	}
	err = s.rdb.QueryRowContext(ctx, `
		SELECT a.quota, coalesce((SELECT sum(x.size) FROM messages x JOIN mailboxes m ON m.id = x.mailbox_id
			WHERE m.account_id = a.id), 0)
		FROM accounts a WHERE a.address = ?`, account).Scan(&limit, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, users.ErrNotFound
	}
	return used, limit, err
}

// SetQuota sets an account's quota in bytes (0: none).
func (s *Store) SetQuota(ctx context.Context, account string, limit int64) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		return affected(tx.Exec(`UPDATE accounts SET quota = ? WHERE address = ?`, limit, account))
	})
}

// Watch implements store.Access.
func (s *Store) Watch(account, mailbox string) (<-chan struct{}, func()) {
	id, _, err := s.mailbox(context.Background(), account, mailbox)
	if err != nil {
		ch := make(chan struct{})
		return ch, func() {}
	}
	ch, stop := s.watch.add(id)
	s.watch.poll.Do(func() { go s.pollWatched() })
	return ch, stop
}

// watchPoll is how often a watched mailbox is looked at for changes made
// behind the store's back (another program in the Maildir), when inotify
// does not report them.
const watchPoll = time.Second

// pollWatched syncs each mailbox that someone watches: at once when
// inotify reports an event in it (poke), and every watchPoll those that
// inotify does not serve. A change found notifies its watchers (syncDir
// does). One goroutine serves every watched mailbox, however many
// sessions idle on how many mailboxes: a wake-up a second, not one per
// mailbox (thousands of idle sessions on hundreds of mailboxes kept the
// scheduler busy).
func (s *Store) pollWatched() {
	t := time.NewTicker(s.pollEvery)
	defer t.Stop()
	known := map[int64]watchPlace{}
	for {
		var ids []int64
		evented := false
		select {
		case <-s.stop:
			return
		case <-s.watch.poke:
			ids, evented = s.watch.takeDirty(), true
		case <-t.C:
			ids = s.watch.watched()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		// Full comparisons (the backstop) start only within this pass's
		// budget; the rest stay due for the next tick, so that a store of
		// many large mailboxes does not hold up the next inotify event.
		fullUntil := time.Now().Add(fullBudget)
		for _, id := range ids {
			known[id] = s.pollOneSafely(ctx, id, known[id], evented, fullUntil)
		}
		cancel()
		if !evented {
			live := make(map[int64]bool, len(ids))
			for _, id := range ids {
				live[id] = true
			}
			for id := range known {
				if !live[id] {
					delete(known, id)
				}
			}
		}
	}
}

// pollOneSafely is pollOne with a panic (a file name or an event that a
// sync mishandles) logged and counted: this goroutine is no session's,
// and a panic in it would end the daemon.
func (s *Store) pollOneSafely(ctx context.Context, id int64, p watchPlace, evented bool, fullUntil time.Time) (out watchPlace) {
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			s.log.Error("watch: panic", "mailbox_id", id, "err", fmt.Sprint(r), "stack", string(debug.Stack()))
			out = watchPlace{}
		}
	}()
	return s.pollOne(ctx, id, p, evented, fullUntil)
}

// fullBudget is how long one tick of the poller may spend starting full
// comparisons of watched mailboxes.
const fullBudget = 250 * time.Millisecond

// Panics counts the panics recovered in the store's own goroutines; anything
// but 0 is a bug.
func (s *Store) Panics() int64 { return s.panics.Load() + groupPanics.Load() }

// watchPlace is where a watched mailbox was last found. It is looked up
// again after any RENAME or DELETE (the layout generation), since a
// RENAME may move a mailbox or give its old directory to another: a
// directory is never polled by an old name.
type watchPlace struct {
	dir    string
	gen    uint64
	gone   bool   // deleted: not looked up again until the layout changes
	modseq uint64 // HIGHESTMODSEQ when last looked at after an event
}

// pollOne polls one watched mailbox and returns where it now is. After an
// inotify event it syncs at once; on the tick it leaves mailboxes inotify
// serves alone.
func (s *Store) pollOne(ctx context.Context, id int64, p watchPlace, evented bool, fullUntil time.Time) watchPlace {
	if g := s.layout.Load(); p.dir == "" || g != p.gen {
		if p.gone && g == p.gen {
			return p
		}
		dir, err := s.mailboxDir(ctx, id)
		p = watchPlace{dir: dir, gen: g}
		if errors.Is(err, store.ErrNoMailbox) {
			p.gone = true
			return p
		}
		if err != nil {
			s.log.Warn("watch: mailbox lookup failed", "mailbox_id", id, "err", err)
			return watchPlace{}
		}
	}
	var err error
	switch {
	case evented:
		err = s.syncDir(ctx, id, p.dir)
		if err == nil {
			p.modseq = s.notifyIfMoved(ctx, id, p.modseq)
		}
	case s.fsw != nil && s.fsw.watching(id, p.dir):
		// The backstop for a change inotify did not report: the full
		// comparison a session's use would run once a minute, run here
		// once per mailbox for all the sessions idling on it (each
		// session polling on a timer of its own cost 5,000 idle
		// sessions some 35 MB of garbage a minute).
		// A mailbox without a listing had a sync fail: its next sync is
		// a full one, and nothing else would start it before the next
		// event or command.
		now := time.Now()
		if !s.synced.fullDue(id, p.dir, now) || now.After(fullUntil) {
			return p
		}
		err = s.syncDir(ctx, id, p.dir)
	default:
		// Here too another posthorn process's changes leave the sync
		// nothing to do.
		err = s.pollDir(ctx, id, p.dir)
		if err == nil {
			p.modseq = s.notifyIfMoved(ctx, id, p.modseq)
		}
	}
	if errors.Is(err, store.ErrNoMailbox) {
		p.dir = "" // its directory moved: look it up on the next tick
	} else if err != nil {
		s.log.Warn("watch: sync failed", "mailbox_id", id, "err", err)
	}
	return p
}

// notifyIfMoved wakes id's watchers when its HIGHESTMODSEQ is no longer
// last: another posthorn process (the deliver LDA, an admin command) both
// moves the files and writes the index, so the sync that its inotify
// events set off finds nothing to do, yet the watchers have news. It
// returns the HIGHESTMODSEQ seen (last when it cannot be read). With
// nothing seen before (last 0) it wakes them too: a wake-up with no news
// costs a session one look at the index, a missed one costs the user the
// message until the client next asks.
func (s *Store) notifyIfMoved(ctx context.Context, id int64, last uint64) uint64 {
	var now uint64
	if err := s.rdb.QueryRowContext(ctx, `SELECT highestmodseq FROM mailboxes WHERE id = ?`, id).Scan(&now); err != nil {
		return last
	}
	if now != last {
		s.watch.notify(id)
	}
	return now
}

// mailboxDir returns the directory of mailbox id, looked up afresh: a
// RENAME may have moved it since the watch began.
func (s *Store) mailboxDir(ctx context.Context, id int64) (string, error) {
	var rel, name string
	err := s.rdb.QueryRowContext(ctx, `
		SELECT a.maildir, m.name FROM mailboxes m JOIN accounts a ON a.id = m.account_id
		WHERE m.id = ?`, id).Scan(&rel, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", store.ErrNoMailbox
	}
	if err != nil {
		return "", err
	}
	return s.dirOf(rel, name)
}

// fileContent is a message file read with CRLF line ends.
type fileContent struct {
	path, base, dir string
	size            int64
}

func (c fileContent) Size() int64 { return c.size }

// Reader opens the file. If a flag change renamed it meanwhile, the file
// is found again by its unique base name.
func (c fileContent) Reader() (store.ReadCloser, error) {
	f, err := os.Open(c.path)
	if errors.Is(err, os.ErrNotExist) {
		f, err = openByBase(c.dir, c.base)
	}
	if err != nil {
		return nil, err
	}
	return newCRLFReader(f), nil
}

// openByBase opens the message file with the unique base name base,
// whatever flags its name carries now. A flag change in another session
// may rename it between the listing and the open, more than once under
// a client that keeps storing flags: each try lists again (up to
// openTries). One try made FETCH and SEARCH fail with NO [SERVERBUG] now
// and then while another client marked mail read (red-team run).
func openByBase(dir, base string) (*os.File, error) {
	for range openTries {
		for _, p := range filesByBase(dir, base) {
			f, err := os.Open(p)
			if !errors.Is(err, os.ErrNotExist) {
				return f, err
			}
		}
	}
	return nil, os.ErrNotExist
}

// openTries bounds how often openByBase follows a file being renamed.
const openTries = 20

// filesByBase returns the paths of the message file with the unique base
// name base in a Maildir, whatever flags its name carries now (cur/
// first). The glob finds names that start with base; only those whose
// base name is base are kept, so "1.x" never finds another message's
// "1.xy" (removeByBase would have removed it).
func filesByBase(dir, base string) []string {
	var out []string
	for _, sd := range []string{"cur", "new"} {
		m, _ := filepath.Glob(filepath.Join(dir, sd, globEscape(base)+"*"))
		for _, p := range m {
			if baseName(filepath.Base(p)) == base {
				out = append(out, p)
			}
		}
	}
	return out
}

func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(s)
}
