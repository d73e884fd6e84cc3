package managesieve

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSieveConnect drives the server with sieve-connect (Debian package
// sieve-connect, a Perl client we did not write): STARTTLS, the NOOP
// resynchronization it does after TLS, AUTHENTICATE PLAIN with a literal
// initial response, and every command it has. Its absence is a failure,
// not a skip: scripts/test installs it.
func TestSieveConnect(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("sieve-connect")
	if err != nil {
		t.Fatalf("sieve-connect is needed for this test (apt-get install sieve-connect): %v", err)
	}
	b := newBackend()
	_, addr := testServer(t, b, nil)
	host, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vac := write("vacation.siv", "require \"vacation\";\nvacation \"I am away\";\n")
	keepFile := write("keep.siv", "keep;\n")
	brokenFile := write("broken.siv", "require \"fileinto\";\nkeep;\nbogus;\n")
	out := filepath.Join(dir, "keep.out")
	exec := write("commands", strings.Join([]string{
		"list",
		"upload " + vac + " vacation",
		"upload " + keepFile + " keep",
		"activate vacation",
		"list",
		"view vacation",
		"download keep " + out,
		"checkscript " + keepFile,
		"delete keep",
		"list",
		"deactivate",
		"list",
		"quit",
	}, "\n")+"\n")

	run := func(args ...string) (string, error) {
		cmd := execCommand(bin, append([]string{"--server", host, "--port", port, "--nosrv", "--notlsverify",
			"--user", testUser, "--authmech", "PLAIN", "--passwordfd", "0"}, args...)...)
		cmd.Stdin = strings.NewReader(testPass + "\n")
		outb, err := cmd.CombinedOutput()
		return string(outb), err
	}
	got, err := run("--exec", exec)
	if err != nil {
		t.Fatalf("sieve-connect: %v\n%s", err, got)
	}
	t.Logf("sieve-connect:\n%s", got)
	for _, want := range []string{
		"\"keep\"\n\"vacation\" ACTIVE\n",                  // list after activate
		"require \"vacation\";\nvacation \"I am away\";\n", // view
		"\n\"vacation\" ACTIVE\n\"vacation\"\n",            // list after delete, after deactivate
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, bad := range []string{"Unhandled", "violation", "does not", "failed", "problems"} {
		if strings.Contains(got, bad) {
			t.Errorf("sieve-connect complains: %q", bad)
		}
	}
	if content, err := os.ReadFile(out); err != nil || string(content) != "keep;\n" {
		t.Errorf("downloaded %q, %v", content, err)
	}
	scripts, active, _, _ := b.state()
	if len(scripts) != 1 || scripts["vacation"] == "" || active != "" {
		t.Errorf("after the session: %q, active %q", scripts, active)
	}

	// A broken script: the server's error, line number included, reaches
	// the user, and sieve-connect fails.
	got, err = run("--checkscript", "--localsieve", brokenFile)
	if err == nil || !strings.Contains(got, `line 3: unknown command \"bogus\"`) {
		t.Errorf("checkscript of a broken script: %v\n%s", err, got)
	}
	t.Logf("sieve-connect --checkscript: %v\n%s", err, got)
	got, err = run("--upload", "--localsieve", brokenFile, "--remotesieve", "broken")
	if err == nil || !strings.Contains(got, "line 3") {
		t.Errorf("upload of a broken script: %v\n%s", err, got)
	}
	// A wrong password is refused.
	cmd := execCommand(bin, "--server", host, "--port", port, "--nosrv", "--notlsverify",
		"--user", testUser, "--authmech", "PLAIN", "--passwordfd", "0", "--list")
	cmd.Stdin = strings.NewReader("wrong\n")
	if outb, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(outb), "Authentication failed") {
		t.Errorf("wrong password: %v\n%s", err, outb)
	}
	b.waitClosed(t, 3)
}

func execCommand(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "HOME="+os.TempDir())
	return cmd
}
