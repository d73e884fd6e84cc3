package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAttackIMAPLongTokens sends commands whose single token is longer than
// the 64 KiB command limit (research/security.md §2.4): a tag (also before
// login), a command name, an atom (a mailbox name), a LIST pattern, a
// FETCH item name and 100,000-element sequence sets. Each must be answered with BAD (the session goes on) or
// BYE (closed) within seconds, the server's memory must stay under 300 MiB,
// and new sessions must work.
func TestAttackIMAPLongTokens(t *testing.T) {
	t.Parallel()
	a := newAtkServer(t, atkOpts{})
	if r, err := atkSend("127.0.0.1", a.addr(), "a@remote.test", "me@example.test", "Subject: one\r\n\r\nbody\r\n"); err != nil || r.code != 250 {
		t.Fatalf("seed message: %v %v", r, err)
	}
	// Above 400 MiB the watchdog kills the server: the bug this guards
	// against allocates without bound and would take the machine down.
	mem := atkWatchMem(a, 400*mib)
	defer func() {
		if max := mem.end(); max > 300*mib {
			t.Errorf("server RSS reached %d MiB (limit 300 MiB)", max/mib)
		}
	}()
	seq := func(n int) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			if i > 1 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d", i)
		}
		return b.String()
	}
	long := strings.Repeat("x", 70000)
	cases := []struct {
		name, tag, raw string
		preauth        bool // on a fresh plaintext connection, not logged in
	}{
		{"over-long argument after NOOP", "t1", "t1 NOOP " + long + "\r\n", false},
		{"quoted string over the limit", "t2", "t2 SELECT \"" + long + "\"\r\n", false},
		{"70,000-octet tag before login, plaintext", "*", strings.Repeat("a", 70000) + " NOOP\r\n", true},
		{"70,000-octet tag", "*", strings.Repeat("a", 70000) + " NOOP\r\n", false},
		{"70,000-octet command name", "t4", "t4 " + strings.ToUpper(long) + "\r\n", false},
		{"70,000-octet mailbox atom", "t5", "t5 SELECT " + long + "\r\n", false},
		{"FETCH with a 100,000-element sequence set", "t6", "t6 FETCH " + seq(100000) + " FLAGS\r\n", false},
		{"UID SEARCH with a 100,000-element UID set", "t7", "t7 UID SEARCH UID " + seq(100000) + "\r\n", false},
		{"70,000-octet LIST pattern", "t9", "t9 LIST \"\" " + strings.Repeat("%", 70000) + "\r\n", false},
		{"70,000-octet FETCH item name", "t10", "t10 FETCH 1 " + strings.ToUpper(long) + "\r\n", false},
		{"FETCH with 100,000 times 1:*", "t8", "t8 FETCH " + strings.TrimSuffix(strings.Repeat("1:*,", 100000), ",") + " UID\r\n", false},
	}
	for _, tc := range cases {
		var c *atkConn
		var err error
		if tc.preauth {
			if c, err = atkDial("127.0.0.1", a.addrOf(a.imap)); err == nil {
				if l, err := c.line(atkSlow); err != nil || !strings.HasPrefix(l, "* OK") {
					t.Fatalf("%s: greeting %q %v", tc.name, l, err)
				}
			}
		} else if c, err = atkIMAP("127.0.0.1", a); err == nil {
			if _, tagged, err := c.imapCmd("S", "S SELECT INBOX\r\n", atkSlow); !strings.HasPrefix(tagged, "S OK") {
				t.Fatalf("%s: SELECT: %q %v", tc.name, tagged, err)
			}
		}
		if err != nil {
			t.Fatalf("%s: session before the case: %v", tc.name, err)
		}
		kills := mem.killed.Load()
		start := time.Now()
		if err := c.send(tc.raw); err != nil {
			t.Errorf("%s: write: %v", tc.name, err)
		}
		lines, tagged, err := c.imapUntil(tc.tag, 10*time.Second)
		took := time.Since(start)
		bye := false
		for _, l := range lines {
			if strings.HasPrefix(l, "* BYE") {
				bye = true
			}
			if tc.tag == "*" && strings.HasPrefix(l, "* BAD") {
				tagged = l
			}
		}
		switch {
		case mem.killed.Load() > kills:
			t.Errorf("%s: no answer, and the server's memory grew past 400 MiB within %v (killed by the watchdog)", tc.name, took.Round(time.Millisecond))
			a.revive()
		case a.exited():
			t.Errorf("%s: the server process died after %v", tc.name, took.Round(time.Millisecond))
			a.revive()
		case bye:
			t.Logf("%s: BYE after %v", tc.name, took.Round(time.Millisecond))
		case strings.Contains(tagged, " BAD") || strings.HasPrefix(tagged, tc.tag+" NO"):
			// The session must be in step: NOOP works.
			if _, ok, err := c.imapCmd("N", "N NOOP\r\n", atkSlow); !strings.HasPrefix(ok, "N OK") {
				t.Errorf("%s: after %q, NOOP got %q %v", tc.name, tagged, ok, err)
			}
			t.Logf("%s: %q after %v", tc.name, tagged, took.Round(time.Millisecond))
		default:
			t.Errorf("%s: no BAD or BYE within %v (server RSS now %d MiB); got %q %v: the session hangs",
				tc.name, took.Round(time.Millisecond), atkRSS(a.pid())/mib, lines, err)
			// The session goroutine may spin for ever; kill the server to
			// free the machine and go on with a fresh one.
			a.signal(syscall.SIGKILL)
			a.revive()
		}
		c.close()
	}
	c, err := atkIMAP("127.0.0.2", a)
	if err != nil {
		t.Fatalf("a new session after the attacks: %v", err)
	}
	if _, tagged, err := c.imapCmd("F", "F SELECT INBOX\r\n", atkSlow); !strings.HasPrefix(tagged, "F OK") {
		t.Errorf("SELECT after the attacks: %q %v", tagged, err)
	}
	c.close()
	a.checkPanics(t)
}

// The flood test's per-address limit, timeouts and addresses: low limits,
// so that the attack and its end fit in a few seconds.
const (
	atkPerIP       = 4
	atkCmdTimeout  = 5 * time.Second
	atkDataTimeout = 8 * time.Second
	atkAttacker    = "127.0.0.2" // the source of every attack connection
	atkGood        = "127.0.0.3" // a well-behaved client
)

// TestAttackFloodSlowloris holds every connection one address may have on
// SMTP, IMAP and POP3 with slowloris clients (a half-sent line, a
// drip-fed line, a drip-fed DATA, a half-sent IMAP literal, a command every
// second), floods the same address past the limit, and meanwhile runs a
// full transaction from another address on each protocol. Refused
// connections must get the protocol's refusal (SMTP 421 4.7.0, IMAP
// * BYE, POP3 -ERR) and be closed; the well-behaved clients must finish
// within atkSlow; SMTP's command_timeout must cut a drip-fed line (the
// deadline is per line, not per octet) and data_timeout a drip-fed
// message; freed slots are usable again; no panics.
func TestAttackFloodSlowloris(t *testing.T) {
	t.Parallel()
	a := newAtkServer(t, atkOpts{smtp: map[string]string{
		"max_connections_per_ip": fmt.Sprint(atkPerIP),
		"command_timeout":        `"` + atkCmdTimeout.String() + `"`,
		"data_timeout":           `"` + atkDataTimeout.String() + `"`,
	}, tables: map[string]map[string]string{
		"imap": {"max_connections_per_ip": fmt.Sprint(atkPerIP)},
		"pop3": {"max_connections_per_ip": fmt.Sprint(atkPerIP)},
	}})
	if r, err := atkSend("127.0.0.1", a.addr(), "a@remote.test", "me@example.test", "Subject: seed\r\n\r\nfor IMAP and POP3\r\n"); err != nil || r.code != 250 {
		t.Fatalf("seed message: %v %v", r, err)
	}
	atkParallel(
		func() { atkFloodSMTP(t, a) },
		func() { atkFloodIMAP(t, a) },
		func() { atkFloodPOP3(t, a) },
	)
	a.checkPanics(t)
	a.stop()
	st := a.mail()
	for _, m := range st.inbox("me@example.test") {
		if strings.Contains(m.Raw, "X-Drip") {
			t.Errorf("the drip-fed message was delivered: %q", m.Subject)
		}
	}
	if len(st.bySubject("me@example.test", "good client")) != 1 {
		t.Errorf("the well-behaved SMTP client's message is not there once")
	}
}

// atkDrip writes one octet of s every second from a goroutine, until s
// is sent or a write fails (the server closed).
func atkDrip(c *atkConn, s string) {
	go func() {
		for i := 0; i < len(s); i++ {
			if c.send(s[i:i+1]) != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}()
}

// atkFlood opens n connections from the attacker address at once; each must
// get a first line with the prefix want and then be closed.
func atkFlood(t *testing.T, proto, addr string, n int, want string) {
	t.Helper()
	var fns []func()
	for i := range n {
		fns = append(fns, func() {
			c, err := atkDial(atkAttacker, addr)
			if err != nil {
				t.Errorf("%s flood %d: dial: %v", proto, i, err)
				return
			}
			defer c.close()
			got, closed := c.closedWithin(atkSlow)
			first, _, _ := strings.Cut(got, "\r\n")
			if !strings.HasPrefix(first, want) || !closed || strings.Count(got, "\r\n") != 1 {
				t.Errorf("%s flood %d past the per-address limit: got %q (closed %v), want one line %q… then close", proto, i, got, closed, want)
			}
		})
	}
	atkParallel(fns...)
}

func atkFloodSMTP(t *testing.T, a *atkServer) {
	start := time.Now()
	var holders [atkPerIP]*atkConn
	for i := range holders {
		c, err := atkDial(atkAttacker, a.addr())
		if err != nil {
			t.Errorf("SMTP holder %d: %v", i, err)
			return
		}
		defer c.close()
		if r, err := c.smtpReply(atkSlow); err != nil || r.code != 220 {
			t.Errorf("SMTP holder %d greeting: %v %v", i, r, err)
			return
		}
		holders[i] = c
	}
	// 0: half a command line, then nothing.
	_ = holders[0].send("MAIL FROM:<slow@remote.te")
	// 1: a line drip-fed, one octet per second, never finished in time.
	atkDrip(holders[1], "EHLO slowloris.drip.example.net and more and more and more")
	// 3: a legal command every second.
	stop3 := make(chan struct{})
	done3 := make(chan struct{})
	go func() {
		defer close(done3)
		for {
			select {
			case <-stop3:
				return
			case <-time.After(time.Second):
			}
			if r, err := holders[3].smtpCmd("NOOP\r\n"); err != nil || r.code != 250 {
				t.Errorf("SMTP NOOP every second: %v %v", r, err)
				return
			}
		}
	}()

	// While the slots are held: a flood, a good client, and holder 2
	// starting to drip-feed a message.
	var dataAt time.Time
	atkParallel(
		func() { atkFlood(t, "SMTP", a.addr(), 2*atkPerIP, "421 4.7.0 ") },
		func() {
			t0 := time.Now()
			r, err := atkSend(atkGood, a.addr(), "good@remote.test", "me@example.test", "Subject: good client\r\n\r\nunder attack\r\n")
			if err != nil || r.code != 250 {
				t.Errorf("SMTP well-behaved client during the attack: %v %v", r, err)
			} else if d := time.Since(t0); d > atkSlow {
				t.Errorf("SMTP well-behaved client took %v", d)
			}
		},
		func() {
			// 2: a message drip-fed, one line per second.
			for _, cmd := range []string{"EHLO drip.example.net\r\n", "MAIL FROM:<drip@remote.test>\r\n", "RCPT TO:<me@example.test>\r\n", "DATA\r\n"} {
				if r, err := holders[2].smtpCmd(cmd); err != nil || r.code/100 > 3 {
					t.Errorf("SMTP DATA dripper %q: %v %v", cmd, r, err)
				}
			}
			dataAt = time.Now()
			go func() {
				for i := range 40 {
					if holders[2].send(fmt.Sprintf("X-Drip: %d\r\n", i)) != nil {
						return
					}
					time.Sleep(time.Second)
				}
			}()
		},
	)

	// command_timeout cuts the half line and the drip-fed line.
	for i := range 2 {
		got, closed := holders[i].closedWithin(atkCmdTimeout + 10*time.Second - time.Since(start))
		if !closed || !strings.HasPrefix(got, "421 4.4.2 ") {
			t.Errorf("SMTP slowloris %d: after %v got %q (closed %v), want 421 4.4.2 and close by command_timeout %v",
				i, time.Since(start).Round(time.Millisecond), got, closed, atkCmdTimeout)
		} else {
			t.Logf("SMTP slowloris %d cut after %v: %q", i, time.Since(start).Round(time.Millisecond), strings.TrimSpace(got))
		}
	}
	// data_timeout bounds the whole message.
	got, closed := holders[2].closedWithin(atkDataTimeout + 10*time.Second - time.Since(dataAt))
	if !closed {
		t.Errorf("SMTP drip-fed DATA still open %v after 354 (data_timeout %v); got %q", time.Since(dataAt).Round(time.Millisecond), atkDataTimeout, got)
	} else if strings.HasPrefix(got, "250") {
		t.Errorf("SMTP drip-fed DATA got %q", got)
	} else {
		t.Logf("SMTP drip-fed DATA cut %v after 354: %q", time.Since(dataAt).Round(time.Millisecond), got)
	}
	close(stop3)
	<-done3
	if r, err := holders[3].smtpCmd("QUIT\r\n"); err != nil || r.code != 221 {
		t.Errorf("SMTP QUIT after a NOOP a second: %v %v", r, err)
	}
	// The slots are free again.
	var c *atkConn
	var err error
	ok := poll(10*time.Second, func() bool {
		if c, err = atkSMTP(atkAttacker, a.addr()); err != nil {
			return false
		}
		c.close()
		return true
	})
	if !ok {
		t.Errorf("SMTP: no connection from %s admitted after the slowloris clients were cut: %v", atkAttacker, err)
	}
}

func atkFloodIMAP(t *testing.T, a *atkServer) {
	var holders [atkPerIP]*atkConn
	for i := range holders {
		c, err := atkDial(atkAttacker, a.addrOf(a.imap))
		if err != nil {
			t.Errorf("IMAP holder %d: %v", i, err)
			return
		}
		defer c.close()
		if l, err := c.line(atkSlow); err != nil || !strings.HasPrefix(l, "* OK") {
			t.Errorf("IMAP holder %d greeting: %q %v", i, l, err)
			return
		}
		holders[i] = c
	}
	// 0: a synchronising literal announced, then half of it sent.
	_ = holders[0].send("h0 LOGIN {20}\r\n")
	if l, err := holders[0].line(atkSlow); err != nil || !strings.HasPrefix(l, "+") {
		t.Errorf("IMAP literal holder: %q %v, want + (continuation)", l, err)
	}
	_ = holders[0].send("me@exa")
	// 1: half a command line.
	_ = holders[1].send("h1 NOO")
	// 2: a line drip-fed.
	atkDrip(holders[2], "h2 CAPABILITY and more and more and more")
	// 3: a non-synchronising literal, cut short.
	_ = holders[3].send("h3 LOGIN {30+}\r\nme@ex")

	atkParallel(
		func() { atkFlood(t, "IMAP", a.addrOf(a.imap), 2*atkPerIP, "* BYE ") },
		func() {
			t0 := time.Now()
			if err := atkGoodIMAP(a); err != nil {
				t.Errorf("IMAP well-behaved client during the attack: %v", err)
			} else if d := time.Since(t0); d > atkSlow {
				t.Errorf("IMAP well-behaved client took %v", d)
			}
		},
	)
	for _, h := range holders {
		h.close()
	}
	var err error
	ok := poll(10*time.Second, func() bool {
		var c *atkConn
		if c, err = atkDial(atkAttacker, a.addrOf(a.imap)); err != nil {
			return false
		}
		defer c.close()
		var l string
		l, err = c.line(atkSlow)
		return strings.HasPrefix(l, "* OK")
	})
	if !ok {
		t.Errorf("IMAP: no connection from %s admitted after the holders left: %v", atkAttacker, err)
	}
}

// atkGoodIMAP is a whole IMAP session from atkGood: STARTTLS, LOGIN,
// SELECT, FETCH, LOGOUT.
func atkGoodIMAP(a *atkServer) error {
	c, err := atkDial(atkGood, a.addrOf(a.imap))
	if err != nil {
		return err
	}
	defer c.close()
	if l, err := c.line(atkSlow); err != nil || !strings.HasPrefix(l, "* OK") {
		return fmt.Errorf("greeting %q %v", l, err)
	}
	if _, tagged, err := c.imapCmd("g1", "g1 STARTTLS\r\n", atkSlow); !strings.HasPrefix(tagged, "g1 OK") {
		return fmt.Errorf("STARTTLS %q %v", tagged, err)
	}
	if err := c.startTLS(); err != nil {
		return err
	}
	steps := []struct{ tag, cmd, want string }{
		{"g2", "g2 LOGIN me@example.test " + userPW + "\r\n", ""},
		{"g3", "g3 SELECT INBOX\r\n", "EXISTS"},
		{"g4", "g4 FETCH 1 (BODY.PEEK[])\r\n", "for IMAP and POP3"},
		{"g5", "g5 LOGOUT\r\n", ""},
	}
	for _, s := range steps {
		lines, tagged, err := c.imapCmd(s.tag, s.cmd, atkSlow)
		if !strings.HasPrefix(tagged, s.tag+" OK") || !strings.Contains(strings.Join(lines, "\n"), s.want) {
			return fmt.Errorf("%s: %q %v", strings.TrimSpace(s.cmd), lines, err)
		}
	}
	return nil
}

func atkFloodPOP3(t *testing.T, a *atkServer) {
	var holders [atkPerIP]*atkConn
	for i := range holders {
		c, err := atkDial(atkAttacker, a.addrOf(a.pop3))
		if err != nil {
			t.Errorf("POP3 holder %d: %v", i, err)
			return
		}
		defer c.close()
		if l, err := c.line(atkSlow); err != nil || !strings.HasPrefix(l, "+OK") {
			t.Errorf("POP3 holder %d greeting: %q %v", i, l, err)
			return
		}
		holders[i] = c
	}
	_ = holders[0].send("USE")
	_ = holders[1].send("CAP")
	atkDrip(holders[2], "CAPA and more and more and more")
	stop3 := make(chan struct{})
	done3 := make(chan struct{})
	go func() {
		defer close(done3)
		for {
			select {
			case <-stop3:
				return
			case <-time.After(time.Second):
			}
			if l, err := holders[3].pop3Cmd("CAPA\r\n"); err != nil || !strings.HasPrefix(l, "+OK") {
				t.Errorf("POP3 CAPA every second: %q %v", l, err)
				return
			}
			if _, err := holders[3].pop3Multi(); err != nil {
				t.Errorf("POP3 CAPA every second: %v", err)
				return
			}
		}
	}()
	atkParallel(
		func() { atkFlood(t, "POP3", a.addrOf(a.pop3), 2*atkPerIP, "-ERR ") },
		func() {
			t0 := time.Now()
			if err := atkGoodPOP3(a); err != nil {
				t.Errorf("POP3 well-behaved client during the attack: %v", err)
			} else if d := time.Since(t0); d > atkSlow {
				t.Errorf("POP3 well-behaved client took %v", d)
			}
		},
	)
	close(stop3)
	<-done3
	for _, h := range holders {
		h.close()
	}
	var err error
	ok := poll(10*time.Second, func() bool {
		var c *atkConn
		if c, err = atkDial(atkAttacker, a.addrOf(a.pop3)); err != nil {
			return false
		}
		defer c.close()
		var l string
		l, err = c.line(atkSlow)
		return strings.HasPrefix(l, "+OK")
	})
	if !ok {
		t.Errorf("POP3: no connection from %s admitted after the holders left: %v", atkAttacker, err)
	}
}

// atkGoodPOP3 is a whole POP3 session from atkGood over STLS: USER, PASS,
// STAT, RETR, QUIT.
func atkGoodPOP3(a *atkServer) error {
	c, err := atkDial(atkGood, a.addrOf(a.pop3))
	if err != nil {
		return err
	}
	defer c.close()
	if l, err := c.line(atkSlow); err != nil || !strings.HasPrefix(l, "+OK") {
		return fmt.Errorf("greeting %q %v", l, err)
	}
	if l, err := c.pop3Cmd("STLS\r\n"); err != nil || !strings.HasPrefix(l, "+OK") {
		return fmt.Errorf("STLS %q %v", l, err)
	}
	if err := c.startTLS(); err != nil {
		return err
	}
	for _, cmd := range []string{"USER me@example.test\r\n", "PASS " + userPW + "\r\n", "STAT\r\n", "RETR 1\r\n"} {
		if l, err := c.pop3Cmd(cmd); err != nil || !strings.HasPrefix(l, "+OK") {
			return fmt.Errorf("%s: %q %v", strings.Fields(cmd)[0], l, err)
		}
	}
	msg, err := c.pop3Multi()
	if err != nil || !strings.Contains(strings.Join(msg, "\n"), "for IMAP and POP3") {
		return fmt.Errorf("RETR 1: %q %v", msg, err)
	}
	if l, err := c.pop3Cmd("QUIT\r\n"); err != nil || !strings.HasPrefix(l, "+OK") {
		return fmt.Errorf("QUIT %q %v", l, err)
	}
	return nil
}

// atkIMAPCase is one attack line for an IMAP session.
type atkIMAPCase struct {
	name string
	tag  string // the tag of the answer; "*" for untagged BAD
	raw  string // exact octets
	want string // allowed answers: any of "OK", "NO", "BAD" (space separated); "" = any
	// bye: the server may end the session with BYE (fatal inputs).
	bye bool
}

// atkRunIMAPCase sends one case and classifies the answer: the status of
// the tagged (or untagged BAD) answer, whether a BYE came, every line, and
// whether a "+" continuation came.
func atkRunIMAPCase(c *atkConn, tc atkIMAPCase, d time.Duration) (status string, bye bool, lines []string, cont bool, err error) {
	if err = c.send(tc.raw); err != nil {
		return "", false, nil, false, err
	}
	deadline := time.Now().Add(d)
	for {
		var last string
		last, err = c.imapOne(time.Until(deadline))
		if last != "" {
			lines = append(lines, last)
		}
		if err != nil {
			return "", bye, lines, cont, err
		}
		switch {
		case strings.HasPrefix(last, "+"):
			cont = true
		case strings.HasPrefix(last, "* BYE"):
			bye = true
		case tc.tag == "*" && strings.HasPrefix(last, "* BAD"):
			return "BAD", bye, lines, cont, nil
		case strings.HasPrefix(last, tc.tag+" "):
			f := strings.Fields(last)
			if len(f) > 1 {
				status = f[1]
			}
			return status, bye, lines, cont, nil
		}
	}
}

// TestAttackIMAPInputs sends hostile input over a logged-in IMAPS session
// with INBOX selected: garbage and NULs, huge and overflowing literal
// sizes, a non-synchronising literal over the limit, unbalanced and
// 10,000-deep parentheses, huge sequence numbers, invalid modified UTF-7
// and UTF-8, and mailbox names that try to leave the Maildir. Each must get
// its refusal (BAD or NO; BYE only for the fatal ones), a NOOP must work
// after it, new sessions must work, and no file may appear outside the
// account's Maildir.
func TestAttackIMAPInputs(t *testing.T) {
	t.Parallel()
	a := newAtkServer(t, atkOpts{})
	if r, err := atkSend("127.0.0.1", a.addr(), "a@remote.test", "me@example.test", "Subject: one\r\n\r\nbody\r\n"); err != nil || r.code != 250 {
		t.Fatalf("seed message: %v %v", r, err)
	}
	m := atkMarker("atkm")
	cwd, _ := os.Getwd()
	before := atkTree(t, a.dir)
	deep := func(open, mid, close string, n int) string {
		return strings.Repeat(open, n) + mid + strings.Repeat(close, n)
	}
	var seq10k strings.Builder
	for i := 1; i <= 10000; i++ {
		fmt.Fprintf(&seq10k, "%d,", i)
	}
	inj := strings.Repeat("zz CREATE inj"+m+"\r\n", 70000/len("zz CREATE inj"+m+"\r\n")+1)[:70000]
	refused := "BAD NO"
	cases := []atkIMAPCase{
		// Garbage and NULs.
		{"binary garbage", "*", "\x00\x01\x02garbage\xff\xfe\r\n", "BAD", false},
		{"empty line", "*", "\r\n", "BAD", false},
		{"tag with +", "*", "a+b NOOP\r\n", "BAD", false},
		{"* as tag", "*", "* NOOP\r\n", "BAD", false},
		{"NUL after the tag", "a", "a\x00b NOOP\r\n", "BAD", false},
		{"NUL after NOOP", "n1", "n1 NOOP\x00\r\n", "BAD", false},
		{"NUL in a quoted mailbox", "n2", "n2 SELECT \"IN\x00BOX\"\r\n", "BAD", false},
		{"NUL in a literal mailbox", "n3", "n3 SELECT {5+}\r\nIN\x00OX\r\n", "BAD", false},
		{"NUL in a LIST pattern", "n4", "n4 LIST \"\" \"\x00*\"\r\n", "BAD", false},
		{"NUL in an APPEND literal", "n9", "n9 APPEND INBOX {17+}\r\nSubject: a\r\n\r\nb\x00c\r\n", "BAD", false},
		{"8-bit command name", "n5", "n5 \xff\xfe\xfd\r\n", "BAD", false},
		{"bare LF line end", "n6", "n6 NOOP\n", "", true},
		{"CR without LF", "n7", "n7 NOOP\rn8 NOOP\r\n", "BAD", false},
		// Literal sizes.
		{"literal of 4294967295 octets", "l1", "l1 SELECT {4294967295}\r\n", "BAD", true},
		{"literal size over 64 bits", "l2", "l2 SELECT {99999999999999999999}\r\n", "BAD", true},
		{"literal size 2^64", "l3", "l3 SELECT {18446744073709551616}\r\n", "BAD", true},
		{"negative literal size", "l4", "l4 SELECT {-1}\r\n", "BAD", true},
		{"non-synchronising literal over the limit", "l5", "l5 CREATE {70000+}\r\n" + inj + "\r\n", "BAD", true},
		{"non-synchronising literal of 4294967295", "l6", "l6 CREATE {4294967295+}\r\nxyz\r\n", "BAD", true},
		{"non-synchronising literal of 5000 octets", "l7", "l7 CREATE {5000+}\r\n" + strings.Repeat("q", 5000) + "\r\n", refused, false},
		{"literal in a command not allowed now", "l8", "l8 LOGIN {5}\r\n", "BAD", false},
		// Parentheses.
		{"FETCH ( unclosed", "p1", "p1 FETCH 1 (FLAGS UID\r\n", "BAD", false},
		{"FETCH ) unopened", "p2", "p2 FETCH 1 FLAGS)\r\n", "BAD", false},
		{"FETCH ((((", "p3", "p3 FETCH 1 ((((FLAGS)\r\n", "BAD", false},
		{"FETCH ))", "p4", "p4 FETCH 1 (FLAGS))\r\n", "BAD", false},
		{"FETCH HEADER.FIELDS ( ]", "p5", "p5 FETCH 1 BODY[HEADER.FIELDS (SUBJECT]\r\n", "BAD", false},
		{"FETCH HEADER.FIELDS no ]", "p6", "p6 FETCH 1 BODY[HEADER.FIELDS (SUBJECT)\r\n", "BAD", false},
		{"SEARCH ( unclosed", "p7", "p7 SEARCH (ALL\r\n", "BAD", false},
		{"SEARCH ) unopened", "p8", "p8 SEARCH ALL)\r\n", "BAD", false},
		{"SEARCH ((ALL)", "p9", "p9 SEARCH ((ALL)\r\n", "BAD", false},
		{"SEARCH )(", "p10", "p10 SEARCH )(\r\n", "BAD", false},
		{"SEARCH 10,000 nested (", "d1", "d1 SEARCH " + deep("(", "ALL", ")", 10000) + "\r\n", "BAD", false},
		{"SEARCH 10,000 NOT", "d2", "d2 SEARCH " + strings.Repeat("NOT ", 10000) + "ALL\r\n", "BAD", false},
		{"SEARCH 10,000 OR", "d3", "d3 SEARCH " + strings.Repeat("OR ALL ", 10000) + "ALL\r\n", "BAD", false},
		{"SEARCH 10,000 ( unclosed", "d4", "d4 SEARCH " + strings.Repeat("(", 10000) + "\r\n", "BAD", false},
		{"FETCH 10,000 nested (", "d5", "d5 FETCH 1 " + deep("(", "FLAGS", ")", 10000) + "\r\n", "BAD", false},
		{"STORE 10,000 nested (", "d6", "d6 STORE 1 FLAGS " + deep("(", "\\Seen", ")", 10000) + "\r\n", "BAD", false},
		// Sequence sets.
		{"FETCH 1:4294967295", "s1", "s1 FETCH 1:4294967295 FLAGS\r\n", "", false},
		{"UID FETCH 1:4294967295", "s2", "s2 UID FETCH 1:4294967295 FLAGS\r\n", "OK", false},
		{"FETCH 4294967296", "s3", "s3 FETCH 4294967296 FLAGS\r\n", "BAD", false},
		{"FETCH 0", "s4", "s4 FETCH 0 FLAGS\r\n", "BAD", false},
		{"UID FETCH 10,000 elements", "s5", "s5 UID FETCH " + strings.TrimSuffix(seq10k.String(), ",") + " UID\r\n", "OK", false},
		{"FETCH 1,,2", "s6", "s6 FETCH 1,,2 FLAGS\r\n", "BAD", false},
		{"FETCH 1:2:3", "s7", "s7 FETCH 1:2:3 FLAGS\r\n", "BAD", false},
		{"UID SEARCH UID 10,000 elements", "s8", "s8 UID SEARCH UID " + strings.TrimSuffix(seq10k.String(), ",") + "\r\n", "OK", false},
		{"STORE on 1:4294967295", "s9", "s9 UID STORE 1:4294967295 +FLAGS (\\Flagged)\r\n", "OK", false},
		// Modified UTF-7 and UTF-8 mailbox names.
		{"mUTF-7 unterminated", "u1", "u1 CREATE &Jjo" + m + "\r\n", refused, false},
		{"mUTF-7 encoding ../", "u2", "u2 CREATE &AC4ALgAv-" + m + "\r\n", refused, false},
		{"mUTF-7 encoding /", "u3", "u3 CREATE " + m + "&AC8-x\r\n", refused, false},
		{"mUTF-7 encoding NUL", "u4", "u4 CREATE " + m + "&AAA-x\r\n", refused, false},
		{"mUTF-7 encoding CR LF", "u5", "u5 CREATE " + m + "&AA0ACg-x\r\n", refused, false},
		{"mUTF-7 lone surrogate", "u6", "u6 CREATE " + m + "&2D0-\r\n", refused, false},
		{"mUTF-7 bad base64", "u7", "u7 CREATE " + m + "&!!!-\r\n", refused, false},
		{"invalid UTF-8", "u8", "u8 CREATE \"" + m + "\xff\xfe\"\r\n", refused, false},
		{"overlong UTF-8 /", "u9", "u9 CREATE \"" + m + "\xc0\xaf..\xc0\xafx\"\r\n", refused, false},
		{"valid mUTF-7 (allowed)", "u10", "u10 CREATE " + m + "&ZeVnLIqe-\r\n", "OK", false},
		// Names that try to leave the Maildir.
		{"../x", "e1", "e1 CREATE \"../" + m + "\"\r\n", refused, false},
		{"/etc/x", "e2", "e2 CREATE \"/etc/" + m + "\"\r\n", refused, false},
		{"a/../../b", "e3", "e3 CREATE \"a/../../" + m + "\"\r\n", refused, false},
		{"x/../../..", "e4", "e4 CREATE \"" + m + "/../../..\"\r\n", refused, false},
		{".", "e5", "e5 CREATE \".\"\r\n", refused, false},
		{"..", "e6", "e6 CREATE \"..\"\r\n", refused, false},
		{"./x", "e7", "e7 CREATE \"./" + m + "\"\r\n", refused, false},
		{"x/.", "e8", "e8 CREATE \"" + m + "/.\"\r\n", refused, false},
		{"~/x", "e9", "e9 CREATE \"~/" + m + "\"\r\n", refused, false},
		{"~root/x", "e10", "e10 CREATE \"~root/" + m + "\"\r\n", refused, false},
		{"x//y", "e11", "e11 CREATE \"" + m + "//y\"\r\n", refused, false},
		{"../ as a literal", "e12", "e12 CREATE {13+}\r\n../../../" + m[:4] + "\r\n", refused, false},
		{"backslashes", "e13", "e13 CREATE \"..\\\\..\\\\" + m + "\"\r\n", "", false},
		{"RENAME INBOX to ../x", "e14", "e14 RENAME INBOX \"../" + m + "\"\r\n", refused, false},
		{"RENAME Sent to /tmp/x", "e15", "e15 RENAME Sent \"/tmp/" + m + "\"\r\n", refused, false},
		{"DELETE ../..", "e16", "e16 DELETE \"../..\"\r\n", refused, false},
		{"DELETE ..", "e17", "e17 DELETE \"..\"\r\n", refused, false},
		{"STATUS /etc", "e18", "e18 STATUS \"/etc\" (MESSAGES)\r\n", refused, false},
		{"STATUS ../../..", "e19", "e19 STATUS \"../../..\" (MESSAGES)\r\n", refused, false},
		{"APPEND to ../x", "e20", "e20 APPEND \"../" + m + "\" {9+}\r\nSubject: \r\n", refused, false},
		{"COPY to ../x", "e21", "e21 COPY 1 \"../" + m + "\"\r\n", refused, false},
		{"MOVE to /tmp/x", "e22", "e22 MOVE 1 \"/tmp/" + m + "\"\r\n", refused, false},
		{"SUBSCRIBE ../x", "e23", "e23 SUBSCRIBE \"../" + m + "\"\r\n", "", false},
		{"LIST ../* pattern", "e24", "e24 LIST \"../\" \"*\"\r\n", "", false},
		{"LIST /etc/% pattern", "e25", "e25 LIST \"\" \"/etc/%\"\r\n", "", false},
		{"SELECT ../../..", "e26", "e26 SELECT \"../../..\"\r\n", refused, true},
		// Very long names.
		{"300-octet name", "x1", "x1 CREATE " + m + strings.Repeat("a", 300-len(m)) + "\r\n", "OK NO", false},
		{"1000-octet name in 10 levels", "x2", "x2 CREATE " + m + strings.Repeat("/"+strings.Repeat("b", 98), 10)[len(m):] + "\r\n", "OK NO", false},
		{"1025-octet name", "x3", "x3 CREATE " + m + strings.Repeat("c", 1025-len(m)) + "\r\n", refused, false},
		{"60,000-octet quoted name", "x4", "x4 CREATE \"" + m + strings.Repeat("d", 60000) + "\"\r\n", refused, false},
		{"200 levels", "x5", "x5 CREATE " + m + strings.Repeat("/e", 200) + "\r\n", "OK NO", false},
		{"names Maildir uses", "x6", "x6 CREATE cur\r\n", "", false},
		{"names Maildir uses 2", "x7", "x7 CREATE tmp/new/cur\r\n", "", false},
	}
	c, err := atkIMAP("127.0.0.1", a)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.close() }()
	sel := func() {
		if _, tagged, err := c.imapCmd("S", "S SELECT INBOX\r\n", atkSlow); !strings.HasPrefix(tagged, "S OK") {
			t.Fatalf("SELECT INBOX: %q %v", tagged, err)
		}
	}
	sel()
	bads := 0 // BAD answers in this session: at max_errors (20) the server ends it
	for i, tc := range cases {
		if bads >= 15 {
			c.close()
			if c, err = atkIMAP("127.0.0.1", a); err != nil {
				t.Fatalf("before %s: no new session: %v", tc.name, err)
			}
			sel()
			bads = 0
		}
		start := time.Now()
		status, bye, lines, cont, err := atkRunIMAPCase(c, tc, atkSlow)
		took := time.Since(start)
		if status == "BAD" {
			bads++
		}
		closed := false
		if bye || err != nil {
			_, closed = c.closedWithin(2 * time.Second)
		}
		show := func(ls []string) string {
			var out []string
			for _, l := range ls {
				if len(l) > 200 {
					l = l[:200] + "…"
				}
				out = append(out, l)
			}
			return fmt.Sprintf("%q", out)
		}
		switch {
		case closed && !tc.bye:
			t.Errorf("%s: the server closed the session (%s, %v); only a BAD was expected", tc.name, show(lines), err)
		case closed:
			t.Logf("%s: closed with %s after %v", tc.name, show(lines), took.Round(time.Millisecond))
		case err != nil:
			t.Errorf("%s: no answer within %v: %s %v", tc.name, atkSlow, show(lines), err)
		case tc.want != "" && !slices.Contains(strings.Fields(tc.want), status):
			t.Errorf("%s: answer %s, want %s", tc.name, show(lines), tc.want)
		case strings.Contains(lines[len(lines)-1], "[SERVERBUG]"):
			// A name the client chose is the client's error, not ours:
			// NO [CANNOT] or [LIMIT], not an internal error (and an
			// ERROR in the log for every try).
			t.Errorf("%s: answer %s: an internal error for a client's input", tc.name, show(lines[len(lines)-1:]))
		default:
			t.Logf("%s: %s (%v)", tc.name, show(lines[len(lines)-1:]), took.Round(time.Millisecond))
		}
		if cont && status != "OK" {
			t.Errorf("%s: the server sent a continuation (+) for a literal it refused: %s", tc.name, show(lines))
		}
		if took > 5*time.Second {
			t.Errorf("%s: took %v", tc.name, took)
		}
		if closed || err != nil {
			c.close()
			if c, err = atkIMAP("127.0.0.1", a); err != nil {
				t.Fatalf("after %s: no new session: %v", tc.name, err)
			}
			sel()
			bads = 0
			continue
		}
		tag := fmt.Sprintf("k%d", i)
		if _, tagged, err := c.imapCmd(tag, tag+" NOOP\r\n", atkSlow); !strings.HasPrefix(tagged, tag+" OK") {
			t.Errorf("%s: NOOP after it: %q %v", tc.name, tagged, err)
		}
	}
	// The session and a new one still work, and the octets of the refused
	// literal l5 did not run as commands.
	lines, tagged, err := c.imapCmd("z1", "z1 LIST \"\" *\r\n", atkSlow)
	if !strings.HasPrefix(tagged, "z1 OK") {
		t.Errorf("LIST at the end: %q %v", tagged, err)
	}
	for _, l := range lines {
		if strings.Contains(l, "inj"+m) {
			t.Errorf("the octets of a refused literal ran as commands: %q", l)
		}
	}
	t.Logf("LIST at the end: %d lines", len(lines))
	c2, err := atkIMAP("127.0.0.2", a)
	if err != nil {
		t.Fatalf("a new session: %v", err)
	}
	if _, tagged, err := c2.imapCmd("F", "F FETCH 1 FLAGS\r\n", atkSlow); !strings.HasPrefix(tagged, "F BAD") {
		// not selected: BAD is the right answer; anything else shows the
		// session does not work.
		t.Errorf("FETCH before SELECT on a new session: %q %v", tagged, err)
	}
	if _, tagged, err := c2.imapCmd("G", "G EXAMINE INBOX\r\n", atkSlow); !strings.HasPrefix(tagged, "G OK") {
		t.Errorf("EXAMINE on a new session: %q %v", tagged, err)
	}
	c2.close()
	a.checkPanics(t)

	// No file outside the account's Maildir, and no name with the marker
	// anywhere else.
	after := atkTree(t, a.dir)
	if extra := atkNewPaths(before, after, "data/mail/example.test/me", "data/tmp"); len(extra) > 0 {
		t.Errorf("new files outside the account's Maildir: %q", extra)
	}
	me := filepath.Join(a.data, "mail", "example.test", "me")
	for _, p := range atkFindMarker(t, m, []string{a.dir}, []string{"/", "/etc", "/tmp", filepath.Dir(a.dir), cwd}) {
		if !strings.HasPrefix(p, me+string(filepath.Separator)) {
			t.Errorf("a path made by the attack outside the Maildir: %s", p)
		}
	}
}

// atkPOP3Case is one attack line for a POP3 session and the start of the
// answer it must get.
type atkPOP3Case struct{ raw, want string }

// TestAttackPOP3Inputs sends hostile lines to POP3: commands before
// authentication (over TLS and in plaintext), long lines, NULs, bare LF,
// and bad message numbers and line counts after login (RETR 0, RETR -1,
// RETR 99999999999999999999, TOP 1 -5, …). Each gets -ERR with a fixed
// text (never the client's input), the session goes on (a client error
// limit of 10 ends it, so cases run in batches), and the message is
// neither lost nor changed.
func TestAttackPOP3Inputs(t *testing.T) {
	t.Parallel()
	a := newAtkServer(t, atkOpts{})
	const body = "pop3 attack seed body"
	if r, err := atkSend("127.0.0.1", a.addr(), "a@remote.test", "me@example.test", "Subject: pop\r\n\r\n"+body+"\r\n"); err != nil || r.code != 250 {
		t.Fatalf("seed message: %v %v", r, err)
	}
	greet := func(c *atkConn) error {
		if l, err := c.line(atkSlow); err != nil || !strings.HasPrefix(l, "+OK") {
			return fmt.Errorf("greeting %q %v", l, err)
		}
		return nil
	}
	plain := func() (*atkConn, error) {
		c, err := atkDial("127.0.0.1", a.addrOf(a.pop3))
		if err == nil {
			if err = greet(c); err != nil {
				c.close()
			}
		}
		return c, err
	}
	tlsNoAuth := func() (*atkConn, error) {
		c, err := atkDialTLS("127.0.0.1", a.addrOf(a.pop3s))
		if err == nil {
			if err = greet(c); err != nil {
				c.close()
			}
		}
		return c, err
	}
	loggedIn := func() (*atkConn, error) { return atkPOP3("127.0.0.1", a) }
	echoes := regexp.MustCompile(`9999|\x00|0x1|-5|-1|\+1`)
	groups := []struct {
		name  string
		open  func() (*atkConn, error)
		cases []atkPOP3Case
		check string // a command that must work after each batch, and its answer
	}{
		{"before authentication, over TLS", tlsNoAuth, []atkPOP3Case{
			{"RETR 1\r\n", "-ERR"}, {"LIST\r\n", "-ERR"}, {"STAT\r\n", "-ERR"}, {"DELE 1\r\n", "-ERR"},
			{"TOP 1 0\r\n", "-ERR"}, {"UIDL\r\n", "-ERR"}, {"NOOP\r\n", "-ERR"}, {"RSET\r\n", "-ERR"},
			{"PASS " + userPW + "\r\n", "-ERR"}, {"RETR 0\r\n", "-ERR"}, {"RETR 99999999999999999999\r\n", "-ERR"},
			{"TOP 1 -5\r\n", "-ERR"}, {"USER\r\n", "-ERR"}, {"AUTH X-NONE\r\n", "-ERR"}, {"AUTH PLAIN " + strings.Repeat("A", 20000) + "\r\n", "-ERR"},
		}, "CAPA\r\n"},
		{"before authentication, plaintext", plain, []atkPOP3Case{
			{"USER me@example.test\r\n", "-ERR"}, {"PASS " + userPW + "\r\n", "-ERR"}, {"AUTH PLAIN AG1lQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n", "-ERR"},
			{"RETR 1\r\n", "-ERR"}, {"STLS now\r\n", "-ERR"},
		}, "CAPA\r\n"},
		{"long lines, NULs, garbage", tlsNoAuth, []atkPOP3Case{
			{"USER " + strings.Repeat("u", 600) + "\r\n", "-ERR"},
			{"USER " + strings.Repeat("u", 100<<10) + "\r\n", "-ERR"},
			{strings.Repeat("A", 1<<20) + "\r\n", "-ERR"},
			{"US\x00ER me@example.test\r\n", "-ERR"},
			{"\x00\r\n", "-ERR"},
			{"CAPA\x00\r\n", "-ERR"},
			{"CAPA\n", "-ERR"},
			{"CA\rPA\r\n", "-ERR"},
			{"\xff\xfe\xfd\r\n", "-ERR"},
			{"\r\n", "-ERR"},
			{"USER me@example.test\x00\r\n", "-ERR"},
		}, "CAPA\r\n"},
		{"after authentication", loggedIn, []atkPOP3Case{
			{"RETR 0\r\n", "-ERR"}, {"RETR -1\r\n", "-ERR"}, {"RETR 99999999999999999999\r\n", "-ERR"},
			{"RETR 4294967297\r\n", "-ERR"}, {"RETR 2147483648\r\n", "-ERR"}, {"RETR +1\r\n", "-ERR"}, {"RETR 0x1\r\n", "-ERR"},
			{"RETR 1 2\r\n", "-ERR"}, {"RETR\r\n", "-ERR"}, {"RETR 1\x00\r\n", "-ERR"}, {"RETR 2\r\n", "-ERR"},
			{"TOP 1 -5\r\n", "-ERR"}, {"TOP 1 99999999999999999999\r\n", "-ERR"}, {"TOP 0 1\r\n", "-ERR"},
			{"TOP -1 1\r\n", "-ERR"}, {"TOP 1\r\n", "-ERR"}, {"TOP 1 +5\r\n", "-ERR"}, {"TOP 1 1 1\r\n", "-ERR"},
			{"DELE 0\r\n", "-ERR"}, {"DELE 99999999999999999999\r\n", "-ERR"}, {"DELE -1\r\n", "-ERR"},
			{"LIST 0\r\n", "-ERR"}, {"LIST -1\r\n", "-ERR"}, {"UIDL 99999999999999999999\r\n", "-ERR"},
			{"USER me@example.test\r\n", "-ERR"}, {"STLS\r\n", "-ERR"}, {"RETR " + strings.Repeat("9", 600) + "\r\n", "-ERR"},
		}, "NOOP\r\n"},
	}
	for _, g := range groups {
		var c *atkConn
		errs := 0
		for i, tc := range g.cases {
			if c == nil || errs >= 8 {
				if c != nil {
					c.close()
				}
				var err error
				if c, err = g.open(); err != nil {
					t.Fatalf("%s: session: %v", g.name, err)
				}
				errs = 0
			}
			start := time.Now()
			got, err := c.pop3Cmd(tc.raw)
			errs++
			show := tc.raw
			if len(show) > 60 {
				show = show[:60] + "…"
			}
			switch {
			case err != nil:
				t.Errorf("%s: %q: no answer: %v", g.name, show, err)
				c.close()
				c = nil
				continue
			case !strings.HasPrefix(got, tc.want):
				t.Errorf("%s: %q: got %q, want %s…", g.name, show, got, tc.want)
				if strings.HasPrefix(got, "+OK") && (strings.HasPrefix(tc.raw, "RETR") || strings.HasPrefix(tc.raw, "TOP")) {
					_, _ = c.pop3Multi()
				}
			case echoes.MatchString(strings.TrimPrefix(got, "-ERR")):
				t.Errorf("%s: %q: the answer %q repeats the client's input", g.name, show, got)
			case time.Since(start) > 5*time.Second:
				t.Errorf("%s: %q: answered after %v", g.name, show, time.Since(start))
			}
			if i%4 == 3 || i == len(g.cases)-1 {
				l, err := c.pop3Cmd(g.check)
				if err != nil || !strings.HasPrefix(l, "+OK") {
					t.Errorf("%s: %q after %q: %q %v (session out of step?)", g.name, strings.TrimSpace(g.check), show, l, err)
					c.close()
					c = nil
					continue
				}
				if g.check == "CAPA\r\n" {
					if _, err := c.pop3Multi(); err != nil {
						t.Errorf("%s: CAPA list: %v", g.name, err)
					}
				}
			}
		}
		if c != nil {
			c.close()
		}
	}
	// The maildrop is unchanged: one message, whole.
	c, err := atkPOP3("127.0.0.2", a)
	if err != nil {
		t.Fatalf("login after the attacks: %v", err)
	}
	defer c.close()
	if l, err := c.pop3Cmd("STAT\r\n"); err != nil || !strings.HasPrefix(l, "+OK 1 ") {
		t.Errorf("STAT after the attacks: %q %v, want one message", l, err)
	}
	if l, err := c.pop3Cmd("RETR 1\r\n"); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Errorf("RETR 1: %q %v", l, err)
	} else if msg, err := c.pop3Multi(); err != nil || !slices.Contains(msg, body) {
		t.Errorf("RETR 1 after the attacks: %q %v", msg, err)
	}
	if l, err := c.pop3Cmd("QUIT\r\n"); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Errorf("QUIT: %q %v", l, err)
	}
	a.checkPanics(t)
}

// atkSMTPCase is one attack on the SMTP envelope: after EHLO (and, for
// RCPT cases, a good MAIL), raw is written in one go and each reply must
// start with the matching prefix of want.
type atkSMTPCase struct {
	name string
	rcpt bool // send MAIL FROM:<a@remote.test> first
	raw  string
	want []string
}

// TestAttackSMTPEnvelope injects CR and LF, shell syntax, path traversal,
// over-long parts and xtext tricks into MAIL FROM, RCPT TO and their
// parameters (research/security.md §2.6: OpenSMTPD CVE-2020-7247, Exim
// CVE-2019-10149, CVE-2020-28021/28026). Each must get its refusal code
// and leave the session in step (NOOP answers 250). Weird but legal
// addresses are accepted and delivered: the stored file must hold exactly
// one Return-Path and no injected field, the success DSN that one of them
// asks for (ENVID, ORCPT) must be clean in the queue and on the wire, no
// shell command may have run (marker files), and no file may appear
// outside DATA.
func TestAttackSMTPEnvelope(t *testing.T) {
	t.Parallel()
	dns := newFakeDNS(t, mxZone("remote.test"))
	mx := newFakeMX(t)
	const dsnRcpt = `"dsn weird"@remote.test`
	// The first attempt to send the DSN is deferred, so that its queue file
	// can be read.
	mx.setRule("remote.test", &mxRule{tempFail: map[string]int{dsnRcpt: 1}})
	a := newAtkServer(t, atkOpts{tables: outboundTables(mx.port, dns.addr, "2s", "4s")})
	m := atkMarker("atks")
	cwd, _ := os.Getwd()
	before := atkTree(t, a.dir)
	tmp := "/tmp/" + m
	long := func(n int) string { return strings.Repeat("l", n) }
	label63 := strings.Repeat("d", 63)
	dom255 := strings.Join([]string{label63, label63, label63, strings.Repeat("d", 61)}, ".") // 255 octets
	cases := []atkSMTPCase{
		{"CR in MAIL FROM", false, "MAIL FROM:<a\rb@remote.test>\r\n", []string{"500 5.5.2 "}},
		{"LF in MAIL FROM", false, "MAIL FROM:<a\nb@remote.test>\r\n", []string{"500 5.5.2 ", "500 5.5.1 "}},
		{"CRLF in a quoted local part", false, "MAIL FROM:<\"a\r\nX-Injected: yes\"@remote.test>\r\n", []string{"501 5.1.7 ", "500 5.5.1 "}},
		{"quoted-pair CR LF", false, "MAIL FROM:<\"a\\\r\nX-Injected: yes\"@remote.test>\r\n", []string{"501 5.1.7 ", "500 5.5.1 "}},
		{"CR in a quoted local part", false, "MAIL FROM:<\"a\rX-Injected: yes\"@remote.test>\r\n", []string{"500 5.5.2 "}},
		{"CR then a pipelined RCPT", false, "MAIL FROM:<a@remote.test>\rRCPT TO:<me@example.test>\r\n", []string{"500 5.5.2 "}},
		{"NUL in MAIL FROM", false, "MAIL FROM:<a\x00b@remote.test>\r\n", []string{"500 5.5.2 "}},
		{"pipe to shell", false, "MAIL FROM:<|/bin/sh -c touch " + tmp + "-1@remote.test>\r\n", []string{"501 5.1.7 "}},
		{"OpenSMTPD CVE-2020-7247", false, "MAIL FROM:<;touch${IFS}" + tmp + "-2;@remote.test>\r\n", []string{"501 5.1.7 "}},
		{"$( )", false, "MAIL FROM:<$(touch " + tmp + "-3)@remote.test>\r\n", []string{"501 5.1.7 "}},
		{"backticks with spaces", false, "MAIL FROM:<`touch " + tmp + "-4`@remote.test>\r\n", []string{"501 5.1.7 "}},
		{"Exim ${run}", false, "MAIL FROM:<${run{/bin/sh -c \"touch " + tmp + "-5\"}}@remote.test>\r\n", []string{"501 5.1.7 "}},
		{"../../etc/passwd sender", false, "MAIL FROM:<../../etc/passwd@remote.test>\r\n", []string{"501 5.1.7 "}},
		{"65-octet local part", false, "MAIL FROM:<" + long(65) + "@remote.test>\r\n", []string{"501 5.1.7 "}},
		{"256-octet domain", false, "MAIL FROM:<a@" + dom255 + "d>\r\n", []string{"501 5.1.7 "}},
		{"4000-octet line", false, "MAIL FROM:<" + long(4000) + "@remote.test>\r\n", []string{"500 5.5.2 "}},
		{"SIZE over 64 bits", false, "MAIL FROM:<a@remote.test> SIZE=99999999999999999999999\r\n", []string{"501 5.5.4 "}},
		{"SIZE 2^64", false, "MAIL FROM:<a@remote.test> SIZE=18446744073709551616\r\n", []string{"501 5.5.4 "}},
		{"SIZE 2^63", false, "MAIL FROM:<a@remote.test> SIZE=9223372036854775808\r\n", []string{"501 5.5.4 "}},
		{"SIZE 2^63-1", false, "MAIL FROM:<a@remote.test> SIZE=9223372036854775807\r\n", []string{"552 5.3.4 "}},
		{"SIZE -1", false, "MAIL FROM:<a@remote.test> SIZE=-1\r\n", []string{"501 5.5.4 "}},
		{"SIZE hex", false, "MAIL FROM:<a@remote.test> SIZE=0x10\r\n", []string{"501 5.5.4 "}},
		{"SIZE twice", false, "MAIL FROM:<a@remote.test> SIZE=1 SIZE=2\r\n", []string{"501 5.5.4 "}},
		{"ENVID with xtext CR LF", false, "MAIL FROM:<a@remote.test> ENVID=abc+0D+0AX-Injected:+20yes\r\n", []string{"501 5.5.4 "}},
		{"ENVID with xtext LF", false, "MAIL FROM:<a@remote.test> ENVID=+0A\r\n", []string{"501 5.5.4 "}},
		{"ENVID with xtext NUL", false, "MAIL FROM:<a@remote.test> ENVID=a+00b\r\n", []string{"501 5.5.4 "}},
		{"ENVID lower-case hex", false, "MAIL FROM:<a@remote.test> ENVID=abc+0d+0a\r\n", []string{"501 5.5.4 "}},
		{"ENVID truncated hexchar", false, "MAIL FROM:<a@remote.test> ENVID=abc+2\r\n", []string{"501 5.5.4 "}},
		{"ENVID of 101 octets", false, "MAIL FROM:<a@remote.test> ENVID=" + long(101) + "\r\n", []string{"501 5.5.4 "}},
		{"ENVID empty", false, "MAIL FROM:<a@remote.test> ENVID=\r\n", []string{"501 5.5.4 "}},
		{"ENVID with raw CR", false, "MAIL FROM:<a@remote.test> ENVID=a\rb\r\n", []string{"500 5.5.2 "}},
		{"ENVID non-ASCII", false, "MAIL FROM:<a@remote.test> ENVID=\xc3\xa9\r\n", []string{"501 5.5.4 "}},
		{"AUTH= with xtext LF", false, "MAIL FROM:<a@remote.test> AUTH=a+0Ab@remote.test\r\n", []string{"5"}},
		{"AUTH=<>", false, "MAIL FROM:<a@remote.test> AUTH=<>\r\n", []string{"555 5.5.4 "}},
		{"RET with xtext LF", false, "MAIL FROM:<a@remote.test> RET=FULL+0A\r\n", []string{"501 5.5.4 "}},
		{"unknown parameter", false, "MAIL FROM:<a@remote.test> X-EVIL=+0D+0A\r\n", []string{"555 5.5.4 "}},
		{"NOTIFY with xtext CR LF", true, "RCPT TO:<me@example.test> NOTIFY=SUCCESS+0D+0A\r\n", []string{"501 5.5.4 "}},
		{"NOTIFY NEVER and SUCCESS", true, "RCPT TO:<me@example.test> NOTIFY=NEVER,SUCCESS\r\n", []string{"501 5.5.4 "}},
		{"NOTIFY twice", true, "RCPT TO:<me@example.test> NOTIFY=SUCCESS NOTIFY=FAILURE\r\n", []string{"501 5.5.4 "}},
		{"ORCPT with xtext CR LF", true, "RCPT TO:<me@example.test> ORCPT=rfc822;a+0D+0AX-Injected:+20yes@x.test\r\n", []string{"501 5.5.4 "}},
		{"ORCPT lower-case hex", true, "RCPT TO:<me@example.test> ORCPT=rfc822;a+0db@x.test\r\n", []string{"501 5.5.4 "}},
		{"ORCPT without address", true, "RCPT TO:<me@example.test> ORCPT=rfc822;\r\n", []string{"501 5.5.4 "}},
		{"ORCPT without type", true, "RCPT TO:<me@example.test> ORCPT=;a@x.test\r\n", []string{"501 5.5.4 "}},
		{"ORCPT of 600 octets", true, "RCPT TO:<me@example.test> ORCPT=rfc822;" + long(600) + "@x.test\r\n", []string{"501 5.5.4 "}},
		{"ORCPT type with LF", true, "RCPT TO:<me@example.test> ORCPT=rfc822\n;a@x.test\r\n", []string{"500 5.5.2 ", "500 5.5.1 "}},
		{"../../etc/passwd recipient", true, "RCPT TO:<../../etc/passwd@example.test>\r\n", []string{"501 5.1.3 "}},
		{"quoted ../x recipient", true, "RCPT TO:<\"../x\"@example.test>\r\n", []string{"550 5.1.1 "}},
		{"quoted ../../tmp recipient", true, "RCPT TO:<\"../../../../tmp/" + m + "\"@example.test>\r\n", []string{"550 5.1.1 "}},
		{"me/../../x recipient", true, "RCPT TO:<me/../../x@example.test>\r\n", []string{"501 5.1.3 "}},
		{"quoted me/../../x recipient", true, "RCPT TO:<\"me/../../x\"@example.test>\r\n", []string{"550 5.1.1 "}},
		{"slash in the domain", true, "RCPT TO:<me@example.test/../../x>\r\n", []string{"501 5.1.3 "}},
		{"domain ../../etc", true, "RCPT TO:<me@../../etc>\r\n", []string{"501 5.1.3 "}},
		{"address literal with a path", true, "RCPT TO:<me@[127.0.0.1/../../x]>\r\n", []string{"501 5.1.3 "}},
		{"pipe recipient", true, "RCPT TO:<|/bin/sh -c touch " + tmp + "-6@example.test>\r\n", []string{"501 5.1.3 "}},
		{"quoted pipe recipient", true, "RCPT TO:<\"|touch " + tmp + "-7\"@example.test>\r\n", []string{"550 5.1.1 "}},
		{"backtick recipient", true, "RCPT TO:<`touch${IFS}" + tmp + "-8`@example.test>\r\n", []string{"550 5.1.1 "}},
		{"$( ) recipient", true, "RCPT TO:<\"$(touch " + tmp + "-9)\"@example.test>\r\n", []string{"550 5.1.1 "}},
		{"CR in RCPT", true, "RCPT TO:<me\r@example.test>\r\n", []string{"500 5.5.2 "}},
		{"LF then a second RCPT", true, "RCPT TO:<me@example.test>\nRCPT TO:<me@example.test>\r\n", []string{"500 5.5.2 ", "250 "}},
		{"64-octet local part", true, "RCPT TO:<" + long(64) + "@example.test>\r\n", []string{"550 5.1.1 "}},
		{"65-octet local part", true, "RCPT TO:<" + long(65) + "@example.test>\r\n", []string{"501 5.1.3 "}},
		{"255-octet domain, 260-octet path", true, "RCPT TO:<me@" + dom255 + ">\r\n", []string{"501 5.1.3 "}},
		{"250-octet remote domain", true, "RCPT TO:<me@" + dom255[5:] + ">\r\n", []string{"554 5.7.1 "}},
		{"256-octet domain", true, "RCPT TO:<me@" + dom255 + "d>\r\n", []string{"501 5.1.3 "}},
		{"Postmaster with xtext LF", true, "RCPT TO:<Postmaster> NOTIFY=+0A\r\n", []string{"501 5.5.4 "}},
	}
	for _, tc := range cases {
		c, err := atkSMTP("127.0.0.1", a.addr())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.rcpt {
			if r, err := c.smtpCmd("MAIL FROM:<a@remote.test>\r\n"); err != nil || r.code != 250 {
				t.Fatalf("%s: MAIL: %v %v", tc.name, r, err)
			}
		}
		if err := c.send(tc.raw); err != nil {
			t.Errorf("%s: write: %v", tc.name, err)
		}
		for i, want := range tc.want {
			r, err := c.smtpReply(atkSlow)
			got := fmt.Sprintf("%d %s", r.code, r.text())
			if err != nil || !strings.HasPrefix(got, want) {
				t.Errorf("%s: reply %d = %q (%v), want %q…", tc.name, i+1, got, err, want)
			}
		}
		if r, err := c.smtpCmd("NOOP\r\n"); err != nil || r.code != 250 {
			t.Errorf("%s: NOOP after it: %v %v (session out of step)", tc.name, r, err)
		}
		c.close()
	}

	// Weird but legal addresses are accepted, delivered, and stored clean.
	weird := []struct{ from, rcpt, params, rparams, subject string }{
		{`"|/bin/sh -c 'touch ` + tmp + `-w1'"@remote.test`, "me@example.test", "", "", "weird 1"},
		{"`touch${IFS}" + tmp + "-w2`@remote.test", `"me+../../../` + m + `-w2"@example.test`, "", "", "weird 2"},
		{`"$(touch ` + tmp + `-w3)\"X-Injected: yes"@remote.test`, `"me+$(touch ` + tmp + `-w3b)"@example.test`, "", "", "weird 3"},
		{dsnRcpt, "me@example.test", " RET=HDRS ENVID=env+2Bid+3Dx+20y", " NOTIFY=SUCCESS ORCPT=rfc822;me+2B..+2F..+2Fetc+2Fpasswd@example.test", "weird dsn"},
	}
	for _, w := range weird {
		c, err := atkSMTP("127.0.0.1", a.addr())
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"MAIL FROM:<" + w.from + ">" + w.params + "\r\n", "RCPT TO:<" + w.rcpt + ">" + w.rparams + "\r\n", "DATA\r\n"} {
			if r, err := c.smtpCmd(cmd); err != nil || r.code/100 > 3 {
				t.Errorf("%s: %q: %v %v", w.subject, strings.TrimSpace(cmd), r, err)
			}
		}
		if r, err := c.smtpCmd("From: x@remote.test\r\nSubject: " + w.subject + "\r\n\r\nbody\r\n.\r\n"); err != nil || r.code != 250 {
			t.Errorf("%s: end of data: %v %v", w.subject, r, err)
		}
		_, _ = c.smtpCmd("QUIT\r\n")
		c.close()
	}

	// The DSN waits in the queue (its first attempt was deferred): its
	// file has no injected line.
	qdir := filepath.Join(a.data, "queue")
	var qfile string
	if !poll(20*time.Second, func() bool {
		for _, e := range listDir(qdir) {
			if p := filepath.Join(qdir, e); !strings.HasSuffix(e, "tmp") && e != "corrupt" {
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
					qfile = p
					return true
				}
			}
		}
		return false
	}) {
		t.Errorf("no DSN in %s: %q", qdir, listDir(qdir))
	} else if b, err := os.ReadFile(qfile); err != nil {
		t.Errorf("queue file: %v", err)
	} else {
		atkCheckNoInjection(t, "queue file "+filepath.Base(qfile), string(b))
		t.Logf("queue file %s:\n%s", filepath.Base(qfile), b)
	}
	// The DSN reaches the fake MX of remote.test, still clean.
	if !poll(30*time.Second, func() bool { return len(mx.mails("remote.test")) > 0 }) {
		t.Errorf("the success DSN never reached remote.test")
	} else {
		got := mx.mails("remote.test")[0]
		if len(got.rcpts) != 1 || got.rcpts[0] != dsnRcpt {
			t.Errorf("DSN sent to %q, want [%s]", got.rcpts, dsnRcpt)
		}
		atkCheckNoInjection(t, "DSN on the wire", got.data)
	}

	a.checkPanics(t)
	a.stop()
	files := scanInbox(t, a.inboxDir())
	want := map[string]string{
		"weird 1":   `<"|/bin/sh -c 'touch ` + tmp + `-w1'"@remote.test>`,
		"weird 2":   "<`touch${IFS}" + tmp + "-w2`@remote.test>",
		"weird 3":   `<"$(touch ` + tmp + `-w3)\"X-Injected: yes"@remote.test>`,
		"weird dsn": `<"dsn weird"@remote.test>`,
	}
	seen := map[string]int{}
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(a.inboxDir(), f.sub, f.name))
		fields := atkHeaderFields(string(b))
		var subject string
		var rp []string
		for _, fl := range fields {
			name, value, _ := strings.Cut(fl, ":")
			switch strings.ToLower(name) {
			case "subject":
				subject = strings.TrimSpace(value)
			case "return-path":
				rp = append(rp, strings.TrimSpace(value))
			case "delivered-to", "received", "from":
			default:
				t.Errorf("stored message has an unexpected header field %q:\n%s", fl, b)
			}
		}
		seen[subject]++
		if w, ok := want[subject]; !ok {
			t.Errorf("unexpected stored message %q", subject)
		} else if len(rp) != 1 || rp[0] != w {
			t.Errorf("%s: Return-Path %q, want exactly [%s]", subject, rp, w)
		}
		atkCheckNoInjection(t, "stored "+subject, string(b))
	}
	for s := range want {
		if seen[s] != 1 {
			t.Errorf("%s: %d stored copies, want 1", s, seen[s])
		}
	}

	// No shell ran, no file outside DATA, and in DATA only mail, queue and
	// the server's own files.
	for _, p := range atkFindMarker(t, m, []string{a.dir}, []string{"/", "/tmp", "/etc", filepath.Dir(a.dir), cwd}) {
		t.Errorf("a path made by an injected command or address: %s", p)
	}
	after := atkTree(t, a.dir)
	for _, p := range atkNewPaths(before, after, "data/mail/example.test/me", "data/tmp", "data/queue") {
		if !strings.HasPrefix(p, "data/") || strings.Count(p, "/") > 1 {
			t.Errorf("new path outside the Maildir and queue: %s", p)
		}
	}
}

// atkHeaderFields returns the unfolded header fields of a message (CRLF or
// LF line ends).
func atkHeaderFields(msg string) []string {
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	head, _, _ := strings.Cut(msg, "\n\n")
	var out []string
	for _, l := range strings.Split(head, "\n") {
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(out) > 0 {
			out[len(out)-1] += " " + strings.TrimSpace(l)
			continue
		}
		out = append(out, l)
	}
	return out
}

// atkCheckNoInjection fails when a message holds an injected line: a field
// or line starting with X-Injected, a bare CR, or a header line that is not
// a field.
func atkCheckNoInjection(t *testing.T, what, msg string) {
	t.Helper()
	lf := strings.ReplaceAll(msg, "\r\n", "\n")
	if strings.Contains(lf, "\r") {
		t.Errorf("%s: bare CR:\n%q", what, msg)
	}
	for _, l := range strings.Split(lf, "\n") {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(l)), "x-injected") {
			t.Errorf("%s: injected line %q:\n%s", what, l, msg)
		}
	}
	for _, f := range atkHeaderFields(msg) {
		if name, _, ok := strings.Cut(f, ":"); !ok || name == "" || strings.ContainsAny(name, " \t") {
			t.Errorf("%s: header line that is no field: %q", what, f)
		}
	}
}

// TestAttackMIMEBombs delivers header and MIME bombs over SMTP (research/
// security.md §2.5: Dovecot CVE-2024-23184/23185, CVE-2020-12100,
// CVE-2026-27859): 10,000 header fields and a 1 MiB header must be
// refused (552 5.3.4, max_headers and max_header_size); 500-level nested
// multiparts and message/rfc822, 20,000 parts and 5,000 RFC 2231
// parameters are accepted. Over IMAP, FETCH BODYSTRUCTURE, a 500-level
// BODY[1.1.1…] section and SEARCH TEXT on them must each answer within
// seconds, in parallel sessions too, while the server's resident memory
// stays under 300 MiB.
func TestAttackMIMEBombs(t *testing.T) {
	t.Parallel()
	a := newAtkServer(t, atkOpts{})
	mem := atkWatchMem(a, 1024*mib)
	defer func() {
		max := mem.end()
		t.Logf("server RSS at most %d MiB", max/mib)
		if max > 300*mib {
			t.Errorf("server RSS reached %d MiB (limit 300 MiB)", max/mib)
		}
	}()
	const mimeTop = "From: bomb@remote.test\r\nMIME-Version: 1.0\r\n"
	var b strings.Builder

	// Refused: too many fields, too big a header.
	for i := range 10000 {
		fmt.Fprintf(&b, "X-Field-%d: v\r\n", i)
	}
	many := b.String() + "Subject: many fields\r\n\r\nbody\r\n"
	b.Reset()
	b.WriteString("Subject: big header\r\nX-Big: ")
	for b.Len() < 1100<<10 {
		b.WriteString(strings.Repeat("a", 900) + "\r\n ")
	}
	big := b.String() + "end\r\n\r\nbody\r\n"
	for _, c := range []struct{ name, msg string }{{"10,000 header fields", many}, {"1.07 MiB header", big}} {
		r, err := atkSend("127.0.0.1", a.addr(), "bomb@remote.test", "me@example.test", c.msg)
		if err != nil || r.code != 552 || !strings.HasPrefix(r.text(), "5.3.4 ") {
			t.Errorf("%s: %v %v, want 552 5.3.4", c.name, r, err)
		}
	}

	// Accepted bombs.
	const depth = 500
	b.Reset()
	b.WriteString(mimeTop + "Subject: nested multipart\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n--b0\r\n")
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nneedle deep in multiparts\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	nestedMultipart := b.String()
	b.Reset()
	b.WriteString(mimeTop + "Subject: nested rfc822\r\nContent-Type: message/rfc822\r\n\r\n")
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&b, "Subject: level %d\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n", i)
	}
	b.WriteString("Subject: innermost\r\n\r\nneedle deep in messages\r\n")
	nestedRFC822 := b.String()
	b.Reset()
	b.WriteString(mimeTop + "Subject: many parts\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "--p\r\nContent-Type: text/plain; name=\"part%d\"\r\n\r\npart %d\r\n", i, i)
	}
	b.WriteString("--p\r\n\r\nneedle in the last part\r\n--p--\r\n")
	manyParts := b.String()
	b.Reset()
	b.WriteString(mimeTop + "Subject: many parameters\r\nContent-Type: text/plain; charset=utf-8")
	for i := range 5000 {
		fmt.Fprintf(&b, ";\r\n name*%d*=utf-8''%%E2%%9C%%93x%d", i, i)
	}
	b.WriteString("\r\nContent-Disposition: attachment")
	for i := range 2000 {
		fmt.Fprintf(&b, ";\r\n filename*%d=f%d", i, i)
	}
	b.WriteString("\r\n\r\nneedle under many parameters\r\n")
	manyParams := b.String()
	bombs := []struct{ name, msg string }{
		{"nested multipart", nestedMultipart}, {"nested rfc822", nestedRFC822},
		{"many parts", manyParts}, {"many parameters", manyParams},
	}
	for _, c := range bombs {
		start := time.Now()
		r, err := atkSend("127.0.0.1", a.addr(), "bomb@remote.test", "me@example.test", c.msg)
		if err != nil || r.code != 250 {
			t.Fatalf("%s (%d octets): %v %v, want 250", c.name, len(c.msg), r, err)
		}
		t.Logf("%s: %d octets accepted in %v", c.name, len(c.msg), time.Since(start).Round(time.Millisecond))
	}

	section := "1" + strings.Repeat(".1", depth-1)
	session := func(who string, check bool) {
		c, err := atkIMAP("127.0.0.1", a)
		if err != nil {
			t.Errorf("%s: %v", who, err)
			return
		}
		defer c.close()
		steps := []struct{ tag, cmd, want string }{
			{"A", "A SELECT INBOX\r\n", "A OK"},
			{"B", "B FETCH 1:* (BODYSTRUCTURE ENVELOPE RFC822.SIZE)\r\n", "B OK"},
			{"C", "C FETCH 1:* (BODY)\r\n", "C OK"},
			{"D", "D FETCH 1:* (BODY.PEEK[" + section + "])\r\n", ""},
			{"E", "E FETCH 1:* (BODY.PEEK[" + section + ".MIME] BODY.PEEK[" + section + ".HEADER] BINARY.SIZE[" + section + "])\r\n", ""},
			{"F", "F FETCH 2 (BODY.PEEK[1.1.1.1.1.1.1.1.1.1.TEXT])\r\n", ""},
			{"G", "G FETCH 3 (BODY.PEEK[20001] BODY.PEEK[19999.MIME] BINARY.PEEK[20000])\r\n", ""},
			{"H", "H SEARCH TEXT \"needle deep\"\r\n", "H OK"},
			{"I", "I SEARCH BODY \"needle in the last part\"\r\n", "I OK"},
			{"J", "J SEARCH HEADER Content-Type \"name*4999\"\r\n", "J OK"},
			{"K", "K SEARCH TEXT \"no such needle\"\r\n", "K OK"},
		}
		for _, s := range steps {
			start := time.Now()
			lines, tagged, err := c.imapCmd(s.tag, s.cmd, 30*time.Second)
			took := time.Since(start)
			size := 0
			for _, l := range lines {
				size += len(l)
			}
			switch {
			case err != nil:
				t.Errorf("%s: %.80s: %v after %v", who, s.cmd, err, took.Round(time.Millisecond))
				return
			case !strings.HasPrefix(tagged, s.want):
				t.Errorf("%s: %.80s: %q, want %s", who, s.cmd, tagged, s.want)
			case took > 5*time.Second:
				t.Errorf("%s: %.80s: answered after %v", who, s.cmd, took.Round(time.Millisecond))
			}
			if check {
				t.Logf("%s: %.60q → %.60q, %d octets in %v", who, s.cmd, tagged, size, took.Round(time.Millisecond))
			}
			if check && s.tag == "H" && !strings.Contains(strings.Join(lines, "\n"), "* SEARCH 1") {
				t.Logf("SEARCH TEXT in the deep multipart: %q", lines)
			}
		}
	}
	session("one session", true)
	var fns []func()
	for i := range 3 {
		fns = append(fns, func() { session(fmt.Sprintf("parallel session %d", i), false) })
	}
	atkParallel(fns...)
	if mem.killed.Load() > 0 {
		t.Errorf("the watchdog killed the server (RSS over 1 GiB)")
	} else {
		a.checkPanics(t)
	}
}

// TestAttackSTARTTLSInjection is the STARTTLS command injection of
// CVE-2011-0411 (research/security.md §2.2) against the server: a command
// pipelined in the same TCP segment as STARTTLS/STLS must be thrown away
// with the plaintext, not run once TLS is up. After the handshake nothing
// may arrive before the client speaks, and the first answer inside TLS
// must be to the client's own first command. The server logs that it
// dropped the plaintext, which shows the bytes were really buffered
// together with the STARTTLS line.
func TestAttackSTARTTLSInjection(t *testing.T) {
	t.Parallel()
	a := newAtkServer(t, atkOpts{})
	quiet := time.Second

	smtpCases := []struct{ name, injected string }{
		{"RSET", "RSET\r\n"},
		{"EHLO (command-injection-tester)", "EHLO commandinjectiontester\r\n"},
		{"MAIL and RCPT", "MAIL FROM:<evil@remote.test>\r\nRCPT TO:<me@example.test>\r\n"},
	}
	for _, tc := range smtpCases {
		c, err := atkSMTP("127.0.0.1", a.addr())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.send("STARTTLS\r\n" + tc.injected); err != nil {
			t.Fatal(err)
		}
		if r, err := c.smtpReply(atkSlow); err != nil || r.code != 220 {
			t.Fatalf("SMTP %s: STARTTLS: %v %v", tc.name, r, err)
		}
		if err := c.startTLS(); err != nil {
			t.Errorf("SMTP %s: %v", tc.name, err)
			c.close()
			continue
		}
		if ok, got := c.silent(quiet); !ok {
			t.Errorf("SMTP %s: inside TLS, before any command, the server sent %q: the injected command ran", tc.name, got)
		}
		r, err := c.smtpCmd("EHLO client.example.net\r\n")
		if err != nil || r.code != 250 || r.text() != "mx.example.test" {
			t.Errorf("SMTP %s: the first reply inside TLS is %v (%v), want the EHLO greeting", tc.name, r, err)
		}
		// A MAIL injected before TLS must not count: MAIL is accepted
		// afresh, and RCPT before MAIL is refused.
		if r, err := c.smtpCmd("RCPT TO:<me@example.test>\r\n"); err != nil || r.code != 503 {
			t.Errorf("SMTP %s: RCPT without MAIL inside TLS = %v %v, want 503 (no transaction from plaintext)", tc.name, r, err)
		}
		if r, err := c.smtpCmd("MAIL FROM:<good@remote.test>\r\n"); err != nil || r.code != 250 {
			t.Errorf("SMTP %s: MAIL inside TLS = %v %v, want 250", tc.name, r, err)
		}
		_, _ = c.smtpCmd("QUIT\r\n")
		c.close()
	}

	// IMAP: "a STARTTLS\r\nb CAPABILITY\r\n" in one write.
	for _, injected := range []string{"b CAPABILITY\r\n", "b LOGIN me@example.test " + userPW + "\r\n"} {
		c, err := atkDial("127.0.0.1", a.addrOf(a.imap))
		if err != nil {
			t.Fatal(err)
		}
		if l, err := c.line(atkSlow); err != nil || !strings.HasPrefix(l, "* OK") {
			t.Fatalf("IMAP greeting %q %v", l, err)
		}
		if _, tagged, err := c.imapCmd("a", "a STARTTLS\r\n"+injected, atkSlow); !strings.HasPrefix(tagged, "a OK") {
			t.Fatalf("IMAP STARTTLS: %q %v", tagged, err)
		}
		if err := c.startTLS(); err != nil {
			t.Errorf("IMAP: %v", err)
			c.close()
			continue
		}
		if ok, got := c.silent(quiet); !ok {
			t.Errorf("IMAP %q: inside TLS, before any command, the server sent %q: the injected command ran", injected, got)
		}
		lines, tagged, err := c.imapCmd("c", "c NOOP\r\n", atkSlow)
		if !strings.HasPrefix(tagged, "c OK") {
			t.Errorf("IMAP: NOOP inside TLS: %q %v", tagged, err)
		}
		for _, l := range lines {
			if strings.HasPrefix(l, "b ") || strings.HasPrefix(l, "* CAPABILITY") {
				t.Errorf("IMAP %q: an answer to the injected command inside TLS: %q", injected, l)
			}
		}
		// Not logged in by the injected LOGIN: SELECT is not allowed.
		if _, tagged, err := c.imapCmd("d", "d SELECT INBOX\r\n", atkSlow); !strings.HasPrefix(tagged, "d BAD") && !strings.HasPrefix(tagged, "d NO") {
			t.Errorf("IMAP %q: SELECT inside TLS without LOGIN = %q %v: the injected LOGIN counted", injected, tagged, err)
		}
		c.close()
	}

	// POP3: "STLS\r\nCAPA\r\n" in one write.
	for _, injected := range []string{"CAPA\r\n", "USER me@example.test\r\nPASS " + userPW + "\r\n"} {
		c, err := atkDial("127.0.0.1", a.addrOf(a.pop3))
		if err != nil {
			t.Fatal(err)
		}
		if l, err := c.line(atkSlow); err != nil || !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 greeting %q %v", l, err)
		}
		if l, err := c.pop3Cmd("STLS\r\n" + injected); err != nil || !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 STLS: %q %v", l, err)
		}
		if err := c.startTLS(); err != nil {
			t.Errorf("POP3: %v", err)
			c.close()
			continue
		}
		if ok, got := c.silent(quiet); !ok {
			t.Errorf("POP3 %q: inside TLS, before any command, the server sent %q: the injected command ran", injected, got)
		}
		// STAT is refused unless the injected USER/PASS logged in.
		if l, err := c.pop3Cmd("STAT\r\n"); err != nil || !strings.HasPrefix(l, "-ERR") {
			t.Errorf("POP3 %q: STAT inside TLS = %q %v, want -ERR (not logged in)", injected, l, err)
		}
		if err := c.send("QUIT\r\n"); err != nil {
			t.Fatal(err)
		}
		got, closed := c.closedWithin(atkSlow)
		if !closed || strings.Count(got, "\r\n") != 1 || !strings.HasPrefix(got, "+OK") {
			t.Errorf("POP3 %q: QUIT inside TLS got %q (closed %v), want one +OK line", injected, got, closed)
		}
		c.close()
	}

	log := a.logText()
	for _, want := range []string{"smtp discarding plaintext sent after STARTTLS", "imap discarding plaintext sent after STARTTLS", "pop3 discarding plaintext sent after STLS"} {
		if n := strings.Count(log, want); n == 0 {
			t.Errorf("the log lacks %q: the injected bytes did not reach the server with the STARTTLS line, so this test proved nothing", want)
		}
	}
	a.checkPanics(t)
}
