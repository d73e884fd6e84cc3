package unixmail

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStaleLockRace: goroutines of one process delivering to one mbox
// while a stale dot-lock is there all get their message in. fcntl locks
// do not exclude each other inside a process, and two goroutines that
// both broke the stale lock each removed it by name, one of them the
// other's fresh lock, and both wrote at the same offset.
func TestStaleLockRace(t *testing.T) {
	dir := t.TempDir()
	u := User{Name: "x", UID: os.Getuid(), GID: os.Getgid(), Home: dir}
	lost := 0
	for round := range 200 {
		p := filepath.Join(dir, "x")
		os.Remove(p)
		write(t, p+".lock", "1\n", 0o600)
		old := time.Now().Add(-10 * time.Minute)
		os.Chtimes(p+".lock", old, old)
		const n = 8
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				root, err := os.OpenRoot(dir)
				if err != nil {
					t.Error(err)
					return
				}
				defer root.Close()
				<-start
				msg := fmt.Sprintf("Subject: m%d\r\n\r\n%s\r\n", i, strings.Repeat("z", 200))
				if err := appendMbox(root, "x", u, spoolMode{}, "a@b", time.Now(), strings.NewReader(msg)); err != nil {
					t.Errorf("append: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		b, _ := os.ReadFile(p)
		if got := bytes.Count(b, []byte("\nSubject: m")); got != n {
			lost += n - got
			t.Logf("round %d: %d of %d messages in the mbox", round, got, n)
		}
	}
	if lost > 0 {
		t.Fatalf("%d messages lost", lost)
	}
}

// TestStaleLockBrokenOnlyIfSame: a stale dot-lock is removed only while
// it is still the file judged stale; one another program has put in its
// place meanwhile stays.
func TestStaleLockBrokenOnlyIfSame(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	lock := filepath.Join(dir, "x.lock")
	write(t, lock, "1\n", 0o600)
	old := time.Now().Add(-10 * time.Minute)
	os.Chtimes(lock, old, old)
	stale, err := root.Lstat("x.lock")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(lock) // another program breaks it and takes a fresh one
	write(t, lock, "2\n", 0o600)
	removeIfSame(root, "x.lock", stale)
	if b, _ := os.ReadFile(lock); string(b) != "2\n" {
		t.Fatalf("the other program's fresh lock was removed (%q)", b)
	}
	fresh, _ := root.Lstat("x.lock")
	removeIfSame(root, "x.lock", fresh)
	if _, err := os.Lstat(lock); !os.IsNotExist(err) {
		t.Errorf("the lock judged stale was not removed: %v", err)
	}
}

// TestSpoolMutexTimesOut: waiting for another delivery of this process
// to the same mailbox ends at the deadline, as the dot-lock wait does.
func TestSpoolMutexTimesOut(t *testing.T) {
	p := &pathMutexes{m: map[string]*pathMutex{}}
	unlock, err := p.lock("/x", time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.lock("/x", time.Now().Add(50*time.Millisecond)); err != errLocked {
		t.Errorf("second lock: %v, want errLocked", err)
	}
	other, err := p.lock("/y", time.Now().Add(50*time.Millisecond))
	if err != nil {
		t.Errorf("another path: %v", err)
	} else {
		other()
	}
	unlock()
	if len(p.m) != 0 {
		t.Errorf("%d entries left", len(p.m))
	}
}

// TestMutexKeyOneFileOneKey: two spellings of one mailbox, through a
// linked directory or split differently between directory and name, get
// one in-process mutex (found in review: they got two, and with no
// dot-lock two deliveries could write at one offset).
func TestMutexKeyOneFileOneKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.MkdirAll(filepath.Join(real, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	want := mutexKey(filepath.Join(real, "sub"), "box")
	for _, c := range [][2]string{
		{filepath.Join(dir, "link", "sub"), "box"},
		{real, "sub/box"},
		{filepath.Join(dir, "link"), "sub/box"},
	} {
		if got := mutexKey(c[0], c[1]); got != want {
			t.Errorf("mutexKey(%q, %q) = %q, want %q", c[0], c[1], got, want)
		}
	}
}
