package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Interop of submission, the queue and MX delivery (issue 3) with peers
// nobody on this project wrote: msmtp and swaks submitting, Python's
// smtplib probing, Postfix relaying both ways, and two posthorn instances
// that find each other through MX records of a mock DNS.

// twoMTAs starts the mock DNS and posthorn for a.test (alice, carol, dave)
// on ipA and for b.test (bob) on ipB, both on one SMTP port. cfgA adds to
// a.test's configuration; b.test is only set up, not started, unless
// startB.
func twoMTAs(t *testing.T, cfgA map[string]map[string]string, startB bool) (a, b *mta) {
	t.Helper()
	port := sharedPort(t, ipA, ipB)
	dns := mockDNS(t, mxZones(map[string]string{"a.test": ipA, "b.test": ipB}))
	a = newMTA(t, mtaOpts{domain: "a.test", ip: ipA, port: port, dns: dns, users: []string{"alice", "carol", "dave"}, config: cfgA})
	b = newMTA(t, mtaOpts{domain: "b.test", ip: ipB, port: port, dns: dns, users: []string{"bob"}, noStart: !startB})
	return a, b
}

// submit sends one message through m's submission service with swaks:
// STARTTLS on the submission port, AUTH PLAIN as user. It fails the test
// unless swaks exits 0.
func submit(t *testing.T, m *mta, user string, args ...string) string {
	t.Helper()
	return swaks(t, m.subAddr(), append([]string{"--tls", "--ehlo", "client.example.net",
		"--auth", "PLAIN", "--auth-user", user, "--auth-password", pw(user)}, args...)...)
}

// msmtpAccount is one account of an msmtp configuration file.
type msmtpAccount struct {
	host     string
	port     int
	starttls bool   // tls_starttls on (submission) or off (implicit TLS)
	auth     string // "on" (msmtp chooses) or a mechanism
	user     string
	password string
	trust    string // tls_trust_file: the server's own certificate
}

// msmtp sends msg (LF line ends, as a user's program would hand it over)
// with msmtp -d, envelope sender from, to rcpts; the dialogue is in the
// result's stdout.
func msmtp(t *testing.T, acct msmtpAccount, from string, rcpts []string, msg string) result {
	t.Helper()
	need(t, "msmtp")
	home := t.TempDir()
	onOff := map[bool]string{true: "on", false: "off"}
	// The test certificate names mx.example.test: verify it as that name,
	// with the certificate itself as the only trust anchor.
	conf := fmt.Sprintf(`defaults
logfile

account sub
host %s
port %d
domain client.example.net
auth %s
user %s
password %s
tls on
tls_starttls %s
tls_trust_file %s
tls_host_override mx.example.test

account default : sub
`, acct.host, acct.port, acct.auth, acct.user, acct.password, onOff[acct.starttls], acct.trust)
	path := filepath.Join(home, "msmtprc")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return run(t, 30*time.Second, msg, []string{"HOME=" + home}, "msmtp", append([]string{"-C", path, "-d", "-f", from, "--"}, rcpts...)...)
}

// pyRun runs a Python script after pyPrelude with extra environment and
// returns its standard output; a non-zero exit fails the test.
func pyRun(t *testing.T, env []string, script string, args ...string) string {
	t.Helper()
	need(t, "python3")
	env = append(env, "PYTHONIOENCODING=utf-8", "PYTHONDONTWRITEBYTECODE=1")
	r := run(t, 90*time.Second, "", env, "python3", append([]string{"-c", pyPrelude + script}, args...)...)
	if r.err != nil {
		t.Fatalf("python3 client failed: %s", r)
	}
	return r.stdout
}

func hostPortEnv(addr string) []string {
	host, port, _ := strings.Cut(addr, ":")
	return []string{"SMTP_HOST=" + host, "SMTP_PORT=" + port}
}

// checkHops checks the Received fields of a message that went from a.test's
// submission service to b.test's MX: the newest says b.test received it
// over TLS, the one below says a.test received it authenticated over TLS.
func checkHops(t *testing.T, f mailFile, submitter, receiver string) {
	t.Helper()
	rcv := f.header["Received"]
	if len(rcv) < 2 {
		t.Errorf("%q: %d Received fields, want 2 or more:\n%s", f.subject(), len(rcv), f.raw)
		return
	}
	if !strings.Contains(rcv[0], "by mx."+receiver+" (Posthorn) with ESMTPS ") {
		t.Errorf("%q: newest Received = %q, want one by mx.%s with ESMTPS (MX delivery over STARTTLS)", f.subject(), rcv[0], receiver)
	}
	if !strings.Contains(rcv[1], "by mx."+submitter+" (Posthorn) with ESMTPSA ") {
		t.Errorf("%q: second Received = %q, want one by mx.%s with ESMTPSA (authenticated submission over TLS)", f.subject(), rcv[1], submitter)
	}
}

// TestInteropSubmissionMX: msmtp and swaks submit with AUTH over STARTTLS
// (587-style) and implicit TLS (465-style) to the a.test instance, which
// delivers to b.test through its MX, and back; forged senders get 553 and
// AUTH before TLS is refused.
func TestInteropSubmissionMX(t *testing.T) {
	t.Parallel()
	need(t, "msmtp", "python3")
	needSwaksTLS(t)
	a, b := twoMTAs(t, nil, true)

	// An app password scoped to SMTP works for submission.
	out := a.admin("", "user", "app-password", "add", "alice@a.test", "--scope", "smtp", "--name", "laptop")
	i := strings.LastIndex(out, ": ")
	if i < 0 {
		t.Fatalf("app-password add printed %q", out)
	}
	appPW := strings.TrimSpace(out[i+2:])

	letter := func(from, to, subject string) string {
		return fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\n\nHello from %s.\n", from, to, subject, subject)
	}
	sends := []struct {
		name    string
		acct    msmtpAccount
		subject string
		dialog  []string // in msmtp -d output
	}{
		{"msmtp STARTTLS, auth on", msmtpAccount{host: ipA, port: a.sub, starttls: true, auth: "on", user: "alice@a.test", password: pw("alice@a.test"), trust: a.cert()},
			"msmtp starttls", []string{"--> STARTTLS", "<-- 220", "<-- 235", "<-- 250 2.0.0"}},
		{"msmtp implicit TLS, AUTH PLAIN, app password", msmtpAccount{host: ipA, port: a.subs, auth: "plain", user: "alice@a.test", password: appPW, trust: a.cert()},
			"msmtp implicit tls", []string{"--> AUTH PLAIN", "<-- 235", "<-- 250 2.0.0"}},
		{"msmtp STARTTLS, AUTH LOGIN", msmtpAccount{host: ipA, port: a.sub, starttls: true, auth: "login", user: "alice@a.test", password: pw("alice@a.test"), trust: a.cert()},
			"msmtp login", []string{"--> AUTH LOGIN", "<-- 235"}},
		{"msmtp implicit TLS, SCRAM-SHA-256 (GNU SASL)", msmtpAccount{host: ipA, port: a.subs, auth: "scram-sha-256", user: "alice@a.test", password: pw("alice@a.test"), trust: a.cert()},
			"msmtp scram", []string{"--> AUTH SCRAM-SHA-256", "<-- 235", "<-- 250 2.0.0"}},
	}
	for _, s := range sends {
		r := msmtp(t, s.acct, "alice@a.test", []string{"bob@b.test"}, letter("Alice <alice@a.test>", "bob@b.test", s.subject))
		if r.err != nil {
			t.Errorf("%s: %s", s.name, r)
			continue
		}
		for _, want := range s.dialog {
			if !strings.Contains(r.stdout+r.stderr, want) {
				t.Errorf("%s: msmtp dialogue lacks %q:\n%s", s.name, want, r)
			}
		}
	}
	swaksOut := submit(t, a, "alice@a.test", "--from", "alice@a.test", "--to", "bob@b.test", "--header", "Subject: swaks starttls")
	if !strings.Contains(swaksOut, "<~  235 ") {
		t.Errorf("swaks STARTTLS: no 235 after AUTH:\n%s", swaksOut)
	}
	swaksOut = swaks(t, a.subsAddr(), "--tlsc", "--ehlo", "client.example.net", "--auth", "LOGIN",
		"--auth-user", "alice@a.test", "--auth-password", pw("alice@a.test"),
		"--from", "alice@a.test", "--to", "bob@b.test", "--header", "Subject: swaks implicit tls")
	if !strings.Contains(swaksOut, "<~  235 ") {
		t.Errorf("swaks implicit TLS: no 235 after AUTH:\n%s", swaksOut)
	}
	// And the other way: b.test's user writes to a.test.
	r := msmtp(t, msmtpAccount{host: ipB, port: b.sub, starttls: true, auth: "on", user: "bob@b.test", password: pw("bob@b.test"), trust: b.cert()},
		"bob@b.test", []string{"alice@a.test"}, letter("bob@b.test", "alice@a.test", "reply from b"))
	if r.err != nil {
		t.Errorf("msmtp on b.test: %s", r)
	}

	// Forged senders: the envelope, then the From header.
	r = msmtp(t, msmtpAccount{host: ipA, port: a.sub, starttls: true, auth: "on", user: "alice@a.test", password: pw("alice@a.test"), trust: a.cert()},
		"bob@b.test", []string{"bob@b.test"}, letter("alice@a.test", "bob@b.test", "spoof envelope"))
	if r.err == nil || !regexp.MustCompile(`<-- 553[ -]`).MatchString(r.stdout) {
		t.Errorf("msmtp with MAIL FROM:<bob@b.test> as alice: want a 553 refusal:\n%s", r)
	}
	r = msmtp(t, msmtpAccount{host: ipA, port: a.sub, starttls: true, auth: "on", user: "alice@a.test", password: pw("alice@a.test"), trust: a.cert()},
		"alice@a.test", []string{"bob@b.test"}, letter("The Bank <security@b.test>", "bob@b.test", "spoof header"))
	if r.err == nil || !regexp.MustCompile(`<-- 553[ -]`).MatchString(r.stdout) {
		t.Errorf("msmtp with From: security@b.test as alice: want a 553 refusal:\n%s", r)
	}
	sw := run(t, 30*time.Second, "", nil, "swaks", "--server", a.subsAddr(), "--tlsc", "--timeout", "10", "--auth", "PLAIN",
		"--auth-user", "alice@a.test", "--auth-password", pw("alice@a.test"),
		"--from", "carol@a.test", "--to", "bob@b.test", "--header", "Subject: spoof swaks")
	if sw.err == nil || !strings.Contains(sw.stdout, "<~* 553 ") {
		t.Errorf("swaks with MAIL FROM:<carol@a.test> as alice: want 553:\n%s", sw)
	}

	// Before TLS, the submission port neither offers nor takes AUTH, and
	// takes no mail.
	var plain struct {
		AuthAdvertised     bool  `json:"auth_advertised"`
		StartTLSAdvertised bool  `json:"starttls_advertised"`
		AuthPlain          reply `json:"auth_plain"`
		AuthLogin          reply `json:"auth_login"`
		Mail               reply `json:"mail"`
		Rcpt               reply `json:"rcpt"`
	}
	text := pyRun(t, hostPortEnv(a.subAddr()), `
import base64
s = smtplib.SMTP(HOST, PORT, local_hostname="client.example.net", timeout=10)
s.ehlo()
out = {"auth_advertised": s.has_extn("auth"), "starttls_advertised": s.has_extn("starttls")}
cred = base64.b64encode(b"\0alice@a.test\0" + sys.argv[1].encode()).decode()
out["auth_plain"] = docmd(s, "AUTH PLAIN " + cred)
out["auth_login"] = docmd(s, "AUTH LOGIN")
out["mail"] = docmd(s, "MAIL FROM:<alice@a.test>")
out["rcpt"] = docmd(s, "RCPT TO:<bob@b.test>")
s.close()
print(json.dumps(out))
`, pw("alice@a.test"))
	if err := json.Unmarshal([]byte(text), &plain); err != nil {
		t.Fatalf("python output: %v\n%s", err, text)
	}
	if plain.AuthAdvertised || !plain.StartTLSAdvertised {
		t.Errorf("EHLO before TLS: AUTH advertised %v (want false), STARTTLS advertised %v (want true)", plain.AuthAdvertised, plain.StartTLSAdvertised)
	}
	for name, rep := range map[string]reply{"AUTH PLAIN": plain.AuthPlain, "AUTH LOGIN": plain.AuthLogin} {
		if c := rep.code(); c != 530 && c != 538 {
			t.Errorf("%s before STARTTLS = %v, want 530 or 538", name, rep)
		}
	}
	if plain.Mail.code() != 530 {
		t.Errorf("MAIL before STARTTLS and AUTH = %v, want 530", plain.Mail)
	}
	if c := plain.Rcpt.code(); c < 500 {
		t.Errorf("RCPT before STARTTLS and AUTH = %v, want 5xx", plain.Rcpt)
	}

	// What was accepted arrives through the MX, and nothing else.
	wantB := []string{"msmtp starttls", "msmtp implicit tls", "msmtp login", "msmtp scram", "swaks starttls", "swaks implicit tls"}
	for _, subj := range wantB {
		f := waitMaildir(t, b.maildir("bob"), subj, 20*time.Second)
		checkHops(t, f, "a.test", "b.test")
		if rp := f.header.Get("Return-Path"); rp != "<alice@a.test>" {
			t.Errorf("%q: Return-Path = %q, want <alice@a.test>", subj, rp)
		}
		if dt := f.header.Get("Delivered-To"); dt != "bob@b.test" {
			t.Errorf("%q: Delivered-To = %q, want bob@b.test", subj, dt)
		}
	}
	checkHops(t, waitMaildir(t, a.maildir("alice"), "reply from b", 20*time.Second), "b.test", "a.test")
	a.waitQueueEmpty(10 * time.Second)
	b.waitQueueEmpty(10 * time.Second)
	var got []string
	for _, f := range b.inbox("bob") {
		got = append(got, f.subject())
	}
	if len(got) != len(wantB) {
		t.Errorf("bob@b.test holds %q, want exactly %q", got, wantB)
	}
	for acct, msgs := range a.allMail() {
		for _, f := range msgs {
			if acct != "alice@a.test" || f.subject() != "reply from b" {
				t.Errorf("unexpected message in %s on a.test: %q", acct, f.subject())
			}
		}
	}
}

// TestInteropQueueWaitsForReceiver: while b.test's MX is down, a message
// waits in a.test's queue, which shows it with the error of the last try;
// once b.test is back, `posthorn queue flush` delivers it.
func TestInteropQueueWaitsForReceiver(t *testing.T) {
	t.Parallel()
	needSwaksTLS(t)
	// Retries far in the future: only the flush can deliver it in time.
	a, b := twoMTAs(t, map[string]map[string]string{"queue": {"min_backoff": `"10m"`, "max_backoff": `"1h"`}}, false)
	submit(t, a, "alice@a.test", "--from", "alice@a.test", "--to", "bob@b.test", "--header", "Subject: waits for b")

	var list string
	if !poll(15*time.Second, func() bool { list = a.queueList(); return strings.Contains(list, "deferred (1 tries") }) {
		t.Fatalf("no deferred message in the queue after 15s:\n%s", list)
	}
	for _, want := range []string{"alice@a.test", "bob@b.test", "451 4.4.1", "-- 1 KiB in 1 messages"} {
		if !strings.Contains(list, want) {
			t.Errorf("queue list lacks %q:\n%s", want, list)
		}
	}
	lines := strings.Split(list, "\n")
	if len(lines) < 2 {
		t.Fatalf("queue list:\n%s", list)
	}
	id := strings.Fields(lines[1])[0]
	show := a.admin("", "queue", "show", id)
	for _, want := range []string{"sender:  <alice@a.test>", "rcpt:    bob@b.test  deferred (1 tries", "451 4.4.1 no server could be reached", "Subject: waits for b"} {
		if !strings.Contains(show, want) {
			t.Errorf("queue show %s lacks %q:\n%s", id, want, show)
		}
	}
	// The whole last error, which says why: list may shorten it, show is
	// where an administrator looks for it.
	if want := fmt.Sprintf("dial tcp %s: connect: connection refused", b.smtpAddr()); !strings.Contains(show, want) {
		t.Errorf("queue show %s does not give the whole last error (it should end %q):\n%s", id, want, show)
	}
	// mailq, the classic name, lists the same.
	bin := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(bin, "mailq")); err != nil {
		t.Fatal(err)
	}
	if r := run(t, 30*time.Second, "", []string{"POSTHORN_CONFIG=" + a.config}, filepath.Join(bin, "mailq")); r.err != nil || !strings.Contains(r.stdout, id) {
		t.Errorf("mailq does not list %s: %s", id, r)
	}

	b.start()
	// Back up, but the retry is minutes away: nothing moves by itself.
	time.Sleep(1500 * time.Millisecond)
	if n := len(b.inbox("bob")); n != 0 {
		t.Fatalf("bob@b.test got %d messages before the flush, with the retry 10 minutes away", n)
	}
	a.admin("", "queue", "flush")
	f := waitMaildir(t, b.maildir("bob"), "waits for b", 15*time.Second)
	checkHops(t, f, "a.test", "b.test")
	a.waitQueueEmpty(10 * time.Second)
	if n := len(b.inbox("bob")); n != 1 {
		t.Errorf("bob@b.test holds %d messages, want 1", n)
	}
	if n := len(a.inbox("alice")); n != 0 {
		t.Errorf("alice@a.test got %d messages (a DSN?), want none: NOTIFY defaults to FAILURE", n)
	}
}

// TestInteropRemoteRejectsOneRecipient: b.test refuses one of two
// recipients with 550; the other gets the message and the sender gets a
// DSN naming only the refused one. A message from the null sender to an
// unknown remote recipient bounces nowhere.
func TestInteropRemoteRejectsOneRecipient(t *testing.T) {
	t.Parallel()
	needSwaksTLS(t)
	a, b := twoMTAs(t, nil, true)
	submit(t, a, "alice@a.test", "--from", "alice@a.test", "--to", "bob@b.test,nobody@b.test", "--header", "Subject: half bounced")

	checkHops(t, waitMaildir(t, b.maildir("bob"), "half bounced", 20*time.Second), "a.test", "b.test")
	dsnFile := waitMaildirFunc(t, a.maildir("alice"), "a multipart/report", 20*time.Second, func(f mailFile) bool {
		return strings.HasPrefix(f.header.Get("Content-Type"), "multipart/report")
	})
	if rp := dsnFile.header.Get("Return-Path"); rp != "<>" {
		t.Errorf("DSN Return-Path = %q, want <> (RFC 3464: reports have the null sender)", rp)
	}
	d := parseDSN(t, dsnFile)
	if d.reportType != "delivery-status" {
		t.Errorf("report-type = %q, want delivery-status", d.reportType)
	}
	for _, want := range []string{"Final-Recipient: rfc822; nobody@b.test", "Action: failed", "Status: 5.1.1",
		"Remote-MTA: dns; mx.b.test", "Diagnostic-Code: smtp; 550"} {
		if !strings.Contains(d.status, want) {
			t.Errorf("delivery-status part lacks %q:\n%s", want, d.status)
		}
	}
	if strings.Contains(d.status, "bob@b.test") {
		t.Errorf("delivery-status part names bob@b.test, who got the message:\n%s", d.status)
	}
	if !strings.Contains(d.human, "nobody@b.test") {
		t.Errorf("human-readable part does not name nobody@b.test:\n%s", d.human)
	}
	if !strings.Contains(d.original, "Subject: half bounced") {
		t.Errorf("DSN does not return the original (or its header):\n%s", dsnFile.raw)
	}
	a.waitQueueEmpty(10 * time.Second)

	// The null sender: refused by b.test too, but nobody may be told.
	out := submit(t, a, "alice@a.test", "--from", "<>", "--to", "nobody@b.test",
		"--header", "From: alice@a.test", "--header", "Subject: null sender")
	if !strings.Contains(out, "MAIL FROM:<>") {
		t.Fatalf("swaks did not use the null sender:\n%s", out)
	}
	if !poll(20*time.Second, func() bool {
		return strings.Contains(b.log(), "rcpt=nobody@b.test") && strings.Count(b.log(), "unknown recipient") >= 2
	}) {
		t.Fatalf("b.test never saw the null-sender message for nobody@b.test")
	}
	a.waitQueueEmpty(10 * time.Second)
	b.waitQueueEmpty(10 * time.Second)
	for name, m := range map[string]*mta{"a.test": a, "b.test": b} {
		for acct, msgs := range m.allMail() {
			for _, f := range msgs {
				if f.path == dsnFile.path || (acct == "bob@b.test" && f.subject() == "half bounced") {
					continue
				}
				t.Errorf("%s: unexpected message for %s (a bounce of the null-sender message?):\n%s", name, acct, f.raw)
			}
		}
	}
}

// waitMaildirFunc waits up to d until dir holds a message for which ok
// holds and returns it.
func waitMaildirFunc(t *testing.T, dir, what string, d time.Duration, ok func(mailFile) bool) mailFile {
	t.Helper()
	var found *mailFile
	if !poll(d, func() bool {
		for _, f := range readMaildir(t, dir) {
			if ok(f) {
				found = &f
				return true
			}
		}
		return false
	}) {
		var subjects []string
		for _, f := range readMaildir(t, dir) {
			subjects = append(subjects, f.subject())
		}
		t.Fatalf("no %s in %s after %v; subjects there: %q", what, dir, d, subjects)
	}
	return *found
}

// TestInteropPostfix: Postfix as the peer MTA in both directions. posthorn
// finds p.test's MX (Postfix) and delivers into Postfix's virtual Maildir;
// Postfix's 550 for an unknown user becomes posthorn's DSN. Mail injected
// with Postfix's sendmail reaches posthorn's Maildir, and posthorn's 550
// for an unknown user becomes Postfix's bounce.
func TestInteropPostfix(t *testing.T) {
	t.Parallel()
	need(t, "postfix", "postconf")
	needSwaksTLS(t)
	port := sharedPort(t, ipA, ipPostfix)
	dns := mockDNS(t, mxZones(map[string]string{"a.test": ipA, "p.test": ipPostfix}))
	a := newMTA(t, mtaOpts{domain: "a.test", ip: ipA, port: port, dns: dns, users: []string{"alice"}})
	pf := newPostfix(t, "p.test", ipPostfix, port, []string{"pat"},
		map[string]string{"a.test": fmt.Sprintf("smtp:[%s]:%d", ipA, port)})

	// posthorn → Postfix.
	// 8-bit text in both directions (8BITMIME).
	submit(t, a, "alice@a.test", "--from", "alice@a.test", "--to", "pat@p.test,nobody@p.test", "--header", "Subject: to postfix",
		"--add-header", "MIME-Version: 1.0", "--add-header", "Content-Type: text/plain; charset=utf-8",
		"--add-header", "Content-Transfer-Encoding: 8bit", "--body", "Grüße aus Posthorn")
	// Postfix → posthorn, through Postfix's own sendmail and pickup.
	r := run(t, 30*time.Second, "From: pat@p.test\nTo: alice@a.test\nSubject: from postfix\nMIME-Version: 1.0\n"+
		"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nhello posthorn, ça va?\n", nil,
		postfixSendmail(t, pf), "-C", pf.conf, "-f", "pat@p.test", "alice@a.test")
	if r.err != nil {
		t.Fatalf("postfix sendmail: %s", r)
	}
	r = run(t, 30*time.Second, "From: pat@p.test\nTo: nosuch@a.test\nSubject: to nobody at posthorn\n\nx\n", nil,
		postfixSendmail(t, pf), "-C", pf.conf, "-f", "pat@p.test", "nosuch@a.test")
	if r.err != nil {
		t.Fatalf("postfix sendmail: %s", r)
	}

	f := waitMaildir(t, pf.inbox("pat"), "to postfix", 20*time.Second)
	rcv := f.header["Received"]
	if len(rcv) < 2 || !strings.Contains(rcv[0], "by mx.p.test (Postfix) with ESMTPS") || !strings.Contains(rcv[1], "by mx.a.test (Posthorn) with ESMTPSA") {
		t.Errorf("Received fields at Postfix = %q, want Postfix's (ESMTPS: posthorn used STARTTLS) over posthorn's (ESMTPSA)", rcv)
	}
	if rp := f.header.Get("Return-Path"); rp != "<alice@a.test>" {
		t.Errorf("Return-Path at Postfix = %q, want <alice@a.test>", rp)
	}
	if !strings.Contains(f.body, "Grüße aus Posthorn") {
		t.Errorf("8-bit body at Postfix = %q, want it unchanged", f.body)
	}
	dsnFile := waitMaildirFunc(t, a.maildir("alice"), "a multipart/report", 20*time.Second, func(f mailFile) bool {
		return strings.HasPrefix(f.header.Get("Content-Type"), "multipart/report")
	})
	d := parseDSN(t, dsnFile)
	for _, want := range []string{"Final-Recipient: rfc822; nobody@p.test", "Action: failed", "Status: 5.1.1",
		"Remote-MTA: dns; mx.p.test", "Diagnostic-Code: smtp; 550 5.1.1", "User unknown"} {
		if !strings.Contains(d.status, want) {
			t.Errorf("posthorn's DSN for Postfix's refusal lacks %q:\n%s", want, d.status)
		}
	}
	if strings.Contains(d.status, "pat@p.test") {
		t.Errorf("DSN names pat@p.test, who got the message:\n%s", d.status)
	}

	g := waitMaildir(t, a.maildir("alice"), "from postfix", 20*time.Second)
	if rcv := g.header["Received"]; len(rcv) == 0 || !strings.Contains(rcv[0], "by mx.a.test (Posthorn) with ESMTPS") || !strings.Contains(rcv[0], "[127.0.0.4]") {
		t.Errorf("newest Received at posthorn = %q, want one by mx.a.test with ESMTPS (Postfix used STARTTLS) from [127.0.0.4]", rcv)
	}
	if rp := g.header.Get("Return-Path"); rp != "<pat@p.test>" {
		t.Errorf("Return-Path at posthorn = %q, want <pat@p.test>", rp)
	}
	if !strings.Contains(g.body, "hello posthorn, ça va?") {
		t.Errorf("body at posthorn = %q", g.body)
	}
	bounce := waitMaildirFunc(t, pf.inbox("pat"), "Postfix's bounce", 30*time.Second, func(f mailFile) bool {
		return strings.HasPrefix(f.header.Get("Content-Type"), "multipart/report")
	})
	bd := parseDSN(t, bounce)
	for _, want := range []string{"Final-Recipient: rfc822; nosuch@a.test", "Action: failed", "Status: 5.1.1", "550 5.1.1"} {
		if !strings.Contains(bd.status, want) {
			t.Errorf("Postfix's bounce for posthorn's refusal lacks %q:\n%s", want, bd.status)
		}
	}
	a.waitQueueEmpty(10 * time.Second)
	if n := len(a.inbox("alice")); n != 2 {
		t.Errorf("alice@a.test holds %d messages, want 2 (the DSN and Postfix's message)", n)
	}
}

// postfixSendmail is the path of Postfix's sendmail.
func postfixSendmail(t *testing.T, pf *postfixPeer) string {
	t.Helper()
	r := run(t, 10*time.Second, "", nil, "postconf", "-c", pf.conf, "-h", "sendmail_path")
	if r.err != nil {
		t.Fatalf("postconf: %s", r)
	}
	return strings.TrimSpace(r.stdout)
}

// TestInteropSendmailT: a program pipes a message to posthorn's sendmail
// (a symlink named sendmail) with -t: the local recipient and the Bcc get
// it here, the remote one through the MX, and Bcc is not shown. A line
// over 998 octets is not refused: delivered whole here, broken into
// pieces on the way to the MX (as Postfix does).
func TestInteropSendmailT(t *testing.T) {
	t.Parallel()
	a, b := twoMTAs(t, nil, true)
	bin := t.TempDir()
	sendmail := filepath.Join(bin, "sendmail")
	if err := os.Symlink(binary, sendmail); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 3000)
	msg := "From: Carol <carol@a.test>\nTo: Dave <dave@a.test>\nCc: bob@b.test\nBcc: alice@a.test\nSubject: sendmail -t\n\nfrom a cron job\n" + long + "\n"
	r := run(t, 30*time.Second, msg, []string{"POSTHORN_CONFIG=" + a.config}, sendmail, "-t")
	if r.err != nil || exitCode(r.err) != 0 {
		t.Fatalf("sendmail -t: exit %d: %s", exitCode(r.err), r)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	sender := "<" + me.Username + "@mx.a.test>"
	var copies []mailFile
	for _, local := range []string{"dave", "alice"} {
		f := waitMaildir(t, a.maildir(local), "sendmail -t", 5*time.Second)
		if dt := f.header.Get("Delivered-To"); dt != local+"@a.test" {
			t.Errorf("Delivered-To = %q, want %s@a.test", dt, local)
		}
		copies = append(copies, f)
	}
	f := waitMaildir(t, b.maildir("bob"), "sendmail -t", 20*time.Second)
	if rcv := f.header["Received"]; len(rcv) == 0 || !strings.Contains(rcv[0], "by mx.b.test (Posthorn) with ESMTPS") {
		t.Errorf("Received at b.test = %q, want one by mx.b.test with ESMTPS", rcv)
	}
	copies = append(copies, f)
	for _, c := range copies {
		if rp := c.header.Get("Return-Path"); rp != sender {
			t.Errorf("%s: Return-Path = %q, want %s (the local user at the host name)", c.path, rp, sender)
		}
		if c.header.Get("Bcc") != "" || strings.Contains(c.raw, "\nBcc:") {
			t.Errorf("%s: the Bcc header is visible:\n%s", c.path, c.raw)
		}
		if c.header.Get("Message-ID") == "" || c.header.Get("Date") == "" {
			t.Errorf("%s: Message-ID or Date was not added:\n%s", c.path, c.raw)
		}
		if !strings.Contains(c.body, "from a cron job") {
			t.Errorf("%s: body = %q", c.path, c.body)
		}
		if n := strings.Count(c.body, "x"); n != len(long) {
			t.Errorf("%s: %d of the long line's %d octets arrived", c.path, n, len(long))
		}
		// Kept whole where it is delivered here (smtp.max_line_length
		// takes it, as Postfix does); broken at 998 octets on its way to
		// another server (RFC 5322 §2.1.1), as Postfix's SMTP client does.
		relayed := strings.Contains(c.path, "/b.test/")
		for _, l := range strings.Split(c.raw, "\n") {
			if len(strings.TrimSuffix(l, "\r")) > 998 && relayed {
				t.Errorf("%s: a line of %d octets reached another server", c.path, len(l))
			}
		}
		if !relayed && !strings.Contains(c.raw, "\n"+long+"\n") {
			t.Errorf("%s: the long line was broken for a local delivery", c.path)
		}
	}
	a.waitQueueEmpty(10 * time.Second)
	if n := len(a.inbox("carol")); n != 0 {
		t.Errorf("carol@a.test (only in From) got %d messages", n)
	}
}

// bruteForce tries 20 wrong passwords from one address, then the right one
// from there and from another address, each attempt on a new connection
// over implicit TLS, timing the AUTH reply.
const bruteForce = `
import base64
BAD, GOOD, USER, PW = sys.argv[1:5]

def attempt(src, password):
    t0 = time.time()
    try:
        s = smtplib.SMTP_SSL(HOST, PORT, local_hostname="brute.example.net", timeout=20,
                             source_address=(src, 0), context=unverified())
        s.ehlo()
    except (OSError, smtplib.SMTPException) as e:
        return {"reply": [-1, "connect: %s: %s" % (type(e).__name__, e)], "secs": time.time() - t0, "open": False}
    t1 = time.time()
    cred = base64.b64encode(b"\0" + USER.encode() + b"\0" + password.encode()).decode()
    r = docmd(s, "AUTH PLAIN " + cred)
    secs = time.time() - t1
    after = docmd(s, "NOOP")
    s.close()
    return {"reply": r, "secs": secs, "open": after[0] == 250}

out = {"bad": [attempt(BAD, "wrong-%d" % i) for i in range(20)]}
out["bad_ip_right_password"] = attempt(BAD, PW)
out["other_ip"] = attempt(GOOD, PW)
out["bad_ip_still"] = attempt(BAD, PW)
print(json.dumps(out))
`

type authAttempt struct {
	Reply reply   `json:"reply"`
	Secs  float64 `json:"secs"`
	Open  bool    `json:"open"`
}

// TestInteropAuthBruteForce: wrong passwords from 127.0.0.5 get slower
// answers, then the address is blocked (454 4.7.0 and the connection
// closed, even with the right password), while the same account logs in
// at once from 127.0.0.6.
func TestInteropAuthBruteForce(t *testing.T) {
	t.Parallel()
	const maxFailures = 5
	port := sharedPort(t, ipA)
	dns := mockDNS(t, mxZones(map[string]string{"a.test": ipA}))
	a := newMTA(t, mtaOpts{domain: "a.test", ip: ipA, port: port, dns: dns, users: []string{"alice"},
		config: map[string]map[string]string{"auth": {"max_failures": strconv.Itoa(maxFailures),
			"failure_window": `"1m"`, "block_time": `"1m"`, "max_delay": `"2s"`}}})
	var got struct {
		Bad      []authAttempt `json:"bad"`
		BadRight authAttempt   `json:"bad_ip_right_password"`
		Other    authAttempt   `json:"other_ip"`
		BadStill authAttempt   `json:"bad_ip_still"`
	}
	text := pyRun(t, hostPortEnv(a.subsAddr()), bruteForce, "127.0.0.5", "127.0.0.6", "alice@a.test", pw("alice@a.test"))
	if err := json.Unmarshal([]byte(text), &got); err != nil || len(got.Bad) != 20 {
		t.Fatalf("python output: %v\n%s", err, text)
	}
	for i, at := range got.Bad {
		t.Logf("wrong password %2d: %v in %.3fs, connection open after: %v", i+1, at.Reply, at.Secs, at.Open)
	}
	// Failures before the block: 535, each answer slower (250ms doubling,
	// at most max_delay 2s), the connection kept.
	wantMin := []float64{0.2, 0.45, 0.9, 1.8}
	for i := 0; i < maxFailures-1; i++ {
		at := got.Bad[i]
		if at.Reply.code() != 535 {
			t.Errorf("wrong password %d = %v, want 535", i+1, at.Reply)
		}
		if at.Secs < wantMin[i] {
			t.Errorf("wrong password %d answered after %.3fs, want at least %.2fs (failures are slowed down)", i+1, at.Secs, wantMin[i])
		}
	}
	// The failure that reaches max_failures blocks the address; every
	// later try gets 454 4.7.0 or a closed connection, never a check.
	for i := maxFailures - 1; i < len(got.Bad); i++ {
		at := got.Bad[i]
		if blocked := at.Reply.code() == 454 && strings.HasPrefix(at.Reply.text(), "4.7.0") || at.Reply.code() == -1; !blocked || at.Open {
			t.Errorf("wrong password %d = %v (connection open: %v), want 454 4.7.0 and the connection closed", i+1, at.Reply, at.Open)
		}
		if i >= maxFailures && at.Secs > 1 {
			t.Errorf("wrong password %d while blocked took %.3fs: a blocked address should be refused at once", i+1, at.Secs)
		}
	}
	if c := got.BadRight.Reply.code(); c != 454 && c != -1 {
		t.Errorf("right password from the blocked address = %v, want 454 (blocked)", got.BadRight.Reply)
	}
	if got.Other.Reply.code() != 235 || got.Other.Secs > 1 || !got.Other.Open {
		t.Errorf("right password from another address = %v in %.3fs (open %v), want 235 within 1s", got.Other.Reply, got.Other.Secs, got.Other.Open)
	}
	if c := got.BadStill.Reply.code(); c != 454 && c != -1 {
		t.Errorf("a login from elsewhere unblocked 127.0.0.5: %v", got.BadStill.Reply)
	}
	if !strings.Contains(a.log(), "remote=127.0.0.5") {
		t.Errorf("the server log does not name 127.0.0.5")
	}
}
