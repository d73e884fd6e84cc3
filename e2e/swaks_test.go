package e2e_test

import (
	"strings"
	"testing"
	"time"
)

// swaks runs the swaks client against addr and fails the test unless it
// exits 0.
func swaks(t *testing.T, addr string, args ...string) string {
	t.Helper()
	need(t, "swaks")
	r := run(t, 30*time.Second, "", nil, "swaks", append([]string{"--server", addr, "--timeout", "10"}, args...)...)
	if r.err != nil {
		t.Fatalf("swaks %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout + r.stderr
}

// needSwaksTLS fails when swaks was installed without its TLS module.
func needSwaksTLS(t *testing.T) {
	t.Helper()
	need(t, "swaks")
	r := run(t, 30*time.Second, "", nil, "swaks", "--support")
	if out := r.stdout + r.stderr; !strings.Contains(out, "TLS supported") {
		t.Fatalf("swaks cannot do STARTTLS: install libnet-ssleay-perl (./scripts/test does)\n%s", out)
	}
}

func TestSwaksDelivers(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	out := swaks(t, s.addr(), "--from", "you@example.net", "--to", "me@example.test",
		"--header", "Subject: swaks plain", "--body", "hello from swaks")
	if !strings.Contains(out, "<-  250 2.0.0 Ok: queued as ") {
		t.Errorf("swaks saw no 250 after DATA:\n%s", out)
	}
	st := s.mail()
	if n := len(st.inbox("me@example.test")); n != 1 {
		t.Fatalf("me@example.test has %d messages, want 1", n)
	}
	m := wantOne(t, st, "me@example.test", "swaks plain")
	checkTrace(t, m, "<you@example.net>", "me@example.test")
	if m.Subdir != "new" {
		t.Errorf("message is in %s/, want new/", m.Subdir)
	}
	if !strings.Contains(m.Body, "hello from swaks") {
		t.Errorf("body = %q", m.Body)
	}
	if strings.Contains(m.Received[0], "TLS") {
		t.Errorf("Received of a plaintext session mentions TLS: %q", m.Received[0])
	}
}

func TestSwaksStartTLS(t *testing.T) {
	t.Parallel()
	needSwaksTLS(t)
	s := newServer(t, opts{})
	out := swaks(t, s.addr(), "--tls", "--from", "you@example.net", "--to", "me@example.test",
		"--header", "Subject: swaks tls", "--body", "hello over TLS")
	for _, want := range []string{"<-  220 2.0.0 Ready to start TLS", "=== TLS started", "<~  250 2.0.0 Ok: queued as "} {
		if !strings.Contains(out, want) {
			t.Errorf("swaks output lacks %q:\n%s", want, out)
		}
	}
	m := wantOne(t, s.mail(), "me@example.test", "swaks tls")
	checkTrace(t, m, "<you@example.net>", "me@example.test")
	rcv := m.Received[0]
	if !strings.Contains(rcv, "TLS1.3") && !strings.Contains(rcv, "TLS1.2") {
		t.Errorf("Received does not mention TLS1.3 or TLS1.2: %q", rcv)
	}
	if !strings.Contains(rcv, "with ESMTPS") {
		t.Errorf("Received does not say ESMTPS: %q", rcv)
	}
}

func TestSwaksPipelining(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	out := swaks(t, s.addr(), "--pipeline", "--from", "you@example.net", "--to", "me@example.test,nobody@example.test",
		"--header", "Subject: swaks pipelined")
	if !strings.Contains(out, "550 5.1.1") {
		t.Errorf("pipelined RCPT for an unknown user did not get 550 5.1.1:\n%s", out)
	}
	m := wantOne(t, s.mail(), "me@example.test", "swaks pipelined")
	checkTrace(t, m, "<you@example.net>", "me@example.test")
}
