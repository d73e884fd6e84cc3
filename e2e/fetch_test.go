package e2e_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// This file tests `posthorn fetch`, the MRA, against real servers: a
// Dovecot started by the test (IMAP and POP3, implicit TLS and STARTTLS,
// a self-signed certificate pinned by fingerprint) and a second posthorn.

// dovecot is a Dovecot instance of the test's own: its config, on free
// loopback ports, one user whose Maildir the test fills directly.
type dovecot struct {
	dir                      string
	base                     string // base_dir: sockets (short path)
	imap, imaps, pop3, pop3s int
	maildir                  string // the user's Maildir (INBOX)
	pwFile                   string // holds the user's password
	cmd                      *exec.Cmd
	exited                   chan struct{}
}

const (
	dovecotUser = "remote"
	dovecotPW   = "remote-secret"
	// Dovecot refuses to give mail to root. An unused uid of its own
	// keeps the per-user inotify limit from being shared with others.
	dovecotUID = 64917
)

// newDovecot starts Dovecot with folders besides INBOX; it is stopped (by
// PID) when the test ends.
func newDovecot(t *testing.T, folders ...string) *dovecot {
	t.Helper()
	need(t, "dovecot")
	if os.Geteuid() != 0 {
		t.Fatalf("the Dovecot peer runs its mail as uid %d and must be started as root (uid %d): CI runs the e2e tests as root", dovecotUID, os.Geteuid())
	}
	// Not t.TempDir(): Dovecot's own users must reach the files (its
	// parent is private to root), and unix socket paths must stay short.
	dir, err := os.MkdirTemp("", "dv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &dovecot{dir: dir, base: filepath.Join(dir, "run"), maildir: filepath.Join(dir, "mail", dovecotUser),
		pwFile: filepath.Join(t.TempDir(), "pw")}
	for _, f := range append([]string{""}, folders...) {
		d.mkfolder(t, f)
	}
	if err := os.WriteFile(d.pwFile, []byte(dovecotPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(dovecotUser+":{PLAIN}"+dovecotPW+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.imap, d.imaps, d.pop3, d.pop3s = freePort(t), freePort(t), freePort(t), freePort(t)
	conf := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(conf, []byte(d.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	d.cmd = exec.Command("dovecot", "-F", "-c", conf)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("dovecot: %v", err)
	}
	d.exited = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.stop(t) })
	if !poll(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(d.imaps)), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("dovecot not listening after 10s:\n%s", d.logs())
	}
	return d
}

func (d *dovecot) config() string {
	cert, key := filepath.Join(certDir, "tls", "cert.pem"), filepath.Join(certDir, "tls", "key.pem")
	listener := func(name string, port int, ssl bool) string {
		s := fmt.Sprintf("  inet_listener %s {\n    address = 127.0.0.1\n    port = %d\n", name, port)
		if ssl {
			s += "    ssl = yes\n"
		}
		return s + "  }\n"
	}
	return fmt.Sprintf(`base_dir = %[1]s
state_dir = %[2]s/state
log_path = %[2]s/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <%[3]s
ssl_key = <%[4]s
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_location = maildir:%[2]s/mail/%%u
first_valid_uid = 1
# IDLE learns of new mail by inotify; should that fail, it looks itself.
mailbox_idle_check_interval = 1 secs
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[2]s/passwd
}
userdb {
  driver = static
  args = uid=%[5]d gid=%[5]d home=%[2]s/home/%%u
}
service imap-login {
%[6]s%[7]s}
service pop3-login {
%[8]s%[9]s}
`, d.base, d.dir, cert, key, dovecotUID,
		listener("imap", d.imap, false), listener("imaps", d.imaps, true),
		listener("pop3", d.pop3, false), listener("pop3s", d.pop3s, true))
}

// stop ends Dovecot by its PID: SIGTERM, then SIGKILL for the group.
func (d *dovecot) stop(t *testing.T) {
	_ = syscall.Kill(d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
		t.Errorf("dovecot (pid %d) still running 5s after SIGTERM: killed", d.cmd.Process.Pid)
	}
	if t.Failed() {
		t.Logf("dovecot log:\n%s", d.logs())
	}
}

func (d *dovecot) logs() string {
	a, _ := os.ReadFile(filepath.Join(d.dir, "stdout.log"))
	b, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
	return tail(append(a, b...), 4000)
}

// folderDir is the Maildir++ directory of a folder ("" is INBOX).
func (d *dovecot) folderDir(folder string) string {
	if folder == "" || folder == "INBOX" {
		return d.maildir
	}
	return filepath.Join(d.maildir, "."+folder)
}

func (d *dovecot) mkfolder(t *testing.T, folder string) {
	t.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(d.folderDir(folder), sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	chownTree(t, filepath.Join(d.dir, "mail"))
}

// chownTree gives dir to the Dovecot mail user.
func chownTree(t *testing.T, dir string) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, dovecotUID, dovecotUID)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// drop writes messages into a folder as a local delivery agent would:
// into tmp/, then renamed into new/.
func (d *dovecot) drop(t *testing.T, folder string, msgs ...string) {
	t.Helper()
	dir := d.folderDir(folder)
	for _, m := range msgs {
		name := fmt.Sprintf("%d.M%dP%dQ%d.fetchtest", time.Now().Unix(), time.Now().UnixNano(), os.Getpid(), dropSeq.Add(1))
		tmp := filepath.Join(dir, "tmp", name)
		if err := os.WriteFile(tmp, []byte(m), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(tmp, dovecotUID, dovecotUID); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "new", name)); err != nil {
			t.Fatal(err)
		}
	}
}

// dropSeq makes the names of dropped files unique.
var dropSeq atomic.Int64

// count is the number of messages in a folder.
func (d *dovecot) count(folder string) int {
	n := 0
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(d.folderDir(folder), sub))
		n += len(ents)
	}
	return n
}

// remoteMessage is a message as it sits in the remote mailbox.
func remoteMessage(subject string) string {
	id := strings.ReplaceAll(subject, " ", ".")
	return "Return-Path: <sender@remote.example>\r\nFrom: Sender <sender@remote.example>\r\nTo: remote@remote.example\r\n" +
		"Subject: " + subject + "\r\nMessage-ID: <" + id + "@remote.example>\r\nDate: Sat, 29 Nov 2025 10:00:00 +0000\r\n\r\n" +
		"Body of " + subject + ".\r\n.\r\n..a line with a leading dot\r\n"
}

// certFingerprint is the SHA-256 of the test certificate, as a pin.
func certFingerprint(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(certDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("cert.pem: no PEM block")
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blk.Bytes)
	return hex.EncodeToString(sum[:])
}

// fetchCLI runs `posthorn fetch` on s's configuration.
func fetchCLI(t *testing.T, s *server, args ...string) result {
	t.Helper()
	return run(t, 60*time.Second, "", nil, binary, append([]string{"--config", s.config, "fetch"}, args...)...)
}

var fetchedRE = regexp.MustCompile(`(\d+) fetched, (\d+) skipped, (\d+) duplicates, (\d+) deleted`)

// fetchedCount returns the "N fetched" of a --once run.
func fetchedCount(t *testing.T, r result) int {
	t.Helper()
	m := fetchedRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no summary in the output of posthorn fetch: %s", r)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// subjectsIn returns how often each Subject occurs in a Maildir.
func subjectsIn(t *testing.T, dir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, f := range readMaildir(t, dir) {
		out[f.subject()]++
	}
	return out
}

// TestFetchFromDovecot pulls from Dovecot over IMAP and POP3, each with
// implicit TLS and with STARTTLS, the certificate pinned by fingerprint.
func TestFetchFromDovecot(t *testing.T) {
	t.Parallel()
	dv := newDovecot(t)
	s := newServer(t, opts{})
	fp := certFingerprint(t)
	user := dovecotUser
	for _, tc := range []struct{ name, url string }{
		{"imaps", fmt.Sprintf("imaps://%s@127.0.0.1:%d/INBOX", user, dv.imaps)},
		{"imap STARTTLS", fmt.Sprintf("imap://%s@127.0.0.1:%d", user, dv.imap)},
		{"pop3s", fmt.Sprintf("pop3s://%s@127.0.0.1:%d", user, dv.pop3s)},
		{"pop3 STLS", fmt.Sprintf("pop3://%s@127.0.0.1:%d", user, dv.pop3)},
	} {
		subjects := []string{tc.name + " one", tc.name + " two"}
		dv.drop(t, "", remoteMessage(subjects[0]), remoteMessage(subjects[1]))
		r := fetchCLI(t, s, "--from", tc.url, "--to", "me@example.test", "--password-file", dv.pwFile, "--tls-fingerprint", fp)
		if r.err != nil {
			t.Fatalf("%s: %s", tc.name, r)
		}
		if n := fetchedCount(t, r); n != 2 {
			t.Errorf("%s: %d fetched, want 2", tc.name, n)
		}
		got := subjectsIn(t, s.inboxDir())
		for _, subj := range subjects {
			if got[subj] != 1 {
				t.Errorf("%s: %d local copies of %q, want 1", tc.name, got[subj], subj)
			}
		}
		if n := dv.count(""); n != 0 {
			t.Errorf("%s: %d messages left in Dovecot, want 0 (deleted after delivery)", tc.name, n)
		}
	}
	// The stored copy: our trace fields first, the message intact.
	f := waitMaildir(t, s.inboxDir(), "imaps one", time.Second)
	if rcvd := f.header["Received"]; len(rcvd) == 0 || !strings.Contains(rcvd[0], "(posthorn fetch) with IMAPS") {
		t.Errorf("first Received = %q", rcvd)
	}
	if id := f.header.Get("X-Posthorn-Fetch"); !strings.HasPrefix(id, "url-imap-remote@127.0.0.1-") || !strings.Contains(id, "/INBOX/") {
		t.Errorf("X-Posthorn-Fetch = %q", id)
	}
	if rp := f.header["Return-Path"]; len(rp) == 0 || rp[0] != "<sender@remote.example>" {
		t.Errorf("Return-Path = %q: the envelope sender is the remote Return-Path", rp)
	}
	if !strings.Contains(f.body, "\n.\n..a line with a leading dot\n") {
		t.Errorf("body changed:\n%s", f.body)
	}

	// Verification is on by default: a self-signed certificate without a
	// pin is refused, and nothing is fetched or deleted.
	dv.drop(t, "", remoteMessage("unverified"))
	r := fetchCLI(t, s, "--from", fmt.Sprintf("imaps://%s@127.0.0.1:%d", user, dv.imaps), "--to", "me@example.test", "--password-file", dv.pwFile)
	if ee, ok := r.err.(*exec.ExitError); !ok || ee.ExitCode() != 75 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("unpinned self-signed certificate: %s", r)
	}
	if dv.count("") != 1 {
		t.Error("the message was touched although TLS failed")
	}

	// A crash after the store said yes but before the done record: cut
	// the journal back to the pending record and run again. The copy is
	// found in the store, not delivered twice, and deleted remotely.
	imaps := fmt.Sprintf("imaps://%s@127.0.0.1:%d/INBOX", user, dv.imaps)
	pinned := []string{"--from", imaps, "--to", "me@example.test", "--password-file", dv.pwFile, "--tls-fingerprint", fp}
	if r := fetchCLI(t, s, append(pinned, "--keep")...); r.err != nil || fetchedCount(t, r) != 1 {
		t.Fatalf("--keep: %s", r)
	}
	journal := filepath.Join(s.data, "fetch", fmt.Sprintf("url-imap-remote@127.0.0.1-%d.state", dv.imaps))
	b, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.LastIndex(string(b), `{"op":"pending"`)
	if cut < 0 {
		t.Fatalf("no pending record in the journal:\n%s", b)
	}
	end := cut + strings.IndexByte(string(b[cut:]), '\n') + 1
	if err := os.WriteFile(journal, b[:end], 0o600); err != nil {
		t.Fatal(err)
	}
	r = fetchCLI(t, s, pinned...)
	if r.err != nil || !strings.Contains(r.stderr, "copy was stored before the interruption") {
		t.Errorf("after the cut journal: %s", r)
	}
	if n := subjectsIn(t, s.inboxDir())["unverified"]; n != 1 {
		t.Errorf("%d local copies of the interrupted message, want 1", n)
	}
	if n := dv.count(""); n != 0 {
		t.Errorf("%d messages left in Dovecot", n)
	}
}

// TestFetchFromPosthorn pulls from a second posthorn over IMAPS and
// POP3S, with --keep first (nothing is fetched twice), then deleting.
func TestFetchFromPosthorn(t *testing.T) {
	t.Parallel()
	remote, ports := accessServer(t)
	local := newServer(t, opts{})
	fp := certFingerprint(t)
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(userPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deliverRemote := func(subjects ...string) {
		for _, subj := range subjects {
			remote.admin(remoteMessage(subj), "deliver", "-d", "me@example.test", "-f", "sender@remote.example")
		}
	}
	remoteInbox := filepath.Join(remote.data, "mail", "example.test", "me")
	imaps := fmt.Sprintf("imaps://me%%40example.test@127.0.0.1:%d/INBOX", ports.imaps)
	pop3s := fmt.Sprintf("pop3s://me%%40example.test@127.0.0.1:%d", ports.pop3s)
	args := func(url string, extra ...string) []string {
		return append([]string{"--from", url, "--to", "me@example.test", "--password-file", pwFile, "--tls-fingerprint", fp}, extra...)
	}

	deliverRemote("posthorn 1", "posthorn 2")
	for i, want := range []int{2, 0} { // --keep: the second run finds nothing new
		r := fetchCLI(t, local, args(imaps, "--keep")...)
		if r.err != nil {
			t.Fatalf("imaps --keep: %s", r)
		}
		if n := fetchedCount(t, r); n != want {
			t.Errorf("imaps --keep run %d: %d fetched, want %d", i+1, n, want)
		}
	}
	if n := countFiles(t, remoteInbox); n != 2 {
		t.Errorf("%d messages on the remote after --keep, want 2", n)
	}
	deliverRemote("posthorn 3")
	r := fetchCLI(t, local, args(imaps)...)
	if r.err != nil || fetchedCount(t, r) != 1 || !strings.Contains(r.stdout, "3 deleted") {
		t.Errorf("imaps: %s", r)
	}
	deliverRemote("posthorn 4", "posthorn 5")
	r = fetchCLI(t, local, args(pop3s)...)
	if r.err != nil || fetchedCount(t, r) != 2 {
		t.Errorf("pop3s: %s", r)
	}
	got := subjectsIn(t, local.inboxDir())
	for i := 1; i <= 5; i++ {
		if subj := fmt.Sprintf("posthorn %d", i); got[subj] != 1 {
			t.Errorf("%d local copies of %q, want 1 (all: %v)", got[subj], subj, got)
		}
	}
	if !poll(5*time.Second, func() bool { return countFiles(t, remoteInbox) == 0 }) {
		t.Errorf("%d messages left on the remote posthorn", countFiles(t, remoteInbox))
	}
}

// TestFetchKill9Resume kills the fetcher with SIGKILL three times in the
// middle of fetching 500 messages from Dovecot over IMAPS, restarting it
// each time. At the end every message is here exactly once (counted by
// Message-ID) and the remote mailbox is empty.
func TestFetchKill9Resume(t *testing.T) {
	t.Parallel()
	const total = 500
	dv := newDovecot(t)
	s := newServer(t, opts{})
	msgs := make([]string, total)
	for i := range msgs {
		msgs[i] = remoteMessage(fmt.Sprintf("kill %03d", i)) + strings.Repeat("filler line of text\r\n", 40)
	}
	dv.drop(t, "", msgs...)
	url := fmt.Sprintf("imaps://%s@127.0.0.1:%d/INBOX", dovecotUser, dv.imaps)
	args := []string{"--config", s.config, "fetch", "--from", url, "--to", "me@example.test",
		"--password-file", dv.pwFile, "--tls-fingerprint", certFingerprint(t)}
	start := time.Now()
	var logs strings.Builder // of every run
	rng, seed := killSchedule(t)
	var kills []int // after this many messages delivered, increasing
	for prev := 0; len(kills) < 3; {
		prev += 30 + rng.IntN(120)
		kills = append(kills, prev)
	}
	t.Logf("kills after %v messages (seed %d)", kills, seed)
	for i, at := range kills {
		log := filepath.Join(t.TempDir(), "fetch.log")
		lf, err := os.Create(log)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binary, args...)
		cmd.Stdout, cmd.Stderr = lf, lf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		reached := poll(30*time.Second, func() bool { return countFiles(t, s.inboxDir()) >= at })
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		err = cmd.Wait()
		lf.Close()
		b, _ := os.ReadFile(log)
		logs.Write(b)
		if !reached {
			t.Fatalf("run %d: %d messages after 30s, wanted to kill at %d (exit %v):\n%s", i+1, countFiles(t, s.inboxDir()), at, err, tail(b, 3000))
		}
		t.Logf("run %d killed with %d messages here, %d left in Dovecot (%v)", i+1, countFiles(t, s.inboxDir()), dv.count(""), err)
	}
	r := fetchCLI(t, s, args[3:]...)
	if r.err != nil {
		t.Fatalf("last run: %s", r)
	}
	elapsed := time.Since(start)
	logs.WriteString(r.stderr)
	resumed := strings.Count(logs.String(), "resuming an interrupted delivery")
	found := strings.Count(logs.String(), "copy was stored before the interruption")
	ids := map[string]int{}
	for _, f := range readMaildir(t, s.inboxDir()) {
		ids[f.header.Get("Message-ID")]++
	}
	dups := 0
	for id, n := range ids {
		if n > 1 {
			dups += n - 1
			t.Errorf("%s is here %d times", id, n)
		}
	}
	if len(ids) != total || dups != 0 {
		t.Errorf("%d distinct messages here, %d duplicates; want %d and 0", len(ids), dups, total)
	}
	if n := dv.count(""); n != 0 {
		t.Errorf("%d messages left in Dovecot, want 0", n)
	}
	t.Logf("500 messages fetched in %v across 4 runs (3 killed); %d interrupted deliveries resumed, %d of them already stored",
		elapsed.Round(time.Millisecond), resumed, found)
}

// TestFetchIdleTwoFolders: the daemon watches two Dovecot folders with
// IDLE; a message dropped into each arrives within seconds, though the
// poll interval is an hour.
func TestFetchIdleTwoFolders(t *testing.T) {
	t.Parallel()
	dv := newDovecot(t, "Lists")
	s := newServer(t, opts{})
	s.stop()
	source := fmt.Sprintf(`
[[fetch]]
name = "dovecot"
account = "me@example.test"
protocol = "imap"
host = "127.0.0.1"
port = %d
user = %q
password_file = %q
folders = ["INBOX", "Lists"]
idle = true
interval = "1h"
tls_fingerprint = %q
`, dv.imaps, dovecotUser, dv.pwFile, certFingerprint(t))
	f, err := os.OpenFile(s.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(source)
	f.Close()
	dv.drop(t, "INBOX", remoteMessage("before start"))
	s.restart()
	waitMaildir(t, s.inboxDir(), "before start", 10*time.Second)
	time.Sleep(500 * time.Millisecond) // both folders in IDLE
	start := time.Now()
	dv.drop(t, "INBOX", remoteMessage("idle inbox"))
	dv.drop(t, "Lists", remoteMessage("idle lists"))
	waitMaildir(t, s.inboxDir(), "idle inbox", 5*time.Second)
	waitMaildir(t, s.inboxDir(), "idle lists", 5*time.Second)
	t.Logf("IDLE: both messages delivered %v after they were dropped", time.Since(start).Round(time.Millisecond))
	// Deletion follows delivery, at the end of the pass.
	if !poll(5*time.Second, func() bool { return dv.count("INBOX")+dv.count("Lists") == 0 }) {
		t.Errorf("%d messages left in Dovecot", dv.count("INBOX")+dv.count("Lists"))
	}
	got := subjectsIn(t, s.inboxDir())
	if len(got) != 3 || got["idle inbox"] != 1 || got["idle lists"] != 1 {
		t.Errorf("local messages: %v", got)
	}
}
