package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMuttReadsMaildir delivers with swaks, then has mutt open the account's
// Maildir directly and pipe the (decoded) message out, the way a user on
// the mail host reads mail.
func TestMuttReadsMaildir(t *testing.T) {
	t.Parallel()
	need(t, "mutt", "script")
	s := newServer(t, opts{})
	swaks(t, s.addr(), "--from", "you@example.net", "--to", "me@example.test",
		"--header", "Subject: read me with mutt",
		"--add-header", "Content-Type: text/plain; charset=utf-8",
		"--body", "first line of the body\nzweite Zeile: Grüße\n")
	maildir := filepath.Join(s.data, "mail", "example.test", "me")
	home := t.TempDir()
	out := filepath.Join(home, "piped.txt")

	// mutt wants a terminal: script(1) gives it one. -R keeps the Maildir
	// untouched (nothing moves from new/ to cur/); <pipe-message> writes
	// what mutt decoded to a file, free of the terminal's CR/LF mapping.
	muttCmd := "mutt -n -F /dev/null -R -f " + maildir +
		" -e 'set folder=" + maildir + " spoolfile=" + maildir +
		" mbox_type=Maildir wait_key=no quit=yes pipe_decode=yes charset=utf-8 sort=date-received'" +
		` -e 'push "<pipe-message>cat >` + out + `<enter><quit>"'`
	r := run(t, 20*time.Second, "", []string{"HOME=" + home, "TERM=dumb", "LANG=C.UTF-8"},
		"script", "-qec", muttCmd, "/dev/null")
	if r.err != nil {
		t.Fatalf("mutt: %s", r)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("mutt wrote nothing: %v\nterminal:\n%s", err, r)
	}
	text := string(b)
	for _, want := range []string{
		"Subject: read me with mutt", "Return-Path: <you@example.net>", "Delivered-To: me@example.test",
		"first line of the body\nzweite Zeile: Grüße\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("mutt output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "\r") || strings.Contains(text, "^M") {
		t.Errorf("mutt output shows CR (^M): %q", text)
	}
}
