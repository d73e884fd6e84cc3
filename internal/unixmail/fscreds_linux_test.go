package unixmail

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// unprivileged is the uid and gid of nobody on Debian and most Linux
// systems; the kernel needs no passwd entry to check rights with it.
const unprivileged = 65534

// userHost is a host whose user alice is unprivileged (uid 65534), with
// her own home directory, for tests of what root does on her behalf.
// They must run as root (CI does).
func userHost(t *testing.T, mod func(*Options)) (*System, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test delivers for another uid and must run as root (uid %d): CI runs the tests as root", os.Geteuid())
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // t.TempDir makes them 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(dir, "home", "alice")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, unprivileged, unprivileged); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "passwd"), fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nalice:x:%d:%d:alice:%s:/bin/sh\n", unprivileged, unprivileged, home), 0o644)
	os.MkdirAll(filepath.Join(dir, "spool"), 0o755)
	o := Options{Domains: []string{"host.test"}, PasswdFile: filepath.Join(dir, "passwd"), Mailbox: "mbox",
		SpoolDir: filepath.Join(dir, "spool"), Forward: true, AllowFiles: true,
		Nobody: User{Name: "nobody", UID: unprivileged, GID: unprivileged, Home: "/"}}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, home
}

// mkdirOwned makes dir with mode, owned by uid.
func mkdirOwned(t *testing.T, dir string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, mode)
}

func writeOwned(t *testing.T, path, s string, mode os.FileMode, uid int) {
	t.Helper()
	write(t, path, s, mode)
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func ownerOf(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

// TestFileTargetWithUsersRights: a .forward file target is opened and
// made with the user's rights, not root's. Root made
// ~/.ssh/authorized_keys2 in a root-owned ~/.ssh (and gave it to the
// user), and appended to files the user could not write.
func TestFileTargetWithUsersRights(t *testing.T) {
	s, home := userHost(t, nil)
	mkdirOwned(t, filepath.Join(home, ".ssh"), 0o755, 0)
	mkdirOwned(t, filepath.Join(home, "mail"), 0o700, unprivileged)
	mkdirOwned(t, filepath.Join(home, "priv"), 0o700, 0)
	writeOwned(t, filepath.Join(home, "readonly"), "keep\n", 0o444, unprivileged)
	writeOwned(t, filepath.Join(home, "priv", "box"), "keep\n", 0o600, unprivileged)
	targets := []string{".ssh/authorized_keys2", "mail/saved", "readonly", "priv/box"}
	var fwd strings.Builder
	for _, p := range targets {
		fwd.WriteString(filepath.Join(home, p) + "\n")
	}
	writeOwned(t, filepath.Join(home, ".forward"), fwd.String(), 0o644, unprivileged)
	ts, err := s.Resolve("alice")
	if err != nil || len(ts) != len(targets) {
		t.Fatalf("targets %q %v", names(ts), err)
	}
	for _, tg := range ts {
		err := s.Deliver(context.Background(), tg, "a@b.test", strings.NewReader("Subject: f\r\n\r\nssh-ed25519 AAAA attacker\r\n"))
		rel, _ := filepath.Rel(home, tg.Path)
		var p Permanent
		switch {
		case rel == "mail/saved" && err != nil:
			t.Errorf("%s, in a directory of hers: %v", rel, err)
		case rel != "mail/saved" && !errors.As(err, &p):
			t.Errorf("%s: %v, want a bounce (Permanent)", rel, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(home, ".ssh", "authorized_keys2")); !os.IsNotExist(err) {
		t.Errorf("root made a file in a directory the user may not write: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(home, ".ssh")); len(ents) != 0 {
		t.Errorf("left in ~/.ssh: %v", ents)
	}
	for _, p := range []string{"readonly", "priv/box"} {
		if b, _ := os.ReadFile(filepath.Join(home, p)); string(b) != "keep\n" {
			t.Errorf("%s, which the user may not write, was written: %q", p, b)
		}
	}
	saved := filepath.Join(home, "mail", "saved")
	if b, _ := os.ReadFile(saved); !strings.Contains(string(b), "Subject: f\n") {
		t.Errorf("mail/saved holds %q", b)
	}
	if uid := ownerOf(t, saved); uid != unprivileged {
		t.Errorf("mail/saved is owned by uid %d, want %d", uid, unprivileged)
	}
	if fi, _ := os.Stat(saved); fi.Mode().Perm() != 0o600 {
		t.Errorf("mail/saved has mode %v", fi.Mode().Perm())
	}
}

// TestMaildirWithUsersRights: the home Maildir is made with the user's
// rights: a ~/Maildir linked to a root-owned directory in the home got
// root-made tmp/, new/ and cur/ there.
func TestMaildirWithUsersRights(t *testing.T) {
	s, home := userHost(t, func(o *Options) { o.Mailbox = "maildir" })
	mkdirOwned(t, filepath.Join(home, ".ssh"), 0o755, 0)
	if err := os.Symlink(".ssh", filepath.Join(home, "Maildir")); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Resolve("alice")
	if err != nil || len(ts) != 1 {
		t.Fatalf("targets %q %v", names(ts), err)
	}
	msg := "Subject: m\r\n\r\nbody\r\n"
	if err := s.Deliver(context.Background(), ts[0], "a@b.test", strings.NewReader(msg)); err == nil {
		t.Error("delivered into a root-owned directory")
	}
	if ents, _ := os.ReadDir(filepath.Join(home, ".ssh")); len(ents) != 0 {
		t.Errorf("made in the root-owned ~/.ssh: %v", ents)
	}
	os.Remove(filepath.Join(home, "Maildir"))
	if err := s.Deliver(context.Background(), ts[0], "a@b.test", strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(home, "Maildir", "new"))
	if len(ents) != 1 {
		t.Fatalf("%d messages in new/", len(ents))
	}
	for _, p := range []string{"Maildir", "Maildir/cur", "Maildir/new/" + ents[0].Name()} {
		if uid := ownerOf(t, filepath.Join(home, p)); uid != unprivileged {
			t.Errorf("%s is owned by uid %d, want %d", p, uid, unprivileged)
		}
	}
}

// TestRunAsUserStaysOnItsThread: the user's rights end with the call and
// never reach other goroutines, however many run at once (a thread given
// back to the scheduler with them would make root's own work fail at
// random).
func TestRunAsUserStaysOnItsThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("this test switches to another uid and must run as root (uid %d): CI runs the tests as root", os.Geteuid())
	}
	rootOnly := t.TempDir() // 0700, root's
	u := User{Name: "nobody", UID: unprivileged, GID: unprivileged, Home: "/"}
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 200 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			err := runAsUser(u, func() error {
				if _, err := os.ReadDir(rootOnly); !errors.Is(err, os.ErrPermission) {
					return fmt.Errorf("as the user, a root-only directory read: %v", err)
				}
				return nil
			})
			if err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			if err := os.WriteFile(filepath.Join(rootOnly, fmt.Sprint(i)), nil, 0o600); err != nil {
				errs <- fmt.Errorf("as root, after the user's turns: %v", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestFileTargetNoDotLock: a file of the user's in a directory only root
// may write is appended to without a dot-lock, as Postfix local(8) does
// for files; deliveries of this process at once still get one message
// each, whole (the fcntl lock alone does not keep goroutines of one
// process apart).
func TestFileTargetNoDotLock(t *testing.T) {
	s, home := userHost(t, nil)
	mkdirOwned(t, filepath.Join(home, "logs"), 0o755, 0)
	box := filepath.Join(home, "logs", "box")
	writeOwned(t, box, "", 0o600, unprivileged)
	writeOwned(t, filepath.Join(home, ".forward"), box+"\n", 0o644, unprivileged)
	ts, err := s.Resolve("alice")
	if err != nil || len(ts) != 1 {
		t.Fatalf("targets %q %v", names(ts), err)
	}
	deliverMany(t, s, ts[0], box, 20)
}
