package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestErrorsArePrintable: an error that quotes hostile text (here a
// config path; in practice a server's reply) reaches the terminal without
// its control characters, so it cannot set the title, clear the screen
// or recolour what follows.
func TestErrorsArePrintable(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := Main("posthorn", []string{"--config", "/nonexistent/\x1b]0;PWNED\x07\x1b[2J\x1b[31mred.toml", "domain", "list"}, strings.NewReader(""), &stdout, &stderr)
	if code == 0 {
		t.Fatal("a missing config file gave exit 0")
	}
	if out := stderr.String(); strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, "red.toml") {
		t.Errorf("stderr: %q", out)
	}
}
