package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"posthorn/internal/store"
	"posthorn/internal/users"
)

// The queue keeps each body as a file DATA/queue/<id> (CRLF, as it will be
// sent) and the envelope as rows, written in the same order as a Maildir
// delivery: tmp file, fsync, rename, fsync directory, commit rows.

var _ store.Queue = (*Store)(nil)

func (s *Store) queueDir() string { return filepath.Join(s.dir, "queue") }

// validQueueID keeps ids usable as file names.
func validQueueID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Enqueue implements store.Queue.
func (s *Store) Enqueue(ctx context.Context, m store.QueuedMessage, body io.Reader) error {
	if !validQueueID(m.ID) || len(m.Rcpts) == 0 {
		return fmt.Errorf("local: enqueue: bad id %q or no recipients", m.ID)
	}
	dir := s.queueDir()
	path := filepath.Join(dir, m.ID)
	if err := writeQueueFile(dir, m.ID, body); err != nil {
		return fmt.Errorf("local: enqueue: %w", classify(err))
	}
	if err := s.dirSync.sync(dir); err != nil {
		os.Remove(path)
		return fmt.Errorf("local: enqueue: %w", classify(err))
	}
	err := s.write(context.WithoutCancel(ctx), func(tx *sql.Tx) error { return insertQueued(tx, m) })
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("local: enqueue: %w", classify(err))
	}
	return nil
}

// writeQueueFile writes body to tmp/, fsyncs it and renames it into dir.
func writeQueueFile(dir, id string, body io.Reader) error {
	tmp := filepath.Join(dir, "tmp", id)
	if err := os.MkdirAll(filepath.Dir(tmp), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, id))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func insertQueued(tx *sql.Tx, m store.QueuedMessage) error {
	_, err := tx.Exec(`INSERT INTO queue_messages(id, sender, envid, ret, utf8, created, size) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.From, m.EnvID, m.Ret, m.UTF8, m.Created.UnixNano(), m.Size)
	if err != nil {
		return uniqueErr(err)
	}
	for _, r := range m.Rcpts {
		if r.State == "" {
			r.State = store.RcptQueued
		}
		_, err := tx.Exec(`INSERT INTO queue_rcpts(message_id, addr, orcpt, notify, state, next_attempt) VALUES (?, ?, ?, ?, ?, ?)`,
			m.ID, r.Addr, r.ORcpt, strings.Join(r.Notify, ","), r.State, r.NextAttempt.UnixNano())
		if err != nil {
			return uniqueErr(err)
		}
	}
	return nil
}

const queueCols = `id, sender, envid, ret, utf8, created, size`

// QueueDue implements store.Queue.
func (s *Store) QueueDue(ctx context.Context, now time.Time, limit int) ([]store.QueuedMessage, error) {
	// Due: a queued recipient whose time has come, or a finished message
	// (nothing queued or held) whose DSN is to be retried.
	return s.queueQuery(ctx, `SELECT `+queueCols+` FROM queue_messages WHERE id IN (
		SELECT DISTINCT message_id FROM queue_rcpts WHERE state = 'queued' AND next_attempt <= ?)
		OR id IN (SELECT message_id FROM queue_rcpts GROUP BY message_id
			HAVING sum(state IN ('queued', 'held')) = 0 AND max(next_attempt) <= ?)
		ORDER BY created LIMIT ?`, now.UnixNano(), now.UnixNano(), limit)
}

// QueueList implements store.Queue.
func (s *Store) QueueList(ctx context.Context) ([]store.QueuedMessage, error) {
	return s.queueQuery(ctx, `SELECT `+queueCols+` FROM queue_messages ORDER BY created`)
}

// QueueCounts implements store.Queue.
func (s *Store) QueueCounts(ctx context.Context) (map[store.RcptState]int, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT state, count(*) FROM queue_rcpts GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	n := map[store.RcptState]int{}
	for rows.Next() {
		var st string
		var c int
		if err := rows.Scan(&st, &c); err != nil {
			return nil, err
		}
		n[store.RcptState(st)] = c
	}
	return n, rows.Err()
}

// QueueGet implements store.Queue.
func (s *Store) QueueGet(ctx context.Context, id string) (store.QueuedMessage, error) {
	ms, err := s.queueQuery(ctx, `SELECT `+queueCols+` FROM queue_messages WHERE id = ?`, id)
	if err != nil {
		return store.QueuedMessage{}, err
	}
	if len(ms) == 0 {
		return store.QueuedMessage{}, users.ErrNotFound
	}
	return ms[0], nil
}

func (s *Store) queueQuery(ctx context.Context, q string, args ...any) ([]store.QueuedMessage, error) {
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var out []store.QueuedMessage
	for rows.Next() {
		var m store.QueuedMessage
		var created int64
		if err := rows.Scan(&m.ID, &m.From, &m.EnvID, &m.Ret, &m.UTF8, &created, &m.Size); err != nil {
			rows.Close()
			return nil, err
		}
		m.Created = time.Unix(0, created)
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Rcpts, err = s.queueRcpts(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) queueRcpts(ctx context.Context, id string) ([]store.QueuedRcpt, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT addr, orcpt, notify, state, attempts, next_attempt, last_attempt,
		code, enhanced, text, remote, warned FROM queue_rcpts WHERE message_id = ? ORDER BY rowid`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.QueuedRcpt
	for rows.Next() {
		var r store.QueuedRcpt
		var notify string
		var next, last int64
		if err := rows.Scan(&r.Addr, &r.ORcpt, &notify, &r.State, &r.Attempts, &next, &last,
			&r.Code, &r.Enhanced, &r.Text, &r.Remote, &r.Warned); err != nil {
			return nil, err
		}
		if notify != "" {
			r.Notify = strings.Split(notify, ",")
		}
		r.NextAttempt, r.LastAttempt = time.Unix(0, next), time.Unix(0, last)
		out = append(out, r)
	}
	return out, rows.Err()
}

// QueueUpdate implements store.Queue.
func (s *Store) QueueUpdate(ctx context.Context, id string, rcpts []store.QueuedRcpt) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, r := range rcpts {
			err := affected(tx.Exec(`UPDATE queue_rcpts SET state = ?, attempts = ?, next_attempt = ?, last_attempt = ?,
				code = ?, enhanced = ?, text = ?, remote = ?, warned = ? WHERE message_id = ? AND addr = ?`,
				r.State, r.Attempts, r.NextAttempt.UnixNano(), r.LastAttempt.UnixNano(),
				r.Code, r.Enhanced, r.Text, r.Remote, r.Warned, id, r.Addr))
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// QueueDelete implements store.Queue. The rows go first: a crash between
// the two steps leaves an orphan file, never a row without its body.
func (s *Store) QueueDelete(ctx context.Context, id string) error {
	if !validQueueID(id) {
		return users.ErrNotFound
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		return affected(tx.Exec(`DELETE FROM queue_messages WHERE id = ?`, id))
	})
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.queueDir(), id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// QueueBody implements store.Queue. A body whose size does not match its
// record is damaged: it is moved to DATA/queue/corrupt/ and reported.
func (s *Store) QueueBody(ctx context.Context, id string) (store.Body, error) {
	m, err := s.QueueGet(ctx, id)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(s.queueDir(), id)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrCorrupt, err)
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != m.Size {
		f.Close()
		s.setAside(path)
		return nil, fmt.Errorf("%w: queue file %s is %d bytes, expected %d", store.ErrCorrupt, id, fi.Size(), m.Size)
	}
	return fileBody{f, m.Size}, nil
}

func (s *Store) setAside(path string) {
	dst := filepath.Join(s.queueDir(), "corrupt", filepath.Base(path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err == nil {
		if err := os.Rename(path, dst); err == nil {
			s.log.Error("queue file damaged, set aside", "file", dst)
		}
	}
}

type fileBody struct {
	*os.File
	size int64
}

func (b fileBody) Size() int64 { return b.size }

// staleAge is how old a queue file must be before SweepQueue treats it as
// a crash's leftover: younger ones may belong to an Enqueue in progress
// (in this process or in `posthorn sendmail` or `deliver`).
const staleAge = time.Hour

// SweepQueue removes what a crash can leave in DATA/queue: files in
// queue/tmp/ (written, never renamed) and message bodies that have no
// queue row (enqueued but never committed, or deleted halfway). Bodies go
// to queue/corrupt/ rather than away, in case someone wants them. Each is
// logged. The daemon calls it at start.
func (s *Store) SweepQueue(ctx context.Context) error {
	dir := s.queueDir()
	cutoff := time.Now().Add(-staleAge)
	tmps, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	for _, e := range tmps {
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			if os.Remove(filepath.Join(dir, "tmp", e.Name())) == nil {
				s.log.Warn("queue: removed a half-written file left by a crash", "file", e.Name())
			}
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !validQueueID(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if _, err := s.QueueGet(ctx, e.Name()); !errors.Is(err, users.ErrNotFound) {
			continue
		}
		dst := filepath.Join(dir, "corrupt", e.Name())
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if os.Rename(filepath.Join(dir, e.Name()), dst) == nil {
			s.log.Warn("queue: set aside a message body without a queue entry (left by a crash)", "file", dst)
		}
	}
	return nil
}
