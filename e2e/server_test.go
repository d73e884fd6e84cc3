package e2e_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// opts describe one test server.
type opts struct {
	users   []string          // accounts to create; default me@example.test
	aliases [][]string        // each: alias target...
	smtp    map[string]string // [smtp] keys → raw TOML values
	extra   string            // more TOML sections, appended as they are
}

// server is a posthorn serve subprocess with a data directory of its own.
type server struct {
	t      *testing.T
	dir    string // holds posthorn.toml, tls/, data/ and the logs
	config string
	data   string
	port   int
	smtp   map[string]string // [smtp] keys of the config
	extra  string            // opts.extra

	mu   sync.Mutex
	proc *process // nil when not running
	logs []string // one per start
}

// process is one run of `posthorn serve`.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // of Wait, set before exited closes
}

// shutdownTimeout is the [smtp] shutdown_timeout of test servers unless a
// test sets its own.
const shutdownTimeout = 5 * time.Second

// newServer sets up a server for example.test and starts it. It is stopped
// (SIGTERM, bounded wait) when the test ends, and the test fails if any of
// its logs mentions a panic.
func newServer(t *testing.T, o opts) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, dir: dir, config: filepath.Join(dir, "posthorn.toml"), data: filepath.Join(dir, "data"), smtp: o.smtp, extra: o.extra}
	t.Cleanup(s.cleanup)
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cert.pem", "key.pem"} {
		b, err := os.ReadFile(filepath.Join(certDir, "tls", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tls", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.port = freePort(t)
	s.writeConfig()
	s.admin("", "domain", "add", "example.test")
	users := o.users
	if users == nil {
		users = []string{"me@example.test"}
	}
	for _, u := range users {
		s.admin("secret-"+u+"\n", "user", "add", u, "--password-stdin")
	}
	for _, a := range o.aliases {
		s.admin("", append([]string{"alias", "add"}, a...)...)
	}
	s.start(false)
	return s
}

// addr is the SMTP listener, host:port.
func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *server) writeConfig() {
	keys := map[string]string{"shutdown_timeout": `"` + shutdownTimeout.String() + `"`}
	for k, v := range s.smtp {
		keys[k] = v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "hostname = \"mx.example.test\"\ndata_dir = \"data\"\n\n[log]\nlevel = \"info\"\n\n")
	fmt.Fprintf(&b, "[listen]\nsmtp = [\"%s\"]\n\n", s.addr())
	fmt.Fprintf(&b, "[tls]\ncert_file = \"tls/cert.pem\"\nkey_file = \"tls/key.pem\"\n\n[smtp]\n")
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(&b, "%s = %s\n", k, keys[k])
	}
	if s.extra != "" {
		fmt.Fprintf(&b, "\n%s\n", s.extra)
	}
	if err := os.WriteFile(s.config, []byte(b.String()), 0o640); err != nil {
		s.t.Fatal(err)
	}
}

// admin runs `posthorn --config F args...` and fails the test on error.
func (s *server) admin(stdin string, args ...string) string {
	s.t.Helper()
	r := run(s.t, 30*time.Second, stdin, nil, binary, append([]string{"--config", s.config}, args...)...)
	if r.err != nil {
		s.t.Fatalf("posthorn %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// start runs `serve` and waits until it listens. A port taken meanwhile by
// someone else is replaced by a new free one, unless pinned (a restart
// must keep its port): then it is retried for a while.
func (s *server) start(pinned bool) {
	s.t.Helper()
	for attempt := 0; ; attempt++ {
		err := s.startOnce()
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || attempt >= 20 {
			s.t.Fatalf("posthorn serve did not start: %v", err)
		}
		if !pinned {
			s.port = freePort(s.t)
			s.writeConfig()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var errAddrInUse = errors.New("address already in use")

func (s *server) startOnce() error {
	s.mu.Lock()
	log := filepath.Join(s.dir, fmt.Sprintf("serve-%d.log", len(s.logs)+1))
	s.logs = append(s.logs, log)
	s.mu.Unlock()
	f, err := os.Create(log)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(binary, "--config", s.config, "serve")
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	want := "msg=listening service=smtp addr=" + s.addr()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(log)
		select {
		case <-p.exited:
			if strings.Contains(string(b), "address already in use") {
				return fmt.Errorf("%w: %s", errAddrInUse, b)
			}
			return fmt.Errorf("exited (%v) before listening:\n%s", p.err, b)
		default:
		}
		if strings.Contains(string(b), want) {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-p.exited
			return fmt.Errorf("not listening after 15s:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := net.DialTimeout("tcp", s.addr(), 5*time.Second)
	if err != nil {
		_ = cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("logged listening, but dial: %v", err)
	}
	c.Close()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// restart starts the server again on the same port and data directory.
func (s *server) restart() {
	s.t.Helper()
	s.start(true)
}

// signal sends sig to the running server and returns its process.
func (s *server) signal(sig syscall.Signal) *process {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		s.t.Fatal("server not running")
	}
	if err := syscall.Kill(p.cmd.Process.Pid, sig); err != nil {
		s.t.Fatalf("kill -%d %d: %v", sig, p.cmd.Process.Pid, err)
	}
	return p
}

// wait waits up to d for the running server to exit and forgets it. It
// reports whether it exited in time (if not, it is killed) and the exit
// error.
func (s *server) wait(d time.Duration) (inTime bool, err error) {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return true, nil
	}
	select {
	case <-p.exited:
		return true, p.err
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return false, p.err
	}
}

// kill9 kills the server with SIGKILL and waits for it to be gone.
func (s *server) kill9() {
	s.t.Helper()
	s.signal(syscall.SIGKILL)
	if ok, _ := s.wait(5 * time.Second); !ok {
		s.t.Fatal("server still running 5s after SIGKILL")
	}
}

// stop sends SIGTERM and expects a clean exit within the shutdown timeout
// (plus a margin for the store to close).
func (s *server) stop() {
	s.t.Helper()
	s.signal(syscall.SIGTERM)
	ok, err := s.wait(shutdownTimeout + 5*time.Second)
	switch {
	case !ok:
		s.t.Errorf("server did not exit within %v of SIGTERM (killed)", shutdownTimeout+5*time.Second)
	case err != nil:
		s.t.Errorf("server exited with %v after SIGTERM", err)
	}
}

func (s *server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

func (s *server) cleanup() {
	if s.running() {
		s.stop()
	}
	for _, l := range s.logs {
		b, _ := os.ReadFile(l)
		if strings.Contains(strings.ToLower(string(b)), "panic") {
			s.t.Errorf("server log %s mentions a panic:\n%s", filepath.Base(l), tail(b, 8000))
		} else if s.t.Failed() {
			s.t.Logf("server log %s:\n%s", filepath.Base(l), tail(b, 4000))
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		return "…" + string(b[len(b)-n:])
	}
	return string(b)
}

// freePort returns a loopback TCP port that was free a moment ago and
// that no other freePort call of this test binary has returned: the
// kernel may hand a port just closed to the next bind(0), and one server
// got the same port for two listeners (refused at start: "also listed").
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, dup := handedPorts.LoadOrStore(port, true); !dup {
			return port
		}
	}
	t.Fatal("no loopback port free that was not handed out already")
	return 0
}

var handedPorts sync.Map // port → true
