package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUnknownConfigKey: a misspelt key stops `serve` with an error that
// names the key and its line, instead of silently keeping the default.
func TestUnknownConfigKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := filepath.Join(dir, "posthorn.toml")
	text := "hostname = \"mx.example.test\"\ndata_dir = \"data\"\n\n[listen]\nsmtp = [\"127.0.0.1:" +
		fmt.Sprint(freePort(t)) + "\"]\n\n[smtp]\nmax_mesage_size = 1\n"
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, 20*time.Second, "", nil, binary, "--config", config, "serve")
	if r.err == nil {
		t.Fatalf("serve with an unknown key exited 0: %s", r)
	}
	if _, ok := r.err.(*exec.ExitError); !ok {
		t.Fatalf("serve did not exit by itself: %s", r)
	}
	line := 1 + strings.Count(text[:strings.Index(text, "max_mesage_size")], "\n")
	if !strings.Contains(r.stderr, "max_mesage_size") || !strings.Contains(r.stderr, fmt.Sprintf("posthorn.toml:%d:", line)) {
		t.Errorf("stderr does not name max_mesage_size at line %d:\n%s", line, r.stderr)
	}
	if strings.Contains(strings.ToLower(r.stderr), "panic") {
		t.Errorf("stderr mentions a panic:\n%s", r.stderr)
	}
}

// TestInitRefusesOverwrite: a second `posthorn init` leaves the first
// configuration as it was.
func TestInitRefusesOverwrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"init", "--dir", dir, "--domain", "example.test", "--hostname", "mx.example.test"}
	if r := run(t, 20*time.Second, "", nil, binary, args...); r.err != nil {
		t.Fatalf("first init: %s", r)
	}
	config := filepath.Join(dir, "posthorn.toml")
	before, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, 20*time.Second, "", nil, binary, "init", "--dir", dir, "--domain", "other.test", "--hostname", "other.example")
	if r.err == nil {
		t.Fatalf("second init exited 0: %s", r)
	}
	if !strings.Contains(r.stderr, "refusing to overwrite") {
		t.Errorf("second init: stderr does not explain:\n%s", r.stderr)
	}
	after, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("second init changed %s", config)
	}
	// The first setup works: domain example.test only.
	r = run(t, 20*time.Second, "", nil, binary, "--config", config, "domain", "list")
	if r.err != nil || strings.TrimSpace(r.stdout) != "example.test" {
		t.Errorf("domain list after two inits: %s", r)
	}
}

// devSMTP is the address `serve --dev` uses for SMTP.
const devSMTP = "127.0.0.1:2525"

// TestServeDev runs the ready-to-try setup: `serve --dev --dir D` creates
// it, prints the password and the endpoints, and mail sent with swaks to
// the printed SMTP address lands where it says.
func TestServeDev(t *testing.T) {
	t.Parallel()
	need(t, "swaks")
	if l, err := net.Listen("tcp", devSMTP); err != nil {
		t.Fatalf("serve --dev needs %s, which is busy: %v", devSMTP, err)
	} else {
		l.Close()
	}
	work := t.TempDir()
	dir := filepath.Join(work, "dev")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--dev", "--dir", dir)
	cmd.Dir = work
	ownGroup(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(work, "serve.log")
	logW, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logW.Close()
	cmd.Stderr = logW
	log := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	printed := make(chan string, 1)
	go func() {
		// Read up to the end of the endpoint table and its hints.
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Mail lands in ") {
				break
			}
		}
		printed <- b.String()
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()

	var out string
	select {
	case out = <-printed:
	case err := <-exited:
		stopped = true
		t.Fatalf("serve --dev exited early (%v):\n%s", err, log())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve --dev printed no endpoint table within 30s; log:\n%s", log())
	}
	t.Logf("serve --dev printed:\n%s", out)
	pw := regexp.MustCompile(`(?m)^\s*password:\s+(\S+)`).FindStringSubmatch(out)
	if pw == nil || len(pw[1]) < 8 {
		t.Errorf("no password printed")
	}
	if !strings.Contains(out, "user:     me@example.test") {
		t.Errorf("no user printed")
	}
	row := regexp.MustCompile(`(?m)^smtp\s+(\S+)\s+STARTTLS`).FindStringSubmatch(out)
	if !strings.Contains(out, "SERVICE") || row == nil {
		t.Fatalf("no endpoint table with an smtp row")
	}
	where := regexp.MustCompile(`(?m)^Mail lands in (\S+)$`).FindStringSubmatch(out)
	if where == nil {
		t.Fatalf("no 'Mail lands in' line")
	}
	swaks(t, row[1], "--from", "you@example.net", "--to", "me@example.test", "--header", "Subject: hello dev")

	landed := where[1]
	if !filepath.IsAbs(landed) {
		landed = filepath.Join(work, landed)
	}
	files, _ := filepath.Glob(filepath.Join(landed, "*"))
	if len(files) != 1 {
		t.Errorf("%d files in %s, want 1", len(files), landed)
	} else if b, _ := os.ReadFile(files[0]); !strings.Contains(string(b), "Subject: hello dev") {
		t.Errorf("delivered file lacks the subject:\n%s", b)
	}

	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("serve --dev exited with %v after SIGTERM", err)
		}
	case <-time.After(40 * time.Second):
		t.Errorf("serve --dev still running 40s after SIGTERM")
	}
	if strings.Contains(strings.ToLower(log()), "panic") {
		t.Errorf("serve --dev log mentions a panic:\n%s", log())
	}
	if _, err := os.Stat(filepath.Join(dir, "posthorn.toml")); err != nil {
		t.Errorf("no configuration written: %v", err)
	}
}
