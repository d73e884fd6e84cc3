package e2e_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawData sends, in a fresh smtplib session, MAIL and RCPT, then DATA; after
// the 354 it writes each case's octets exactly as given (no dot-stuffing,
// no line-end repair), reads the reply to the end of the data and sends
// NOOP to see whether the session is still in step.
const rawData = `
cases = json.loads(sys.argv[1])
out = []
for i, payload in enumerate(cases):
    s = connect()
    r = {"mail": docmd(s, "MAIL FROM:<sender%d@client.example.net>" % i), "rcpt": docmd(s, "RCPT TO:<me@example.test>"), "data": docmd(s, "DATA")}
    if r["data"][0] == 354:
        s.sock.settimeout(3)
        s.send(payload.encode("latin-1"))
        r["end"] = getreply(s)
        r["noop"] = docmd(s, "NOOP")
        r["after"] = docmd(s, "RSET") if r["noop"][0] == 250 else [-1, "skipped"]
    s.close()
    out.append(r)
print(json.dumps(out))
`

type rawResult struct {
	Mail  reply `json:"mail"`
	Rcpt  reply `json:"rcpt"`
	Data  reply `json:"data"`
	End   reply `json:"end"`
	NOOP  reply `json:"noop"`
	After reply `json:"after"`
}

func sendRaw(t *testing.T, s *server, payloads []string) []rawResult {
	t.Helper()
	arg, _ := json.Marshal(payloads)
	var got []rawResult
	pythonJSON(t, s, 90*time.Second, &got, rawData, string(arg))
	if len(got) != len(payloads) {
		t.Fatalf("%d results for %d payloads", len(got), len(payloads))
	}
	for i, r := range got {
		if r.Mail.code() != 250 || r.Rcpt.code() != 250 || r.Data.code() != 354 {
			t.Fatalf("payload %d %q: MAIL %v, RCPT %v, DATA %v", i, payloads[i], r.Mail, r.Rcpt, r.Data)
		}
	}
	return got
}

// TestBareLineEnds: a bare LF or bare CR in the message is refused with
// 550 5.6.0 only at the real <CRLF>.<CRLF>, and the session stays usable.
func TestBareLineEnds(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	cases := []struct{ name, payload string }{
		{"bare LF", "Subject: x\r\n\r\nline\n.\r\n" + "\r\n.\r\n"},
		{"bare CR", "Subject: x\r\n\r\nline\r.\r\n" + "\r\n.\r\n"},
		{"bare LF in header", "Subject: x\nFrom: a@b.example\r\n\r\nbody\r\n.\r\n"},
		{"bare CR after dot line", "Subject: x\r\n\r\nbody\r\n.\rx\r\n.\r\n"},
		// A bare CR directly before the CRLF of the real end: the end is
		// still <CRLF>.<CRLF> and must be found (RFC 5321 §4.1.1.4).
		{"bare CR right before the end", "Subject: x\r\n\r\nbody\r\r\n.\r\n"},
		{"dot, bare CR, then the end", "Subject: x\r\n\r\nbody\r\n.\r\r\n.\r\n"},
	}
	var payloads []string
	for _, c := range cases {
		payloads = append(payloads, c.payload)
	}
	for i, r := range sendRaw(t, s, payloads) {
		c := cases[i]
		if r.End.code() != 550 || !strings.HasPrefix(r.End.text(), "5.6.0 ") {
			t.Errorf("%s %q: reply at end of data = %v, want 550 5.6.0", c.name, c.payload, r.End)
		}
		if r.NOOP.code() != 250 || r.After.code() != 250 {
			t.Errorf("%s: NOOP = %v, RSET = %v after the refusal, want 250 (session in step)", c.name, r.NOOP, r.After)
		}
	}
	checkNothingDelivered(t, s)
}

// TestSmuggling sends each end-of-data look-alike of research/security.md
// §2.1 followed by a whole second transaction from evil@x.test, whose own
// <CRLF>.<CRLF> is the only real end of the data. A server that takes the
// look-alike for the end would deliver the smuggled message: at most the
// first message may arrive, and nothing from evil@x.test.
func TestSmuggling(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	seqs := []string{
		"\n.\n", "\n.\r", "\r.\n", "\r.\r", "\n.\r\n", "\r.\r\n", "\r\n\x00.\r\n",
		"\r\n.\n", "\r\n.\r", "\r\n.\r\r\n", "\r\r\n.\r\r\n",
	}
	const smuggled = "MAIL FROM:<evil@x.test>\r\nRCPT TO:<me@example.test>\r\nDATA\r\nFrom: evil@x.test\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n"
	var payloads []string
	for i, seq := range seqs {
		payloads = append(payloads, "From: sender@client.example.net\r\nSubject: legit-"+strconv.Itoa(i)+"\r\n\r\nhello"+seq+smuggled)
	}
	got := sendRaw(t, s, payloads)
	for i, r := range got {
		seq := seqs[i]
		bare := strings.ReplaceAll(seq, "\r\n", "")
		switch {
		case r.End.code() < 0:
			t.Errorf("%q: no reply at the real end of data: %v", seq, r.End)
		case strings.ContainsAny(bare, "\r\n") && (r.End.code() != 550 || !strings.HasPrefix(r.End.text(), "5.6.0 ")):
			t.Errorf("%q: reply %v, want 550 5.6.0 (bare CR or LF)", seq, r.End)
		case r.End.code() != 250 && r.End.code()/100 != 5:
			t.Errorf("%q: reply %v, want 250 (one message) or 5xx", seq, r.End)
		}
		if r.NOOP.code() != 250 {
			t.Errorf("%q: NOOP after the message = %v, want 250", seq, r.NOOP)
		}
		t.Logf("%q → %v", seq, r.End)
	}
	s.stop()
	st := s.mail()
	for _, m := range st.inbox("me@example.test") {
		if m.Subject == "smuggled" || strings.Contains(strings.Join(m.ReturnPath, ""), "evil") {
			t.Errorf("smuggled message delivered: Return-Path %q Subject %q", m.ReturnPath, m.Subject)
		}
	}
	for i, seq := range seqs {
		if n := len(st.bySubject("me@example.test", "legit-"+strconv.Itoa(i))); n > 1 {
			t.Errorf("%q: %d copies of the first message", seq, n)
		}
	}
	if n := st.total(); n > 1 {
		t.Errorf("%d messages delivered, want at most 1 (only the NUL case has no bare CR or LF)", n)
	}
}
