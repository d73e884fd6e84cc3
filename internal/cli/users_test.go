package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUserAddPrintsPasswordOnlyWhenCreated: a generated password is
// printed once the account exists, never for an account the command then
// refuses (it printed one for a domain that is not ours, then failed).
func TestUserAddPrintsPasswordOnlyWhenCreated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := filepath.Join(dir, "posthorn.toml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf("hostname = \"h.test\"\ndata_dir = %q\n", filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Main("posthorn", append([]string{"--config", config}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("domain", "add", "example.test"); code != 0 {
		t.Fatalf("domain add: %d %s", code, out)
	}
	if code, out := run("user", "add", "x@elsewhere.test"); code == 0 || strings.Contains(out, "password:") {
		t.Errorf("refused account: exit %d, output %q", code, out)
	}
	if code, out := run("user", "add", "me@example.test"); code != 0 || !strings.Contains(out, "password: ") || !strings.Contains(out, "created me@example.test") {
		t.Errorf("created account: exit %d, output %q", code, out)
	}
}
