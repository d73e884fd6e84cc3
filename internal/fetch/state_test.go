package fetch

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func openState(t *testing.T, dir string) *State {
	t.Helper()
	s, err := OpenState(dir, "src")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStateReplay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openState(t, dir)
	now := time.Unix(1700000000, 123)
	must(t, s.SetBox("INBOX", 7))
	_, resume, err := s.Begin("src/INBOX/7/1", "fp1", now)
	must(t, err)
	if resume {
		t.Fatal("a new delivery is not resumed")
	}
	must(t, s.DoneUID("INBOX", 1, "fp1", "src/INBOX/7/1"))
	must(t, s.SkipUID("INBOX", 2, ""))
	_, _, err = s.Begin("src/INBOX/7/3", "fp3", now)
	must(t, err)
	must(t, s.DoneUIDL("a", ""))
	must(t, s.SkipUIDL("b", ""))
	must(t, s.Close())

	s = openState(t, dir)
	if uv, last, ok := s.Box("INBOX"); !ok || uv != 7 || last != 2 {
		t.Errorf("Box = %d, %d, %v; want 7, 2, true", uv, last, ok)
	}
	done, skip := s.Handled("INBOX")
	if !slices.Equal(done, []uint32{1}) || !slices.Equal(skip, []uint32{2}) {
		t.Errorf("Handled = %v, %v", done, skip)
	}
	p, resume, err := s.Begin("src/INBOX/7/3", "other", now.Add(time.Hour))
	if err != nil || !resume || !p.Since.Equal(now) || p.FP != "fp3" {
		t.Errorf("Begin after restart = %+v, %v, %v; want the first attempt, to resume", p, resume, err)
	}
	if h, d := s.UIDL("a"); !h || !d {
		t.Error("UIDL a not delivered")
	}
	if h, d := s.UIDL("b"); !h || d {
		t.Error("UIDL b not skipped")
	}
	must(t, s.GoneUIDs("INBOX", []uint32{1, 2}))
	must(t, s.GoneUIDLs([]string{"a"}))
	if done, skip := s.Handled("INBOX"); len(done)+len(skip) != 0 {
		t.Errorf("gone UIDs still there: %v %v", done, skip)
	}
	if _, _, ok := s.Box("INBOX"); !ok {
		t.Error("folder forgotten")
	}
	if got := s.UIDLs(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("UIDLs = %v", got)
	}
}

// TestStateTornLine: a crash in the middle of an append leaves half a
// line, which is dropped; damage anywhere else is an error.
func TestStateTornLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openState(t, dir)
	must(t, s.DoneUIDL("a", ""))
	must(t, s.Close())
	path := filepath.Join(dir, "src.state")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	f.WriteString(`{"op":"done","uid`)
	f.Close()
	s = openState(t, dir)
	if h, _ := s.UIDL("a"); !h {
		t.Error("record before the torn line lost")
	}
	must(t, s.DoneUIDL("b", ""))
	must(t, s.Close())
	s = openState(t, dir)
	if got := s.UIDLs(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("after the torn line: %v", got)
	}
	must(t, s.Close())

	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	lines[1] = "garbage\n"
	must(t, os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600))
	if _, err := OpenState(dir, "src"); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged journal opened: %v", err)
	}
}

func TestStateLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openState(t, dir)
	if _, err := OpenState(dir, "src"); !errors.Is(err, ErrLocked) {
		t.Errorf("second open: %v, want ErrLocked", err)
	}
	must(t, s.Close())
	s2, err := OpenState(dir, "src")
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s2.Close()
}

// TestStateCompaction: the journal is rewritten when most of it is
// history, and the state survives.
func TestStateCompaction(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openState(t, dir)
	must(t, s.SetBox("INBOX", 1))
	for uid := uint32(1); uid <= 3000; uid++ {
		id := "src/INBOX/1/" + string(rune('0'+uid%10))
		_, _, err := s.Begin(id, "fp", time.Now())
		must(t, err)
		must(t, s.DoneUID("INBOX", uid, "fp", id))
		must(t, s.GoneUIDs("INBOX", []uint32{uid}))
	}
	must(t, s.DoneUID("INBOX", 3001, "fpx", ""))
	info, err := os.Stat(filepath.Join(dir, "src.state"))
	must(t, err)
	if info.Size() > 100<<10 {
		t.Errorf("journal is %d bytes after compaction", info.Size())
	}
	must(t, s.Close())
	s = openState(t, dir)
	if _, last, _ := s.Box("INBOX"); last != 3001 {
		t.Errorf("last = %d, want 3001", last)
	}
	if done, _ := s.Handled("INBOX"); !slices.Equal(done, []uint32{3001}) {
		t.Errorf("done = %v", done)
	}
}

// TestStateUIDValidity: a new UIDVALIDITY starts the folder over and
// keeps the delivered fingerprints as legacy, across a restart.
func TestStateUIDValidity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openState(t, dir)
	must(t, s.SetBox("INBOX", 1))
	must(t, s.DoneUID("INBOX", 5, "fpA", ""))
	must(t, s.SetBox("INBOX", 2))
	if _, last, _ := s.Box("INBOX"); last != 0 {
		t.Errorf("last = %d after a new UIDVALIDITY", last)
	}
	must(t, s.Close())
	s = openState(t, dir)
	if seen, any := s.Legacy("INBOX", "fpA"); !seen || !any {
		t.Error("legacy fingerprint lost")
	}
	if done, _ := s.Handled("INBOX"); len(done) != 0 {
		t.Errorf("old UIDs kept: %v", done)
	}
	must(t, s.EndLegacy("INBOX"))
	if _, any := s.Legacy("INBOX", ""); any {
		t.Error("legacy kept after EndLegacy")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
