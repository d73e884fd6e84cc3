package e2e_test

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shutdownClients opens two sessions: "idle" stops after RCPT and waits for
// a command to be asked for; "busy" is half-way through DATA. After READY
// the test sends SIGTERM; then busy finishes its message.
const shutdownClients = `
out = {}
idle = connect("idle.example.net")
out["idle_mail"] = docmd(idle, "MAIL FROM:<idle@client.example.net>")
out["idle_rcpt"] = docmd(idle, "RCPT TO:<me@example.test>")
busy = connect("busy.example.net")
out["busy_mail"] = docmd(busy, "MAIL FROM:<busy@client.example.net>")
out["busy_rcpt"] = docmd(busy, "RCPT TO:<me@example.test>")
out["busy_data"] = docmd(busy, "DATA")
busy.send(b"Subject: finished during shutdown\r\n\r\nfirst half\r\n")
print("READY", flush=True)
# Nothing more is sent on idle: the server speaks first.
out["idle_after_term"] = getreply(idle)
busy.send(b"second half\r\n.\r\n")
out["busy_end"] = getreply(busy)
out["busy_after"] = getreply(busy)
print(json.dumps(out), flush=True)
`

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	py := startPython(t, s, 60*time.Second, shutdownClients)
	if l := py.line(t, 20*time.Second); l != "READY" {
		t.Fatalf("client: %q", l)
	}
	p := s.signal(syscall.SIGTERM)
	termAt := time.Now()

	var got map[string]reply
	if err := json.Unmarshal([]byte(py.finish(t, 20*time.Second)), &got); err != nil {
		t.Fatalf("client output: %v", err)
	}
	ok, err := s.wait(shutdownTimeout + 2*time.Second)
	took := time.Since(termAt)
	switch {
	case !ok:
		t.Errorf("server still running %v after SIGTERM (shutdown_timeout %v): killed", took, shutdownTimeout)
	case err != nil:
		t.Errorf("server exited with %v after SIGTERM, want status 0", err)
	case took > shutdownTimeout+time.Second:
		t.Errorf("server took %v to exit (shutdown_timeout %v)", took, shutdownTimeout)
	}
	t.Logf("exited %v after SIGTERM (pid %d)", took.Round(time.Millisecond), p.cmd.Process.Pid)

	for _, c := range []struct {
		key      string
		code     int
		enhanced string
	}{
		{"idle_mail", 250, "2.1.0"}, {"idle_rcpt", 250, "2.1.5"},
		{"busy_mail", 250, "2.1.0"}, {"busy_rcpt", 250, "2.1.5"}, {"busy_data", 354, ""},
		{"idle_after_term", 421, "4.3.2"},
		{"busy_end", 250, "2.0.0"},
		{"busy_after", 421, "4.3.2"},
	} {
		if r := got[c.key]; r.code() != c.code || !strings.HasPrefix(r.text(), c.enhanced) {
			t.Errorf("%s: %v, want %d %s", c.key, r, c.code, c.enhanced)
		}
	}
	st := s.mail()
	if n := st.total(); n != 1 {
		t.Errorf("%d messages delivered, want the one finished during shutdown", n)
	}
	m := wantOne(t, st, "me@example.test", "finished during shutdown")
	if !strings.Contains(m.Body, "first half\nsecond half\n") {
		t.Errorf("body = %q", m.Body)
	}
}
