package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sieveRules = `require ["fileinto", "imap4flags", "vacation", "mailbox"];
# Mailing-list mail goes to its folder, made on first use.
if header :contains "List-Id" "dev.lists.remote.test" {
	fileinto :create "Lists/dev";
	stop;
}
if header :contains "Subject" "urgent" {
	addflag "\\Flagged";
}
vacation :days 7 :subject "Away until Monday" "I am away and will answer next week.";
`

// TestSieveFiltersDeliveries: a user's script files list mail into a
// folder by header, flags a message, and answers with vacation once per
// sender; a broken script is refused with its line and the active one
// keeps working; `posthorn deliver` goes through the same script.
func TestSieveFiltersDeliveries(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{users: []string{"me@example.test", "friend@example.test"}})
	rules := filepath.Join(s.dir, "rules.sieve")
	if err := os.WriteFile(rules, []byte(sieveRules), 0o600); err != nil {
		t.Fatal(err)
	}
	s.admin("", "sieve", "put", "me@example.test", rules, "--activate")
	if out := s.admin("", "sieve", "list", "me@example.test"); !strings.Contains(out, "rules") || !strings.Contains(out, "active") {
		t.Fatalf("sieve list: %q", out)
	}

	broken := filepath.Join(s.dir, "broken.sieve")
	os.WriteFile(broken, []byte("require \"fileinto\";\nkeep;\nfileinto \"a\" \"b\";\n"), 0o600)
	r := run(t, 30*time.Second, "", nil, binary, "--config", s.config, "sieve", "put", "me@example.test", broken, "--activate")
	if r.err == nil || !strings.Contains(r.stderr, "line 3") {
		t.Errorf("broken script: want an error naming line 3, got %s", r)
	}
	if out := s.admin("", "sieve", "get", "me@example.test"); out != sieveRules {
		t.Errorf("active script changed after a refused put:\n%s", out)
	}

	mail := filepath.Join(s.data, "mail", "example.test", "me")
	swaks(t, s.addr(), "--from", "list@remote.test", "--to", "me@example.test",
		"--header", "Subject: list traffic", "--add-header", "List-Id: Dev <dev.lists.remote.test>")
	swaks(t, s.addr(), "--from", "boss@remote.test", "--to", "me@example.test", "--header", "Subject: urgent: call me")
	waitFor(t, 5*time.Second, "list mail filed into Lists/dev", func() bool { return countFiles(t, filepath.Join(mail, ".Lists.dev")) == 1 })
	if n := countFiles(t, mail); n != 1 {
		t.Errorf("INBOX holds %d messages, want 1 (the urgent one)", n)
	}
	if !hasFlaggedFile(t, mail) {
		t.Error("the urgent message is not \\Flagged (no F in its Maildir info)")
	}

	// Vacation: a local sender writes twice and gets one reply.
	for i := 0; i < 2; i++ {
		swaks(t, s.addr(), "--from", "friend@example.test", "--to", "me@example.test",
			"--header", fmt.Sprintf("Subject: hello %d", i), "--header-To", "me@example.test")
	}
	friend := filepath.Join(s.data, "mail", "example.test", "friend")
	waitFor(t, 10*time.Second, "one vacation reply", func() bool { return countFiles(t, friend) >= 1 })
	time.Sleep(2 * time.Second) // a second reply, if one were coming, would be queued by now
	if n := countFiles(t, friend); n != 1 {
		t.Errorf("friend got %d vacation replies, want 1", n)
	}
	if b := readOnly(t, friend); !strings.Contains(b, "Subject: Away until Monday") || !strings.Contains(b, "Auto-Submitted: auto-replied") {
		t.Errorf("vacation reply:\n%s", b)
	}

	// The LDA applies the same script.
	msg := "From: list@remote.test\r\nTo: me@example.test\r\nList-Id: <dev.lists.remote.test>\r\nSubject: via deliver\r\n\r\nbody\r\n"
	r = run(t, 30*time.Second, msg, nil, binary, "--config", s.config, "deliver", "-d", "me@example.test", "-f", "list@remote.test")
	if r.err != nil {
		t.Fatalf("deliver: %s", r)
	}
	if n := countFiles(t, filepath.Join(mail, ".Lists.dev")); n != 2 {
		t.Errorf("Lists/dev holds %d messages after deliver, want 2", n)
	}
}

// TestSieveRuntimeFailureKeeps: a script whose action cannot be carried
// out (fileinto a missing folder without :create) still delivers to INBOX.
func TestSieveRuntimeFailureKeeps(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	s.admin("require \"fileinto\";\nfileinto \"Nowhere\";\n", "sieve", "put", "me@example.test", "-", "--name", "x", "--activate")
	swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test")
	mail := filepath.Join(s.data, "mail", "example.test", "me")
	waitFor(t, 5*time.Second, "message kept in INBOX", func() bool { return countFiles(t, mail) == 1 })
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out after %v waiting for: %s", d, what)
}

func hasFlaggedFile(t *testing.T, maildir string) bool {
	ents, _ := os.ReadDir(filepath.Join(maildir, "cur"))
	for _, e := range ents {
		if _, info, ok := strings.Cut(e.Name(), ":2,"); ok && strings.Contains(info, "F") {
			return true
		}
	}
	return false
}

// readOnly returns the content of the one message in a Maildir.
func readOnly(t *testing.T, maildir string) string {
	for _, sd := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(maildir, sd))
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(maildir, sd, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	return ""
}

// TestManageSieveWithSieveConnect: sieve-connect (Debian package), a
// ManageSieve client nobody here wrote, uploads and activates a script
// over STARTTLS; mail is then filtered by it; a broken script is refused
// with its line and changes nothing.
func TestManageSieveWithSieveConnect(t *testing.T) {
	t.Parallel()
	need(t, "sieve-connect")
	s := newServer(t, opts{})
	s.stop()
	port := freePort(t)
	b, _ := os.ReadFile(s.config)
	os.WriteFile(s.config, []byte(strings.Replace(string(b), "[listen]\n", fmt.Sprintf("[listen]\nmanagesieve = [\"127.0.0.1:%d\"]\n", port), 1)), 0o640)
	s.restart()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte(userPW+"\n"), 0o600)
	sc := func(args ...string) result {
		t.Helper()
		// The password comes on file descriptor 3, as sieve-connect documents.
		cmd := fmt.Sprintf("exec 3<%s; sieve-connect --server 127.0.0.1 --port %d --user me@example.test --passwordfd 3 --notlsverify %s",
			pwFile, port, strings.Join(args, " "))
		return run(t, 30*time.Second, "", nil, "sh", "-c", cmd)
	}
	good := filepath.Join(dir, "good.sieve")
	os.WriteFile(good, []byte("require \"fileinto\";\nif header :contains \"subject\" \"sort me\" { fileinto \"Archive\"; }\n"), 0o600)
	if r := sc("--upload", "--localsieve", good, "--remotesieve", "rules"); r.err != nil {
		t.Fatalf("upload: %s", r)
	}
	if r := sc("--activate", "--remotesieve", "rules"); r.err != nil {
		t.Fatalf("activate: %s", r)
	}
	if r := sc("--list"); r.err != nil || !strings.Contains(r.stdout, `"rules" ACTIVE`) {
		t.Errorf("list: %s", r)
	}
	bad := filepath.Join(dir, "bad.sieve")
	os.WriteFile(bad, []byte("require \"fileinto\";\n\nfileinto;\n"), 0o600)
	r := sc("--upload", "--localsieve", bad, "--remotesieve", "rules")
	if r.err == nil || !strings.Contains(r.stdout+r.stderr, "line 3") {
		t.Errorf("broken upload: want a failure naming line 3, got %s", r)
	}
	if got := s.admin("", "sieve", "get", "me@example.test"); !strings.Contains(got, "sort me") {
		t.Errorf("active script after a refused upload:\n%s", got)
	}
	swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test", "--header", "Subject: please sort me")
	archive := filepath.Join(s.data, "mail", "example.test", "me", ".Archive")
	waitFor(t, 5*time.Second, "the message filed into Archive", func() bool { return countFiles(t, archive) == 1 })
}
