package unixmail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// Lock timing, close to what mail(1), mutt and Dovecot expect.
const (
	lockWait  = 30 * time.Second // give up (a temporary failure) after this
	lockStale = 5 * time.Minute  // a dot-lock older than this is stale
)

var errLocked = errors.New("mbox is locked by another program")

// spoolMode says how appendMbox treats the file's ownership and locks.
type spoolMode struct {
	// chown: running as root for the system spool, a file made here is
	// given to its owner and an existing one must be the owner's.
	chown bool
	// dotLockMayFail: a dot-lock the directory does not let us make is
	// done without (the fcntl lock still holds), as Postfix local(8) does
	// for file targets (MBOX_DOT_LOCK_MAY_FAIL): a user may append to a
	// file of theirs in a directory they cannot write.
	dotLockMayFail bool
}

// appendMbox appends one message to an mbox file in mboxrd form (a
// "From " line, ">" added to every line that starts with >*"From ", a
// blank line after), under a dot-lock (FILE.lock) and an fcntl write lock,
// the pair mutt, mail(1) and Dovecot use. The file is created 0600 for
// owner. On any error the file is cut back to its old size: a half
// message never stays. It returns when the data is on stable storage.
//
// name is resolved inside dir: no symbolic link, in any part of it,
// leads out (a .forward file target "~/etc/x" with ~/etc a link to /etc
// made root create and chown /etc/x).
func appendMbox(dir *os.Root, name string, owner User, mode spoolMode, from string, when time.Time, msg io.Reader) error {
	f, unlock, err := lockSpool(dir, name, owner, mode)
	if err != nil {
		return err
	}
	defer unlock()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	start := fi.Size()
	if err := writeMboxMessage(f, start, from, when, msg); err != nil {
		if terr := f.Truncate(start); terr != nil {
			return fmt.Errorf("%w (and truncating back failed: %v)", err, terr)
		}
		return err
	}
	return f.Sync()
}

// lockSpool opens the spool file and takes the locks: first a mutex for
// this process's deliveries to the same file (fcntl locks do not exclude
// each other within one process, so the dot-lock was all that kept two
// of our goroutines apart, and two that both broke the same stale
// dot-lock both wrote at the same offset), then the dot-lock and fcntl
// pair. The returned func releases them all and closes f.
func lockSpool(dir *os.Root, name string, owner User, mode spoolMode) (*os.File, func(), error) {
	deadline := time.Now().Add(lockWait)
	release, err := spoolMutexes.lock(mutexKey(dir.Name(), name), deadline)
	if err != nil {
		return nil, nil, err
	}
	f, unlock, err := lockPair(dir, name, owner, mode, deadline)
	if err != nil {
		release()
		return nil, nil, err
	}
	return f, func() { unlock(); release() }, nil
}

// lockPair opens the spool file and takes the dot-lock and the fcntl
// lock. Programs disagree on the order (mutt takes fcntl then the
// dot-lock, mail(1) and Dovecot the dot-lock first), so neither is ever
// waited for while the other is held: when the second is busy, both are
// let go and the pair is tried again, until deadline.
func lockPair(dir *os.Root, name string, owner User, mode spoolMode, deadline time.Time) (*os.File, func(), error) {
	for {
		unlockDot, err := tryDotLock(dir, name)
		if errors.Is(err, fs.ErrPermission) && mode.dotLockMayFail {
			unlockDot, err = func() {}, nil
		}
		if err != nil && !errors.Is(err, errLocked) {
			return nil, nil, err
		}
		if err == nil {
			f, err := openSpool(dir, name, owner, mode.chown)
			if err != nil {
				unlockDot()
				return nil, nil, err
			}
			if err := tryFcntl(f); err == nil {
				return f, func() { f.Close(); unlockDot() }, nil // closing drops the fcntl lock
			} else if !errors.Is(err, errLocked) {
				f.Close()
				unlockDot()
				return nil, nil, err
			}
			f.Close()
			unlockDot()
		}
		if time.Now().After(deadline) {
			return nil, nil, errLocked
		}
		time.Sleep(time.Duration(10+rand.IntN(40)) * time.Millisecond)
	}
}

// openSpool opens (or creates) a spool file for appending, refusing
// anything but a plain file owned by owner with one link: the classic
// spool attacks (a symlink or hard link to /etc/passwd) write nowhere.
// Only a file made here, exclusively, is given to owner (mode 0600): an
// existing one, even empty, owned by anyone else is refused, or a user
// who may write the spool directory could leave an empty 0666 file for
// another's mail and read it.
func openSpool(dir *os.Root, name string, owner User, chown bool) (*os.File, error) {
	f, err := dir.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	made := err == nil
	if errors.Is(err, fs.ErrExist) {
		f, err = dir.OpenFile(name, os.O_RDWR|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	}
	if err != nil {
		return nil, err
	}
	if err := checkSpool(f, name, owner, chown, made); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkSpool checks (and, when made, gives away) an opened spool file.
func checkSpool(f *os.File, name string, owner User, chown, made bool) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return fmt.Errorf("%s is not a regular file", name)
	case st.Nlink != 1:
		return fmt.Errorf("%s has %d links: refused", name, st.Nlink)
	case !chown || int(st.Uid) == owner.UID:
	case !made:
		return fmt.Errorf("%s is owned by uid %d, not %s: refused", name, st.Uid, owner.Name)
	default:
		if err := f.Chown(owner.UID, owner.GID); err != nil {
			return err
		}
	}
	if made {
		return f.Chmod(0o600) // whatever the umask
	}
	return nil
}

// writeMboxMessage writes at offset start: a separating newline when the
// file does not end with a blank line, the From line, the escaped message
// with LF line ends, and a blank line.
func writeMboxMessage(f *os.File, start int64, from string, when time.Time, msg io.Reader) error {
	w := bufio.NewWriterSize(io.NewOffsetWriter(f, start), 64<<10)
	if start > 0 {
		tail := make([]byte, 2)
		n, _ := f.ReadAt(tail[:min(2, start)], max(0, start-2))
		switch {
		case n == 0 || tail[n-1] != '\n':
			w.WriteString("\n\n")
		case n == 2 && tail[0] != '\n':
			w.WriteString("\n")
		}
	}
	if from == "" {
		from = "MAILER-DAEMON"
	}
	fmt.Fprintf(w, "From %s %s\n", from, when.Format("Mon Jan _2 15:04:05 2006"))
	if err := escapeMboxrd(w, msg); err != nil {
		return err
	}
	return w.Flush()
}

var fromLine = regexp.MustCompile(`^>*From `)

// escapeMboxrd copies msg with LF line ends, adding ">" to lines that
// start with >*"From ", and ends with one blank line. A line longer than
// the buffer comes in pieces; a CR that ends a piece is held back until
// the next shows whether it ends the line.
func escapeMboxrd(w *bufio.Writer, msg io.Reader) error {
	r := bufio.NewReaderSize(msg, 64<<10)
	last := byte('\n')
	atStart, heldCR := true, false
	for {
		line, err := r.ReadSlice('\n')
		if heldCR && (len(line) == 0 || line[0] != '\n') {
			w.WriteByte('\r') // not a line end after all
			last = '\r'
		}
		heldCR = false
		if len(line) > 0 {
			if atStart && fromLine.Match(line) {
				w.WriteByte('>')
			}
			atStart = line[len(line)-1] == '\n'
			if atStart {
				line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
				w.Write(line)
				w.WriteByte('\n')
				last = '\n'
			} else {
				if line[len(line)-1] == '\r' && errors.Is(err, bufio.ErrBufferFull) {
					line, heldCR = line[:len(line)-1], true
				}
				w.Write(line)
				if len(line) > 0 {
					last = line[len(line)-1]
				}
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if last != '\n' {
		w.WriteByte('\n')
	}
	_, err := w.WriteString("\n")
	return err
}

// tryDotLock takes PATH.lock the way lockfile(1) does, with an exclusive
// create, breaking a lock older than lockStale. errLocked: someone has it.
func tryDotLock(dir *os.Root, name string) (func(), error) {
	lock := name + ".lock"
	for range 2 {
		f, err := dir.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { dir.Remove(lock) }, nil
		}
		if !os.IsExist(err) {
			return nil, fmt.Errorf("dot-lock %s: %w", filepath.Base(lock), err)
		}
		fi, err := dir.Lstat(lock)
		if err != nil || time.Since(fi.ModTime()) <= lockStale {
			break
		}
		removeIfSame(dir, lock, fi) // stale: try once more
	}
	return nil, errLocked
}

// removeIfSame removes the dot-lock lock only if it is still the file
// judged stale, as dotlockfile(1) and procmail check before unlinking:
// another program may have broken it and taken a fresh one since, and
// removing that by name let two writers in at once. The same inode is not
// enough (a file made just after another was removed often gets its
// inode), so its modification time must not have changed either. This
// narrows the race with another program to the moment between the last
// look and the unlink; it does not close it (deliveries of this process
// to one mailbox are serialised by spoolMutexes, so among them there is
// none).
func removeIfSame(dir *os.Root, lock string, stale fs.FileInfo) {
	fi, err := dir.Lstat(lock)
	if err == nil && os.SameFile(fi, stale) && fi.ModTime().Equal(stale.ModTime()) {
		dir.Remove(lock)
	}
}

// dotLock waits for the dot-lock alone (tests use it to play another
// program).
func dotLock(dir *os.Root, name string) (func(), error) {
	deadline := time.Now().Add(lockWait)
	for {
		unlock, err := tryDotLock(dir, name)
		if !errors.Is(err, errLocked) || time.Now().After(deadline) {
			return unlock, err
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// tryFcntl takes a POSIX write lock on the whole file without waiting. It
// is released when the file is closed.
func tryFcntl(f *os.File) error {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
		return errLocked
	}
	if err != nil {
		return fmt.Errorf("fcntl lock: %w", err)
	}
	return nil
}

// mutexKey names a mailbox for spoolMutexes: its path with the links of
// its directory resolved, so that two spellings of one file (an alias
// file target through a linked directory, and the same file named in a
// .forward) share one mutex. fcntl locks do not exclude goroutines of
// one process, and a file target may have no dot-lock, so this mutex is
// all that keeps two of our deliveries from writing at one offset. It
// only names the lock: the file is opened through the os.Root as ever.
func mutexKey(dir, name string) string {
	p := filepath.Join(dir, name)
	if d, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		return filepath.Join(d, filepath.Base(p))
	}
	return p
}

// spoolMutexes serialises this process's deliveries to one mailbox.
var spoolMutexes = &pathMutexes{m: map[string]*pathMutex{}}

// pathMutexes are mutexes by path that can be waited for with a deadline.
// An entry goes when its last user leaves: the map holds only the
// mailboxes being written or waited for.
type pathMutexes struct {
	mu sync.Mutex
	m  map[string]*pathMutex
}

type pathMutex struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

// lock takes the mutex of path, or fails with errLocked at deadline.
func (p *pathMutexes) lock(path string, deadline time.Time) (func(), error) {
	pm := p.ref(path)
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case pm.ch <- struct{}{}:
		return func() { <-pm.ch; p.unref(path) }, nil
	case <-t.C:
		p.unref(path)
		return nil, errLocked
	}
}

func (p *pathMutexes) ref(path string) *pathMutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	pm := p.m[path]
	if pm == nil {
		pm = &pathMutex{ch: make(chan struct{}, 1)}
		p.m[path] = pm
	}
	pm.refs++
	return pm
}

func (p *pathMutexes) unref(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pm := p.m[path]; pm != nil {
		if pm.refs--; pm.refs == 0 {
			delete(p.m, path)
		}
	}
}
