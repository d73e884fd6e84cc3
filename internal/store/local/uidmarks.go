package local

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// UID marks: the index is the only record of which UIDs a mailbox has
// given out. If it goes back in time (its -wal file lost or damaged
// after an unclean stop, which SQLite cannot tell from a clean database;
// posthorn.db restored from a backup older than the Maildirs), the next
// message would get a UID that clients already know for another one,
// under the same UIDVALIDITY, and their caches would show the wrong
// message for it (RFC 9051 §2.3.1.1 forbids it). So the daemon copies
// each mailbox's UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ, as committed,
// into a small file in its Maildir directory (like Dovecot's
// dovecot-uidlist), and at start compares: an index behind its mark has
// lost commits, and that mailbox gets a new UIDVALIDITY and is indexed
// again from its files, so that clients start it afresh.
//
// The marks are written every markEvery without fsync, for the mailboxes
// changed meanwhile (and all of them every markFullEvery, for changes by
// other processes: the deliver LDA, admin commands): they cost no flush
// on the delivery path, and a mark a little behind only narrows what is
// detected, never raises a false alarm (a mark is never ahead of a
// durable commit). A loss of only the last seconds before a crash can go
// unseen. A mark names its mailbox's id: one that a RENAME moved under
// another mailbox's directory while it was being written is not taken
// for that mailbox's.

// markName is the mark's file in a mailbox's Maildir directory.
const markName = "posthorn-uidstate"

// markEvery is how often the marks of changed mailboxes are written;
// markFullEvery, how often every mailbox is looked at.
const (
	markEvery     = 2 * time.Second
	markFullEvery = time.Minute
)

// uidMark is a mailbox's UID state.
type uidMark struct {
	id             int64 // the mailbox's row
	validity, next uint32
	modseq         uint64
}

// ahead reports whether m shows a state the index (cur) never reached
// after it: a newer mailbox, or more UIDs or mod-sequences given out.
func (m uidMark) ahead(cur uidMark) bool {
	if m.validity != cur.validity {
		return m.validity > cur.validity
	}
	return m.next > cur.next || m.modseq > cur.modseq
}

func (m uidMark) String() string {
	return fmt.Sprintf("mailbox %d\nuidvalidity %d\nuidnext %d\nhighestmodseq %d\n", m.id, m.validity, m.next, m.modseq)
}

// parseMark reads a mark; ok is false for anything else.
func parseMark(b []byte) (m uidMark, ok bool) {
	seen := 0
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return m, false
		}
		switch {
		case k == "mailbox":
			m.id = int64(n)
		case k == "uidvalidity" && n <= 1<<32-1:
			m.validity = uint32(n)
		case k == "uidnext" && n <= 1<<32-1:
			m.next = uint32(n)
		case k == "highestmodseq":
			m.modseq = n
		default:
			return m, false
		}
		seen++
	}
	return m, seen == 4
}

// markedBox is one mailbox as the marks see it.
type markedBox struct {
	id   int64
	dir  string
	mark uidMark
}

// markedBoxes lists mailboxes with their directory and UID state: those
// of ids, or every one when ids is nil.
func (s *Store) markedBoxes(ctx context.Context, q querier, ids []int64) ([]markedBox, error) {
	const query = `SELECT m.id, a.maildir, m.name, m.uidvalidity, m.uidnext, m.highestmodseq
		FROM mailboxes m JOIN accounts a ON a.id = m.account_id`
	if ids == nil {
		return s.scanMarked(q.QueryContext(ctx, query))
	}
	var out []markedBox
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		bs, err := s.scanMarked(q.QueryContext(ctx, query+` WHERE m.id IN (?`+strings.Repeat(",?", len(chunk)-1)+`)`, args...))
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}

func (s *Store) scanMarked(rows *sql.Rows, err error) ([]markedBox, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []markedBox
	for rows.Next() {
		var b markedBox
		var rel, name string
		if err := rows.Scan(&b.id, &rel, &name, &b.mark.validity, &b.mark.next, &b.mark.modseq); err != nil {
			return nil, err
		}
		b.mark.id = b.id
		if b.dir, err = s.dirOf(rel, name); err == nil {
			out = append(out, b)
		}
	}
	return out, rows.Err()
}

// writeMark replaces dir's mark (no fsync: see above). A mailbox whose
// directory is gone has none.
func writeMark(dir string, m uidMark) error {
	tmp := filepath.Join(dir, markName+".tmp")
	if err := os.WriteFile(tmp, []byte(m.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, markName))
}

// CheckUIDMarks compares every mailbox with its mark, before the daemon
// serves anyone. A mailbox whose index is behind its mark gets a new
// UIDVALIDITY and is indexed again from its Maildir (flags come back
// from the file names), with an error in the log. It returns how many
// mailboxes were renewed.
func (s *Store) CheckUIDMarks(ctx context.Context) (int, error) {
	boxes, err := s.markedBoxes(ctx, s.rdb, nil)
	if err != nil {
		return 0, err
	}
	renewed := 0
	current := map[int64]uidMark{} // marks that need no rewriting
	defer func() { s.marksRead.Store(&current) }()
	for _, b := range boxes {
		raw, err := os.ReadFile(filepath.Join(b.dir, markName))
		if err != nil {
			continue // none yet (an older version, a new mailbox)
		}
		m, ok := parseMark(raw)
		if ok && m == b.mark {
			current[b.id] = m
		}
		if !ok || m.id != b.id || !m.ahead(b.mark) {
			continue // another mailbox's (moved here by a RENAME), or not ahead
		}
		s.log.Error("mailbox index is behind its UID mark: its commits were lost (a damaged or deleted posthorn.db-wal, or an index older than the mail); it gets a new UIDVALIDITY, and clients fetch it again",
			"dir", b.dir, "index", b.mark.String(), "mark", m.String())
		if err := s.renewMailbox(ctx, b.id, m.validity); err != nil {
			return renewed, fmt.Errorf("renew mailbox %s: %w", b.dir, err)
		}
		if err := s.syncDir(ctx, b.id, b.dir); err != nil {
			return renewed, fmt.Errorf("index mailbox %s again: %w", b.dir, err)
		}
		renewed++
	}
	return renewed, nil
}

// renewMailbox gives mailbox id a new UIDVALIDITY, above the index's
// last (which went back too) and above seen, the one its mark shows, in
// case the clock did as well; and it forgets the mailbox's messages,
// which the next sync indexes again with new UIDs.
func (s *Store) renewMailbox(ctx context.Context, id int64, seen uint32) error {
	defer func() { // nothing cached of the old state may be served
		s.snaps.drop(id)
		s.synced.forget(id)
		s.synced.drop(id)
	}()
	return s.write(ctx, func(tx *sql.Tx) error {
		v, err := nextUIDValidity(tx)
		if err != nil {
			return err
		}
		if v <= seen && seen < 1<<32-1 {
			v = seen + 1
			if _, err := tx.Exec(`UPDATE meta SET value = ? WHERE key = 'uidvalidity'`, v); err != nil {
				return err
			}
		}
		for _, q := range []string{`DELETE FROM messages WHERE mailbox_id = ?`, `DELETE FROM expunged WHERE mailbox_id = ?`} {
			if _, err := tx.Exec(q, id); err != nil {
				return err
			}
		}
		_, err = tx.Exec(`UPDATE mailboxes SET uidvalidity = ?, uidnext = 1, highestmodseq = 1 WHERE id = ?`, v, id)
		return err
	})
}

// KeepUIDMarks writes the marks of changed mailboxes every markEvery,
// and looks at every mailbox every markFullEvery, until ctx ends; the
// daemon runs it (one writer per data directory).
func (s *Store) KeepUIDMarks(ctx context.Context) {
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		s.log.Error("UID marks not kept", "err", err)
		return
	}
	defer conn.Close()
	written := map[int64]uidMark{}
	if read := s.marksRead.Swap(nil); read != nil {
		written = *read // found up to date by CheckUIDMarks
	}
	s.watch.takeChanged() // from now on, changes are recorded
	var version int64 = -1
	var lastFull time.Time
	t := time.NewTicker(markEvery)
	defer t.Stop()
	for {
		var err error
		if time.Since(lastFull) >= markFullEvery {
			// data_version changes when another connection commits:
			// nothing to do on an idle server.
			var v int64
			if err = conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err == nil && v != version {
				s.watch.takeChanged()
				if err = s.writeMarks(ctx, conn, nil, written); err == nil {
					version = v
				}
			}
			lastFull = time.Now()
		} else if ids := s.watch.takeChanged(); len(ids) > 0 {
			err = s.writeMarks(ctx, conn, ids, written)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("UID marks", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// writeMarks writes the marks of ids (nil: every mailbox) that differ
// from written, and records them. A RENAME or DELETE under way, or begun
// meanwhile, ends the pass (the mailboxes not written stay changed): the
// directories listed may no longer be theirs, and a mark written into a
// directory being removed would make its removal fail.
func (s *Store) writeMarks(ctx context.Context, conn *sql.Conn, ids []int64, written map[int64]uidMark) error {
	layout := s.layout.Load()
	if layout%2 == 1 {
		s.requeue(ids, nil)
		return nil
	}
	boxes, err := s.markedBoxes(ctx, conn, ids)
	if err != nil {
		s.requeue(ids, nil)
		return err
	}
	live := make(map[int64]bool, len(boxes))
	for i, b := range boxes {
		live[b.id] = true
		if written[b.id] == b.mark {
			continue
		}
		if s.layout.Load() != layout {
			s.requeue(nil, boxes[i:])
			return nil
		}
		if err := writeMark(b.dir, b.mark); err == nil {
			written[b.id] = b.mark
		}
	}
	if ids == nil {
		for id := range written {
			if !live[id] {
				delete(written, id)
			}
		}
	}
	return nil
}

// requeue records mailboxes as changed again, for the next pass.
func (s *Store) requeue(ids []int64, boxes []markedBox) {
	for _, b := range boxes {
		ids = append(ids, b.id)
	}
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	if s.watch.changed == nil {
		return
	}
	for _, id := range ids {
		s.watch.changed[id] = struct{}{}
	}
}
