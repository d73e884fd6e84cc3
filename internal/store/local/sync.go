package local

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// indexed is one index row as Sync compares it with the disk.
type indexed struct {
	uid   uint32
	file  string
	flags []string
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

// syncDir reconciles one Maildir with its index. When neither new/ nor
// cur/ has changed (mtime) since the last sync, it does nothing: a rename
// or unlink always changes the directory's mtime.
func (s *Store) syncDir(ctx context.Context, id int64, dir string) error {
	mark, ok := s.synced.changed(id, dir)
	if !ok {
		return nil
	}
	cleanTmp(dir)
	letters := readKeywords(dir)
	files, err := scanMaildir(dir, letters)
	if err != nil {
		return classify(err)
	}
	rows, err := s.indexRows(ctx, id)
	if err != nil {
		return err
	}
	plan := diff(files, rows, letters)
	if !plan.empty() {
		for i := range plan.add {
			if plan.add[i].vsize, plan.add[i].date, err = fileFacts(dir, plan.add[i].file); err != nil {
				return err
			}
		}
		if err := s.write(ctx, func(tx *sql.Tx) error { return plan.apply(tx, id) }); err != nil {
			return err
		}
		s.watch.notify(id)
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

// dirtyWindow is how old a directory mtime must be before a sync made at
// it is trusted; well above any file system's timestamp granularity.
const dirtyWindow = time.Second

// syncMarks remembers the directory mtimes each mailbox was synced at.
type syncMarks struct {
	mu sync.Mutex
	m  map[int64]dirMark
}

type dirMark struct{ new, cur time.Time }

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

func (s *Store) indexRows(ctx context.Context, id int64) (map[string]indexed, error) {
	rs, err := s.rdb.QueryContext(ctx, `SELECT uid, base, file, flags FROM messages WHERE mailbox_id = ?`, id)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string]indexed{}
	for rs.Next() {
		var r indexed
		var base, flags string
		if err := rs.Scan(&r.uid, &base, &r.file, &flags); err != nil {
			return nil, err
		}
		r.flags = strings.Fields(flags)
		out[base] = r
	}
	return out, rs.Err()
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
			p.renamed = append(p.renamed, indexed{uid: r.uid, file: f.file, flags: mergeFlags(r.flags, f.flags, letters)})
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

func (p syncPlan) apply(tx *sql.Tx, id int64) error {
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
		if _, err := tx.Exec(`UPDATE messages SET file = ?, flags = ?, modseq = (SELECT highestmodseq FROM mailboxes WHERE id = ?) WHERE mailbox_id = ? AND uid = ?`,
			r.file, strings.Join(r.flags, " "), id, id, r.uid); err != nil {
			return err
		}
	}
	for _, a := range p.add {
		a.mailboxID = id
		if _, err := insertMessage(tx, a); err != nil {
			return err
		}
	}
	return nil
}
