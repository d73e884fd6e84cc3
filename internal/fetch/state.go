package fetch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// State is what one source remembers between runs: an append-only
// journal of JSON records, replayed at open. It is safe for concurrent
// use (one IMAP connection per folder shares it). See the package doc for
// what is written when, and which writes are fsynced.
type State struct {
	mu      sync.Mutex
	path    string
	f       *os.File // journal, opened for append
	lock    *os.File // holds the flock
	records int      // records in the journal file
	boxes   map[string]*box
	uidls   map[string]bool // POP3 UIDL → true: delivered, false: skipped
	pending map[string]Pending
	unread  map[string]int // message id → passes that could not read it
}

// maxUnreadIDs bounds State.unread: ids of messages that then vanished
// are never cleared otherwise. Past it, the counts start again.
const maxUnreadIDs = 1000

// box is the state of one IMAP folder.
type box struct {
	uidValidity uint32
	last        uint32            // every UID ≤ last is handled
	done        map[uint32]string // delivered UID → fingerprint, while on the server
	skipped     map[uint32]bool   // left on the server for good
	legacy      map[string]bool   // fingerprints delivered under an older UIDVALIDITY
}

// Pending is a delivery that was begun and may not have finished.
type Pending struct {
	ID    string
	Since time.Time // written before delivery started
	FP    string    // IMAP fingerprint, "" for POP3
}

// record is one line of the journal.
type record struct {
	Op      string   `json:"op"`
	Version int      `json:"version,omitempty"`
	Box     string   `json:"box,omitempty"`
	UV      uint32   `json:"uv,omitempty"`
	Last    uint32   `json:"last,omitempty"`
	UID     uint32   `json:"uid,omitempty"`
	UIDs    []uint32 `json:"uids,omitempty"`
	UIDL    string   `json:"uidl,omitempty"`
	UIDLs   []string `json:"uidls,omitempty"`
	ID      string   `json:"id,omitempty"`
	FP      string   `json:"fp,omitempty"`
	T       int64    `json:"t,omitempty"` // unix nanoseconds
	N       int      `json:"n,omitempty"`
}

// Journal operations.
const (
	opHeader    = "state"   // version: first record of a file
	opBox       = "box"     // box, uv, last: a folder (a new uv makes done fingerprints legacy)
	opPending   = "pending" // id, t, fp: delivery begins (fsynced)
	opDone      = "done"    // box+uid+fp or uidl; id: delivered
	opSkip      = "skip"    // box+uid or uidl; id: left on the server for good
	opGone      = "gone"    // box+uids or uidls: no longer on the server
	opClear     = "clear"   // id: a pending delivery that will not happen
	opLegacy    = "legacy"  // box, fp: delivered under an older UIDVALIDITY
	opLegacyEnd = "legacy-end"
	opUnread    = "unread" // id, n: passes that could not read that message
)

const stateVersion = 1

// ErrLocked means another process is fetching from the source.
var ErrLocked = errors.New("fetch: source is being fetched by another process")

// OpenState opens (creating it if needed) the state of source name in
// dir and locks it against other processes until Close.
func OpenState(dir, name string) (*State, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fetch state: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("fetch state: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, name)
		}
		return nil, fmt.Errorf("fetch state: lock: %w", err)
	}
	s := &State{path: filepath.Join(dir, name+".state"), lock: lock,
		boxes: map[string]*box{}, uidls: map[string]bool{}, pending: map[string]Pending{}, unread: map[string]int{}}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// load replays the journal and compacts it, which also drops a torn last
// line left by a crash in the middle of a write.
func (s *State) load() error {
	data, err := os.ReadFile(s.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("fetch state: %w", err)
	}
	for n := 1; len(data) > 0; n++ {
		line, rest, complete := bytes.Cut(data, []byte("\n"))
		data = rest
		var r record
		if err := json.Unmarshal(line, &r); err != nil || (n == 1 && r.Op != opHeader) {
			if !complete {
				break // torn by a crash during the last append
			}
			return fmt.Errorf("fetch state %s:%d: damaged record", s.path, n)
		}
		if r.Op == opHeader && r.Version != stateVersion {
			return fmt.Errorf("fetch state %s: version %d, this program knows %d", s.path, r.Version, stateVersion)
		}
		s.apply(r)
	}
	return s.compact()
}

// apply changes the in-memory state by one record.
func (s *State) apply(r record) {
	switch r.Op {
	case opBox:
		b := s.boxes[r.Box]
		if b == nil {
			b = &box{done: map[uint32]string{}, skipped: map[uint32]bool{}, legacy: map[string]bool{}}
			s.boxes[r.Box] = b
		} else if b.uidValidity != r.UV {
			for _, fp := range b.done {
				b.legacy[fp] = true
			}
			b.done, b.skipped = map[uint32]string{}, map[uint32]bool{}
		}
		b.uidValidity, b.last = r.UV, r.Last
	case opPending:
		s.pending[r.ID] = Pending{ID: r.ID, Since: time.Unix(0, r.T), FP: r.FP}
	case opUnread:
		if len(s.unread) >= maxUnreadIDs {
			clear(s.unread)
		}
		s.unread[r.ID] = r.N
	case opDone, opSkip:
		delete(s.pending, r.ID)
		delete(s.unread, r.ID)
		if r.UIDL != "" {
			s.uidls[r.UIDL] = r.Op == opDone
		} else if b := s.boxes[r.Box]; b != nil {
			if r.Op == opDone {
				b.done[r.UID] = r.FP
			} else {
				b.skipped[r.UID] = true
			}
			b.last = max(b.last, r.UID)
		}
	case opGone:
		for _, u := range r.UIDLs {
			delete(s.uidls, u)
		}
		if b := s.boxes[r.Box]; b != nil {
			for _, uid := range r.UIDs {
				delete(b.done, uid)
				delete(b.skipped, uid)
			}
		}
	case opClear:
		delete(s.pending, r.ID)
	case opLegacy:
		if b := s.boxes[r.Box]; b != nil {
			b.legacy[r.FP] = true
		}
	case opLegacyEnd:
		if b := s.boxes[r.Box]; b != nil {
			b.legacy = map[string]bool{}
		}
	}
}

// snapshot returns records that rebuild the current state.
func (s *State) snapshot() []record {
	rs := []record{{Op: opHeader, Version: stateVersion}}
	for _, name := range slices.Sorted(maps.Keys(s.boxes)) {
		b := s.boxes[name]
		rs = append(rs, record{Op: opBox, Box: name, UV: b.uidValidity, Last: b.last})
		for _, fp := range slices.Sorted(maps.Keys(b.legacy)) {
			rs = append(rs, record{Op: opLegacy, Box: name, FP: fp})
		}
		for _, uid := range slices.Sorted(maps.Keys(b.done)) {
			rs = append(rs, record{Op: opDone, Box: name, UID: uid, FP: b.done[uid]})
		}
		for _, uid := range slices.Sorted(maps.Keys(b.skipped)) {
			rs = append(rs, record{Op: opSkip, Box: name, UID: uid})
		}
		// Replaying done and skip records raised last; set it back.
		rs = append(rs, record{Op: opBox, Box: name, UV: b.uidValidity, Last: b.last})
	}
	for _, u := range slices.Sorted(maps.Keys(s.uidls)) {
		op := opSkip
		if s.uidls[u] {
			op = opDone
		}
		rs = append(rs, record{Op: op, UIDL: u})
	}
	for _, id := range slices.Sorted(maps.Keys(s.pending)) {
		p := s.pending[id]
		rs = append(rs, record{Op: opPending, ID: id, T: p.Since.UnixNano(), FP: p.FP})
	}
	for _, id := range slices.Sorted(maps.Keys(s.unread)) {
		rs = append(rs, record{Op: opUnread, ID: id, N: s.unread[id]})
	}
	return rs
}

// Unread counts one more pass that could not read message id and returns
// how many there have been, across runs: `posthorn fetch` run by cron is
// a new process each time, and a count in memory never reached its
// limit, so one unreadable message held back all later mail for ever.
// Not fsynced: a count lost in a crash only means a pass more.
func (s *State) Unread(id string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.unread[id] + 1
	return n, s.write(record{Op: opUnread, ID: id, N: n}, false)
}

// compact writes the snapshot to a new file, fsyncs it, renames it over
// the journal and fsyncs the directory; appends then go to the new file.
func (s *State) compact() error {
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("fetch state: %w", err)
	}
	rs := s.snapshot()
	w := bufio.NewWriter(f)
	for _, r := range rs {
		line, _ := json.Marshal(r)
		w.Write(append(line, '\n'))
	}
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(s.path))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("fetch state: compact: %w", err)
	}
	if s.f != nil {
		s.f.Close()
	}
	s.f, err = os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("fetch state: %w", err)
	}
	s.records = len(rs)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// write applies r, appends it to the journal (fsynced when sync), and
// compacts the journal when most of it is history. Callers hold mu.
func (s *State) write(r record, sync bool) error {
	if s.f == nil {
		return errors.New("fetch state: closed")
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	// One write call per record: a crash tears at most the last line.
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("fetch state: %w", err)
	}
	if sync {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("fetch state: %w", err)
		}
	}
	s.apply(r)
	s.records++
	if s.records > 1000 && s.records > 4*s.live() {
		return s.compact()
	}
	return nil
}

// live estimates the records a snapshot would have.
func (s *State) live() int {
	n := 1 + len(s.uidls) + len(s.pending)
	for _, b := range s.boxes {
		n += 2 + len(b.done) + len(b.skipped) + len(b.legacy)
	}
	return n
}

// Close releases the journal and the lock.
func (s *State) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.f != nil {
		err = s.f.Close()
		s.f = nil
	}
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
	return err
}

// Begin records, durably, that delivery of id starts now. If an earlier
// attempt left a pending record, Begin keeps it and returns it with
// resume true: the delivery must be resumed, not repeated.
func (s *State) Begin(id, fp string, now time.Time) (p Pending, resume bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pending[id]; ok {
		return p, true, nil
	}
	p = Pending{ID: id, Since: now, FP: fp}
	return p, false, s.write(record{Op: opPending, ID: id, T: now.UnixNano(), FP: fp}, true)
}

// PendingLike returns a pending delivery of an older UIDVALIDITY of the
// same folder with fingerprint fp: the same message under its old UID.
func (s *State) PendingLike(prefix, fp string) (Pending, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pending {
		if fp != "" && p.FP == fp && len(p.ID) > len(prefix) && p.ID[:len(prefix)] == prefix {
			return p, true
		}
	}
	return Pending{}, false
}

// Pendings returns the pending deliveries whose id starts with prefix.
func (s *State) Pendings(prefix string) []Pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Pending
	for _, p := range s.pending {
		if len(p.ID) >= len(prefix) && p.ID[:len(prefix)] == prefix {
			out = append(out, p)
		}
	}
	return out
}

// Clear forgets a pending delivery that will not happen (its message is
// gone from the server).
func (s *State) Clear(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; !ok {
		return nil
	}
	return s.write(record{Op: opClear, ID: id}, false)
}

// Box returns the UIDVALIDITY and last UID handled of folder, and
// whether it is known.
func (s *State) Box(folder string) (uidValidity, last uint32, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.boxes[folder]
	if b == nil {
		return 0, 0, false
	}
	return b.uidValidity, b.last, true
}

// SetBox records folder's UIDVALIDITY. A new one starts the folder over
// (last 0) and keeps the fingerprints delivered so far as legacy.
func (s *State) SetBox(folder string, uidValidity uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.boxes[folder]; b != nil && b.uidValidity == uidValidity {
		return nil
	}
	return s.write(record{Op: opBox, Box: folder, UV: uidValidity}, false)
}

// Handled returns the UIDs of folder recorded as delivered and as skipped.
func (s *State) Handled(folder string) (done, skipped []uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.boxes[folder]
	if b == nil {
		return nil, nil
	}
	return slices.Sorted(maps.Keys(b.done)), slices.Sorted(maps.Keys(b.skipped))
}

// Legacy reports whether fp was delivered under an older UIDVALIDITY of
// folder, and whether there is a legacy set at all.
func (s *State) Legacy(folder, fp string) (seen, any bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.boxes[folder]
	if b == nil {
		return false, false
	}
	return b.legacy[fp], len(b.legacy) > 0
}

// EndLegacy drops folder's legacy fingerprints once every message of the
// new UIDVALIDITY has been seen.
func (s *State) EndLegacy(folder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.boxes[folder]; b == nil || len(b.legacy) == 0 {
		return nil
	}
	return s.write(record{Op: opLegacyEnd, Box: folder}, false)
}

// DoneUID records that uid of folder is delivered (id: its pending
// record, if any).
func (s *State) DoneUID(folder string, uid uint32, fp, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(record{Op: opDone, Box: folder, UID: uid, FP: fp, ID: id}, false)
}

// SkipUID records that uid of folder stays on the server, undelivered.
func (s *State) SkipUID(folder string, uid uint32, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(record{Op: opSkip, Box: folder, UID: uid, ID: id}, false)
}

// GoneUIDs forgets UIDs of folder that are no longer on the server.
func (s *State) GoneUIDs(folder string, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(record{Op: opGone, Box: folder, UIDs: uids}, false)
}

// UIDL reports whether a POP3 message is handled, and if so whether it
// was delivered (false: skipped).
func (s *State) UIDL(uidl string) (handled, delivered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delivered, handled = s.uidls[uidl]
	return handled, delivered
}

// UIDLs returns every POP3 UIDL handled.
func (s *State) UIDLs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.uidls))
}

// DoneUIDL records a POP3 message as delivered.
func (s *State) DoneUIDL(uidl, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(record{Op: opDone, UIDL: uidl, ID: id}, false)
}

// SkipUIDL records a POP3 message as left on the server for good.
func (s *State) SkipUIDL(uidl, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(record{Op: opSkip, UIDL: uidl, ID: id}, false)
}

// GoneUIDLs forgets POP3 messages no longer on the server.
func (s *State) GoneUIDLs(uidls []string) error {
	if len(uidls) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(record{Op: opGone, UIDLs: uidls}, false)
}
