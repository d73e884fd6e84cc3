package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unixSetup writes a config with a [unix] domain whose one user, "u",
// has this process's uid, and a data directory whose database cannot be
// opened (posthorn.db is a directory), as the store is for a user that
// Postfix runs mailbox_command as.
func unixSetup(t *testing.T) (config, spool, home, data string) {
	t.Helper()
	dir := t.TempDir()
	spool, home, data = filepath.Join(dir, "spool"), filepath.Join(dir, "home"), filepath.Join(dir, "data")
	for _, d := range []string{spool, home, filepath.Join(data, "posthorn.db"), filepath.Join(data, "maildrop")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	passwd := filepath.Join(dir, "passwd")
	line := fmt.Sprintf("u:x:%d:%d::%s:/bin/sh\n", os.Getuid(), os.Getgid(), home)
	if err := os.WriteFile(passwd, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	config = filepath.Join(dir, "posthorn.toml")
	toml := fmt.Sprintf("hostname = \"h.test\"\ndata_dir = %q\n[unix]\ndomains = [\"h.test\"]\npasswd_file = %q\nspool_dir = %q\naliases = []\n", data, passwd, spool)
	if err := os.WriteFile(config, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return config, spool, home, data
}

func runDeliver(config, stdin string, args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := Main("posthorn", append([]string{"--config", config, "deliver"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, errb.String()
}

// TestDeliverUnixWithoutStore: `deliver -d USER` for a [unix] domain
// writes the user's mbox without opening the store. As Postfix's
// mailbox_command it runs with the recipient's uid, which cannot open
// the daemon's database, and it used to exit 75 for every message.
func TestDeliverUnixWithoutStore(t *testing.T) {
	t.Parallel()
	config, spool, _, _ := unixSetup(t)
	if code, stderr := runDeliver(config, "Subject: hi\n\nbody\n", "-d", "u", "-f", "alice@example.org"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	mbox, err := os.ReadFile(filepath.Join(spool, "u"))
	if err != nil || !bytes.HasPrefix(mbox, []byte("From alice@example.org ")) || !bytes.Contains(mbox, []byte("Return-Path: <alice@example.org>\nDelivered-To: u@h.test\nSubject: hi\n\nbody\n")) {
		t.Errorf("mbox %q, %v", mbox, err)
	}
}

// TestDeliverForwardThroughMaildrop: a remote .forward target is left in
// the maildrop for the daemon to send (or bounce), not in the store.
func TestDeliverForwardThroughMaildrop(t *testing.T) {
	t.Parallel()
	config, _, home, data := unixSetup(t)
	if err := os.WriteFile(filepath.Join(home, ".forward"), []byte("friend@remote.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stderr := runDeliver(config, "Subject: fw\n\nbody\n", "-d", "u", "-f", "alice@example.org"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := dropped(t, filepath.Join(data, "maildrop"))
	if len(got) != 1 || !slices.Equal(got[0], []string{"friend@remote.example"}) {
		t.Errorf("maildrop: %q", got)
	}
}

// TestDeliverChecksInput: -f is written into the From_ line and
// Return-Path, so what is no envelope address is a usage error (64), not
// a header injection; an empty message is refused (65).
func TestDeliverChecksInput(t *testing.T) {
	t.Parallel()
	config, spool, _, _ := unixSetup(t)
	for _, bad := range []string{"a b@x.test", "a@x.test>\nBcc: injected@x.test\nX: <y", "a@x.test\r", "<a@x.test> x"} {
		if code, stderr := runDeliver(config, "Subject: s\n\nx\n", "-d", "u", "-f", bad); code != exUsage {
			t.Errorf("-f %q: exit %d, want 64 (%s)", bad, code, stderr)
		}
	}
	for _, empty := range []string{"", "\n", "From a@b Sun Nov 29 10:00:00 2026\n"} {
		if code, _ := runDeliver(config, empty, "-d", "u"); code != exDataErr {
			t.Errorf("input %q: exit %d, want 65", empty, code)
		}
	}
	if _, err := os.Stat(filepath.Join(spool, "u")); err == nil {
		t.Error("a refused message reached the mbox")
	}
	for _, ok := range []string{"", "<>", "<a@x.test>", `"a b"@x.test`, "root"} {
		if code, stderr := runDeliver(config, "Subject: s\n\nx\n", "-d", "u", "-f", ok); code != 0 {
			t.Errorf("-f %q: exit %d (%s)", ok, code, stderr)
		}
	}
}
