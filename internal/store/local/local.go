// Package local is the embedded mail store: an SQLite index beside Maildir++
// files, under one data directory:
//
//	DATA/posthorn.db              domains, accounts, aliases, mailbox index
//	DATA/mail/<domain>/<local>/   one Maildir++ per account (INBOX at the root,
//	                              folders as .Name/ sub-directories)
//
// Invariants:
//
//   - The Maildir is the truth about which messages exist; the index can be
//     rebuilt from it (Sync). Message files use LF line ends, as mutt and
//     Dovecot expect; the index records the CRLF size that IMAP reports.
//   - A delivery is durable before Deliver returns nil: file written to tmp/,
//     fsynced, renamed into new/, new/ fsynced, index row committed with
//     synchronous=FULL. Directory fsyncs and index commits are shared by
//     concurrent deliveries (group commit); none is skipped.
//   - Writes to the database are batched: whoever finds no commit under way
//     commits everything pending as one transaction, a savepoint per
//     request (group commit, writeQueue); readers use a separate pool and
//     never block it (WAL).
//   - The daemon copies each mailbox's UID state into a file beside its
//     messages and, at start, renews (new UIDVALIDITY) a mailbox whose
//     index is behind it (uidmarks.go): a lost -wal never makes a UID
//     mean two messages.
//   - A crash between rename and commit leaves a file without an index row;
//     Sync adds it. A crash before the rename leaves a file in tmp/, which is
//     never visible and is removed after 36 hours.
package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Options configure a Store.
type Options struct {
	Dir      string // data directory
	Hostname string // for Maildir file names
	Logger   *slog.Logger
}

// Store is the embedded backend. It is safe for concurrent use, and several
// processes (the daemon and admin commands) may open the same directory.
type Store struct {
	dir      string
	mailDir  string
	hostname string
	log      *slog.Logger
	panics   atomic.Int64 // recovered in the store's own goroutines

	wdb *sql.DB // one connection: all writes
	ws  *writeStmts
	rdb *readDB // read pool, with prepared statements

	wq    writeQueue
	stop  chan struct{} // closed by Close: pollers end
	close sync.Once

	dirSync *syncer
	// freshIndex: opening made the schema from nothing (see checkNotLost).
	freshIndex bool
	dcache     *dirCache
	snaps      snapshots
	names      nameSource
	kwLock     keywordLocks
	watch      watchers
	synced     syncMarks
	fsw        *dirWatch     // nil: no inotify here, directory mtimes are compared
	layout     atomic.Uint64 // bumped by every mailbox RENAME or DELETE

	marksRead atomic.Pointer[map[int64]uidMark] // by CheckUIDMarks, for KeepUIDMarks

	maxBoxes  int           // mailboxes per account (maxMailboxes; tests lower it)
	pollEvery time.Duration // watchPoll; tests raise it to see inotify alone at work
}

// Open opens (creating if needed) the store in opts.Dir.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("local: Options.Dir is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "mail"), 0o700); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	s := &Store{
		dir:       opts.Dir,
		mailDir:   filepath.Join(opts.Dir, "mail"),
		hostname:  opts.Hostname,
		log:       log,
		stop:      make(chan struct{}),
		dirSync:   newSyncer(),
		dcache:    newDirCache(opts.Dir),
		names:     newNameSource(opts.Hostname),
		maxBoxes:  maxMailboxes,
		pollEvery: watchPoll,
	}
	s.wq.idle.L = &s.wq.mu
	s.watch.poke = make(chan struct{}, 1)
	if err := s.openDB(); err != nil {
		return nil, err
	}
	if w, err := newDirWatch(s.mailDir); err != nil {
		log.Debug("mail directories are compared by mtime", "reason", err)
	} else {
		s.fsw = w
		go w.run(s.watch.wake)
	}
	if _, err := os.Stat(filepath.Join(s.dir, directoryFile)); errors.Is(err, os.ErrNotExist) {
		if err := s.saveDirectory(context.Background()); err != nil {
			log.Error("directory copy not saved", "err", err)
		}
	}
	return s, nil
}

// openDB opens the index, rebuilding it first when SQLite finds it
// damaged (recover.go).
func (s *Store) openDB() error {
	err := s.openIndex()
	if err == nil {
		err = s.checkNotLost()
	}
	if damaged(err) {
		if rerr := s.recoverIndex(filepath.Join(s.dir, "posthorn.db"), err); rerr != nil {
			return rerr
		}
		err = s.openIndex()
	}
	return err
}

func (s *Store) openIndex() error {
	path := filepath.Join(s.dir, "posthorn.db")
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return fmt.Errorf("local: %w", err)
	} else {
		f.Close()
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	var err error
	if s.wdb, err = sql.Open("sqlite", dsn); err != nil {
		return fmt.Errorf("local: open index: %w", err)
	}
	s.wdb.SetMaxOpenConns(1)
	fresh, err := migrateFresh(s.wdb)
	if err != nil {
		s.wdb.Close()
		return fmt.Errorf("local: %s: %w", path, err)
	}
	s.freshIndex = fresh
	if err := checkIndex(s.wdb); err != nil {
		s.wdb.Close()
		return fmt.Errorf("local: %s: %w", path, err)
	}
	if s.ws, err = prepareWrites(s.wdb); err != nil {
		s.wdb.Close()
		return fmt.Errorf("local: %s: %w", path, err)
	}
	q.Add("_pragma", "query_only(1)")
	rdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	s.rdb = &readDB{DB: rdb}
	if err != nil {
		s.wdb.Close()
		return fmt.Errorf("local: open index: %w", err)
	}
	// Idle connections are kept: opening one costs a file open, a schema
	// read and its prepared statements again (the default keeps only 2).
	s.rdb.SetMaxOpenConns(8)
	s.rdb.SetMaxIdleConns(8)
	return nil
}

// Close waits for pending writes and closes the database.
func (s *Store) Close() error {
	var err error
	s.close.Do(func() {
		s.closeWrites()
		close(s.stop)
		if s.fsw != nil {
			s.fsw.close()
		}
		s.ws.close()
		err = errors.Join(s.rdb.Close(), s.wdb.Close())
	})
	return err
}

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("local: store closed")

// writeReq is one unit of work for the writer.
type writeReq struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error // the result, or errLead
}

// writeQueue holds the requests waiting for a transaction. One caller at
// a time leads: it commits everything pending as one transaction (group
// commit), its own request included. When it is done and more requests
// arrived meanwhile, it hands the lead to the oldest of them, so nobody
// leads for long and a lone writer never waits for another goroutine.
type writeQueue struct {
	mu      sync.Mutex
	idle    sync.Cond // broadcast when nobody leads
	pending []writeReq
	leading bool
	closed  bool
}

// errLead tells a waiting caller that the lead is now its own.
var errLead = errors.New("local: lead the next commit")

// write runs fn in a write transaction, possibly shared with other
// callers' work, and returns when that transaction is committed.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
	req := writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	q := &s.wq
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.pending = append(q.pending, req)
	lead := !q.leading
	q.leading = true
	q.mu.Unlock()
	if lead {
		s.lead()
	}
	for {
		// Never abandoned for ctx: the caller must know the outcome.
		err := <-req.done
		if err != errLead {
			return err
		}
		s.lead()
	}
}

// maxBatch bounds the requests merged into one transaction.
const maxBatch = 256

// lead commits one batch of pending requests; only the leader calls it,
// and its own request is always in the batch (it is the oldest pending).
func (s *Store) lead() {
	q := &s.wq
	q.mu.Lock()
	n := min(len(q.pending), maxBatch)
	batch := q.pending[:n:n]
	q.pending = append([]writeReq(nil), q.pending[n:]...)
	q.mu.Unlock()

	defer s.handOff() // even after a panic in commit
	s.commit(batch)
}

// handOff passes the lead to the oldest pending request, or gives it up.
func (s *Store) handOff() {
	q := &s.wq
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) > 0 {
		q.pending[0].done <- errLead // buffered: never blocks
		return
	}
	q.leading = false
	q.idle.Broadcast()
}

// closeWrites refuses new writes and waits for the pending ones.
func (s *Store) closeWrites() {
	q := &s.wq
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for q.leading {
		q.idle.Wait()
	}
}

// commit runs a batch in one transaction, each request in a savepoint so
// that one failure does not undo the others.
//
// A panic in one request's function rolls the transaction back and fails
// the whole batch before it goes on up the leader's stack (where the
// session's recover logs and counts it), so no caller waits for ever.
func (s *Store) commit(batch []writeReq) {
	errs := make([]error, len(batch))
	tx, err := s.wdb.Begin()
	if err == nil {
		defer func() {
			if p := recover(); p != nil {
				_ = tx.Rollback()
				for _, r := range batch {
					r.done <- fmt.Errorf("local: index write: panic: %v", p)
				}
				panic(p)
			}
		}()
		for i, r := range batch {
			errs[i] = runSavepoint(tx, r)
		}
		err = tx.Commit()
	}
	for i, r := range batch {
		if err != nil {
			errs[i] = fmt.Errorf("local: index commit: %w", classify(err))
		}
		r.done <- errs[i]
	}
}

func runSavepoint(tx *sql.Tx, r writeReq) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if _, err := tx.Exec("SAVEPOINT w"); err != nil {
		return err
	}
	if err := r.fn(tx); err != nil {
		if _, rerr := tx.Exec("ROLLBACK TO w"); rerr != nil {
			return errors.Join(err, rerr)
		}
		_, _ = tx.Exec("RELEASE w")
		return err
	}
	_, err := tx.Exec("RELEASE w")
	return err
}
