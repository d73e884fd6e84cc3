package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pyPrelude starts every Python client script: the server address comes in
// SMTP_HOST and SMTP_PORT, further arguments in sys.argv[1:].
const pyPrelude = `
import json, os, smtplib, socket, ssl, sys, time
HOST, PORT = os.environ.get("SMTP_HOST", ""), int(os.environ.get("SMTP_PORT", "0"))

def connect(helo="client.example.net"):
    s = smtplib.SMTP(HOST, PORT, local_hostname=helo, timeout=10)
    s.ehlo(helo)
    return s

def rep(t):
    code, msg = t
    return [code, msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)]

def getreply(s):
    try:
        return rep(s.getreply())
    except (OSError, smtplib.SMTPException) as e:
        return [-1, type(e).__name__ + ": " + str(e)]

def docmd(s, line):
    try:
        return rep(s.docmd(line))
    except (OSError, smtplib.SMTPException) as e:
        return [-1, type(e).__name__ + ": " + str(e)]

def unverified():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
`

// python runs a Python script (after pyPrelude) against s and returns its
// standard output; a non-zero exit fails the test.
func python(t *testing.T, s *server, timeout time.Duration, script string, args ...string) string {
	t.Helper()
	need(t, "python3")
	env := []string{"PYTHONIOENCODING=utf-8", "PYTHONDONTWRITEBYTECODE=1"}
	if s != nil {
		env = append(env, "SMTP_HOST=127.0.0.1", "SMTP_PORT="+strconv.Itoa(s.port))
	}
	r := run(t, timeout, "", env, "python3", append([]string{"-c", pyPrelude + script}, args...)...)
	if r.err != nil {
		t.Fatalf("python3 client failed: %s", r)
	}
	return r.stdout
}

// pythonJSON runs a script that prints one JSON document and decodes it.
func pythonJSON(t *testing.T, s *server, timeout time.Duration, out any, script string, args ...string) {
	t.Helper()
	text := python(t, s, timeout, script, args...)
	if err := json.Unmarshal([]byte(text), out); err != nil {
		t.Fatalf("python output is not the JSON expected: %v\n%s", err, text)
	}
}

// reply is an SMTP reply as the Python scripts print it: [code, text].
// Code -1 means the client got no reply (the text says why).
type reply [2]any

func (r reply) code() int {
	f, _ := r[0].(float64)
	return int(f)
}

func (r reply) text() string {
	s, _ := r[1].(string)
	return s
}

func (r reply) String() string { return strconv.Itoa(r.code()) + " " + r.text() }

// message is one delivered message as Python's mailbox.Maildir reads it.
type message struct {
	Key         string   `json:"key"`
	Subdir      string   `json:"subdir"`
	Subject     string   `json:"subject"`
	From        string   `json:"from"`
	MessageID   string   `json:"message_id"`
	ReturnPath  []string `json:"return_path"`
	DeliveredTo []string `json:"delivered_to"`
	Received    []string `json:"received"`
	Body        string   `json:"body"`
	Raw         string   `json:"raw"`
}

// maildir is one account's Maildir.
type maildir struct {
	Messages []message `json:"messages"`
	Tmp      []string  `json:"tmp"` // files in tmp/ (never messages)
}

// mailState is everything delivered under DATA/mail, by account, and what
// is left in DATA/tmp (the staging area of incoming messages).
type mailState struct {
	Accounts map[string]maildir `json:"accounts"`
	SpoolTmp []string           `json:"spool_tmp"`
}

// total counts the messages in every account.
func (m mailState) total() int {
	n := 0
	for _, md := range m.Accounts {
		n += len(md.Messages)
	}
	return n
}

// inbox returns the messages of one account.
func (m mailState) inbox(account string) []message { return m.Accounts[account].Messages }

// bySubject returns the messages of account with the given Subject.
func (m mailState) bySubject(account, subject string) []message {
	var out []message
	for _, msg := range m.inbox(account) {
		if msg.Subject == subject {
			out = append(out, msg)
		}
	}
	return out
}

// readMail lists with Python's mailbox module what the server delivered.
const readMail = `
import email, email.policy, mailbox
data = sys.argv[1]

def text(v):
    return "" if v is None else str(v)

out = {"accounts": {}, "spool_tmp": []}
spool = os.path.join(data, "tmp")
if os.path.isdir(spool):
    out["spool_tmp"] = sorted(os.listdir(spool))
root = os.path.join(data, "mail")
for dom in sorted(os.listdir(root)) if os.path.isdir(root) else []:
    for user in sorted(os.listdir(os.path.join(root, dom))):
        path = os.path.join(root, dom, user)
        md = mailbox.Maildir(path, factory=None, create=False)
        msgs = []
        for key in sorted(md.keys()):
            raw = md.get_bytes(key)
            # policy.default reads raw UTF-8 (SMTPUTF8) headers as text.
            m = email.message_from_bytes(raw, policy=email.policy.default)
            body = b"" if m.is_multipart() else (m.get_payload(decode=True) or b"")
            msgs.append({
                "key": key, "subdir": md.get_message(key).get_subdir(),
                "subject": text(m["Subject"]), "from": text(m["From"]),
                "message_id": text(m["Message-ID"]),
                "return_path": [text(v) for v in m.get_all("Return-Path", [])],
                "delivered_to": [text(v) for v in m.get_all("Delivered-To", [])],
                "received": [text(v) for v in m.get_all("Received", [])],
                "body": body.decode("utf-8", "replace"),
                "raw": raw.decode("utf-8", "replace"),
            })
        out["accounts"][user + "@" + dom] = {"messages": msgs, "tmp": sorted(os.listdir(os.path.join(path, "tmp")))}
print(json.dumps(out))
`

// mail reads the server's data directory with Python's mailbox.Maildir.
func (s *server) mail() mailState {
	s.t.Helper()
	var st mailState
	pythonJSON(s.t, nil, 30*time.Second, &st, readMail, s.data)
	return st
}

// wantOne checks that account holds exactly one message with subject and
// returns it.
func wantOne(t *testing.T, st mailState, account, subject string) message {
	t.Helper()
	got := st.bySubject(account, subject)
	if len(got) != 1 {
		var subjects []string
		for _, m := range st.inbox(account) {
			subjects = append(subjects, m.Subject)
		}
		t.Fatalf("%s: %d messages with Subject %q, want 1; all subjects: %q", account, len(got), subject, subjects)
	}
	return got[0]
}

// checkTrace checks the trace fields added on delivery to account.
func checkTrace(t *testing.T, m message, returnPath, account string) {
	t.Helper()
	if len(m.ReturnPath) != 1 || m.ReturnPath[0] != returnPath {
		t.Errorf("Return-Path = %q, want [%q]", m.ReturnPath, returnPath)
	}
	if len(m.DeliveredTo) != 1 || m.DeliveredTo[0] != account {
		t.Errorf("Delivered-To = %q, want [%q]", m.DeliveredTo, account)
	}
	if len(m.Received) == 0 || !strings.Contains(m.Received[0], "by mx.example.test") {
		t.Errorf("first Received = %q, want one by mx.example.test", m.Received)
	}
	if i := strings.Index(m.Raw, "\r"); i >= 0 {
		t.Errorf("stored message has a CR at offset %d: Maildir files use LF line ends", i)
	}
}

// pyProc is a Python client running in the background; its standard
// output arrives line by line.
type pyProc struct {
	cmd    *exec.Cmd
	lines  chan string // closed at EOF
	done   chan struct{}
	err    error
	stderr string // path of the stderr file
}

// startPython starts a Python script (after pyPrelude) against s, killed
// (by its process group id) after timeout.
func startPython(t *testing.T, s *server, timeout time.Duration, script string, args ...string) *pyProc {
	t.Helper()
	need(t, "python3")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, "python3", append([]string{"-u", "-c", pyPrelude + script}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONIOENCODING=utf-8", "SMTP_HOST=127.0.0.1", "SMTP_PORT="+strconv.Itoa(s.port))
	ownGroup(cmd)
	p := &pyProc{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{}), stderr: filepath.Join(t.TempDir(), "python.stderr")}
	errf, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = errf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		errf.Close()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// line returns the next output line, failing the test after d.
func (p *pyProc) line(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.done
			t.Fatalf("python client ended early (%v); stderr:\n%s", p.err, p.errText())
		}
		return l
	case <-time.After(d):
		t.Fatalf("python client printed nothing for %v; stderr:\n%s", d, p.errText())
	}
	return ""
}

// finish waits up to d for the client to end and returns its remaining
// output.
func (p *pyProc) finish(t *testing.T, d time.Duration) string {
	t.Helper()
	var b strings.Builder
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				if p.err != nil {
					t.Fatalf("python client failed (%v); stderr:\n%s", p.err, p.errText())
				}
				return b.String()
			}
			b.WriteString(l + "\n")
		case <-timeout:
			t.Fatalf("python client still running after %v; stderr:\n%s", d, p.errText())
		}
	}
}

func (p *pyProc) errText() string {
	b, _ := os.ReadFile(p.stderr)
	return string(b)
}
