package e2e_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSendmailAsAnotherUser runs sendmail as the unprivileged user nobody
// against a daemon running as root, through the socket and, with the
// daemon stopped, through the maildrop (research/security.md §2.12: the
// maildrop is shared with every local user). With sendmail_any_sender
// off, nobody may send as itself only; it can neither list the maildrop nor make the daemon read or
// remove a file it could not read itself (a symlink or hard link planted
// in the maildrop), and a drop file it writes by hand claiming root's
// sender is refused.
func TestSendmailAsAnotherUser(t *testing.T) {
	t.Parallel()
	nb := nobodyUser(t)
	uid, _ := strconv.Atoi(nb.Uid)
	s := newServer(t, opts{extra: "[delivery]\nsendmail_any_sender = false"})
	sendmail, asNobody := nobodySendmail(t, s, nb)
	inbox := filepath.Join(s.data, "mail", "example.test", "me")
	sender := "<nobody@mx.example.test>"
	msg := func(subject string) string { return "Subject: " + subject + "\n\nfrom nobody\n" }

	// Through the socket: its own sender, and no other.
	if r := asNobody(msg("socket as nobody"), sendmail, "me@example.test"); r.err != nil {
		t.Fatalf("sendmail as nobody: %s", r)
	}
	if f := waitMaildir(t, inbox, "socket as nobody", 10*time.Second); f.header.Get("Return-Path") != sender {
		t.Errorf("Return-Path %q, want %s", f.header.Get("Return-Path"), sender)
	}
	if r := asNobody(msg("forged on the socket"), sendmail, "-f", "postmaster@example.test", "me@example.test"); r.err == nil {
		t.Errorf("sendmail -f postmaster@example.test as nobody: exit 0: %s", r)
	}

	// Through the maildrop.
	s.stop()
	drop := filepath.Join(s.data, "maildrop")
	if r := asNobody(msg("drop as nobody"), sendmail, "me@example.test"); r.err != nil {
		t.Fatalf("sendmail as nobody, daemon stopped: %s", r)
	}
	ents, err := os.ReadDir(drop)
	if err != nil || len(ents) != 1 {
		t.Fatalf("maildrop after one drop: %v %v", ents, err)
	}
	if fi, err := os.Stat(filepath.Join(drop, ents[0].Name())); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
		t.Fatalf("the drop file is not nobody's: %v %v", fi, err)
	}
	if r := asNobody("", "/bin/ls", drop); r.err == nil {
		t.Errorf("nobody can list the maildrop: %s", r)
	}
	if r := asNobody("", "/bin/cat", filepath.Join(drop, ents[0].Name())); r.err != nil {
		t.Errorf("nobody cannot read its own drop file: %s", r)
	}
	// A valid drop file only root can read, planted by nobody as a
	// symlink and (if the kernel allows it) a hard link.
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret")
	secretDrop := "POSTHORN-DROP 1\nfrom root@mx.example.test\nrcpt me@example.test\n\nSubject: root's secret\r\n\r\nnot for nobody\r\n"
	must(t, os.WriteFile(secret, []byte(secretDrop), 0o600))
	must(t, os.Chmod(secretDir, 0o711))
	if r := asNobody("", "/bin/ln", "-s", secret, filepath.Join(drop, "evil-symlink")); r.err != nil {
		t.Fatalf("nobody planting a symlink: %s", r)
	}
	if r := asNobody("", "/bin/ln", secret, filepath.Join(drop, "evil-hardlink")); r.err == nil {
		t.Logf("the kernel let nobody hard-link root's file (fs.protected_hardlinks off)")
	}
	// A drop file written by hand, claiming root's sender.
	forged := "POSTHORN-DROP 1\nfrom root@mx.example.test\nrcpt me@example.test\n\nSubject: forged drop\r\n\r\nfrom nobody\r\n"
	if r := asNobody(forged, "/bin/sh", "-c", "cat > "+filepath.Join(drop, "forged")); r.err != nil {
		t.Fatalf("nobody writing a drop file by hand: %s", r)
	}

	s.start(true)
	if f := waitMaildir(t, inbox, "drop as nobody", 10*time.Second); f.header.Get("Return-Path") != sender {
		t.Errorf("dropped message: Return-Path %q, want %s", f.header.Get("Return-Path"), sender)
	}
	time.Sleep(3 * time.Second) // three pickup scans
	for _, f := range readMaildir(t, inbox) {
		switch f.subject() {
		case "root's secret", "forged drop", "forged on the socket":
			t.Errorf("delivered: %q (Return-Path %s)", f.subject(), f.header.Get("Return-Path"))
		}
	}
	if left, err := os.ReadDir(drop); err != nil || len(left) != 0 {
		t.Errorf("maildrop after the pickup: %v %v; every file should be taken, refused or set aside", left, err)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != secretDrop {
		t.Errorf("root's file after the pickup: %q %v", b, err)
	}
	fi, err := os.Stat(secret)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("root's file changed owner or mode: %v %v", fi, err)
	}
}

// TestSendmailAnySenderWarns: by default, as with Postfix, any local user
// may set the envelope sender with -f (PHP's mail() does, as www-data),
// through the socket and through the maildrop alike; the message then
// names the real user in an X-Authentication-Warning field.
func TestSendmailAnySenderWarns(t *testing.T) {
	t.Parallel()
	nb := nobodyUser(t)
	s := newServer(t, opts{})
	sendmail, asNobody := nobodySendmail(t, s, nb)
	inbox := filepath.Join(s.data, "mail", "example.test", "me")
	warning := "mx.example.test: nobody set sender to noreply@example.test using -f"
	check := func(subject string) {
		t.Helper()
		f := waitMaildir(t, inbox, subject, 10*time.Second)
		if rp := f.header.Get("Return-Path"); rp != "<noreply@example.test>" {
			t.Errorf("%s: Return-Path %q, want <noreply@example.test>", subject, rp)
		}
		if w := f.header.Get("X-Authentication-Warning"); w != warning {
			t.Errorf("%s: X-Authentication-Warning %q, want %q", subject, w, warning)
		}
	}
	msg := func(subject string) string { return "Subject: " + subject + "\n\nfrom a web application\n" }
	if r := asNobody(msg("socket -f"), sendmail, "-t", "-i", "-f", "noreply@example.test", "me@example.test"); r.err != nil {
		t.Fatalf("sendmail -f as nobody: %s", r)
	}
	check("socket -f")
	if r := asNobody(msg("own sender"), sendmail, "-f", "nobody@mx.example.test", "me@example.test"); r.err != nil {
		t.Fatalf("sendmail -f own address as nobody: %s", r)
	}
	if f := waitMaildir(t, inbox, "own sender", 10*time.Second); f.header.Get("X-Authentication-Warning") != "" {
		t.Errorf("a warning for nobody's own address: %q", f.header.Get("X-Authentication-Warning"))
	}
	s.stop()
	if r := asNobody(msg("maildrop -f"), sendmail, "-f", "noreply@example.test", "me@example.test"); r.err != nil {
		t.Fatalf("sendmail -f as nobody, daemon stopped: %s", r)
	}
	s.start(true)
	check("maildrop -f")
}

// nobodyUser returns the user nobody, whom the tests run sendmail as:
// they must run as root.
func nobodyUser(t *testing.T) *user.User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test runs sendmail as another user and must run as root (uid %d): CI runs the e2e tests as root", os.Geteuid())
	}
	nb, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("the user nobody: %v", err)
	}
	return nb
}

// nobodySendmail makes s usable by the user nobody, as on a real host,
// and returns a sendmail for it and a function that runs a command as
// nobody.
func nobodySendmail(t *testing.T, s *server, nb *user.User) (string, func(stdin, name string, args ...string) result) {
	t.Helper()
	uid, _ := strconv.Atoi(nb.Uid)
	gid, _ := strconv.Atoi(nb.Gid)
	// nobody needs to reach the config, the socket and the maildrop, as
	// on a real host (the data directory itself is the daemon's, 0711).
	for _, d := range []string{filepath.Dir(s.dir), s.dir} {
		must(t, os.Chmod(d, 0o711))
	}
	must(t, os.Chmod(s.config, 0o644))
	bin := t.TempDir()
	must(t, os.Chmod(bin, 0o755))
	must(t, os.Chmod(filepath.Dir(bin), 0o755))
	sendmail := filepath.Join(bin, "sendmail")
	copyFile(t, binary, sendmail, 0o755)
	return sendmail, func(stdin string, name string, args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = []string{"POSTHORN_CONFIG=" + s.config, "PATH=/usr/bin:/bin", "HOME=/nonexistent"}
		cmd.Dir = "/"
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		ownGroup(cmd)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		err := cmd.Run()
		return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	must(t, err)
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	must(t, err)
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	must(t, dst.Close())
}
