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
// The marks are written every markEvery without fsync: they cost no
// flush on the delivery path, and a mark a little behind only narrows
// what is detected, never raises a false alarm (a mark is never ahead of
// a durable commit). A loss of only the last seconds before a crash can
// go unseen.

// markName is the mark's file in a mailbox's Maildir directory.
const markName = "posthorn-uidstate"

// markEvery is how often changed marks are written.
const markEvery = 2 * time.Second

// uidMark is a mailbox's UID state.
type uidMark struct {
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
	return fmt.Sprintf("uidvalidity %d\nuidnext %d\nhighestmodseq %d\n", m.validity, m.next, m.modseq)
}

// parseMark reads a mark; ok is false for anything else.
func parseMark(b []byte) (m uidMark, ok bool) {
	seen := 0
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return m, false
		}
		switch {
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
	return m, seen == 3
}

// markedBox is one mailbox as the marks see it.
type markedBox struct {
	id   int64
	dir  string
	mark uidMark
}

// markedBoxes lists every mailbox with its directory and UID state.
func (s *Store) markedBoxes(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]markedBox, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT m.id, a.maildir, m.name, m.uidvalidity, m.uidnext, m.highestmodseq
		FROM mailboxes m JOIN accounts a ON a.id = m.account_id`)
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
	boxes, err := s.markedBoxes(ctx, s.rdb)
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
		if !ok || !m.ahead(b.mark) {
			continue
		}
		s.log.Error("mailbox index is behind its UID mark: its commits were lost (a damaged or deleted posthorn.db-wal, or an index older than the mail); it gets a new UIDVALIDITY, and clients fetch it again",
			"dir", b.dir, "index", b.mark.String(), "mark", m.String())
		if err := s.renewMailbox(ctx, b.id); err != nil {
			return renewed, fmt.Errorf("renew mailbox %s: %w", b.dir, err)
		}
		if err := s.syncDir(ctx, b.id, b.dir); err != nil {
			return renewed, fmt.Errorf("index mailbox %s again: %w", b.dir, err)
		}
		renewed++
	}
	return renewed, nil
}

// renewMailbox gives mailbox id a new UIDVALIDITY and forgets its
// messages, which the next sync indexes again with new UIDs.
func (s *Store) renewMailbox(ctx context.Context, id int64) error {
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
		for _, q := range []string{`DELETE FROM messages WHERE mailbox_id = ?`, `DELETE FROM expunged WHERE mailbox_id = ?`} {
			if _, err := tx.Exec(q, id); err != nil {
				return err
			}
		}
		_, err = tx.Exec(`UPDATE mailboxes SET uidvalidity = ?, uidnext = 1, highestmodseq = 1 WHERE id = ?`, v, id)
		return err
	})
}

// KeepUIDMarks writes changed marks every markEvery until ctx ends; the
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
	var version int64 = -1
	t := time.NewTicker(markEvery)
	defer t.Stop()
	for {
		var v int64
		// data_version changes when another connection commits: nothing
		// to do on an idle server.
		if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err == nil && v != version {
			if err := s.writeMarks(ctx, conn, written); err == nil {
				version = v
			} else if ctx.Err() == nil {
				s.log.Warn("UID marks", "err", err)
			}
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

// writeMarks writes the marks that differ from written, and records them.
func (s *Store) writeMarks(ctx context.Context, conn *sql.Conn, written map[int64]uidMark) error {
	boxes, err := s.markedBoxes(ctx, conn)
	if err != nil {
		return err
	}
	live := make(map[int64]bool, len(boxes))
	for _, b := range boxes {
		live[b.id] = true
		if written[b.id] == b.mark {
			continue
		}
		if err := writeMark(b.dir, b.mark); err == nil {
			written[b.id] = b.mark
		}
	}
	for id := range written {
		if !live[id] {
			delete(written, id)
		}
	}
	return nil
}
