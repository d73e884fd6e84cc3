package e2e_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSCRAMStandInSaltSurvivesRestart: SCRAM-SHA-256 answers a name that
// is no account with a made-up salt (so that the salt does not tell which
// names exist), and that salt stays the same across a restart, as a real
// account's does: a client comparing salts before and after cannot tell
// the two apart.
func TestSCRAMStandInSaltSurvivesRestart(t *testing.T) {
	t.Parallel()
	port := sharedPort(t, ipA)
	dns := mockDNS(t, mxZones(map[string]string{"a.test": ipA}))
	m := newMTA(t, mtaOpts{domain: "a.test", ip: ipA, port: port, dns: dns, users: []string{"alice"}})
	salts := func() (real, made string) {
		t.Helper()
		return scramSalt(t, m.subsAddr(), "alice@a.test"), scramSalt(t, m.subsAddr(), "nobody@a.test")
	}
	real1, made1 := salts()
	m.stop()
	m.start()
	real2, made2 := salts()
	if real1 != real2 {
		t.Errorf("the account's salt changed across a restart: %s, %s", real1, real2)
	}
	if made1 != made2 {
		t.Errorf("the made-up salt of an unknown name changed across a restart: %s, %s", made1, made2)
	}
	if made1 == real1 || len(made1) != len(real1) {
		t.Errorf("made-up salt %s beside the real %s", made1, real1)
	}
}

// scramSalt starts AUTH SCRAM-SHA-256 for user on an implicit-TLS
// submission port and returns the salt of the server-first message.
func scramSalt(t *testing.T, addr, user string) string {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(nc)
	reply := func() string {
		t.Helper()
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
			if len(l) < 4 || l[3] != '-' {
				return strings.TrimRight(l, "\r\n")
			}
		}
	}
	reply()
	nc.Write([]byte("EHLO client.test\r\n"))
	reply()
	first := base64.StdEncoding.EncodeToString([]byte("n,,n=" + user + ",r=abcdefghijkl"))
	nc.Write([]byte("AUTH SCRAM-SHA-256 " + first + "\r\n"))
	l := reply()
	if !strings.HasPrefix(l, "334 ") {
		t.Fatalf("AUTH SCRAM-SHA-256 for %s: %q", user, l)
	}
	sf, err := base64.StdEncoding.DecodeString(l[4:])
	if err != nil {
		t.Fatalf("server-first %q: %v", l, err)
	}
	for _, f := range strings.Split(string(sf), ",") {
		if s, ok := strings.CutPrefix(f, "s="); ok {
			return s
		}
	}
	t.Fatalf("no salt in %q", sf)
	return ""
}
