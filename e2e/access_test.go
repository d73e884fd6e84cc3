package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// accessPorts are the IMAP and POP3 listeners of a test server.
type accessPorts struct{ imap, imaps, pop3, pop3s int }

// accessServer starts a server that also listens for IMAP and POP3: it
// adds the listeners to the configuration newServer wrote and restarts.
func accessServer(t *testing.T) (*server, accessPorts) {
	t.Helper()
	s := newServer(t, opts{})
	s.stop()
	p := accessPorts{freePort(t), freePort(t), freePort(t), freePort(t)}
	b, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("[listen]\nimap = [\"127.0.0.1:%d\"]\nimaps = [\"127.0.0.1:%d\"]\npop3 = [\"127.0.0.1:%d\"]\npop3s = [\"127.0.0.1:%d\"]\n",
		p.imap, p.imaps, p.pop3, p.pop3s)
	conf := strings.Replace(string(b), "[listen]\n", extra, 1)
	if err := os.WriteFile(s.config, []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	s.restart()
	return s, p
}

const userPW = "secret-me@example.test" // what newServer sets for me@example.test

// pyIMAP is shared by the imaplib scripts: IMAP_PORT and POP3_PORT in the
// environment, a logged-in STARTTLS session from login().
const pyIMAP = `
import imaplib, poplib
IMAP_PORT, POP3_PORT = int(os.environ["IMAP_PORT"]), int(os.environ["POP3_PORT"])
def login():
    m = imaplib.IMAP4("127.0.0.1", IMAP_PORT, timeout=10)
    m.starttls(ssl_context=unverified())
    typ, _ = m.login("me@example.test", "` + userPW + `")
    assert typ == "OK"
    return m
`

func pyAccess(t *testing.T, s *server, p accessPorts, script string) string {
	t.Helper()
	need(t, "python3")
	env := []string{"PYTHONIOENCODING=utf-8", "SMTP_HOST=127.0.0.1", "SMTP_PORT=" + strconv.Itoa(s.port),
		"IMAP_PORT=" + strconv.Itoa(p.imap), "POP3_PORT=" + strconv.Itoa(p.pop3)}
	r := run(t, 60*time.Second, "", env, "python3", "-c", pyPrelude+pyIMAP+script)
	if r.err != nil {
		t.Fatalf("python: %s", r)
	}
	return r.stdout
}

// TestIMAPWithImaplib walks Python's imaplib through what a client does.
func TestIMAPWithImaplib(t *testing.T) {
	t.Parallel()
	s, p := accessServer(t)
	for i := 1; i <= 3; i++ {
		swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test", "--header", fmt.Sprintf("Subject: imap test %d", i))
	}
	out := pyAccess(t, s, p, `
m = login()
typ, boxes = m.list()
print("LIST", sorted(b.decode().split(' "/" ')[1].strip('"') for b in boxes))
typ, data = m.select("INBOX"); print("SELECT", data[0].decode())
typ, data = m.search(None, "SUBJECT", '"imap test 2"'); print("SEARCH", data[0].decode())
typ, data = m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"); print("FETCH", data[0][1].decode().strip())
typ, data = m.store("1:2", "+FLAGS", "(\\Flagged)"); print("STORE", [d.decode() for d in data])
typ, data = m.search(None, "FLAGGED"); print("FLAGGED", data[0].decode())
typ, data = m.sort("(REVERSE SUBJECT)", "UTF-8", "ALL"); print("SORT", data[0].decode())
typ, data = m.thread("REFERENCES", "UTF-8", "ALL"); print("THREAD", data[0].decode())
typ, data = m.append("Sent", "(\\Seen)", None, b"Subject: my sent copy\r\n\r\nbody\r\n"); print("APPEND", data[0].decode()[:10])
typ, data = m.copy("1", "Archive"); print("COPY", typ)
typ, data = m.uid("MOVE", "3", "Trash"); print("MOVE", typ)
m.store("1", "+FLAGS", "(\\Deleted)"); typ, data = m.expunge(); print("EXPUNGE", [d.decode() for d in data])
for box in ("INBOX", "Sent", "Archive", "Trash"):
    typ, data = m.status(box, "(MESSAGES)"); print("STATUS", data[0].decode())
m.logout()
`)
	for _, want := range []string{
		"LIST ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']", "SELECT 3", "SEARCH 2",
		"FETCH Subject: imap test 1", "FLAGGED 1 2", "SORT 3 2 1", "THREAD (1)(2)(3)", "APPEND [APPENDUID", "COPY OK", "MOVE OK", "'1']",
		`STATUS "INBOX" (MESSAGES 1)`, `STATUS "Sent" (MESSAGES 1)`, `STATUS "Archive" (MESSAGES 1)`, `STATUS "Trash" (MESSAGES 1)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("imaplib output lacks %q:\n%s", want, out)
		}
	}
}

// TestIMAPCompressWithZlib: COMPRESS=DEFLATE (RFC 4978) against Python's
// zlib: raw DEFLATE both ways, the client's commands ended with
// Z_PARTIAL_FLUSH as mbsync ends them, through a FETCH of a large
// message, an IDLE that sees a delivery, and LOGOUT.
func TestIMAPCompressWithZlib(t *testing.T) {
	t.Parallel()
	s, p := accessServer(t)
	swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test", "--header", "Subject: big",
		"--body", strings.Repeat("all work and no play makes jack a dull boy\n", 2000))
	out := pyAccess(t, s, p, `
import zlib, re
imaplib.Commands["COMPRESS"] = ("AUTH", "SELECTED") # imaplib knows no COMPRESS
m = login()
m.select("INBOX")
typ, data = m._simple_command("COMPRESS", "DEFLATE"); print("COMPRESS", typ)
sock = m.sock
comp, decomp = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
buf = b""
def send(line):
    sock.sendall(comp.compress(line.encode() + b"\r\n") + comp.flush(zlib.Z_PARTIAL_FLUSH)) # as mbsync does
def until(tag):
    global buf
    while True:
        i = buf.find(b"\r\n" + tag) if not buf.startswith(tag) else 0
        if i >= 0:
            j = buf.find(b"\r\n", i + 2 if i else 0)
            if j >= 0:
                out, buf = buf[:j + 2], buf[j + 2:]
                return out
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("connection closed")
        buf += decomp.decompress(chunk)
send("a1 FETCH 1 (RFC822.SIZE BODY.PEEK[])")
r = until(b"a1 ")
size = int(re.search(rb"RFC822.SIZE (\d+)", r).group(1))
lit = int(re.search(rb"BODY\[\] \{(\d+)\}", r).group(1))
print("FETCH", size == lit, r.count(b"dull boy") , r.split(b"\r\n")[-2].decode())
send("a2 IDLE")
until(b"+ ")
import smtplib
smtplib.SMTP(os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"])).sendmail("a@remote.test", ["me@example.test"], "Subject: new\r\n\r\nhi\r\n")
print("IDLE", until(b"* 2 EXISTS").strip().decode().splitlines()[-1])
send("DONE")
print("DONE", until(b"a2 ").strip().decode().splitlines()[-1])
send("a3 LOGOUT")
print("LOGOUT", until(b"a3 ").strip().decode().splitlines()[-1])
`)
	for _, want := range []string{"COMPRESS OK", "FETCH True 2000 a1 OK", "IDLE * 2 EXISTS", "DONE a2 OK", "LOGOUT a3 OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("zlib client output lacks %q:\n%s", want, out)
		}
	}
}

// TestPOP3WithPoplibSeenByIMAP: POP3 DELE at QUIT is seen over IMAP.
func TestPOP3WithPoplibSeenByIMAP(t *testing.T) {
	t.Parallel()
	s, p := accessServer(t)
	swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test", "--header", "Subject: pop me 1")
	swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test", "--header", "Subject: pop me 2")
	out := pyAccess(t, s, p, `
c = poplib.POP3("127.0.0.1", POP3_PORT, timeout=10); c.stls(context=unverified())
c.user("me@example.test"); c.pass_("`+userPW+`")
print("STAT", c.stat())
resp, uids, _ = c.uidl(); print("UIDL", len(uids))
resp, lines, _ = c.retr(1); print("RETR", [l.decode() for l in lines if l.startswith(b"Subject:")])
c.dele(1); print(c.quit().decode())
c2 = poplib.POP3("127.0.0.1", POP3_PORT, timeout=10); c2.stls(context=unverified())
c2.user("me@example.test"); c2.pass_("`+userPW+`")
resp, uids2, _ = c2.uidl(); print("UIDL AGAIN", [u.decode().split()[1] for u in uids2] == [u.decode().split()[1] for u in uids[1:]])
c2.quit()
m = login(); typ, data = m.select("INBOX"); print("IMAP SEES", data[0].decode())
`)
	for _, want := range []string{"UIDL 2", "RETR ['Subject: pop me 1']", "+OK", "UIDL AGAIN True", "IMAP SEES 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("poplib output lacks %q:\n%s", want, out)
		}
	}
}

// TestCurlIMAPAndPOP3 reads over imap://, imaps://, pop3:// and pop3s://.
func TestCurlIMAPAndPOP3(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	s, p := accessServer(t)
	swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test", "--header", "Subject: via curl", "--body", "curl body line")
	cred := "me@example.test:" + userPW
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"imap STARTTLS list", []string{"--ssl-reqd", "-k", fmt.Sprintf("imap://127.0.0.1:%d/", p.imap)}, `"INBOX"`},
		{"imaps fetch", []string{"-k", fmt.Sprintf("imaps://127.0.0.1:%d/INBOX;UID=1", p.imaps)}, "curl body line"},
		{"pop3 STLS list", []string{"--ssl-reqd", "-k", fmt.Sprintf("pop3://127.0.0.1:%d/", p.pop3)}, "1 "},
		{"pop3s retr", []string{"-k", fmt.Sprintf("pop3s://127.0.0.1:%d/1", p.pop3s)}, "Subject: via curl"},
	} {
		r := run(t, 20*time.Second, "", nil, "curl", append([]string{"-s", "-S", "--max-time", "15", "-u", cred}, c.args...)...)
		if r.err != nil || !strings.Contains(r.stdout, c.want) {
			t.Errorf("curl %s: %s", c.name, r)
		}
	}
	// Without TLS, curl cannot log in: LOGINDISABLED and USER refused.
	r := run(t, 20*time.Second, "", nil, "curl", "-s", "--max-time", "10", "-u", cred, fmt.Sprintf("imap://127.0.0.1:%d/", p.imap))
	if r.err == nil {
		t.Errorf("plaintext IMAP login worked: %s", r)
	}
}

// TestIdleSeesDeliveryWithinASecond measures SMTP 250 → "* n EXISTS".
func TestIdleSeesDeliveryWithinASecond(t *testing.T) {
	t.Parallel()
	s, p := accessServer(t)
	out := pyAccess(t, s, p, `
m = login(); m.select("INBOX")
tag = m._new_tag().decode()
m.send((tag + " IDLE\r\n").encode())
assert m.readline().startswith(b"+")
s = connect(); s.sendmail("a@remote.test", ["me@example.test"], b"Subject: idle\r\n\r\nx\r\n"); t0 = time.time(); s.quit()
m.sock.settimeout(5)
line = m.readline()
print("LATENCY %.3f" % (time.time() - t0), line.decode().strip())
m.send(b"DONE\r\n")
`)
	re := regexp.MustCompile(`LATENCY ([0-9.]+) \* 1 EXISTS`)
	mm := re.FindStringSubmatch(out)
	if mm == nil {
		t.Fatalf("IDLE output: %s", out)
	}
	if lat, _ := strconv.ParseFloat(mm[1], 64); lat > 1.0 {
		t.Errorf("delivery reached IDLE after %.3fs", lat)
	}
}

// TestMaildirFlagChangeVisibleOverIMAP: a flag set in the Maildir by
// another program (as mutt does, renaming the file) shows over IMAP.
func TestMaildirFlagChangeVisibleOverIMAP(t *testing.T) {
	t.Parallel()
	s, p := accessServer(t)
	swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test", "--header", "Subject: flag me")
	dir := filepath.Join(s.data, "mail", "example.test", "me")
	ents, _ := os.ReadDir(filepath.Join(dir, "new"))
	if len(ents) != 1 {
		t.Fatalf("%d files in new/", len(ents))
	}
	old := ents[0].Name()
	if err := os.Rename(filepath.Join(dir, "new", old), filepath.Join(dir, "cur", old+":2,FS")); err != nil {
		t.Fatal(err)
	}
	out := pyAccess(t, s, p, `
m = login(); m.select("INBOX")
typ, data = m.fetch("1", "(FLAGS)"); print("FLAGS", data[0].decode())
`)
	if !strings.Contains(out, `\Flagged`) || !strings.Contains(out, `\Seen`) {
		t.Errorf("flags changed in the Maildir not seen: %s", out)
	}
}

// TestMbsyncBothWays syncs INBOX to a local Maildir with isync, changes
// both sides, syncs again; a third sync changes nothing.
func TestMbsyncBothWays(t *testing.T) {
	t.Parallel()
	need(t, "mbsync")
	s, p := accessServer(t)
	swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test", "--header", "Subject: sync one")
	home := t.TempDir()
	local := filepath.Join(home, "Mail")
	rc := fmt.Sprintf(`IMAPAccount test
Host 127.0.0.1
Port %d
User me@example.test
Pass %s
SSLType STARTTLS
CertificateFile %s
SystemCertificates no

IMAPStore remote
Account test

MaildirStore local
Path %s/
Inbox %s/INBOX

Channel c
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync All
Expunge Both
SyncState *
`, p.imap, userPW, filepath.Join(s.dir, "tls", "cert.pem"), local, local)
	os.MkdirAll(local, 0o700)
	rcPath := filepath.Join(home, ".mbsyncrc")
	os.WriteFile(rcPath, []byte(rc), 0o600)
	sync := func() string {
		r := run(t, 60*time.Second, "", []string{"HOME=" + home}, "mbsync", "-c", rcPath, "-V", "c")
		if r.err != nil {
			t.Fatalf("mbsync: %s", r)
		}
		return r.stdout + r.stderr
	}
	sync()
	if n := countFiles(t, filepath.Join(local, "INBOX")); n != 1 {
		t.Fatalf("after the first sync %d local messages", n)
	}
	// A local new message goes up; a server message comes down.
	os.WriteFile(filepath.Join(local, "INBOX", "new", "1700000000.1.local"), []byte("Subject: from local\n\nhi\n"), 0o600)
	swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test", "--header", "Subject: sync two")
	sync()
	if n := countFiles(t, filepath.Join(local, "INBOX")); n != 3 {
		t.Errorf("after the second sync %d local messages, want 3", n)
	}
	out := pyAccess(t, s, p, `
m = login(); typ, data = m.select("INBOX"); print("SERVER", data[0].decode())
`)
	if !strings.Contains(out, "SERVER 3") {
		t.Errorf("server side: %s", out)
	}
	again := sync()
	if strings.Contains(again, "far side: +1") || strings.Contains(again, "near side: +1") || !strings.Contains(again, "Channels: 1") {
		t.Logf("third sync output:\n%s", again)
	}
	if n := countFiles(t, filepath.Join(local, "INBOX")); n != 3 {
		t.Errorf("a sync with no changes changed something: %d local messages", n)
	}
}

func countFiles(t *testing.T, maildir string) int {
	n := 0
	for _, sd := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(maildir, sd))
		n += len(ents)
	}
	return n
}

// TestFetchmailPullsPOP3AndIMAP: fetchmail is a peer MRA that pulls from
// posthorn over both protocols, handing each message to an MDA.
func TestFetchmailPullsPOP3AndIMAP(t *testing.T) {
	t.Parallel()
	need(t, "fetchmail")
	s, p := accessServer(t)
	for i := 1; i <= 3; i++ {
		swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test", "--header", fmt.Sprintf("Subject: fetch %d", i))
	}
	home := t.TempDir()
	for _, proto := range []struct{ name, port string }{{"POP3", strconv.Itoa(p.pop3)}, {"IMAP", strconv.Itoa(p.imap)}} {
		out := filepath.Join(home, proto.name+".mbox")
		rc := fmt.Sprintf("poll 127.0.0.1 protocol %s port %s user \"me@example.test\" password \"%s\" sslproto tls1.2+ no sslcertck keep mda \"cat >> %s\"\n",
			proto.name, proto.port, userPW, out)
		rcPath := filepath.Join(home, proto.name+".rc")
		os.WriteFile(rcPath, []byte(rc), 0o600)
		r := run(t, 60*time.Second, "", []string{"HOME=" + home}, "fetchmail", "-f", rcPath, "--nodetach", "--all", "--nosyslog", "-v")
		if r.err != nil {
			t.Errorf("fetchmail %s: %s", proto.name, r)
			continue
		}
		b, _ := os.ReadFile(out)
		if n := strings.Count(string(b), "Subject: fetch "); n != 3 {
			t.Errorf("fetchmail over %s fetched %d messages, want 3\n%s", proto.name, n, r)
		}
	}
}

// TestMuttOverIMAP reads a message with mutt in batch mode over IMAPS.
func TestMuttOverIMAP(t *testing.T) {
	t.Parallel()
	need(t, "mutt", "script")
	s, p := accessServer(t)
	swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test", "--header", "Subject: mutt over imap", "--body", "read remotely")
	home := t.TempDir()
	out := filepath.Join(home, "piped.txt")
	url := fmt.Sprintf("imaps://me%%40example.test@127.0.0.1:%d/INBOX", p.imaps)
	muttrc := filepath.Join(home, "muttrc")
	// The server's own certificate is trusted: no prompt to eat the keys.
	os.WriteFile(muttrc, []byte(fmt.Sprintf("set imap_pass=\"%s\"\nset ssl_verify_host=no\nset certificate_file=%s\nset wait_key=no\nset quit=yes\nset pipe_decode=yes\n",
		userPW, filepath.Join(s.dir, "tls", "cert.pem"))), 0o600)
	// mutt asks to create ~/Mail when it is missing; that prompt would eat
	// the keys, so it exists. push runs once the index is up: pipe the
	// message to a file, then quit.
	if err := os.Mkdir(filepath.Join(home, "Mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := "mutt -R -n -F " + muttrc + " -f '" + url + "'" +
		` -e 'push "<pipe-message>cat >` + out + `<enter><quit>"'`
	r := run(t, 30*time.Second, "", []string{"HOME=" + home, "TERM=dumb"}, "script", "-qec", cmd, "/dev/null")
	b, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(b), "Subject: mutt over imap") || !strings.Contains(string(b), "read remotely") {
		t.Errorf("mutt over IMAP: %v\n%s\nterminal:\n%s", err, b, r)
	}
}

// TestMetricsAndHealth: the http listener answers /healthz and serves
// counters that move with the traffic (checked with curl).
func TestMetricsAndHealth(t *testing.T) {
	t.Parallel()
	need(t, "curl")
	s := newServer(t, opts{})
	s.stop()
	port := freePort(t)
	b, _ := os.ReadFile(s.config)
	os.WriteFile(s.config, []byte(strings.Replace(string(b), "[listen]\n", fmt.Sprintf("[listen]\nhttp = [\"127.0.0.1:%d\"]\n", port), 1)), 0o640)
	s.restart()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if r := run(t, 10*time.Second, "", nil, "curl", "-sf", base+"/healthz"); r.err != nil || r.stdout != "ok\n" {
		t.Fatalf("healthz: %s", r)
	}
	swaks(t, s.addr(), "--from", "a@remote.test", "--to", "me@example.test")
	r := run(t, 10*time.Second, "", nil, "curl", "-sf", base+"/metrics")
	if r.err != nil {
		t.Fatalf("metrics: %s", r)
	}
	for _, want := range []string{"posthorn_messages_received_total 1\n", "posthorn_local_deliveries_total 1\n",
		`posthorn_panics_total{service="smtp"} 0`, `posthorn_queue_recipients{state="queued"} 0`, "# TYPE posthorn_auth_failures_total counter"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("metrics lack %q:\n%s", want, r.stdout)
		}
	}
}
