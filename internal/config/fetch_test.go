package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFetchLoad(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `
[[fetch]]
name = "work"
account = "me@example.test"
protocol = "IMAP"
host = "imap.example.net"
user = "me@example.net"
password_file = "/etc/posthorn/work.pw"
folders = ["INBOX", "Lists/Go"]
idle = true
tls_fingerprint = "AB:`+strings.Repeat("CD:", 30)+`EF"

[[fetch]]
name = "old.pop"
account = "me@example.test"
protocol = "pop3"
host = "192.0.2.1"
port = 110
tls = "starttls"
user = "me"
password_command = "pass show mail"
keep = true
interval = "1m"
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Fetch) != 2 {
		t.Fatalf("%d sources", len(c.Fetch))
	}
	w, p := c.Fetch[0], c.Fetch[1]
	if w.Protocol != "imap" || w.TLS != "implicit" || w.Port != 0 || !w.Idle || !slices.Equal(w.Folders, []string{"INBOX", "Lists/Go"}) ||
		w.Interval != Duration(5*time.Minute) || w.Timeout != Duration(2*time.Minute) || w.TLSFingerprint != "ab"+strings.Repeat("cd", 30)+"ef" {
		t.Errorf("work = %+v", w)
	}
	if p.TLS != "starttls" || !p.Keep || p.Interval != Duration(time.Minute) || !slices.Equal(p.Folders, []string{"INBOX"}) {
		t.Errorf("old.pop = %+v", p)
	}
}

func TestFetchValidate(t *testing.T) {
	t.Parallel()
	base := `name = "s"
account = "me@example.test"
protocol = "imap"
host = "imap.example.net"
user = "me"
password_file = "/pw"
`
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"plain text", `tls = "none"`, `fetch["s"].tls: "none" sends the password in the clear`},
		{"relative password file", `password_file = "pw"`, "must be an absolute path"},
		{"both passwords", `password_command = "x"`, "not both"},
		{"bad fingerprint", `tls_fingerprint = "abc"`, "is not a SHA-256"},
		{"fingerprint and CA", "tls_fingerprint = \"" + strings.Repeat("ab", 32) + "\"\ntls_ca_file = \"/ca.pem\"", "not both"},
		{"pop3 folders", `folders = ["Lists"]`, "pop3 has only INBOX"},
		{"duplicate folder", `folders = ["INBOX", "INBOX"]`, "listed twice"},
		{"bad tls", `tls = "ssl"`, `"ssl" is not implicit, starttls or none`},
		{"short interval", `interval = "10ms"`, "at least 1s"},
	} {
		doc := base
		for line := range strings.Lines(tc.extra) {
			key, _, _ := strings.Cut(line, " =")
			doc = removeKey(doc, key)
		}
		doc = "[[fetch]]\n" + doc + tc.extra + "\n"
		if tc.name == "pop3 folders" {
			doc = strings.Replace(doc, `protocol = "imap"`, `protocol = "pop3"`, 1)
		}
		_, err := Load(writeConfig(t, doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	dup := "[[fetch]]\n" + base + "\n[[fetch]]\n" + base
	if _, err := Load(writeConfig(t, dup)); err == nil || !strings.Contains(err.Error(), "used by another") {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := Load(writeConfig(t, "[[fetch]]\n"+base+"pasword_file = \"/x\"\n")); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Errorf("misspelt key: %v", err)
	}
}

// removeKey drops the line setting key from a TOML fragment.
func removeKey(doc, key string) string {
	var out []string
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(line, key+" =") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
