package e2e_test

import (
	"strings"
	"testing"
	"time"
)

// limitsProbe drives the size and hop limits with smtplib.
const limitsProbe = `
big = b"From: big@client.example.net\r\nSubject: too big\r\n\r\n" + (b"x" * 510 + b"\r\n") * 40  # 20 KiB
out = {}

# sendmail declares SIZE=<length> on MAIL (RFC 1870): refused up front.
s = connect()
try:
    s.sendmail("big@client.example.net", ["me@example.test"], big)
    out["declared"] = [250, "accepted"]
except smtplib.SMTPSenderRefused as e:
    out["declared"] = rep((e.smtp_code, e.smtp_error))
out["declared_noop"] = docmd(s, "NOOP")
s.close()

# No SIZE: the server finds out while reading the data.
s = connect()
out["mail"] = docmd(s, "MAIL FROM:<big@client.example.net>")
out["rcpt"] = docmd(s, "RCPT TO:<me@example.test>")
out["data"] = docmd(s, "DATA")
s.send(big + b".\r\n")
out["undeclared"] = getreply(s)
out["undeclared_noop"] = docmd(s, "NOOP")

# A SIZE far over the limit.
out["size_param"] = docmd(s, "MAIL FROM:<big@client.example.net> SIZE=99999999")
out["size_noop"] = docmd(s, "NOOP")
s.close()

# A message that already went through 51 hops.
hops = b"".join(b"Received: from hop%d.example.net by hop%d.example.net; Sat, 1 Jan 2028 00:00:00 +0000\r\n" % (i, i + 1) for i in range(51))
s = connect()
try:
    s.sendmail("loop@client.example.net", ["me@example.test"], hops + b"Subject: looping\r\n\r\nround and round\r\n")
    out["hops"] = [250, "accepted"]
except smtplib.SMTPDataError as e:
    out["hops"] = rep((e.smtp_code, e.smtp_error))
# 50 hops are still fine.
s.sendmail("loop@client.example.net", ["me@example.test"], hops.split(b"\r\n", 1)[1] + b"Subject: fifty hops\r\n\r\nstill ok\r\n")
s.quit()
print(json.dumps(out))
`

func TestLimits(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{smtp: map[string]string{"max_message_size": `"10KiB"`}})
	var got map[string]reply
	pythonJSON(t, s, 60*time.Second, &got, limitsProbe)
	for _, c := range []struct {
		key      string
		code     int
		enhanced string
	}{
		{"declared", 552, "5.3.4"},
		{"declared_noop", 250, "2.0.0"},
		{"mail", 250, "2.1.0"},
		{"rcpt", 250, "2.1.5"},
		{"data", 354, ""},
		{"undeclared", 552, "5.3.4"},
		{"undeclared_noop", 250, "2.0.0"},
		{"size_param", 552, "5.3.4"},
		{"size_noop", 250, "2.0.0"},
		{"hops", 554, "5.4.6"},
	} {
		r := got[c.key]
		if r.code() != c.code || !strings.HasPrefix(r.text(), c.enhanced) {
			t.Errorf("%s: reply %v, want %d %s", c.key, r, c.code, c.enhanced)
		}
	}
	s.stop()
	st := s.mail()
	if n := st.total(); n != 1 {
		t.Errorf("%d messages delivered, want only the one with fifty hops", n)
	}
	wantOne(t, st, "me@example.test", "fifty hops")
	if len(st.SpoolTmp) > 0 {
		t.Errorf("files left in DATA/tmp: %q", st.SpoolTmp)
	}
}

// longLineProbe sends a message with a line of 100,000 octets (HTML
// minified to one line, as some senders make it) and prints the reply.
const longLineProbe = `
line = b"<p>" + b"minified " * 11110 + b"</p>"
msg = b"From: news@client.example.net\r\nSubject: one long line\r\n\r\n" + line + b"\r\nbye\r\n"
s = connect()
try:
    s.sendmail("news@client.example.net", ["me@example.test"], msg)
    out = [250, "accepted"]
except smtplib.SMTPDataError as e:
    out = rep((e.smtp_code, e.smtp_error))
s.quit()
print(json.dumps({"reply": out, "len": len(line)}))
`

// TestLongLines: by default a line over RFC 5322's 998 octets is taken
// and stored as it came, as Postfix takes it (smtp.max_line_length is
// 1 MiB); an operator who sets 998 gets the strict refusal.
func TestLongLines(t *testing.T) {
	t.Parallel()
	for _, strict := range []bool{false, true} {
		o := opts{}
		if strict {
			o.smtp = map[string]string{"max_line_length": "998"}
		}
		s := newServer(t, o)
		var got struct {
			Reply reply
			Len   int
		}
		pythonJSON(t, s, 60*time.Second, &got, longLineProbe)
		s.stop()
		st := s.mail()
		if strict {
			if got.Reply.code() != 550 || !strings.HasPrefix(got.Reply.text(), "5.6.0") || st.total() != 0 {
				t.Errorf("max_line_length 998: reply %v, %d delivered; want 550 5.6.0 and none", got.Reply, st.total())
			}
			continue
		}
		if got.Reply.code() != 250 {
			t.Fatalf("default: reply %v, want 250", got.Reply)
		}
		m := wantOne(t, st, "me@example.test", "one long line")
		if !strings.Contains(m.Raw, "\n<p>minified minified ") || !strings.Contains(m.Raw, "minified </p>\nbye\n") || len(m.Raw) < got.Len {
			t.Errorf("the long line was not stored whole (%d octets stored)", len(m.Raw))
		}
	}
}
