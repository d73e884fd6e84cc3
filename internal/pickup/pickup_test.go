package pickup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWriteReadRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := Envelope{From: "a b@x.test", Rcpts: []string{"me@example.test", "ü+=@example.test"}, Notify: []string{"SUCCESS", "FAILURE"}, Ret: "HDRS", EnvID: "e 1"}
	msg := []byte("Subject: hi\r\n\r\nbody\r\n")
	name, err := Write(dir, env, msg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, r, err := Read(f)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r)
	if got.From != env.From || strings.Join(got.Rcpts, "|") != strings.Join(env.Rcpts, "|") || got.Ret != "HDRS" ||
		got.EnvID != "e 1" || len(got.Notify) != 2 || !bytes.Equal(body, msg) {
		t.Errorf("round trip: %+v %q", got, body)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("leftover temporary files: %v", ents)
	}
}

func TestReadRefusesBadFiles(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"", "garbage\n", "POSTHORN-DROP 1\nfrom a\n\nmsg", // no recipients
		"POSTHORN-DROP 1\nrcpt a+0Ab\n\n",      // xtext LF
		"POSTHORN-DROP 1\nrcpt a\nbogus x\n\n", // unknown field
		"POSTHORN-DROP 1\nrcpt a b\n\n",        // space in value
		"POSTHORN-DROP 1\nrcpt a+4\n\n",        // truncated hex
		"POSTHORN-DROP 1\nrcpt " + strings.Repeat("a", 300<<10) + "\n\n",
		"POSTHORN-DROP 1\nrcpt a", // no end of header
	} {
		if _, _, err := Read(strings.NewReader(in)); !errors.Is(err, ErrFormat) {
			t.Errorf("%.40q: err %v, want ErrFormat", in, err)
		}
	}
}

type recordSubmitter struct {
	mu   sync.Mutex
	uids []int
	envs []Envelope
	err  error
}

func (r *recordSubmitter) SubmitDropped(ctx context.Context, uid int, env Envelope, msg io.Reader) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.uids = append(r.uids, uid)
	r.envs = append(r.envs, env)
	return r.err
}

func TestScannerTakesFilesSafely(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "maildrop")
	sub := &recordSubmitter{}
	s, err := New(Options{Dir: dir, Submitter: sub})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o733 || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("maildrop mode %v, want sticky 1733", fi.Mode())
	}
	good, _ := Write(dir, Envelope{From: "a@x.test", Rcpts: []string{"me@example.test"}}, []byte("x\r\n"))
	// A hard link to someone's file, a symlink and garbage are refused.
	secret := filepath.Join(root, "secret")
	os.WriteFile(secret, []byte("POSTHORN-DROP 1\nrcpt me@example.test\n\nsecret"), 0o600)
	os.Link(secret, filepath.Join(dir, "hardlink"))
	os.Symlink(secret, filepath.Join(dir, "symlink"))
	os.WriteFile(filepath.Join(dir, "garbage"), []byte("not a drop file"), 0o600)
	os.WriteFile(filepath.Join(dir, ".inprogress"), []byte("partial"), 0o600)
	s.Scan(context.Background())
	if len(sub.envs) != 1 || sub.uids[0] != os.Getuid() {
		t.Fatalf("submitted %d (%v), want only the good file", len(sub.envs), sub.uids)
	}
	for _, gone := range []string{good, "hardlink", "symlink", "garbage"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("%s still in the maildrop", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".inprogress")); err != nil {
		t.Error("a file being written was touched")
	}
	if b, _ := os.ReadFile(secret); !strings.HasSuffix(string(b), "secret") {
		t.Error("the hard-linked file was changed")
	}
}

func TestScannerRetriesTemporaryFailures(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "maildrop")
	sub := &recordSubmitter{err: errors.New("store busy")}
	s, _ := New(Options{Dir: dir, Submitter: sub})
	name, _ := Write(dir, Envelope{Rcpts: []string{"me@example.test"}}, []byte("x\r\n"))
	s.Scan(context.Background())
	s.Scan(context.Background()) // within the retry delay: not taken again
	if len(sub.envs) != 1 {
		t.Errorf("%d attempts, want 1", len(sub.envs))
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		t.Error("file removed after a temporary failure")
	}
}

type panicSubmitter struct{ n int }

func (p *panicSubmitter) SubmitDropped(ctx context.Context, uid int, env Envelope, msg io.Reader) error {
	p.n++
	panic("submitter bug")
}

// TestScannerSurvivesPanic: a file whose handling panics is set aside and
// counted; it used to end the daemon, and again at every start, since the
// file stayed in the maildrop (which any local user can write to).
func TestScannerSurvivesPanic(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "maildrop")
	sub := &panicSubmitter{}
	s, _ := New(Options{Dir: dir, Submitter: sub})
	name, _ := Write(dir, Envelope{Rcpts: []string{"me@example.test"}}, []byte("x\r\n"))
	s.Scan(context.Background())
	s.Scan(context.Background())
	if sub.n != 1 || s.Panics() != 1 {
		t.Errorf("%d attempts, %d panics; want 1 and 1", sub.n, s.Panics())
	}
	if _, err := os.Stat(filepath.Join(root, "maildrop-corrupt", name)); err != nil {
		t.Errorf("the file was not set aside: %v", err)
	}
}

// countHandler counts log records at level Error.
type countHandler struct {
	mu sync.Mutex
	n  int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// TestScannerSetsAsideSameNameTwice: a second bad file (here a non-empty
// directory) of a name set aside before is set aside too, beside the
// first. It could be neither renamed onto the first nor removed, and was
// logged as an error at every scan, every second, for ever.
func TestScannerSetsAsideSameNameTwice(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "maildrop")
	h := &countHandler{}
	s, _ := New(Options{Dir: dir, Submitter: &recordSubmitter{}, Logger: slog.New(h)})
	for round := range 2 {
		if err := os.MkdirAll(filepath.Join(dir, "DIR1", "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "DIR1", "sub", "f"), []byte("x"), 0o600)
		s.Scan(context.Background())
		if _, err := os.Lstat(filepath.Join(dir, "DIR1")); err == nil {
			t.Fatalf("round %d: DIR1 still in the maildrop", round)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "maildrop-corrupt"))
	if len(ents) != 2 {
		t.Errorf("maildrop-corrupt holds %d entries, want both directories", len(ents))
	}

	// Neither movable nor removable: maildrop-corrupt cannot be made (a
	// file has its name) and the directory is not empty. Logged once,
	// not at every scan.
	root2 := t.TempDir()
	dir2 := filepath.Join(root2, "maildrop")
	h2 := &countHandler{}
	s2, _ := New(Options{Dir: dir2, Submitter: &recordSubmitter{}, Logger: slog.New(h2)})
	os.WriteFile(filepath.Join(root2, "maildrop-corrupt"), nil, 0o600)
	os.MkdirAll(filepath.Join(dir2, "DIR2", "sub"), 0o700)
	for range 5 {
		s2.Scan(context.Background())
	}
	if h2.n != 1 {
		t.Errorf("%d error lines for one stuck file over 5 scans, want 1", h2.n)
	}
}

// TestScannerSetsAsideLongNameTwice: a bad file whose 255-octet name was
// set aside before is set aside too, and the scan ends: every name.N was
// too long for the file system, and the search for a free name never
// returned, stopping the maildrop for everyone (found in review).
func TestScannerSetsAsideLongNameTwice(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "maildrop")
	s, _ := New(Options{Dir: dir, Submitter: &recordSubmitter{}})
	name := strings.Repeat("a", 255)
	for round := range 2 {
		os.WriteFile(filepath.Join(dir, name), []byte("not a drop file"), 0o600)
		done := make(chan struct{})
		go func() { s.Scan(context.Background()); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Scan did not return", round)
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("round %d: the file is still in the maildrop", round)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "maildrop-corrupt")); len(ents) != 2 {
		t.Errorf("maildrop-corrupt holds %d entries, want 2", len(ents))
	}
}
