//go:build linux

package local

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// dirWatch follows, through inotify(7), the new/ and cur/ directories of
// the mailboxes whose listing the store keeps (sync.go), so that a sync
// knows which file names changed since the last one instead of reading
// the whole directory again because its mtime moved. Without it, every
// flag change, the store's own included, cost the next SELECT a listing
// of the directory (about 100 ms for 57,000 messages), and a second of
// polling per watched mailbox stood between another program's change and
// an IDLE session.
//
// The kernel queues an event before the system call that caused it
// returns, so a sync that first reads the queue empty sees every change
// completed before it began (take and clean drain the queue themselves; a
// background reader only wakes the store's poller). A lost event queue
// (IN_Q_OVERFLOW), too many names, a watch that cannot be added or a
// directory that goes away all fall back to listing the directory, and a
// full comparison still runs once a minute (fullSyncEvery).
type dirWatch struct {
	f  *os.File
	rc syscall.RawConn
	fd int // f's descriptor: f.Fd() would make it blocking

	mu     sync.Mutex
	closed bool
	wds    map[int32]wdOwner
	boxes  map[int64]*boxWatch
	failed map[int64]time.Time // add failed (ENOSPC: the watch limit): not tried again for a minute
	buf    []byte
	woken  []int64           // mailboxes with events since the reader last looked
	wake   func(ids []int64) // run's woke, for the events a sync drains
}

type wdOwner struct {
	id  int64
	sub string // "new" or "cur"
}

// boxWatch is one mailbox's watches and the names changed since the last
// take.
type boxWatch struct {
	dir    string
	wd     [2]int32 // new/, cur/
	names  map[string]struct{}
	relist bool // events were lost or too many: list the directory
	busy   bool // a sync took the names and has not finished applying them
}

// watchState is what take found for a mailbox.
type watchState int

const (
	notWatched   watchState = iota // compare directory mtimes (sync.go)
	unchanged                      // no event since the last take
	changedNames                   // these "new/…" or "cur/…" names changed
	relistDir                      // list the directory (still watched)
)

// maxWatchNames bounds the names kept per mailbox between syncs; beyond
// it the next sync lists the directory.
const maxWatchNames = 1024

const watchMask = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO |
	syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF | syscall.IN_ONLYDIR | syscall.IN_EXCL_UNLINK

// Network file systems do not report other machines' changes through
// inotify: mail there is found by mtimes, as before (statfs(2) f_type).
var networkFS = map[int64]bool{
	0x6969:     true, // NFS
	0x517b:     true, // SMB
	0xff534d42: true, // CIFS
	0xfe534d42: true, // SMB2
	0x65735546: true, // FUSE (sshfs, glusterfs, …)
	0x00c36400: true, // Ceph
	0x01021997: true, // 9P
	0x5346414f: true, // AFS
	0x47504653: true, // GPFS
	0x0bd00bd0: true, // Lustre
}

// newDirWatch returns a watcher for the Maildirs under root, or nil when
// inotify cannot serve them (network file system, no inotify).
func newDirWatch(root string) (*dirWatch, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(root, &st); err != nil {
		return nil, err
	}
	if networkFS[int64(st.Type)] {
		return nil, errors.New("network file system: changes are found by directory mtimes")
	}
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &dirWatch{
		f: f, rc: rc, fd: fd,
		wds:    map[int32]wdOwner{},
		boxes:  map[int64]*boxWatch{},
		failed: map[int64]time.Time{},
		buf:    make([]byte, 64<<10),
	}, nil
}

// run waits for events and calls woke with the mailboxes that had some,
// until close. It never consumes an event without applying it, so syncs
// draining the queue at the same time see everything.
func (w *dirWatch) run(woke func(ids []int64)) {
	w.mu.Lock()
	w.wake = woke
	w.mu.Unlock()
	for {
		var ids []int64
		err := w.rc.Read(func(fd uintptr) bool {
			w.mu.Lock()
			w.drainFD(int(fd))
			ids, w.woken = w.woken, nil
			w.mu.Unlock()
			return len(ids) > 0 // else wait until readable
		})
		if len(ids) > 0 {
			woke(ids)
		}
		if err != nil {
			return
		}
	}
}

func (w *dirWatch) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.f.Close()
}

// drain applies every queued event; w.mu is held.
func (w *dirWatch) drain() {
	if w.closed {
		return
	}
	w.rc.Control(func(fd uintptr) { w.drainFD(int(fd)) })
	// The events of other mailboxes read here must wake them now: the
	// reader waits for the queue to be readable again, which it may not
	// be for a long time, and a watcher of such a mailbox missed its
	// notice (TestWatchManyMailboxes failed now and then).
	if len(w.woken) > 0 && w.wake != nil {
		ids := w.woken
		w.woken = nil
		go w.wake(ids)
	}
}

func (w *dirWatch) drainFD(fd int) {
	for {
		n, err := syscall.Read(fd, w.buf)
		if err == syscall.EINTR {
			continue
		}
		if n <= 0 || err != nil {
			return // EAGAIN: the queue is empty
		}
		w.apply(w.buf[:n])
	}
}

// apply records a buffer of inotify events.
func (w *dirWatch) apply(b []byte) {
	for len(b) >= syscall.SizeofInotifyEvent {
		ev := (*syscall.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := syscall.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			return
		}
		name := b[syscall.SizeofInotifyEvent:end]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i] // NUL-padded
		}
		w.event(ev.Wd, ev.Mask, string(name))
		b = b[end:]
	}
}

func (w *dirWatch) event(wd int32, mask uint32, name string) {
	if mask&syscall.IN_Q_OVERFLOW != 0 {
		for id, b := range w.boxes {
			b.relist, b.names = true, nil
			w.woken = append(w.woken, id)
		}
		return
	}
	o, ok := w.wds[wd]
	if !ok {
		return
	}
	b := w.boxes[o.id]
	if mask&(syscall.IN_IGNORED|syscall.IN_DELETE_SELF|syscall.IN_MOVE_SELF|syscall.IN_UNMOUNT) != 0 {
		// The directory went away (or was moved): stop trusting events
		// for this mailbox; its next sync lists it, by mtimes.
		w.removeLocked(o.id)
		w.woken = append(w.woken, o.id)
		return
	}
	if b == nil || name == "" || name[0] == '.' {
		return
	}
	w.woken = append(w.woken, o.id)
	if b.relist {
		return
	}
	if b.names == nil {
		b.names = map[string]struct{}{}
	}
	b.names[o.sub+"/"+name] = struct{}{}
	if len(b.names) > maxWatchNames {
		b.relist, b.names = true, nil
	}
}

// add makes sure mailbox id's new/ and cur/ under dir are watched, and
// reports whether they are. Call it before listing the directory: events
// from then on are kept, and the listing covers what came before.
func (w *dirWatch) add(id int64, dir string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	if b := w.boxes[id]; b != nil && b.dir == dir {
		return true
	}
	if t, ok := w.failed[id]; ok && time.Since(t) < time.Minute {
		return false
	}
	delete(w.failed, id)
	var wd [2]int32
	for i, sub := range []string{"new", "cur"} {
		n, err := syscall.InotifyAddWatch(w.fd, filepath.Join(dir, sub), watchMask)
		if err != nil {
			if i == 1 {
				if _, owned := w.wds[wd[0]]; !owned {
					syscall.InotifyRmWatch(w.fd, uint32(wd[0]))
				}
			}
			w.removeLocked(id)
			if len(w.failed) < 10000 {
				w.failed[id] = time.Now()
			}
			return false
		}
		wd[i] = int32(n)
	}
	// A RENAME keeps the directories' inodes, and so their wds: the
	// names gathered so far stay true. Other directories start afresh.
	if old := w.boxes[id]; old != nil && old.wd != wd {
		w.removeLocked(id, wd[0], wd[1])
	}
	for i, sub := range []string{"new", "cur"} {
		if o, ok := w.wds[wd[i]]; ok && o.id != id {
			w.removeLocked(o.id, wd[0], wd[1]) // its directory is now id's (deleted meanwhile)
		}
		w.wds[wd[i]] = wdOwner{id: id, sub: sub}
	}
	b := w.boxes[id]
	if b == nil {
		b = &boxWatch{busy: true} // the caller's sync settles it
		w.boxes[id] = b
	}
	b.dir, b.wd = dir, wd
	return true
}

// removeLocked stops watching mailbox id, except the wds in keep; w.mu
// is held.
func (w *dirWatch) removeLocked(id int64, keep ...int32) {
	b := w.boxes[id]
	if b == nil {
		return
	}
	delete(w.boxes, id)
	for _, wd := range b.wd {
		if o, ok := w.wds[wd]; ok && o.id == id {
			delete(w.wds, wd)
			if !w.closed && !slices.Contains(keep, wd) {
				syscall.InotifyRmWatch(w.fd, uint32(wd))
			}
		}
	}
}

// remove stops watching mailbox id (its listing was dropped).
func (w *dirWatch) remove(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.removeLocked(id)
}

// take returns what changed in mailbox id at dir since the last take,
// and forgets it. Until settle, the mailbox does not count as clean: the
// caller has yet to bring the index up to date.
func (w *dirWatch) take(id int64, dir string) (watchState, []string) {
	return w.takeNames(id, dir, true)
}

// more returns the names reported for mailbox id since take, for the sync
// that took them (the mailbox stays busy).
func (w *dirWatch) more(id int64, dir string) (watchState, []string) {
	return w.takeNames(id, dir, false)
}

func (w *dirWatch) takeNames(id int64, dir string, begin bool) (watchState, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.drain()
	b := w.boxes[id]
	if w.closed || b == nil || b.dir != dir {
		return notWatched, nil
	}
	if begin {
		b.busy = true
	}
	switch {
	case b.relist:
		b.relist, b.names = false, nil
		return relistDir, nil
	case len(b.names) == 0:
		return unchanged, nil
	}
	names := make([]string, 0, len(b.names))
	for n := range b.names {
		names = append(names, n)
	}
	b.names = nil
	return changedNames, names
}

// settle ends the sync that took mailbox id's names.
func (w *dirWatch) settle(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b := w.boxes[id]; b != nil {
		b.busy = false
	}
}

// clean reports whether mailbox id at dir is watched and has not changed
// since the last sync.
func (w *dirWatch) clean(id int64, dir string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.drain()
	b := w.boxes[id]
	return !w.closed && b != nil && b.dir == dir && !b.busy && !b.relist && len(b.names) == 0
}

// watching reports whether mailbox id at dir is watched, without reading
// the queue: the poller leaves such mailboxes to run's wake-ups.
func (w *dirWatch) watching(id int64, dir string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.boxes[id]
	return !w.closed && b != nil && b.dir == dir
}
