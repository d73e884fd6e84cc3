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
//   - All writes to the database go through one writer goroutine, which
//     batches them into one transaction with a savepoint each; readers use
//     a separate pool and never block it (WAL).
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

	wdb *sql.DB // one connection: all writes
	rdb *readDB // read pool, with prepared statements

	writes  chan writeReq
	stop    chan struct{}
	stopped chan struct{}
	close   sync.Once

	dirSync *syncer
	names   nameSource
	kwLock  keywordLocks
	watch   watchers
	synced  syncMarks
	layout  atomic.Uint64 // bumped by every mailbox RENAME or DELETE

	maxBoxes int // mailboxes per account (maxMailboxes; tests lower it)
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
		dir:      opts.Dir,
		mailDir:  filepath.Join(opts.Dir, "mail"),
		hostname: opts.Hostname,
		log:      log,
		writes:   make(chan writeReq, 256),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		dirSync:  newSyncer(),
		names:    newNameSource(opts.Hostname),
		maxBoxes: maxMailboxes,
	}
	if err := s.openDB(); err != nil {
		return nil, err
	}
	go s.writer()
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
	if err := migrate(s.wdb); err != nil {
		s.wdb.Close()
		return fmt.Errorf("local: %s: %w", path, err)
	}
	if err := checkIndex(s.wdb); err != nil {
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
	s.rdb.SetMaxOpenConns(8)
	return nil
}

// Close waits for pending writes and closes the database.
func (s *Store) Close() error {
	var err error
	s.close.Do(func() {
		close(s.stop)
		<-s.stopped
		s.dirSync.close()
		err = errors.Join(s.rdb.Close(), s.wdb.Close())
	})
	return err
}

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("local: store closed")

// writeReq is one unit of work for the writer goroutine.
type writeReq struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

// write runs fn in a write transaction, possibly shared with other
// callers' work, and returns when that transaction is committed.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
	req := writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done // never abandoned: the caller must know the outcome
}

// maxBatch bounds the requests merged into one transaction.
const maxBatch = 256

func (s *Store) writer() {
	defer close(s.stopped)
	for {
		var first writeReq
		select {
		case first = <-s.writes:
		case <-s.stop:
			s.drainWrites()
			return
		}
		batch := []writeReq{first}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-s.writes:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// drainWrites finishes requests that raced with Close.
func (s *Store) drainWrites() {
	for {
		select {
		case r := <-s.writes:
			s.commit([]writeReq{r})
		default:
			return
		}
	}
}

// commit runs a batch in one transaction, each request in a savepoint so
// that one failure does not undo the others.
func (s *Store) commit(batch []writeReq) {
	errs := make([]error, len(batch))
	tx, err := s.wdb.Begin()
	if err == nil {
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
