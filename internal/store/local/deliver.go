package local

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"posthorn/internal/store"
)

// placed is a message file written and renamed into its Maildir.
type placed struct {
	mailboxID int64
	dir       string // the Maildir (INBOX or folder)
	file      string // "new/…" or "cur/…:2,…"
	vsize     int64  // size with CRLF line ends
	date      time.Time
	flags     []string
	uid       uint32 // set once indexed
}

// deliverWorkers bounds the files written in parallel for one call.
const deliverWorkers = 4

// Deliver implements store.Mail. The steps are the durability argument:
// write to tmp/ and fsync, rename into new/ (or cur/ when flags are set),
// then fsync the directory and commit the index row (see settle). Only
// then nil.
func (s *Store) Deliver(ctx context.Context, ds []store.Delivery) []error {
	errs := make([]error, len(ds))
	ps := make([]placed, len(ds))
	if len(ds) == 1 { // the common case: no goroutine to hand over to
		ps[0], errs[0] = s.place(ctx, &ds[0])
	} else {
		s.placeAll(ctx, ds, ps, errs)
	}
	s.settle(ctx, ds, ps, errs)
	return errs
}

// settle makes placed files durable in their directories and commits
// their index rows. The two do not depend on each other, so they run at
// once: a delivery waits for its file's flush and then for one more, not
// for two in a row (on a disk where a flush takes most of a millisecond,
// that is a third of a lone session's time per message). A crash between
// the two leaves either a row without a file or a file without a row;
// the Maildir is the truth and the next sync of the mailbox mends both
// (the sender got no 250, so either way it sends again). The row is
// visible from its commit on, so a session may see the message a moment
// before the directory fsync ends; if that fsync fails, the message is
// expunged again.
func (s *Store) settle(ctx context.Context, ds []store.Delivery, ps []placed, errs []error) {
	dirErrs, dirPs := slices.Clone(errs), slices.Clone(ps) // index sets ps[i].uid meanwhile
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { // a panic here would end the daemon, not a session
			if r := recover(); r != nil {
				s.panics.Add(1)
				s.log.Error("deliver: panic in the directory sync", "err", fmt.Sprint(r), "stack", string(debug.Stack()))
				for i := range dirErrs {
					if dirErrs[i] == nil {
						dirErrs[i] = fmt.Errorf("deliver: panic in the directory sync: %v", r)
					}
				}
			}
		}()
		s.syncDirs(dirPs, dirErrs)
	}()
	s.index(ctx, ds, ps, errs)
	<-done
	var stale []placed
	for i := range errs {
		switch {
		case errs[i] != nil:
		case dirErrs[i] != nil: // indexed, but its file is gone again
			errs[i] = dirErrs[i]
			stale = append(stale, ps[i])
			// syncDirs removed it by the name it was given, unless a flag
			// change renamed it in the moment its row was visible (or
			// syncDirs panicked): look for it by its unique base name.
			removeByBase(ps[i].dir, baseName(filepath.Base(ps[i].file)))
		default:
			s.watch.notify(ps[i].mailboxID)
		}
	}
	if len(stale) > 0 {
		s.dropRows(ctx, stale)
	}
}

// removeByBase removes a message file from a Maildir whatever flags its
// name carries now.
func removeByBase(dir, base string) {
	for _, f := range filesByBase(dir, base) {
		_ = os.Remove(f)
	}
}

// dropRows expunges the rows of files that were indexed but then removed
// because their directory could not be made durable. Failing that, the
// next sync of the mailbox drops them, as for any file that vanished.
func (s *Store) dropRows(ctx context.Context, ps []placed) {
	err := s.write(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		for _, p := range ps {
			if err := tombstone(tx, p.mailboxID, p.uid); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("index rows of unsynced files stay until the next sync", "err", err)
	}
	for _, p := range ps {
		s.watch.notify(p.mailboxID)
	}
}

// placeAll writes several deliveries' files, deliverWorkers at a time.
func (s *Store) placeAll(ctx context.Context, ds []store.Delivery, ps []placed, errs []error) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, deliverWorkers)
	for i := range ds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			defer func() { // a panic here would end the daemon, not a session
				if r := recover(); r != nil {
					s.panics.Add(1)
					s.log.Error("deliver: panic writing a copy", "err", fmt.Sprint(r), "stack", string(debug.Stack()))
					errs[i] = fmt.Errorf("deliver: panic: %v", r)
				}
			}()
			ps[i], errs[i] = s.place(ctx, &ds[i])
		}()
	}
	wg.Wait()
}

// place writes one delivery's file and renames it into place.
func (s *Store) place(ctx context.Context, d *store.Delivery) (placed, error) {
	src := io.MultiReader(bytes.NewReader(d.Header), io.NewSectionReader(d.Body, 0, d.BodySize))
	return s.placeReader(ctx, d.Account, d.Mailbox, d.Flags, d.Date, src)
}

// placeReader writes a message read from src (CRLF) into a mailbox's
// Maildir: tmp/ file, fsync, rename into new/ (or cur/ with flags).
func (s *Store) placeReader(ctx context.Context, account, mailbox string, flags []string, date time.Time, src io.Reader) (placed, error) {
	id, dir, err := s.mailbox(ctx, account, mailbox)
	if err != nil {
		return placed{}, fmt.Errorf("deliver to %s %s: %w", account, canonicalMailbox(mailbox), err)
	}
	p := placed{mailboxID: id, dir: dir, date: date, flags: flags}
	if p.date.IsZero() {
		p.date = time.Now()
	}
	base := s.names.next()
	tmp := filepath.Join(dir, "tmp", base)
	n, bare, err := writeSynced(tmp, src, p.date)
	if errors.Is(err, os.ErrNotExist) { // Maildir removed behind our back: recreate
		if err = makeMaildir(dir, filepath.Base(dir)[0] == '.'); err == nil {
			n, bare, err = writeSynced(tmp, src, p.date)
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return placed{}, fmt.Errorf("deliver: %w", classify(err))
	}
	p.vsize = n + bare
	name := fmt.Sprintf("%s,S=%d,W=%d", base, n, p.vsize)
	p.file = "new/" + name
	if len(flags) > 0 {
		info, err := s.infoFor(dir, flags)
		if err != nil {
			_ = os.Remove(tmp)
			return placed{}, fmt.Errorf("deliver: %w", err)
		}
		p.file = "cur/" + name + info
	}
	if err := renameFile(tmp, filepath.Join(dir, p.file)); err != nil {
		_ = os.Remove(tmp)
		return placed{}, fmt.Errorf("deliver: %w", classify(err))
	}
	return p, nil
}

// fileWriters and copyBufs are reused from one delivery to the next: at a
// thousand messages a second, allocating them drove the garbage collector.
var (
	fileWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}
	copyBufs    = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

// writeSynced writes a message with LF line ends to a new file, fsyncs
// and closes it. It returns the file size and the number of LFs that read
// back as CRLF (see lfWriter): the CRLF size is their sum.
func writeSynced(path string, src io.Reader, date time.Time) (n, bare int64, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := fileWriters.Get().(*bufio.Writer)
	bw.Reset(f)
	defer func() { bw.Reset(nil); fileWriters.Put(bw) }()
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	lw := &lfWriter{w: bw}
	// Wrapped so that CopyBuffer uses buf: a MultiReader's WriteTo would
	// allocate its own.
	if _, err := io.CopyBuffer(lw, struct{ io.Reader }{src}, *buf); err != nil {
		return 0, 0, err
	}
	if err := lw.flush(); err != nil {
		return 0, 0, err
	}
	// INTERNALDATE is the file's mtime, as in Dovecot. Set before the
	// fsync, so that it is as durable as the content. (By path: Go's
	// Futimes goes through /proc, which a chroot may lack.)
	if err := os.Chtimes(path, date, date); err != nil {
		return 0, 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, 0, err
	}
	return lw.n, lw.bare, nil
}

// renameFile is os.Rename for a file known not to be a directory: without
// the Lstat of the target that os.Rename makes first.
func renameFile(from, to string) error {
	if err := syscall.Rename(from, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// syncDirs fsyncs each directory that received a file, once per directory.
func (s *Store) syncDirs(ps []placed, errs []error) {
	dirs := map[string][]int{}
	for i, p := range ps {
		if errs[i] == nil {
			d := filepath.Join(p.dir, filepath.Dir(p.file))
			dirs[d] = append(dirs[d], i)
		}
	}
	syncOne := func(d string, idx []int) {
		if err := s.dirSync.sync(d); err != nil {
			for _, i := range idx {
				errs[i] = fmt.Errorf("deliver: sync %s: %w", d, classify(err))
				_ = os.Remove(filepath.Join(ps[i].dir, ps[i].file))
			}
		}
	}
	if len(dirs) == 1 {
		for d, idx := range dirs {
			syncOne(d, idx)
		}
		return
	}
	var wg sync.WaitGroup
	for d, idx := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			syncOne(d, idx)
		}()
	}
	wg.Wait()
}

// index commits the index rows of every placed file; the caller notifies
// watchers. If that fails the files are removed again: the caller reports a temporary failure and the
// message must not then appear (a retry would duplicate it).
func (s *Store) index(ctx context.Context, ds []store.Delivery, ps []placed, errs []error) {
	var ok []int
	for i := range ps {
		if errs[i] == nil {
			ok = append(ok, i)
		}
	}
	if len(ok) == 0 {
		return
	}
	err := s.write(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		for _, i := range ok {
			uid, err := s.insertMessage(tx, ps[i])
			if err != nil {
				return err
			}
			ps[i].uid = uid
		}
		return nil
	})
	if err == nil {
		return
	}
	for _, i := range ok {
		errs[i] = fmt.Errorf("deliver to %s: index: %w", ds[i].Account, err)
		_ = os.Remove(filepath.Join(ps[i].dir, ps[i].file))
	}
}

// Internal dates are kept as nanoseconds since 1970 in an int64, which
// reaches from 1678 to 2262; a date outside (an APPEND's, a file's mtime)
// is kept as the nearest end rather than wrapped round to another century.
var (
	minDate = time.Unix(0, math.MinInt64)
	maxDate = time.Unix(0, math.MaxInt64)
)

func dateNanos(t time.Time) int64 {
	switch {
	case t.Before(minDate):
		return math.MinInt64
	case t.After(maxDate):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// insertMessage gives a file the next UID and MODSEQ of its mailbox and
// returns the UID. A row for the same file may exist already if a Sync saw
// the file first; then that row's UID is returned.
func (s *Store) insertMessage(tx *sql.Tx, p placed) (uint32, error) {
	base := baseName(filepath.Base(p.file))
	var uid uint32
	err := tx.Stmt(s.ws.insertMessage).QueryRow(base, p.file, strings.Join(p.flags, " "), dateNanos(p.date), p.vsize, p.mailboxID).Scan(&uid)
	if errors.Is(err, sql.ErrNoRows) { // there already
		err = tx.Stmt(s.ws.messageUID).QueryRow(p.mailboxID, base).Scan(&uid)
		return uid, err
	}
	if err != nil {
		return 0, err
	}
	_, err = tx.Stmt(s.ws.bumpMailbox).Exec(p.mailboxID)
	return uid, err
}
