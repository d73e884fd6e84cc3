package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Set once by TestMain.
var (
	binary     string // the built posthorn
	certDir    string // tls/cert.pem and tls/key.pem made by `posthorn init`
	scratch    string // removed when the tests end
	debPackage = map[string]string{
		// tool → Debian package that provides it, for the failure message.
		"swaks": "swaks", "mutt": "mutt", "curl": "curl", "python3": "python3", "script": "bsdutils",
		"mbsync": "isync", "fetchmail": "fetchmail", "s-nail": "s-nail", "testssl": "testssl.sh", "sieve-connect": "sieve-connect",
		"msmtp": "msmtp", "postfix": "postfix", "postconf": "postfix", "dovecot": "dovecot-imapd",
	}
)

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		code = 1
	} else {
		code = m.Run()
	}
	if scratch != "" {
		os.RemoveAll(scratch)
	}
	os.Exit(code)
}

// setup builds the binary once and makes the certificate every server uses.
func setup() (int, error) {
	var err error
	scratch, err = os.MkdirTemp("", "posthorn-e2e-")
	if err != nil {
		return 1, err
	}
	root, err := moduleRoot()
	if err != nil {
		return 1, err
	}
	binary = filepath.Join(scratch, "posthorn")
	build := exec.Command("go", "build", "-o", binary, "./cmd/posthorn")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("go build ./cmd/posthorn: %v\n%s", err, out)
	}
	certDir = filepath.Join(scratch, "certsrc")
	mk := exec.Command(binary, "init", "--dir", certDir, "--domain", "example.test", "--hostname", "mx.example.test")
	if out, err := mk.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("posthorn init: %v\n%s", err, out)
	}
	return 0, nil
}

// moduleRoot finds the directory of go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return filepath.Abs("..")
	}
	return filepath.Dir(gomod), nil
}

// need fails the test when a peer tool is missing: these tests are only
// honest when the real client runs.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found in PATH: install %s (Debian package %q; ./scripts/test installs it)", tool, tool, debPackage[tool])
		}
	}
}

// result is what a finished client process left behind.
type result struct {
	stdout, stderr string
	err            error // nil, *exec.ExitError, or a timeout
}

func (r result) String() string {
	return fmt.Sprintf("error: %v\n--- stdout:\n%s\n--- stderr:\n%s", r.err, r.stdout, r.stderr)
}

// run runs a client in its own process group with a time limit and no
// standard input unless one is given. On timeout the group is killed by
// its id.
func run(t *testing.T, timeout time.Duration, stdin string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ownGroup(cmd)
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %v (killed): %v", name, timeout, err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// ownGroup puts cmd in a process group of its own, killed as a whole (by
// the group id, which is the child's pid) when its context ends.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
}
