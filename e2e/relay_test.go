package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// relayProbe tries each [from, rcpt] pair in a fresh session with smtplib:
// MAIL, RCPT and, only if RCPT was (wrongly) accepted, DATA with a message.
const relayProbe = `
cases = json.loads(sys.argv[1])
out = []
for frm, rcpt in cases:
    s = connect()
    r = {"from": frm, "rcpt": rcpt, "mail": docmd(s, "MAIL FROM:<%s>" % frm), "rcpt_reply": docmd(s, "RCPT TO:<%s>" % rcpt)}
    if r["rcpt_reply"][0] == 250:
        r["data"] = docmd(s, "DATA")
        if r["data"][0] == 354:
            s.send(b"Subject: relayed\r\n\r\nthis must not be delivered\r\n.\r\n")
            r["data"] = getreply(s)
    r["noop"] = docmd(s, "NOOP")
    s.close()
    out.append(r)
print(json.dumps(out))
`

type relayResult struct {
	From  string `json:"from"`
	Rcpt  string `json:"rcpt"`
	Mail  reply  `json:"mail"`
	Reply reply  `json:"rcpt_reply"`
	Data  reply  `json:"data"`
	NOOP  reply  `json:"noop"`
}

func probe(t *testing.T, s *server, cases [][2]string) []relayResult {
	t.Helper()
	arg, _ := json.Marshal(cases)
	var got []relayResult
	pythonJSON(t, s, 60*time.Second, &got, relayProbe, string(arg))
	if len(got) != len(cases) {
		t.Fatalf("probe returned %d results for %d cases", len(got), len(cases))
	}
	return got
}

// TestRefusals checks the exact replies to an unknown user and to plain
// relaying.
func TestRefusals(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	got := probe(t, s, [][2]string{
		{"you@example.net", "nobody@example.test"},
		{"you@example.net", "relaytest@other.test"},
		{"", "relaytest@other.test"},
		{"me@example.test", "relaytest@other.test"},
	})
	want := []struct {
		code     int
		enhanced string
	}{{550, "5.1.1"}, {554, "5.7.1"}, {554, "5.7.1"}, {554, "5.7.1"}}
	for i, r := range got {
		if r.Mail.code() != 250 {
			t.Errorf("MAIL FROM:<%s> = %v, want 250", r.From, r.Mail)
		}
		if r.Reply.code() != want[i].code || !strings.HasPrefix(r.Reply.text(), want[i].enhanced+" ") {
			t.Errorf("RCPT TO:<%s> = %v, want %d %s", r.Rcpt, r.Reply, want[i].code, want[i].enhanced)
		}
		if r.NOOP.code() != 250 {
			t.Errorf("NOOP after refusing <%s> = %v, want 250", r.Rcpt, r.NOOP)
		}
	}
	checkNothingDelivered(t, s)
}

// TestRelayTricks runs the open-relay matrix of nmap's smtp-open-relay
// (research/security.md §2.3) with D = other.test, S = example.test (our
// domain), IP = 127.0.0.1, plus variants naming our host name. Every one
// must be refused with 5xx and nothing may be delivered anywhere.
func TestRelayTricks(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	const ip = "[127.0.0.1]"
	var cases [][2]string
	for _, from := range []string{"", "antispam@other.test", "antispam@example.test", "antispam@" + ip} {
		cases = append(cases, [2]string{from, "relaytest@other.test"})
	}
	for _, rcpt := range []string{
		"relaytest%other.test@" + ip,
		"relaytest%other.test@example.test",
		`"relaytest@other.test"`,
		`"relaytest%other.test"`,
		"relaytest@other.test@" + ip,
		`"relaytest@other.test"@` + ip,
		"relaytest@other.test@example.test",
		"@" + ip + ":relaytest@other.test",
		"@example.test:relaytest@other.test",
		"other.test!relaytest",
		"other.test!relaytest@" + ip,
		"other.test!relaytest@example.test",
		// The same tricks at our domain and host name.
		`"relaytest@other.test"@example.test`,
		"relaytest@" + ip,
		"relaytest%other.test@mx.example.test",
		"relaytest@mx.example.test",
		"@mx.example.test:relaytest@other.test",
		"@example.test,@mx.example.test:relaytest@other.test",
		"relaytest@other.test.",
		"relaytest@[IPv6:::1]",
		"postmaster@other.test",
	} {
		cases = append(cases, [2]string{"antispam@" + ip, rcpt})
	}
	for _, r := range probe(t, s, cases) {
		if c := r.Reply.code(); c < 500 || c > 599 {
			t.Errorf("MAIL FROM:<%s> RCPT TO:<%s> = %v (DATA: %v), want 5xx", r.From, r.Rcpt, r.Reply, r.Data)
		} else {
			t.Logf("RCPT TO:<%s> → %v", r.Rcpt, r.Reply)
		}
	}
	checkNothingDelivered(t, s)
}

// checkNothingDelivered stops s and checks that no account got a message
// and no staged file was left in DATA/tmp.
func checkNothingDelivered(t *testing.T, s *server) {
	t.Helper()
	s.stop()
	st := s.mail()
	if n := st.total(); n != 0 {
		t.Errorf("%d messages were delivered: %+v", n, st.Accounts)
	}
	for acct, md := range st.Accounts {
		if len(md.Tmp) > 0 {
			t.Errorf("%s: files left in tmp/: %q", acct, md.Tmp)
		}
	}
	if len(st.SpoolTmp) > 0 {
		t.Errorf("files left in DATA/tmp: %q", st.SpoolTmp)
	}
}
