package fetch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSourceCheck(t *testing.T) {
	t.Parallel()
	good := func() Source {
		return Source{Name: "work", Account: "me@example.test", Protocol: IMAP, Host: "imap.example.net",
			User: "me", Password: staticPassword("x")}
	}
	s := good()
	if err := s.check(); err != nil {
		t.Fatal(err)
	}
	if s.Port != 993 || s.TLS != TLSImplicit || len(s.Folders) != 1 || s.Folders[0] != "INBOX" ||
		s.Interval != DefaultInterval || s.Timeout != DefaultTimeout {
		t.Errorf("defaults not filled in: %+v", s)
	}
	for _, tc := range []struct {
		name   string
		change func(*Source)
		want   string
	}{
		{"bad name", func(s *Source) { s.Name = "a/b" }, "source name"},
		{"dot name", func(s *Source) { s.Name = ".x" }, "dot"},
		{"no account", func(s *Source) { s.Account = "me" }, "account"},
		{"protocol", func(s *Source) { s.Protocol = "smtp" }, "protocol"},
		{"plain text", func(s *Source) { s.TLS = TLSNone }, "insecure"},
		{"tls mode", func(s *Source) { s.TLS = "maybe" }, "tls"},
		{"fingerprint", func(s *Source) { s.Fingerprint = "abc" }, "fingerprint"},
		{"pop3 folders", func(s *Source) { s.Protocol, s.Folders = POP3, []string{"Lists"} }, "pop3"},
		{"pop3 idle", func(s *Source) { s.Protocol, s.Idle = POP3, true }, "pop3"},
		{"no password", func(s *Source) { s.Password = nil }, "password"},
	} {
		s := good()
		tc.change(&s)
		if err := s.check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, p := range []struct {
		proto, tls string
		port       int
	}{{POP3, TLSImplicit, 995}, {POP3, TLSStart, 110}, {IMAP, TLSStart, 143}, {IMAP, TLSNone, 143}} {
		if got := DefaultPort(p.proto, p.tls); got != p.port {
			t.Errorf("DefaultPort(%s, %s) = %d", p.proto, p.tls, got)
		}
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	t.Parallel()
	hex := strings.Repeat("ab", 32)
	for _, in := range []string{hex, strings.ToUpper(hex), colons(hex), "sha256:" + hex, "SHA256 Fingerprint=" + colons(hex)} {
		if got, err := NormalizeFingerprint(in); err != nil || got != hex {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "ab", strings.Repeat("zz", 32), strings.Repeat("ab", 20)} {
		if _, err := NormalizeFingerprint(in); err == nil {
			t.Errorf("NormalizeFingerprint(%q) accepted", in)
		}
	}
}

func TestPasswords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pw")
	must(t, os.WriteFile(path, []byte("s3cret\r\nsecond line\n"), 0o600))
	if pw, err := PasswordFile(path)(ctx); pw != "s3cret" || err != nil {
		t.Errorf("PasswordFile = %q, %v", pw, err)
	}
	if pw, err := PasswordCommand("printf 'from cmd\\nmore'")(ctx); pw != "from cmd" || err != nil {
		t.Errorf("PasswordCommand = %q, %v", pw, err)
	}
	if _, err := PasswordCommand("echo oops >&2; exit 3")(ctx); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("failing command: %v", err)
	}
	must(t, os.WriteFile(path, []byte("\n"), 0o600))
	if _, err := PasswordFile(path)(ctx); err == nil {
		t.Error("empty password accepted")
	}
	if pw, err := PasswordCommand("head -c 100000 /dev/zero | tr '\\0' x")(ctx); err == nil { // kept up to 4 KiB
		t.Errorf("a 100,000-octet line gave %d octets", len(pw))
	}
	// A command that waits in a child (gpg for its pinentry) is killed
	// whole when ctx ends: the child held the output pipe, and the call
	// waited for it (30 s here) past any timeout or shutdown.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := PasswordCommand("sh -c 'sleep 30'; echo late")(short); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("a hanging command: %v after %v", err, time.Since(start))
	}
}

func TestFetchIDs(t *testing.T) {
	t.Parallel()
	if got := imapID("src", "Lists/Go dev", 12, 34); got != "src/Lists%2FGo%20dev/12/34" {
		t.Errorf("imapID = %q", got)
	}
	if got := pop3ID("src", "a/b:c"); got != "src/pop3/a%2Fb%3Ac" {
		t.Errorf("pop3ID = %q", got)
	}
	msg := []byte("Received: x\r\nX-Posthorn-Fetch:  src/pop3/1 \r\nX-Posthorn-Fetch: forged\r\n\r\nX-Posthorn-Fetch: body\r\n")
	if got := IDOf(msg); got != "src/pop3/1" {
		t.Errorf("IDOf = %q: the first field counts", got)
	}
	if IDOf([]byte("Subject: x\r\n\r\nX-Posthorn-Fetch: in the body\r\n")) != "" {
		t.Error("IDOf read the body")
	}
	h := header([]byte("Return-Path: <a@b.test>\r\n\r\n"))
	if envelopeFrom(h) != "a@b.test" || envelopeFrom(header([]byte("Return-Path: <>\r\n\r\n"))) != "" {
		t.Error("envelopeFrom")
	}
}
