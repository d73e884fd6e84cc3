package local

import (
	"context"
	"database/sql"
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
// rows committed in one transaction.
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
	items, err := s.copyFiles(ctx, srcID, srcDir, dstDir, uids, move)
	if err != nil {
		return 0, nil, nil, err
	}
	if err := s.dirSync.sync(filepath.Join(dstDir, "cur")); err != nil {
		return 0, nil, nil, classify(err)
	}
	var src, dst []uint32
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

type copyItem struct {
	uid uint32
	p   placed
}

// copyFiles links or renames each message file into dstDir/cur.
func (s *Store) copyFiles(ctx context.Context, srcID int64, srcDir, dstDir string, uids []uint32, move bool) ([]copyItem, error) {
	var items []copyItem
	for _, uid := range uids {
		var file, flags string
		var date, size int64
		err := s.rdb.QueryRowContext(ctx, `SELECT file, flags, internal_date, size FROM messages WHERE mailbox_id = ? AND uid = ?`, srcID, uid).
			Scan(&file, &flags, &date, &size)
		if errors.Is(err, sql.ErrNoRows) {
			continue // expunged meanwhile: RFC 9051 lets COPY skip it
		}
		if err != nil {
			return nil, err
		}
		fl := strings.Fields(flags)
		info, err := s.infoFor(dstDir, fl)
		if err != nil {
			return nil, err
		}
		name := "cur/" + s.names.next() + sizeFields(filepath.Base(file)) + info
		src, dst := filepath.Join(srcDir, file), filepath.Join(dstDir, name)
		if move {
			err = os.Rename(src, dst)
		} else {
			err = os.Link(src, dst)
		}
		if err != nil {
			return nil, classify(err)
		}
		items = append(items, copyItem{uid: uid, p: placed{dir: dstDir, file: name, vsize: size, date: unixNano(date), flags: fl}})
	}
	return items, nil
}

// sizeFields returns the ",S=…,W=…" part of a Maildir name, if any.
func sizeFields(name string) string {
	b := baseName(name)
	if i := strings.IndexByte(b, ','); i >= 0 {
		return b[i:]
	}
	return ""
}
