package e2e_test

import (
	"os"
	"path/filepath"
	"testing"
)

// The daemon caches its directory answers (domain, account, alias,
// quota). Admin commands run in their own processes; every change they
// make must count for the very next message, including answers the daemon
// had just cached, positive or negative.
func TestDirectoryChangesByAdminCommands(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	send := func(to, subject string) int {
		t.Helper()
		err := sendSMTP(s.addr(), "sender@remote.test", to, "Subject: "+subject+"\r\n\r\nbody\r\n")
		if err != nil && smtpCode(err) == 0 {
			t.Fatalf("send to %s: %v", to, err)
		}
		return smtpCode(err)
	}
	inbox := func(local string) int {
		ents, _ := os.ReadDir(filepath.Join(s.data, "mail", "example.test", local, "new"))
		return len(ents)
	}

	// A negative answer, asked twice so that it is cached, then the account.
	for range 2 {
		if code := send("new@example.test", "before"); code != 550 {
			t.Fatalf("to an unknown account: code %d, want 550", code)
		}
	}
	s.admin("pw-new\n", "user", "add", "new@example.test", "--password-stdin")
	if code := send("new@example.test", "after add"); code != 0 {
		t.Fatalf("right after user add: code %d, want 250", code)
	}

	// An alias added to a cached (negative) key.
	if code := send("team@example.test", "team before"); code != 550 {
		t.Fatalf("to an unknown alias: code %d, want 550", code)
	}
	s.admin("", "alias", "add", "team@example.test", "new@example.test")
	if code := send("team@example.test", "team after"); code != 0 {
		t.Fatalf("right after alias add: code %d, want 250", code)
	}
	if n := inbox("new"); n != 2 {
		t.Errorf("new@ has %d messages, want 2", n)
	}

	// A quota set on a cached account, then the account deleted.
	s.admin("", "user", "quota", "new@example.test", "10")
	if code := send("new@example.test", "over quota"); code != 452 {
		t.Errorf("right after a 10-byte quota: code %d, want 452", code)
	}
	s.admin("", "user", "del", "new@example.test")
	if code := send("new@example.test", "after del"); code != 550 {
		t.Errorf("right after user del: code %d, want 550", code)
	}

	// A domain: relaying refused, then ours.
	if code := send("x@other.test", "other before"); code != 554 {
		t.Fatalf("to a domain not ours: code %d, want 554", code)
	}
	s.admin("", "domain", "add", "other.test")
	s.admin("pw-x\n", "user", "add", "x@other.test", "--password-stdin")
	if code := send("x@other.test", "other after"); code != 0 {
		t.Errorf("right after domain and user add: code %d, want 250", code)
	}
}
