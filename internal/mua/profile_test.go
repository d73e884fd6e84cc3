package mua

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFileDefaultsAndSelection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "pw", "s3cret\nignored\n")
	path := writeFile(t, dir, "client.toml", `
default = "work"

[profile.work]
user = "me@example.test"
password_file = "pw"
name = "Me Myself"
tls_fingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
[profile.work.imap]
host = "imap.example.test"
[profile.work.submission]
host = "smtp.example.test"
port = 587

[profile.home]
user = "login"
from = "Home <home@example.test>"
password_command = "echo from-command"
[profile.home.imap]
host = "h.example.test"
tls = "starttls"
`)
	f, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := f.Profile("")
	if err != nil || w.Name != "work" {
		t.Fatalf("default profile %v, %v", w, err)
	}
	if w.IMAP.Port != 993 || w.IMAP.TLS != TLSImplicit || w.Submission.TLS != TLSStart || w.From != "me@example.test" ||
		w.Direct.Port != 25 || !w.SavesSent() || w.PasswordFile != filepath.Join(dir, "pw") || len(w.TLSFingerprint) != 64 {
		t.Errorf("work: %+v", w)
	}
	if pw, err := w.password(context.Background()); err != nil || pw != "s3cret" {
		t.Errorf("password %q, %v", pw, err)
	}
	from, _ := w.FromAddress()
	if from.Name != "Me Myself" || from.Address != "me@example.test" {
		t.Errorf("from %v", from)
	}
	h, err := f.Profile("home")
	if err != nil || h.IMAP.Port != 143 || h.Submission.Host != "" || h.From != "Home <home@example.test>" {
		t.Fatalf("home %+v %v", h, err)
	}
	if pw, err := h.password(context.Background()); err != nil || pw != "from-command" {
		t.Errorf("password command: %q, %v", pw, err)
	}
	if err := h.NeedSubmission(); err == nil {
		t.Error("home has no submission server, but NeedSubmission passed")
	}
	if strings.Join(h.Me(), " ") != "home@example.test" {
		t.Errorf("me %v", h.Me())
	}
	if _, err := f.Profile("nope"); err == nil {
		t.Error("unknown profile accepted")
	}
}

func TestLoadFileRejects(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"unknown key":     "[profile.a]\nuser = \"x\"\npasword_file = \"typo\"\n",
		"plaintext":       "[profile.a]\n[profile.a.imap]\nhost = \"h\"\ntls = \"none\"\n",
		"two passwords":   "[profile.a]\npassword_file = \"a\"\npassword_command = \"b\"\n",
		"bad fingerprint": "[profile.a]\ntls_fingerprint = \"abc\"\n",
		"bad from":        "[profile.a]\nfrom = \"not an address\"\n",
		"no profiles":     "default = \"a\"\n",
		"missing default": "default = \"b\"\n[profile.a]\n",
		"port no host":    "[profile.a.submission]\nport = 25\n",
	} {
		path := writeFile(t, t.TempDir(), "c.toml", content)
		if _, err := LoadFile(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Two profiles and no default: a choice is needed.
	f, err := LoadFile(writeFile(t, t.TempDir(), "c.toml", "[profile.a]\n[profile.b]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Profile(""); err == nil {
		t.Error("no default among two profiles, but one was chosen")
	}
}

func TestLocalServer(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		implicit, start []string
		want            Server
	}{
		{[]string{":993"}, []string{":143"}, Server{Host: "127.0.0.1", Port: 993, TLS: TLSImplicit}},
		{nil, []string{"[::]:143"}, Server{Host: "::1", Port: 143, TLS: TLSStart}},
		{[]string{"bad"}, []string{"192.0.2.1:587"}, Server{Host: "192.0.2.1", Port: 587, TLS: TLSStart}},
		{nil, nil, Server{}},
	} {
		if got := LocalServer(c.implicit, c.start); got != c.want {
			t.Errorf("LocalServer(%v, %v) = %+v, want %+v", c.implicit, c.start, got, c.want)
		}
	}
}
