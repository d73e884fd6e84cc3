package cli

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"posthorn/internal/pickup"
	"posthorn/internal/smtp"
)

// fakeDaemon plays the daemon's sendmail socket: it refuses recipients
// whose local part starts with "bad" (550 5.1.1) and more than max per
// transaction (452 4.5.3), and records who got each message.
type fakeDaemon struct {
	sock string
	max  int
	mu   sync.Mutex
	got  [][]string // the recipients of each message taken
}

func startFakeDaemon(t *testing.T, max int) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{sock: filepath.Join(t.TempDir(), "sendmail.sock"), max: max}
	l, err := net.Listen("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go d.serve(c)
		}
	}()
	return d
}

func (d *fakeDaemon) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(s string) { _, _ = c.Write([]byte(s + "\r\n")) }
	say("220 fake")
	var rcpts []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			say("250-fake\r\n250 DSN")
		case strings.HasPrefix(cmd, "MAIL"):
			rcpts = nil
			say("250 2.1.0 Ok")
		case strings.HasPrefix(cmd, "RCPT TO:<BAD"):
			say("550 5.1.1 no such user")
		case strings.HasPrefix(cmd, "RCPT"):
			if len(rcpts) >= d.max {
				say("452 4.5.3 too many recipients")
				continue
			}
			rcpts = append(rcpts, strings.ToLower(strings.TrimSpace(line[len("RCPT TO:<"):strings.IndexByte(line, '>')])))
			say("250 2.1.5 Ok")
		case cmd == "DATA" && len(rcpts) == 0:
			say("554 5.5.1 no valid recipients")
		case cmd == "DATA":
			say("354 go")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			d.mu.Lock()
			d.got = append(d.got, rcpts)
			d.mu.Unlock()
			say("250 2.0.0 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 Ok")
		}
	}
}

func (d *fakeDaemon) messages() [][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.got)
}

func envelopeTo(addrs ...string) smtp.Envelope {
	env := smtp.Envelope{From: "me@h.test"}
	for _, a := range addrs {
		env.Rcpts = append(env.Rcpts, smtp.EnvelopeRcpt{Addr: a})
	}
	return env
}

// dropped reads the recipients of the files in the maildrop.
func dropped(t *testing.T, dir string) [][]string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var out [][]string
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		env, _, err := pickup.Read(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, env.Rcpts)
	}
	return out
}

// TestSendmailNeverHalfSent: sendmail's exit status is never an error
// once a recipient has the message. A refused recipient next to accepted
// ones is left in the maildrop, for the daemon to bounce (as Postfix
// does); when nobody was accepted, the refusal is the exit status and no
// message went. It used to exit 67 although the good recipient had it.
func TestSendmailNeverHalfSent(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, 1000)
	drop := t.TempDir()
	if err := deliverEnvelope(d.sock, drop, 1000, envelopeTo("good@h.test", "bad@h.test"), []byte("Subject: s\r\n\r\nx\r\n")); err != nil {
		t.Errorf("one good, one bad: %v; want exit 0", err)
	}
	if got := dropped(t, drop); len(got) != 1 || !slices.Equal(got[0], []string{"bad@h.test"}) {
		t.Errorf("maildrop holds %q, want the refused recipient for a bounce", got)
	}
	err := deliverEnvelope(d.sock, t.TempDir(), 1000, envelopeTo("bad@h.test", "bad2@h.test"), []byte("x\r\n"))
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exNoUser {
		t.Errorf("only bad recipients: %v, want exit 67", err)
	}
	if got := d.messages(); len(got) != 1 || !slices.Equal(got[0], []string{"good@h.test"}) {
		t.Errorf("messages taken: %q", got)
	}
}

// TestSendmailSplitsTransactions: more recipients than the daemon takes
// in one transaction (max_recipients) are sent in several, so none is
// left out; it used to deliver to the first 1000 and exit 75.
func TestSendmailSplitsTransactions(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, 2)
	drop := t.TempDir()
	if err := deliverEnvelope(d.sock, drop, 2, envelopeTo("a@x", "b@x", "c@x", "d@x", "e@x"), []byte("x\r\n")); err != nil {
		t.Fatalf("5 recipients, 2 per transaction: %v", err)
	}
	var all []string
	for _, m := range d.messages() {
		all = append(all, m...)
	}
	if !slices.Equal(all, []string{"a@x", "b@x", "c@x", "d@x", "e@x"}) || len(dropped(t, drop)) != 0 {
		t.Errorf("delivered to %q, dropped %q", all, dropped(t, drop))
	}
}

// TestCheckText: sendmail refuses a NUL or an over-long line itself, as
// the daemon would on its socket, so that a message left in the maildrop
// while the daemon is down is never one the daemon then bounces.
func TestCheckText(t *testing.T) {
	t.Parallel()
	if err := checkText([]byte("Subject: ok\r\n\r\n"+strings.Repeat("x", 998)+"\r\n"), 998); err != nil {
		t.Errorf("998 octets: %v", err)
	}
	for _, m := range []string{"Subject: x\r\n\r\n" + strings.Repeat("x", 999) + "\r\n", "Subject: x\r\n\r\na\x00b\r\n"} {
		if checkText([]byte(m), 998) == nil {
			t.Errorf("accepted %.40q…", m)
		}
	}
}

// TestBreakLongLines: sendmail breaks lines over the limit instead of
// refusing the message (exit 65 lost cron output and web applications'
// HTML mail), so that checkText then passes it; how lines are broken is
// message.FoldLines's test.
func TestBreakLongLines(t *testing.T) {
	t.Parallel()
	const max = 998
	for _, m := range []string{
		"Subject:" + strings.Repeat(" word", 500) + "\r\n\r\n" + strings.Repeat("x", 2500) + "\r\n",
		"S: s\r\n\r\n" + strings.Repeat("é", 1200) + "\r\n",
	} {
		if err := checkText([]byte(m), max); err == nil {
			t.Fatal("checkText passed a long line")
		}
		out := breakLongLines([]byte(m), max)
		if err := checkText(out, max); err != nil {
			t.Errorf("still refused after breaking: %v", err)
		}
		if len(out) <= len(m) {
			t.Errorf("nothing was broken: %d octets in, %d out", len(m), len(out))
		}
	}
	if short := "Subject: x\r\n\r\nhello\r\n"; string(breakLongLines([]byte(short), max)) != short {
		t.Error("a message without long lines changed")
	}
}

// TestSendmailBusyDaemonUsesMaildrop: a daemon that greets with 421 (too
// many connections, shutting down) has been sent nothing, so sendmail
// leaves the message in the maildrop and exits 0; it exited 75, and cron
// mail of a burst was lost.
func TestSendmailBusyDaemonUsesMaildrop(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "sendmail.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("421 4.3.2 Too many connections, try again later\r\n"))
			c.Close()
		}
	}()
	drop := t.TempDir()
	if err := deliverEnvelope(sock, drop, 1000, envelopeTo("me@h.test"), []byte("Subject: s\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("busy daemon: %v; want the maildrop and exit 0", err)
	}
	if got := dropped(t, drop); len(got) != 1 || !slices.Equal(got[0], []string{"me@h.test"}) {
		t.Errorf("maildrop holds %q", got)
	}
}
