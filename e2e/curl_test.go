package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// curlSend uploads a message file with curl's SMTP client.
func curlSend(t *testing.T, s *server, subject string, extra ...string) {
	t.Helper()
	need(t, "curl")
	file := filepath.Join(t.TempDir(), "message.eml")
	msg := "From: curl@client.example.net\r\nTo: me@example.test\r\nSubject: " + subject + "\r\n\r\nsent by curl\r\n.leading dot survives\r\n"
	if err := os.WriteFile(file, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--silent", "--show-error", "--max-time", "20", "--url", "smtp://" + s.addr(),
		"--mail-from", "curl@client.example.net", "--mail-rcpt", "me@example.test", "--upload-file", file}, extra...)
	if r := run(t, 30*time.Second, "", nil, "curl", args...); r.err != nil {
		t.Fatalf("curl %s: %s", strings.Join(args, " "), r)
	}
}

func TestCurl(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	curlSend(t, s, "curl plain")
	curlSend(t, s, "curl starttls", "--ssl-reqd", "--insecure")

	st := s.mail()
	if n := len(st.inbox("me@example.test")); n != 2 {
		t.Errorf("me@example.test has %d messages, want 2", n)
	}
	plain := wantOne(t, st, "me@example.test", "curl plain")
	checkTrace(t, plain, "<curl@client.example.net>", "me@example.test")
	if plain.Body != "sent by curl\n.leading dot survives\n" {
		t.Errorf("body = %q (dot-stuffing by curl must be undone)", plain.Body)
	}
	tls := wantOne(t, st, "me@example.test", "curl starttls")
	if !strings.Contains(tls.Received[0], "with ESMTPS") || !strings.Contains(tls.Received[0], "TLS1.") {
		t.Errorf("Received of the STARTTLS send: %q", tls.Received[0])
	}
}
