package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTLSWithTestssl runs testssl.sh (Debian package testssl.sh) against
// implicit TLS (SMTP submissions) and STARTTLS (IMAP, POP3, SMTP): only
// TLS 1.2 and 1.3, no weak cipher category, no known vulnerability.
// Findings rated LOW or worse fail the test.
func TestTLSWithTestssl(t *testing.T) {
	t.Parallel()
	need(t, "testssl")
	s, p := accessServer(t)
	subs := freePort(t)
	s.stop()
	b, _ := os.ReadFile(s.config)
	os.WriteFile(s.config, []byte(strings.Replace(string(b), "[listen]\n", fmt.Sprintf("[listen]\nsubmissions = [\"127.0.0.1:%d\"]\n", subs), 1)), 0o640)
	s.restart()
	for _, c := range []struct {
		name string
		args []string
		port int
	}{
		{"submissions", nil, subs},
		{"smtp-starttls", []string{"-t", "smtp"}, s.port},
		{"imap-starttls", []string{"-t", "imap"}, p.imap},
		{"pop3-starttls", []string{"-t", "pop3"}, p.pop3},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "testssl.json")
			args := append([]string{"--quiet", "--color", "0", "--warnings", "off", "--jsonfile", out, "-p", "-s", "-U"}, c.args...)
			args = append(args, "127.0.0.1:"+strconv.Itoa(c.port))
			r := run(t, 4*time.Minute, "", nil, "testssl", args...)
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("testssl wrote no report: %v\n%s", err, r)
			}
			var findings []struct{ ID, Severity, Finding string }
			if err := json.Unmarshal(b, &findings); err != nil {
				t.Fatalf("testssl report: %v", err)
			}
			seen := map[string]string{}
			for _, f := range findings {
				seen[f.ID] = f.Finding
				switch f.Severity {
				case "LOW", "MEDIUM", "HIGH", "CRITICAL":
					t.Errorf("%s: %s %s: %s", c.name, f.Severity, f.ID, f.Finding)
				}
			}
			for _, id := range []string{"SSLv2", "SSLv3", "TLS1", "TLS1_1"} {
				if !strings.HasPrefix(seen[id], "not offered") {
					t.Errorf("%s: %s: %q, want not offered", c.name, id, seen[id])
				}
			}
			if !strings.HasPrefix(seen["TLS1_2"], "offered") || !strings.HasPrefix(seen["TLS1_3"], "offered") {
				t.Errorf("%s: TLS 1.2 %q, TLS 1.3 %q: want both offered", c.name, seen["TLS1_2"], seen["TLS1_3"])
			}
		})
	}
}
