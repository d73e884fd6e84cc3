package pop3

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// poplibScript drives both listeners with Python's poplib, a client we did
// not write: POP3 + stls() on the first port, POP3_SSL on the second.
const poplibScript = `
import poplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
host, port, sport, user, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]

p = poplib.POP3(host, port, timeout=10)
print("CAPA", sorted(p.capa()))
p.stls(context=ctx)
print("CAPA TLS", sorted(p.capa()))
p.user(user)
p.pass_(pw)
print("STAT", p.stat())
resp, listing, _ = p.list()
print("LIST", [l.decode() for l in listing])
resp, uids, _ = p.uidl()
print("UIDL", [u.decode() for u in uids])
resp, lines, octets = p.retr(1)
print("RETR1", [l.decode() for l in lines])
resp, lines, octets = p.retr(2)
print("RETR2", [l.decode() for l in lines])
resp, lines, octets = p.top(1, 1)
print("TOP", [l.decode() for l in lines])
print("DELE", p.dele(1).decode())
print("QUIT", p.quit().decode())

s = poplib.POP3_SSL(host, sport, context=ctx, timeout=10)
s.user(user)
s.pass_(pw)
print("SSL STAT", s.stat())
resp, uids, _ = s.uidl()
print("SSL UIDL", [u.decode() for u in uids])
try:
    s.retr(3)
except poplib.error_proto as e:
    print("SSL RETR3", e)
print("SSL QUIT", s.quit().decode())
`

// TestPythonPoplib needs python3: its absence is a failure, not a skip.
func TestPythonPoplib(t *testing.T) {
	t.Parallel()
	b := newBackend(testMessages...)
	_, addr := testServer(t, b, nil)
	_, saddr := testServer(t, b, func(o *Options) { o.ImplicitTLS = true })
	host, port, _ := net.SplitHostPort(addr)
	_, sport, _ := net.SplitHostPort(saddr)
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed for this test: %v", err)
	}
	cmd := exec.Command(py, "-c", poplibScript, host, port, sport, testUser, testPass)
	cmd.WaitDelay = 5 * time.Second
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	if err != nil {
		t.Fatalf("poplib: %v\n%s", err, out)
	}
	t.Logf("poplib:\n%s", out)
	s1, s2, s3, all := sizes()
	for _, want := range []string{
		"CAPA ['AUTH-RESP-CODE', 'EXPIRE', 'IMPLEMENTATION', 'LOGIN-DELAY', 'PIPELINING', 'RESP-CODES', 'STLS', 'TOP', 'UIDL']",
		"CAPA TLS ['AUTH-RESP-CODE', 'EXPIRE', 'IMPLEMENTATION', 'LOGIN-DELAY', 'PIPELINING', 'RESP-CODES', 'SASL', 'TOP', 'UIDL', 'USER']",
		"STAT (3, " + itoa(all) + ")",
		"LIST ['1 " + itoa(s1) + "', '2 " + itoa(s2) + "', '3 " + itoa(s3) + "']",
		"UIDL ['1 m1', '2 m2', '3 m3']",
		"RETR1 ['Subject: one', 'From: a@example.test', '', 'line 1', '.dotted', 'line 3']",
		"RETR2 ['Subject: two', '', 'body a', '.', '..two dots', 'last line without CRLF']",
		"TOP ['Subject: one', 'From: a@example.test', '', 'line 1']",
		"DELE +OK message 1 deleted",
		"QUIT +OK pop.test POP3 server signing off (1 messages deleted)",
		"SSL STAT (2, " + itoa(s2+s3) + ")",
		"SSL UIDL ['1 m2', '2 m3']",
		"SSL RETR3 b'-ERR no such message'",
		"SSL QUIT +OK pop.test POP3 server signing off (0 messages deleted)",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("poplib output lacks %q:\n%s", want, out)
		}
	}
	b.waitClosed(t, 2)
	b.wantCommits(t, []int{0})
}
