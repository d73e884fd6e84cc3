package e2e_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// This file tests `posthorn mail`, the MUA, against posthorn (submission
// on 587 and 465, IMAP on 993) and against Postfix + Dovecot. What it
// sends is read back with Python's email package, a parser we did not
// write.

// muaPorts are the listeners muaServer adds.
type muaPorts struct{ imaps, sub, subs int }

// muaServer starts a posthorn with IMAP over TLS and both submission
// listeners besides SMTP, and the given accounts (password "secret-" +
// address, as newServer sets).
func muaServer(t *testing.T, users ...string) (*server, muaPorts) {
	t.Helper()
	s := newServer(t, opts{users: users})
	s.stop()
	p := muaPorts{freePort(t), freePort(t), freePort(t)}
	b, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("[listen]\nimaps = [\"127.0.0.1:%d\"]\nsubmission = [\"127.0.0.1:%d\"]\nsubmissions = [\"127.0.0.1:%d\"]\n",
		p.imaps, p.sub, p.subs)
	if err := os.WriteFile(s.config, []byte(strings.Replace(string(b), "[listen]\n", extra, 1)), 0o640); err != nil {
		t.Fatal(err)
	}
	s.restart()
	return s, p
}

// muaProfile is one [profile.NAME] of a client.toml for account addr of
// a muaServer: IMAP on 993-style TLS, submission with tls mode subTLS.
// The self-signed certificate is trusted through tls_ca_file and its
// name.
func muaProfile(t *testing.T, name, addr string, p muaPorts, subTLS, extra string) string {
	t.Helper()
	port := p.sub
	if subTLS == "implicit" {
		port = p.subs
	}
	return fmt.Sprintf(`
[profile.%[1]s]
user = %[2]q
password_file = %[3]q
tls_ca_file = %[4]q
tls_server_name = "mx.example.test"
%[8]s
[profile.%[1]s.imap]
host = "127.0.0.1"
port = %[5]d
tls = "implicit"
[profile.%[1]s.submission]
host = "127.0.0.1"
port = %[6]d
tls = %[7]q
`, name, addr, muaPasswordFile(t, "secret-"+addr), filepath.Join(certDir, "tls", "cert.pem"), p.imaps, port, subTLS, extra)
}

func muaPasswordFile(t *testing.T, pw string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// muaConfig writes a client.toml and returns its path.
func muaConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "client.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// muaEnv keeps the user's own client.toml out of the tests.
func muaEnv(t *testing.T, extra ...string) []string {
	home := t.TempDir()
	return append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "POSTHORN_CONFIG=/nonexistent/posthorn.toml"}, extra...)
}

// mua runs `posthorn mail --config cfg args...` and fails the test
// unless it succeeds.
func mua(t *testing.T, cfg string, args ...string) string {
	t.Helper()
	r := run(t, 30*time.Second, "", muaEnv(t), binary, append([]string{"mail", "--config", cfg}, args...)...)
	if r.err != nil {
		t.Fatalf("posthorn mail %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// muaJSON runs mua and decodes its --json output into v.
func muaJSON(t *testing.T, v any, cfg string, args ...string) {
	t.Helper()
	out := mua(t, cfg, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("posthorn mail %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// muaSummary is what `mail ls --json` prints per message.
type muaSummary struct {
	UID        uint32   `json:"uid"`
	Subject    string   `json:"subject"`
	Flags      []string `json:"flags"`
	Attachment bool     `json:"attachment"`
	MessageID  string   `json:"message_id"`
	From       []struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"from"`
}

// muaFolder is what `mail folders --json` prints per folder.
type muaFolder struct {
	Name       string  `json:"name"`
	SpecialUse string  `json:"special_use"`
	Messages   *uint32 `json:"messages"`
}

// muaMIME is a message as Python's email package (policy=default) reads
// it.
type muaMIME struct {
	ContentType string            `json:"content_type"`
	Headers     map[string]string `json:"headers"`
	Parts       []struct {
		Type        string `json:"type"`
		Disposition string `json:"disposition"`
		Filename    string `json:"filename"`
		Charset     string `json:"charset"`
		CTE         string `json:"cte"`
		SHA256      string `json:"sha256"`
		Text        string `json:"text"`
	} `json:"parts"`
}

const pyMIME = `
import email, email.policy, hashlib, json, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
out = {"content_type": m.get_content_type(), "headers": {}, "parts": []}
for k in ("From", "To", "Cc", "Bcc", "Subject", "Message-ID", "Date", "In-Reply-To", "References", "MIME-Version"):
    if m[k] is not None:
        out["headers"][k] = str(m[k])
for p in (m.iter_parts() if m.is_multipart() else [m]):
    data = p.get_payload(decode=True)
    out["parts"].append({"type": p.get_content_type(), "disposition": p.get_content_disposition() or "",
        "filename": p.get_filename() or "", "charset": p.get_content_charset() or "",
        "cte": p["Content-Transfer-Encoding"] or "", "sha256": hashlib.sha256(data or b"").hexdigest(),
        "text": p.get_content() if p.get_content_maintype() == "text" else ""})
print(json.dumps(out))
`

// pyParse parses a message file with Python's email package.
func pyParse(t *testing.T, path string) muaMIME {
	t.Helper()
	need(t, "python3")
	r := run(t, 30*time.Second, "", []string{"PYTHONIOENCODING=utf-8"}, "python3", "-c", pyMIME, path)
	if r.err != nil {
		t.Fatalf("python email: %s", r)
	}
	var m muaMIME
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("python output: %v\n%s", err, r.stdout)
	}
	return m
}

// muaWaitFile waits for a message whose decoded Subject is subject in a
// Maildir and returns its path.
func muaWaitFile(t *testing.T, maildir, subject string) string {
	t.Helper()
	var seen []string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		seen = seen[:0]
		for _, sub := range []string{"new", "cur"} {
			ents, _ := os.ReadDir(filepath.Join(maildir, sub))
			for _, e := range ents {
				p := filepath.Join(maildir, sub, e.Name())
				f, err := os.Open(p)
				if err != nil {
					continue
				}
				m, err := mail.ReadMessage(f)
				var got string
				if err == nil {
					got, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
				}
				f.Close()
				if got == subject {
					return p
				}
				seen = append(seen, got)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no message %q in %s after 15s; there: %q", subject, maildir, seen)
	return ""
}

// muaAttachment writes a binary file with a non-ASCII name and returns
// its path and SHA-256.
func muaAttachment(t *testing.T, name string) (string, string) {
	t.Helper()
	data := []byte("%PDF-1.4\n")
	for i := 0; len(data) < 20000; i++ {
		data = append(data, byte(i*7+i/256))
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return path, hex.EncodeToString(sum[:])
}

// checkSentStructure: multipart/mixed of the text and the PDF, both as
// sent.
func checkSentStructure(t *testing.T, m muaMIME, subject, text, filename, sum string) {
	t.Helper()
	if m.ContentType != "multipart/mixed" || len(m.Parts) != 2 {
		t.Fatalf("structure %s with %d parts, want multipart/mixed with 2: %+v", m.ContentType, len(m.Parts), m)
	}
	if m.Headers["Subject"] != subject || m.Headers["MIME-Version"] != "1.0" || m.Headers["Message-ID"] == "" || m.Headers["Date"] == "" {
		t.Errorf("headers %v", m.Headers)
	}
	if _, ok := m.Headers["Bcc"]; ok {
		t.Errorf("Bcc in a delivered message: %v", m.Headers)
	}
	tp, ap := m.Parts[0], m.Parts[1]
	if tp.Type != "text/plain" || tp.Charset != "utf-8" || tp.CTE != "quoted-printable" || tp.Disposition != "" ||
		strings.ReplaceAll(tp.Text, "\r\n", "\n") != text {
		t.Errorf("text part %+v, want %q", tp, text)
	}
	if ap.Type != "application/pdf" || ap.Disposition != "attachment" || ap.Filename != filename || ap.CTE != "base64" || ap.SHA256 != sum {
		t.Errorf("attachment part %+v, want %q with SHA-256 %s", ap, filename, sum)
	}
}

// TestMailSendToPosthorn: `mail send --attach` over submission (587
// STARTTLS with SCRAM-SHA-256, then 465), read back by Python's email
// package from the recipient's Maildir; the copy in Sent; and the
// fallback to the local server's listeners without any client.toml.
func TestMailSendToPosthorn(t *testing.T) {
	t.Parallel()
	s, ports := muaServer(t, "me@example.test", "you@example.test")
	cfg := muaConfig(t, "default = \"sub\"\n"+
		muaProfile(t, "sub", "me@example.test", ports, "starttls", `name = "Mé Tester"`)+
		muaProfile(t, "subs", "me@example.test", ports, "implicit", ""))
	file, sum := muaAttachment(t, "Bericht über Q3 €.pdf")
	subject := "Grüße mit Anhang ✓"
	text := "Hallo Wörld,\nhier der Bericht.\n.\nEnde\n"
	mua(t, cfg, "send", "--to", "Yöu Thère <you@example.test>", "--bcc", "me@example.test",
		"--subject", subject, "--body", text, "--attach", file)

	got := pyParse(t, muaWaitFile(t, filepath.Join(s.data, "mail", "example.test", "you"), subject))
	checkSentStructure(t, got, subject, text, "Bericht über Q3 €.pdf", sum)
	if got.Headers["From"] != "Mé Tester <me@example.test>" || got.Headers["To"] != "Yöu Thère <you@example.test>" {
		t.Errorf("From %q To %q", got.Headers["From"], got.Headers["To"])
	}
	// The Bcc recipient got it too, without the Bcc field.
	bcc := pyParse(t, muaWaitFile(t, filepath.Join(s.data, "mail", "example.test", "me"), subject))
	checkSentStructure(t, bcc, subject, text, "Bericht über Q3 €.pdf", sum)

	// The copy in Sent: seen, and keeping the Bcc for the sender.
	var sent []muaSummary
	muaJSON(t, &sent, cfg, "ls", "Sent")
	if len(sent) != 1 || sent[0].Subject != subject || !slices.Contains(sent[0].Flags, `\Seen`) || !sent[0].Attachment {
		t.Fatalf("Sent holds %+v", sent)
	}
	raw := mua(t, cfg, "read", strconv.Itoa(int(sent[0].UID)), "--folder", "Sent", "--raw")
	if !strings.Contains(raw, "\r\nBcc: me@example.test\r\n") || !strings.Contains(raw, sent[0].MessageID) {
		t.Errorf("Sent copy lacks its Bcc or Message-ID:\n%s", tail([]byte(raw), 3000))
	}

	// 465 with implicit TLS; a long UTF-8 line goes quoted-printable.
	long := strings.Repeat("Lange Zeile mit Umlauten äöü ", 40) + "\n"
	mua(t, cfg, "--profile", "subs", "send", "--to", "you@example.test", "--subject", "implicit tls", "--body", long)
	plain := pyParse(t, muaWaitFile(t, filepath.Join(s.data, "mail", "example.test", "you"), "implicit tls"))
	if plain.ContentType != "text/plain" || len(plain.Parts) != 1 || plain.Parts[0].CTE != "quoted-printable" || plain.Parts[0].Text != long {
		t.Errorf("text-only message: %+v", plain)
	}

	// Both submissions authenticated with SCRAM-SHA-256, which posthorn
	// offers: the password never crossed the wire.
	var logs strings.Builder
	s.mu.Lock()
	for _, l := range s.logs {
		b, _ := os.ReadFile(l)
		logs.Write(b)
	}
	s.mu.Unlock()
	for _, svc := range []string{"submission", "submissions"} {
		if want := "service=" + svc + " mech=SCRAM-SHA-256 account=me@example.test"; !strings.Contains(logs.String(), want) {
			t.Errorf("server log lacks %q", want)
		}
	}

	// No client.toml: POSTHORN_CONFIG's listeners, its certificate pinned.
	dir := t.TempDir()
	r := run(t, 30*time.Second, "", append(muaEnv(t), "POSTHORN_CONFIG="+s.config), binary, "mail",
		"--user", "you@example.test", "--password-file", muaPasswordFile(t, "secret-you@example.test"),
		"read", "1", "--save-attachments", dir, "--json")
	if r.err != nil {
		t.Fatalf("mail read with the server's listeners: %s", r)
	}
	var msg struct {
		Text        string `json:"text"`
		Attachments []struct {
			Filename, Saved string
			ContentType     string `json:"content_type"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &msg); err != nil || msg.Text != text || len(msg.Attachments) != 1 {
		t.Fatalf("read --json: %v\n%s", err, r.stdout)
	}
	b, err := os.ReadFile(filepath.Join(dir, "Bericht über Q3 €.pdf"))
	if h := sha256.Sum256(b); err != nil || hex.EncodeToString(h[:]) != sum || msg.Attachments[0].Saved != filepath.Join(dir, "Bericht über Q3 €.pdf") {
		t.Errorf("saved attachment: %v, %+v", err, msg.Attachments)
	}
}

// muaDovecot is a Dovecot serving the Maildirs Postfix delivers into, as
// Postfix's own user, with \Sent and \Trash folders.
type muaDovecot struct {
	dir    string
	imaps  int
	cmd    *exec.Cmd
	exited chan struct{}
}

func newMuaDovecot(t *testing.T, mailRoot string, users map[string]string) *muaDovecot {
	t.Helper()
	need(t, "dovecot")
	pu, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("no postfix user: %v", err)
	}
	// Short and reachable by Dovecot's unprivileged processes.
	dir, err := os.MkdirTemp("", "mdv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var passwd strings.Builder
	for u, pw := range users {
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s\n", u, pw)
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &muaDovecot{dir: dir, imaps: freePort(t)}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <%[2]s
ssl_key = <%[3]s
disable_plaintext_auth = yes
auth_mechanisms = plain
mail_location = maildir:%[4]s/%%n
first_valid_uid = %[5]s
mailbox_idle_check_interval = 1 secs
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
}
userdb {
  driver = static
  args = uid=%[5]s gid=%[6]s home=%[4]s/%%n
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \Sent
    auto = create
  }
  mailbox Trash {
    special_use = \Trash
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[7]d
    ssl = yes
  }
}
`, dir, filepath.Join(certDir, "tls", "cert.pem"), filepath.Join(certDir, "tls", "key.pem"), mailRoot, pu.Uid, pu.Gid, d.imaps)
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	d.cmd = exec.Command("dovecot", "-F", "-c", filepath.Join(dir, "dovecot.conf"))
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("dovecot: %v", err)
	}
	d.exited = make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.stop(t) })
	if !poll(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(d.imaps)), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("dovecot does not listen after 10s:\n%s", d.logs())
	}
	return d
}

// stop ends Dovecot by its PID: SIGTERM, then SIGKILL for its group.
func (d *muaDovecot) stop(t *testing.T) {
	_ = syscall.Kill(d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
		t.Errorf("dovecot (pid %d) still running 5s after SIGTERM: killed", d.cmd.Process.Pid)
	}
	if t.Failed() {
		t.Logf("dovecot log:\n%s", d.logs())
	}
}

func (d *muaDovecot) logs() string {
	a, _ := os.ReadFile(filepath.Join(d.dir, "stdout.log"))
	b, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
	return tail(append(a, b...), 4000)
}

// muaCertPin is the SHA-256 of the test certificate, for tls_fingerprint.
func muaCertPin(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(certDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("cert.pem: no PEM block")
	}
	sum := sha256.Sum256(blk.Bytes)
	return hex.EncodeToString(sum[:])
}

// muaPostfixIP is the loopback address of this file's Postfix.
const muaPostfixIP = "127.0.0.24"

// TestMailDirectToPostfixReadFromDovecot: `mail send --direct` finds
// Postfix as the MX of p.test through a mock DNS and hands it the
// message; Postfix delivers into a Maildir that Dovecot serves; `mail ls`
// and `mail read --save-attachments` read it over Dovecot's IMAP, and the
// Sent copy lands in Dovecot's \Sent folder.
func TestMailDirectToPostfixReadFromDovecot(t *testing.T) {
	t.Parallel()
	need(t, "postfix", "dovecot", "python3")
	port := freePortOn(t, muaPostfixIP)
	dnsAddr := mockDNS(t, mxZones(map[string]string{"p.test": muaPostfixIP}))
	pf := newPostfix(t, "p.test", muaPostfixIP, port, []string{"alice"}, nil)
	dv := newMuaDovecot(t, pf.mail, map[string]string{"alice@p.test": "pw-alice"})
	cfg := muaConfig(t, fmt.Sprintf(`
[profile.alice]
user = "alice@p.test"
name = "Alice Ümlaut"
password_file = %q
tls_fingerprint = %q
[profile.alice.imap]
host = "127.0.0.1"
port = %d
[profile.alice.direct]
dns = [%q]
port = %d
hostname = "client.test"
`, muaPasswordFile(t, "pw-alice"), muaCertPin(t), dv.imaps, dnsAddr, port))

	file, sum := muaAttachment(t, "Rechnung Nr. 7 – März.pdf")
	subject := "Direkt über MX ✉"
	text := "Hallo Alice,\ndie Rechnung hängt an.\n"
	mua(t, cfg, "send", "--direct", "--to", "alice@p.test", "--subject", subject, "--body", text, "--attach", file)

	got := pyParse(t, muaWaitFile(t, pf.inbox("alice"), subject))
	checkSentStructure(t, got, subject, text, "Rechnung Nr. 7 – März.pdf", sum)

	var inbox []muaSummary
	muaJSON(t, &inbox, cfg, "ls")
	var uid uint32
	for _, m := range inbox {
		if m.Subject == subject {
			uid = m.UID
			if !m.Attachment || slices.Contains(m.Flags, `\Seen`) || len(m.From) != 1 || m.From[0].Name != "Alice Ümlaut" {
				t.Errorf("listing %+v", m)
			}
		}
	}
	if uid == 0 {
		t.Fatalf("mail ls over Dovecot: no %q in %+v", subject, inbox)
	}
	dir := t.TempDir()
	out := mua(t, cfg, "read", strconv.Itoa(int(uid)), "--save-attachments", dir)
	for _, want := range []string{"Subject: " + subject, "From: Alice Ümlaut <alice@p.test>", text,
		"1. Rechnung Nr. 7 – März.pdf  application/pdf"} {
		if !strings.Contains(out, want) {
			t.Errorf("mail read lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "Rechnung Nr. 7 – März.pdf"))
	if h := sha256.Sum256(b); err != nil || hex.EncodeToString(h[:]) != sum {
		t.Errorf("saved attachment: %v", err)
	}
	// read marked it \Seen; the copy is in Dovecot's \Sent folder.
	muaJSON(t, &inbox, cfg, "ls", "--unseen")
	if len(inbox) != 0 {
		t.Errorf("still unseen after read: %+v", inbox)
	}
	var folders []muaFolder
	muaJSON(t, &folders, cfg, "folders")
	if i := slices.IndexFunc(folders, func(f muaFolder) bool { return f.SpecialUse == `\Sent` }); i < 0 ||
		folders[i].Messages == nil || *folders[i].Messages != 1 {
		t.Errorf("folders: %+v", folders)
	}
	var sent []muaSummary
	muaJSON(t, &sent, cfg, "ls", "Sent")
	if len(sent) != 1 || sent[0].Subject != subject || !slices.Contains(sent[0].Flags, `\Seen`) {
		t.Errorf("Sent: %+v", sent)
	}
}

// muaWatch is a running `posthorn mail watch`.
type muaWatch struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

// startWatch runs `mail watch` and returns once it says it is waiting.
func startWatch(t *testing.T, cfg, profile string) *muaWatch {
	t.Helper()
	cmd := exec.Command(binary, "mail", "--config", cfg, "--profile", profile, "watch")
	cmd.Env = append(os.Environ(), muaEnv(t)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &muaWatch{cmd: cmd, lines: make(chan string, 16), done: make(chan struct{})}
	ready := make(chan string, 1)
	var errText bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			errText.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "watching ") {
				select {
				case ready <- sc.Text():
				default:
				}
			}
		}
	}()
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		// SIGTERM by PID: watch ends cleanly, exit status 0.
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		errc := make(chan error, 1)
		go func() { <-w.done; errc <- cmd.Wait() }()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("mail watch after SIGTERM: %v\n%s", err, errText.String())
			}
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Errorf("mail watch still running 10s after SIGTERM (killed)")
		}
	})
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatalf("mail watch did not start waiting in 15s:\n%s", errText.String())
	}
	return w
}

// next returns the next line watch printed, or fails after d.
func (w *muaWatch) next(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l := <-w.lines:
		return l
	case <-time.After(d):
		t.Fatalf("mail watch printed nothing in %v", d)
	}
	return ""
}

// TestMailReplyThreadsAndWatch: `mail watch` shows a delivery within a
// second; `mail reply --all` threads (In-Reply-To, References), answers
// everyone but us and flags the original \Answered; search, flag, mv,
// rm and forward file it.
func TestMailReplyThreadsAndWatch(t *testing.T) {
	t.Parallel()
	need(t, "swaks", "python3")
	s, ports := muaServer(t, "me@example.test", "you@example.test", "other@example.test")
	cfg := muaConfig(t, muaProfile(t, "me", "me@example.test", ports, "starttls", "")+
		muaProfile(t, "you", "you@example.test", ports, "implicit", ""))
	me := func(args ...string) string { return mua(t, cfg, append([]string{"--profile", "me"}, args...)...) }

	// you watches its INBOX; a delivery shows within a second.
	w := startWatch(t, cfg, "you")
	swaks(t, s.addr(), "--from", "me@example.test", "--to", "you@example.test", "--header", "Subject: ping for watch")
	t0 := time.Now()
	line := w.next(t, 5*time.Second)
	if lat := time.Since(t0); lat > time.Second {
		t.Errorf("watch printed the delivery %v after the 250", lat)
	}
	if !strings.Contains(line, "me@example.test") || !strings.Contains(line, "ping for watch") {
		t.Errorf("watch line %q lacks From or Subject", line)
	}

	// The original: from you to me, cc other, in a thread already.
	swaks(t, s.addr(), "--from", "you@example.test", "--to", "me@example.test",
		"--header", "From: You <you@example.test>", "--header", "To: me@example.test",
		"--header", "Cc: Other <other@example.test>", "--header", "Subject: plans for friday",
		"--header", "Message-Id: <orig-2@example.test>", "--header", "In-Reply-To: <orig-1@example.test>",
		"--header", "References: <orig-1@example.test>", "--body", "line one\nline two")
	var list []muaSummary
	muaJSON(t, &list, cfg, "--profile", "me", "search", "from:you", "subject:friday")
	if len(list) != 1 || list[0].MessageID != "<orig-2@example.test>" {
		t.Fatalf("search: %+v", list)
	}
	uid := strconv.Itoa(int(list[0].UID))
	me("reply", uid, "--all", "--body", "Friday works.\n")

	reply := pyParse(t, muaWaitFile(t, filepath.Join(s.data, "mail", "example.test", "you"), "Re: plans for friday"))
	h := reply.Headers
	if h["In-Reply-To"] != "<orig-2@example.test>" || h["References"] != "<orig-1@example.test> <orig-2@example.test>" ||
		h["To"] != "You <you@example.test>" || h["Cc"] != "Other <other@example.test>" {
		t.Errorf("reply headers %v", h)
	}
	if want := "> line one\n> line two\n\nFriday works.\n"; !strings.HasSuffix(reply.Parts[0].Text, want) ||
		!strings.Contains(reply.Parts[0].Text, "You <you@example.test> wrote:\n") {
		t.Errorf("reply text %q", reply.Parts[0].Text)
	}
	muaWaitFile(t, filepath.Join(s.data, "mail", "example.test", "other"), "Re: plans for friday")
	if line := w.next(t, 5*time.Second); !strings.Contains(line, "Re: plans for friday") {
		t.Errorf("watch line %q", line)
	}
	muaJSON(t, &list, cfg, "--profile", "me", "ls")
	if len(list) != 1 || !slices.Contains(list[0].Flags, `\Answered`) {
		t.Errorf("original after the reply: %+v", list)
	}

	// Filing: flag, move, to the Trash, forward from there.
	me("flag", uid, "flagged")
	me("mv", uid, "Archive")
	muaJSON(t, &list, cfg, "--profile", "me", "ls", "Archive")
	if len(list) != 1 || !slices.Contains(list[0].Flags, `\Flagged`) {
		t.Fatalf("Archive: %+v", list)
	}
	me("rm", strconv.Itoa(int(list[0].UID)), "--folder", "Archive")
	muaJSON(t, &list, cfg, "--profile", "me", "ls", "Trash")
	if len(list) != 1 || list[0].Subject != "plans for friday" {
		t.Fatalf("Trash: %+v", list)
	}
	me("forward", strconv.Itoa(int(list[0].UID)), "--folder", "Trash", "--to", "other@example.test", "--body", "FYI")
	fwd := pyParse(t, muaWaitFile(t, filepath.Join(s.data, "mail", "example.test", "other"), "Fwd: plans for friday"))
	if fwd.ContentType != "multipart/mixed" || len(fwd.Parts) != 2 || fwd.Parts[1].Type != "message/rfc822" {
		t.Errorf("forward: %+v", fwd)
	}
	me("rm", strconv.Itoa(int(list[0].UID)), "--folder", "Trash")
	muaJSON(t, &list, cfg, "--profile", "me", "ls", "Trash")
	if len(list) != 0 {
		t.Errorf("Trash after rm in the Trash: %+v", list)
	}
	r := run(t, 30*time.Second, "", muaEnv(t), binary, "mail", "--config", cfg, "--profile", "me", "read", "999")
	var ee *exec.ExitError
	if !errors.As(r.err, &ee) || !strings.Contains(r.stderr, "no message with UID 999 in INBOX") {
		t.Errorf("read of a missing UID: %s", r)
	}
}
