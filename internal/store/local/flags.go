package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"posthorn/internal/store"
)

// systemFlags are the IMAP system flags that can be stored (RFC 9051
// §2.3.2; \Recent is session state, never stored).
var systemFlags = []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`}

// canonicalFlags spells system flags canonically, drops \Recent, unknown
// backslash flags and invalid keywords, and removes duplicates
// (case-insensitively).
func canonicalFlags(in []string) []string {
	var out []string
	for _, f := range in {
		if strings.HasPrefix(f, `\`) {
			i := slices.IndexFunc(systemFlags, func(s string) bool { return strings.EqualFold(s, f) })
			if i < 0 {
				continue
			}
			f = systemFlags[i]
		} else if !validKeyword(f) {
			continue
		}
		if indexFold(out, f) < 0 {
			out = append(out, f)
		}
	}
	return out
}

// applyFlags returns the flags after op.
func applyFlags(cur []string, op store.FlagOp, flags []string) []string {
	switch op {
	case store.FlagsReplace:
		return flags
	case store.FlagsAdd:
		return canonicalFlags(append(slices.Clone(cur), flags...))
	}
	var out []string
	for _, f := range cur {
		if indexFold(flags, f) < 0 {
			out = append(out, f)
		}
	}
	return out
}

func sameFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, f := range a {
		if indexFold(b, f) < 0 {
			return false
		}
	}
	return true
}

// SetFlags implements store.Access. The file is renamed first (the Maildir
// is the truth), then its row gets the new flags and a new MODSEQ.
func (s *Store) SetFlags(ctx context.Context, account, mailbox string, uids []uint32, op store.FlagOp, flags []string, unchangedSince uint64) ([]store.MessageMeta, []uint32, error) {
	id, dir, err := s.mailbox(ctx, account, mailbox)
	if err != nil {
		return nil, nil, err
	}
	flags = canonicalFlags(flags)
	var changed []store.MessageMeta
	var failed []uint32
	err = s.write(ctx, func(tx *sql.Tx) error {
		changed, failed = nil, nil
		if err := checkValidity(ctx, tx, id, mailbox); err != nil {
			return err
		}
		for _, uid := range uids {
			m, ok, err := s.setOne(tx, id, dir, uid, op, flags, unchangedSince)
			if err != nil {
				return err
			}
			if !ok {
				failed = append(failed, uid)
			} else if m.UID != 0 {
				changed = append(changed, m)
			}
		}
		return nil
	})
	if err == nil && len(changed) > 0 {
		s.watch.notify(id)
	}
	return changed, failed, err
}

// setOne changes one message; ok is false when UNCHANGEDSINCE refuses it.
// A missing UID or no actual change returns ok with a zero meta.
func (s *Store) setOne(tx *sql.Tx, id int64, dir string, uid uint32, op store.FlagOp, flags []string, since uint64) (store.MessageMeta, bool, error) {
	var m store.MessageMeta
	var file, cur string
	var date int64
	err := tx.QueryRow(`SELECT modseq, file, flags, internal_date, size FROM messages WHERE mailbox_id = ? AND uid = ?`, id, uid).
		Scan(&m.ModSeq, &file, &cur, &date, &m.Size)
	if errors.Is(err, sql.ErrNoRows) {
		return store.MessageMeta{}, true, nil
	}
	if err != nil {
		return m, false, err
	}
	if since > 0 && m.ModSeq > since {
		return store.MessageMeta{}, false, nil // RFC 7162 §3.1.3
	}
	newFlags := applyFlags(strings.Fields(cur), op, flags)
	if sameFlags(newFlags, strings.Fields(cur)) {
		return store.MessageMeta{}, true, nil
	}
	newFile, err := s.renameForFlags(dir, file, newFlags)
	if errors.Is(err, os.ErrNotExist) {
		// Another program deleted the file: the message is gone, and the
		// next sync expunges its row. Nothing to change.
		return store.MessageMeta{}, true, nil
	}
	if err != nil {
		return m, false, err
	}
	if _, err := tx.Exec(`UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?`, id); err != nil {
		return m, false, err
	}
	if err := tx.QueryRow(`SELECT highestmodseq FROM mailboxes WHERE id = ?`, id).Scan(&m.ModSeq); err != nil {
		return m, false, err
	}
	_, err = tx.Exec(`UPDATE messages SET file = ?, flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?`,
		newFile, strings.Join(newFlags, " "), m.ModSeq, id, uid)
	m.UID, m.Flags, m.InternalDate = uid, newFlags, unixNano(date)
	return m, true, err
}

// renameForFlags moves a message file to cur/ with the info of flags.
func (s *Store) renameForFlags(dir, file string, flags []string) (string, error) {
	info, err := s.infoFor(dir, flags)
	if err != nil {
		return "", err
	}
	name := "cur/" + baseName(filepath.Base(file)) + info
	if name == file {
		return file, nil
	}
	err = os.Rename(filepath.Join(dir, file), filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) { // renamed behind our back: find it
		if f, ferr := openByBase(dir, baseName(filepath.Base(file))); ferr == nil {
			old := f.Name()
			f.Close()
			err = os.Rename(old, filepath.Join(dir, name))
		}
	}
	return name, err
}

// Expunge implements store.Access. Files go first; a crash before the rows
// go leaves rows that the next Sync expunges.
func (s *Store) Expunge(ctx context.Context, account, mailbox string, uids []uint32) ([]uint32, error) {
	id, dir, err := s.mailbox(ctx, account, mailbox)
	if err != nil {
		return nil, err
	}
	var done []uint32
	err = s.write(ctx, func(tx *sql.Tx) error {
		done = nil
		if err := checkValidity(ctx, tx, id, mailbox); err != nil {
			return err
		}
		for _, uid := range uids {
			var file string
			err := tx.QueryRow(`SELECT file FROM messages WHERE mailbox_id = ? AND uid = ?`, id, uid).Scan(&file)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			if err := os.Remove(filepath.Join(dir, file)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if err := tombstone(tx, id, uid); err != nil {
				return err
			}
			done = append(done, uid)
		}
		return nil
	})
	if err == nil && len(done) > 0 {
		s.watch.notify(id)
	}
	return done, err
}

// tombstone deletes a row and records its expunge with a new MODSEQ
// (RFC 7162 §3.2.7 needs them for VANISHED).
func tombstone(tx *sql.Tx, id int64, uid uint32) error {
	if _, err := tx.Exec(`UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?`, id); err != nil {
		return err
	}
	if _, err := tx.Exec(`DELETE FROM messages WHERE mailbox_id = ? AND uid = ?`, id, uid); err != nil {
		return err
	}
	_, err := tx.Exec(`INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) SELECT id, ?, highestmodseq FROM mailboxes WHERE id = ?`, uid, id)
	return err
}

// Copy implements store.Access: files are hard-linked (copy) or renamed
// (move) into the target's cur/, the target directory fsynced, then the
// rows committed in one transaction. A COPY that fails must leave the
// target as it was (RFC 9051 §6.4.7), and a MOVE is a COPY and an expunge
// (RFC 6851 §3.1), so one that fails must change neither mailbox: when a
// step fails, the files placed so far are unlinked (copy) or renamed back
// (move) before the error is returned.
func (s *Store) Copy(ctx context.Context, account, from, to string, uids []uint32, move bool) (uint32, []uint32, []uint32, error) {
	srcID, srcDir, err := s.mailbox(ctx, account, from)
	if err != nil {
		return 0, nil, nil, err
	}
	dstID, dstDir, err := s.mailbox(ctx, account, to)
	if err != nil {
		return 0, nil, nil, err
	}
	if srcID == dstID && move {
		return 0, nil, nil, fmt.Errorf("%w: move to the same mailbox", store.ErrBadName)
	}
	if !move {
		if err := s.checkCopyQuota(ctx, account, srcID, uids); err != nil {
			return 0, nil, nil, err
		}
	}
	src, dst, err := s.copyLocked(ctx, srcID, dstID, srcDir, dstDir, uids, move)
	if err != nil {
		return 0, nil, nil, err
	}
	s.watch.notify(dstID)
	if move {
		s.watch.notify(srcID)
	}
	var v uint32
	err = s.rdb.QueryRowContext(ctx, `SELECT uidvalidity FROM mailboxes WHERE id = ?`, dstID).Scan(&v)
	return v, src, dst, err
}

// checkCopyQuota refuses a copy that would take the account past its
// quota, by the rule Append uses (used + added ≤ limit), before any file
// is placed: a COPY that fails changes nothing (RFC 9051 §6.4.7), and the
// client gets NO [OVERQUOTA] (RFC 9208 §4.1). A move needs no check: the
// usage is the sum over all the account's mailboxes, which a move between
// two of them leaves as it was, and refusing it would keep a user over
// the limit from sorting mail to delete.
//
// The sizes are the index rows'; a message expunged meanwhile counts
// nothing, as copyOne skips it. Like Append's check, this one is not
// atomic with the copy: two sessions adding at once can both pass.
func (s *Store) checkCopyQuota(ctx context.Context, account string, srcID int64, uids []uint32) error {
	used, limit, err := s.Quota(ctx, account)
	if err != nil || limit == 0 {
		return err
	}
	added, err := s.sizeOf(ctx, srcID, uids)
	if err != nil {
		return err
	}
	if used+added > limit {
		return store.ErrOverQuota
	}
	return nil
}

// sizeOf returns the total size of the messages uids of mailbox id, by
// their index rows; a UID listed twice counts twice, as copyOne copies it
// twice. The UIDs go as one JSON array: one statement for any number of
// them (SQLite bounds the parameters), prepared once.
func (s *Store) sizeOf(ctx context.Context, id int64, uids []uint32) (int64, error) {
	list, err := json.Marshal(uids)
	if err != nil {
		return 0, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT uid, size FROM messages
		WHERE mailbox_id = ? AND uid IN (SELECT value FROM json_each(?))`, id, string(list))
	if err != nil {
		return 0, err
	}
	sizes := map[uint32]int64{}
	if err := scanSizes(rows, sizes); err != nil {
		return 0, err
	}
	var total int64
	for _, u := range uids {
		total += sizes[u]
	}
	return total, nil
}

func scanSizes(rows *sql.Rows, sizes map[uint32]int64) error {
	defer rows.Close()
	for rows.Next() {
		var uid uint32
		var size int64
		if err := rows.Scan(&uid, &size); err != nil {
			return err
		}
		sizes[uid] = size
	}
	return rows.Err()
}

// copyLocked places the files and commits the rows with the syncs of both
// mailboxes held off. A sync in between would see placed files without
// their rows: it would index them in the target and, for a move, expunge
// them from the source; an undo could not take that back (a message
// renamed back into the source would come again under a new UID). Another
// process's sync is not held off; a message it sees in that moment is
// expunged again or comes back under a new UID, as with any file that
// another program moves.
func (s *Store) copyLocked(ctx context.Context, srcID, dstID int64, srcDir, dstDir string, uids []uint32, move bool) (src, dst []uint32, err error) {
	unlock := s.synced.lockPair(srcID, dstID)
	defer unlock()
	items, err := s.copyFiles(ctx, srcID, srcDir, dstDir, uids, move)
	if err != nil {
		return nil, nil, err
	}
	// Files first, made durable, then the rows: a crash before the commit
	// leaves files that the next sync indexes, never rows without files.
	if err := s.dirSync.sync(filepath.Join(dstDir, "cur")); err != nil {
		s.undoCopy(dstDir, items, move)
		return nil, nil, classify(err)
	}
	src, dst, err = s.indexCopies(ctx, srcID, dstID, items, move)
	if err != nil {
		s.undoCopy(dstDir, items, move)
		return nil, nil, err
	}
	return src, dst, nil
}

// indexCopies commits the target's rows of placed files and, for a move,
// the source's tombstones, in one transaction.
func (s *Store) indexCopies(ctx context.Context, srcID, dstID int64, items []copyItem, move bool) (src, dst []uint32, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		src, dst = nil, nil
		for _, it := range items {
			it.p.mailboxID = dstID
			uid, err := s.insertMessage(tx, it.p)
			if err != nil {
				return err
			}
			if move {
				if err := tombstone(tx, srcID, it.uid); err != nil {
					return err
				}
			}
			src, dst = append(src, it.uid), append(dst, uid)
		}
		return nil
	})
	return src, dst, err
}

type copyItem struct {
	uid  uint32
	from string // the source file's path when it was linked or renamed
	p    placed
}

// copyFiles links or renames each message file into dstDir/cur. On an
// error the files placed so far are taken back (undoCopy).
func (s *Store) copyFiles(ctx context.Context, srcID int64, srcDir, dstDir string, uids []uint32, move bool) ([]copyItem, error) {
	var items []copyItem
	for _, uid := range uids {
		it, ok, err := s.copyOne(ctx, srcID, srcDir, dstDir, uid, move)
		if err != nil {
			s.undoCopy(dstDir, items, move)
			return nil, err
		}
		if ok {
			items = append(items, it)
		}
	}
	return items, nil
}

// copyOne links or renames the file of one message into dstDir/cur; ok is
// false for a message that is skipped.
//
// Skipped are the messages expunged meanwhile (the row is gone), which
// RFC 9051 §6.4.7 lets COPY skip, and, by the same rule, those whose file
// is gone from the source Maildir with its row still there: the Maildir is
// the truth in this store, so the message was deleted (by another program,
// or by an expunge whose row the index has not lost yet) and the next sync
// of the source expunges its row, just as SetFlags treats such a message.
// Failing the whole COPY instead would refuse a large COPY or MOVE because
// of one message another client deleted a moment before, with nothing the
// client could do but retry. The answer's COPYUID (RFC 4315) lists only
// the messages copied, so the client learns which ones were.
func (s *Store) copyOne(ctx context.Context, srcID int64, srcDir, dstDir string, uid uint32, move bool) (copyItem, bool, error) {
	var file, flags string
	var date, size int64
	err := s.rdb.QueryRowContext(ctx, `SELECT file, flags, internal_date, size FROM messages WHERE mailbox_id = ? AND uid = ?`, srcID, uid).
		Scan(&file, &flags, &date, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return copyItem{}, false, nil // expunged meanwhile
	}
	if err != nil {
		return copyItem{}, false, err
	}
	fl := strings.Fields(flags)
	info, err := s.infoFor(dstDir, fl)
	if err != nil {
		return copyItem{}, false, err
	}
	name := "cur/" + s.names.next() + sizeFields(filepath.Base(file)) + info
	from, err := placeFile(srcDir, file, filepath.Join(dstDir, name), move)
	if errors.Is(err, errVanished) {
		// Unless the whole source Maildir went (a RENAME meanwhile): that
		// is no deleted message, and must not answer OK with none copied.
		if _, serr := os.Stat(filepath.Join(srcDir, "cur")); serr != nil {
			return copyItem{}, false, fmt.Errorf("%w: %w", store.ErrNoMailbox, serr)
		}
		return copyItem{}, false, nil
	}
	if err != nil {
		return copyItem{}, false, classify(err)
	}
	p := placed{dir: dstDir, file: name, vsize: size, date: unixNano(date), flags: fl}
	return copyItem{uid: uid, from: from, p: p}, true, nil
}

// errVanished is a message file that is in neither new/ nor cur/ of its
// Maildir under any name.
var errVanished = errors.New("message file vanished")

// followTries bounds how often placeFile follows a file that is renamed
// under it: each try loses only to yet another rename in the moment
// between the lookup and the link.
const followTries = 4

// placeFile links (copy) or renames (move) a message file to dst and
// returns the path it came from. The name was read from the index, and a
// flag change (a STORE in another session, another program) may have
// renamed the file since: new/ to cur/, or another ":2," suffix. Then the
// link fails with ENOENT, and the file is found again by its unique base
// name and tried again.
func placeFile(srcDir, file, dst string, move bool) (string, error) {
	base := baseName(filepath.Base(file))
	from := filepath.Join(srcDir, file)
	for range followTries {
		err := linkOrRename(from, dst, move)
		if !errors.Is(err, os.ErrNotExist) {
			return from, err
		}
		now := findByBase(srcDir, base)
		if now == "" {
			// Gone, or moved from new/ to cur/ between the lookup's
			// two directory reads: one more look tells which.
			if now = findByBase(srcDir, base); now == "" {
				return "", errVanished
			}
		}
		if now == from {
			return "", err // the source is there: the target is not
		}
		from = now
	}
	return "", fmt.Errorf("%s renamed %d times while being copied: %w", base, followTries, os.ErrNotExist)
}

func linkOrRename(from, to string, move bool) error {
	if move {
		return renameFile(from, to)
	}
	return os.Link(from, to)
}

// findByBase returns the path of the message file whose base name is base,
// or "" when there is none.
func findByBase(dir, base string) string {
	if m := filesByBase(dir, base); len(m) > 0 {
		return m[0]
	}
	return ""
}

// undoCopy takes placed files back after a copy or move failed: a copy's
// links are removed, a move's files renamed back to where they came from,
// and the directories fsynced, so that the undo is as durable as the
// placing may have been. Whatever cannot be undone is logged: the next
// sync shows it (a copy left in the target, or a moved message in the
// target only).
func (s *Store) undoCopy(dstDir string, items []copyItem, move bool) {
	if len(items) == 0 {
		return
	}
	dirs := map[string]bool{filepath.Join(dstDir, "cur"): true}
	for _, it := range items {
		if err := undoOne(dstDir, it, move); err != nil {
			s.log.Error("copy: a failed copy or move could not be undone", "move", move, "from", it.from, "to", filepath.Join(dstDir, it.p.file), "err", err)
		}
		if move {
			dirs[filepath.Dir(it.from)] = true
		}
	}
	for d := range dirs {
		if err := s.dirSync.sync(d); err != nil {
			s.log.Warn("copy: undo of a failed copy or move may not be durable", "dir", d, "err", err)
		}
	}
}

// undoOne takes one placed file back. It is looked for by its base name
// if it is not where it was placed: no row names it yet, but another
// process may have seen it and changed its flags.
func undoOne(dstDir string, it copyItem, move bool) error {
	at := filepath.Join(dstDir, it.p.file)
	err := takeBack(at, it.from, move)
	if errors.Is(err, os.ErrNotExist) {
		if now := findByBase(dstDir, baseName(filepath.Base(at))); now != "" {
			err = takeBack(now, it.from, move)
		}
	}
	return err
}

func takeBack(at, from string, move bool) error {
	if move {
		return renameFile(at, from)
	}
	return os.Remove(at)
}

// sizeFields returns the ",S=…,W=…" part of a Maildir name, if any.
func sizeFields(name string) string {
	b := baseName(name)
	if i := strings.IndexByte(b, ','); i >= 0 {
		return b[i:]
	}
	return ""
}
