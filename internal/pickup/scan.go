package pickup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Submitter takes one dropped message. uid is the owner of the drop file;
// it is trusted like the peer of the sendmail socket. A permanent error
// means the message was refused and its sender told; the file goes.
type Submitter interface {
	SubmitDropped(ctx context.Context, uid int, env Envelope, msg io.Reader) error
}

// IsPermanent is implemented by errors that retrying cannot fix.
type IsPermanent interface{ Permanent() bool }

// Options configure a Scanner.
type Options struct {
	Dir       string // the maildrop
	Submitter Submitter
	Poll      time.Duration // default 1s
	MaxSize   int64         // larger drop files are set aside
	Logger    *slog.Logger
}

// Scanner picks dropped files up and hands them to the Submitter.
type Scanner struct {
	opts   Options
	log    *slog.Logger
	retry  map[string]time.Time // file → not before
	panics atomic.Int64
}

// Panics counts the files whose handling panicked; anything but 0 is a bug.
func (s *Scanner) Panics() int64 { return s.panics.Load() }

// New creates the maildrop directory (mode 1733) and returns a Scanner.
func New(opts Options) (*Scanner, error) {
	if opts.Dir == "" || opts.Submitter == nil {
		return nil, errors.New("pickup: Dir and Submitter are required")
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := MakeDir(opts.Dir); err != nil {
		return nil, err
	}
	return &Scanner{opts: opts, log: opts.Logger, retry: map[string]time.Time{}}, nil
}

// MakeDir creates the maildrop with mode 1733 (sticky, writable by all,
// not listable).
func MakeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o1733|os.ModeSticky)
}

// Run scans until ctx ends.
func (s *Scanner) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	for {
		s.Scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Scan handles every file now in the maildrop once.
func (s *Scanner) Scan(ctx context.Context) {
	ents, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		s.log.Error("pickup scan", "err", err)
		return
	}
	s.prune(ents)
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || ctx.Err() != nil {
			continue // being written, or a leftover of a crashed sendmail
		}
		if t, ok := s.retry[name]; ok && time.Now().Before(t) {
			continue
		}
		s.take(ctx, name)
	}
}

// prune forgets the retry times of files no longer in the maildrop (a
// user may remove a deferred file of theirs).
func (s *Scanner) prune(ents []os.DirEntry) {
	if len(s.retry) == 0 {
		return
	}
	here := make(map[string]bool, len(ents))
	for _, e := range ents {
		here[e.Name()] = true
	}
	for name := range s.retry {
		if !here[name] {
			delete(s.retry, name)
		}
	}
}

// take submits one file and removes it, or schedules a retry.
func (s *Scanner) take(ctx context.Context, name string) {
	path := filepath.Join(s.opts.Dir, name)
	err := s.submitSafely(ctx, path)
	var p IsPermanent
	switch {
	case err == nil || errors.As(err, &p) && p.Permanent():
		if err != nil {
			s.log.Info("dropped message refused", "file", name, "err", err)
		}
		delete(s.retry, name)
		if rerr := os.Remove(path); rerr != nil {
			s.log.Error("pickup remove", "file", name, "err", rerr)
		}
	case errors.Is(err, ErrFormat):
		s.setAside(path, err)
	default:
		s.log.Warn("dropped message deferred", "file", name, "err", err)
		s.retry[name] = time.Now().Add(time.Minute)
	}
}

// submitSafely is submit with a panic turned into ErrFormat: the file is
// set aside rather than left to end the daemon again at every start (any
// local user can write one).
func (s *Scanner) submitSafely(ctx context.Context, path string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			s.log.Error("pickup panic", "file", filepath.Base(path), "err", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: panic: %v", ErrFormat, r)
		}
	}()
	return s.submit(ctx, path)
}

// submit opens the file safely and hands it over.
func (s *Scanner) submit(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok || !fi.Mode().IsRegular() || st.Nlink != 1:
		return fmt.Errorf("%w: not a plain file", ErrFormat)
	case s.opts.MaxSize > 0 && fi.Size() > s.opts.MaxSize+maxHeader:
		return fmt.Errorf("%w: too large", ErrFormat)
	}
	env, msg, err := Read(f)
	if err != nil {
		return err
	}
	return s.opts.Submitter.SubmitDropped(ctx, int(st.Uid), env, msg)
}

// setAside moves a file that cannot be read as a drop file out of the way,
// to maildrop-corrupt/ under a name no earlier one has (a second
// directory of the same name could not replace the first, and an earlier
// file must not be overwritten). A file that can be neither moved nor
// removed (a non-empty directory, when maildrop-corrupt cannot be made)
// is tried again after stuckRetry, not at every scan: it flooded the log
// every second.
func (s *Scanner) setAside(path string, why error) {
	name := filepath.Base(path)
	corrupt := filepath.Join(filepath.Dir(s.opts.Dir), "maildrop-corrupt")
	if err := os.MkdirAll(corrupt, 0o700); err == nil {
		dst, ok := freeName(corrupt, name)
		if ok {
			err = os.Rename(path, dst)
		}
		if ok && err == nil {
			delete(s.retry, name)
			s.log.Error("bad file in the maildrop set aside", "file", dst, "err", why)
			return
		}
	}
	if err := os.Remove(path); err != nil {
		s.retry[name] = time.Now().Add(stuckRetry)
		s.log.Error("bad file in the maildrop can be neither set aside nor removed; tried again later", "file", path, "err", why, "remove_err", err, "retry_in", stuckRetry)
		return
	}
	delete(s.retry, name)
	s.log.Error("bad file in the maildrop removed", "file", path, "err", why)
}

// stuckRetry is how long a maildrop file that could not be set aside
// waits for the next try.
const stuckRetry = 10 * time.Minute

// freeName returns dir/name, or dir/name.N (the name cut to 200 octets)
// for the first N up to 20 that is not taken; ok is false when none is
// free or can be told free. It must end whatever the name: a user's
// 255-octet name made every name.N too long for the file system, and a
// loop that waited for "does not exist" never returned.
func freeName(dir, name string) (string, bool) {
	short := name
	if len(short) > 200 {
		short = short[:200]
	}
	for n := 0; n <= 20; n++ {
		c := name
		if n > 0 {
			c = short + "." + strconv.Itoa(n)
		}
		if _, err := os.Lstat(filepath.Join(dir, c)); errors.Is(err, os.ErrNotExist) {
			return filepath.Join(dir, c), true
		}
	}
	return "", false
}
