package imap_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"posthorn/internal/imap"
	"posthorn/internal/store"
)

// Attack inputs from a red-team pass: each once crashed a session, made
// the server hold memory or a core far beyond the command's size, or put
// the session out of step with its client.

// A partial range whose offset plus length overflows int64 (RFC 9051 §9
// allows both up to 2^63-1) is the rest of the message, not a panic.
func TestFetchPartialOverflow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	out := c.do("f FETCH 1 BODY.PEEK[]<100.9223372036854775799>", "f OK")
	if want := fmt.Sprintf("BODY[]<100> {%d}", len(msg1)-100); !contains(out, want) {
		t.Errorf("got %q, want %q", out, want)
	}
	c.do("g FETCH 1 BODY.PEEK[]<9223372036854775807.9223372036854775807>", "g OK")
}

// Items repeated in one FETCH share what they decode, and what a FETCH
// makes from one message is bounded: a few hundred octets of command must
// not make the server hold hundreds of copies of a large part.
func TestFetchRepeatedItemsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	attachment := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 300<<10)))
	var hdr strings.Builder
	for i := range 400 {
		fmt.Fprintf(&hdr, "X-Filler-%03d: %s\r\n", i, strings.Repeat("y", 60))
	}
	msg := hdr.String() + "Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + attachment + "\r\n--b--\r\n"
	e.deliver(t, msg)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")

	items := strings.TrimSpace(strings.Repeat("BINARY.SIZE[2] ", 300))
	out := c.do("f FETCH 1 ("+items+")", "f OK")
	if n := strings.Count(strings.Join(out, "\n"), fmt.Sprintf("BINARY.SIZE[2] %d", 300<<10)); n != 300 {
		t.Errorf("%d BINARY.SIZE items answered, want 300", n)
	}
	var fields []string
	for i := range 300 {
		fields = append(fields, fmt.Sprintf("BODY.PEEK[HEADER.FIELDS.NOT (X-Other-%d)]", i))
	}
	c.do("g FETCH 1 ("+strings.Join(fields, " ")+")", "g NO [LIMIT]")
	c.do("h FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (X-Other)] BINARY.PEEK[2] BODY.PEEK[2])", "h OK")
}

// BODY and TEXT keys read every text part of every message searched: a
// SEARCH has at most 64 of them, and repeated ones decode a part once.
func TestSearchBodyKeysBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg2)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	out := c.do("a SEARCH "+strings.TrimSpace(strings.Repeat("BODY needle ", 64)), "a OK")
	if !contains(out, "* SEARCH 1") {
		t.Errorf("64 BODY keys: %q", out)
	}
	c.do("b SEARCH "+strings.TrimSpace(strings.Repeat("BODY needle ", 65)), "b NO [LIMIT]")
	c.do("c NOOP", "c OK")
}

// LIST takes at most 100 patterns, runs of wildcards count as one, and a
// pattern too costly to compare against the names gets NO [LIMIT].
func TestListPatternsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	for _, n := range []string{"a", "a/b", "a-c", strings.Repeat("n", 200)} {
		c.do("c CREATE "+n, "c OK")
	}
	out := c.do(`l LIST "" *`, "l OK")
	if !contains(out, `(\HasChildren) "/" "a"`) || !contains(out, `(\HasNoChildren) "/" "a-c"`) || !contains(out, `(\HasNoChildren) "/" "a/b"`) {
		t.Errorf("children: %q", out)
	}
	c.do(`m LIST "" (`+strings.TrimSpace(strings.Repeat("x ", 101))+`)`, "m NO [LIMIT]")
	start := time.Now()
	out = c.do(`n LIST "`+strings.Repeat("%", 30000)+`" (`+strings.TrimSpace(strings.Repeat("x ", 100))+`)`, "n OK")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("LIST with a 30,000-wildcard reference took %v", d)
	}
	if len(out) != 1 {
		t.Errorf("nothing ends in x, got %q", out)
	}
	c.do(`o LIST "" "`+strings.Repeat("a%", 5000)+`"`, "o OK")
}

// A flag list has at most 128 flags, and so has a message; SELECT lists
// the mailbox's keywords once each, whatever their case.
func TestKeywordLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	kw := func(prefix string, n int) string {
		var k []string
		for i := range n {
			k = append(k, fmt.Sprintf("%s%d", prefix, i))
		}
		return strings.Join(k, " ")
	}
	c.do("a STORE 1 +FLAGS ("+kw("k", 129)+")", "a BAD")
	c.do("b STORE 1 +FLAGS ("+kw("k", 100)+")", "b OK")
	c.do("c STORE 1 +FLAGS ("+kw("j", 40)+")", "c NO [LIMIT]")
	c.do("d STORE 1 +FLAGS (K1 k2 j1)", "d OK")
	c.do("d STORE 1 +FLAGS "+kw("m", 129), "d BAD") // the list without parentheses too
	c.do(`d STORE 1 +FLAGS (\Recent)`, "d BAD")     // nothing is dropped behind an OK
	c.do(`d STORE 1 +FLAGS \Foo`, "d BAD")
	c.do("d STORE 1 +FLAGS ("+strings.Repeat("k", 129)+")", "d BAD")
	out := c.do("e SELECT INBOX", "e OK")
	for _, l := range out {
		if strings.HasPrefix(l, "* FLAGS") && (strings.Count(l, " k1 ") != 1 || strings.Contains(l, "K1") || !strings.Contains(l, " j1")) {
			t.Errorf("FLAGS: %q", l)
		}
	}
}

// A line too long for IDLE's DONE is read to its end and refused: its
// tail is not run as a command of its own.
func TestIdleLongLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	c.send("i IDLE\r\n")
	c.line("+ ")
	c.send(strings.Repeat("x", 4096) + "z9 NOOP\r\n")
	c.line("i BAD")
	out := c.do("n NOOP", "n OK")
	if contains(out, "z9") {
		t.Errorf("the tail of the long line ran: %q", out)
	}
}

// APPEND to a missing mailbox reads (and drops) a non-synchronising
// literal before its NO [TRYCREATE], however large, and never asks for a
// synchronising one; a NO before the end of a line skips the rest of it.
func TestRefusalsKeepTheSessionInStep(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	for _, n := range []int{116, 100 << 10} {
		body := "Subject: x\r\n\r\n" + strings.Repeat("z", n-14)
		c.send(fmt.Sprintf("a APPEND NoSuchBox {%d+}\r\n%s\r\n", n, body))
		c.line("a NO [TRYCREATE]")
		if out := c.do("b NOOP", "b OK"); len(out) != 1 {
			t.Errorf("after an APPEND of %d octets: %q", n, out)
		}
	}
	c.send("s APPEND NoSuchBox {20}\r\n")
	c.line("s NO [TRYCREATE]")
	c.do("t NOOP", "t OK")

	c.do("u SELECT INBOX", "u OK")
	out := c.do(`g SEARCH CHARSET "KOI8-R"g2 NOOP`, "g NO [BADCHARSET")
	c.do("h NOOP", "h OK")
	if contains(out, "g2") {
		t.Errorf("the rest of a refused line ran: %q", out)
	}
}

// Smaller points of the RFCs: UNCHANGEDSINCE 0 always fails (RFC 7162
// §3.1.3), ENABLED lists each capability once and nothing after the word
// when nothing was enabled (RFC 5161), and a header field list has at
// least one field, each a field name (RFC 9051 §9).
func TestProtocolDetails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	c := e.login(t)
	if out := c.do("a ENABLE FOO", "a OK"); out[0] != "* ENABLED" {
		t.Errorf("ENABLE FOO: %q", out)
	}
	if out := c.do("b ENABLE CONDSTORE CONDSTORE", "b OK"); out[0] != "* ENABLED CONDSTORE" {
		t.Errorf("ENABLE CONDSTORE CONDSTORE: %q", out)
	}
	c.do("s SELECT INBOX", "s OK")
	out := c.do(`c STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\Flagged)`, "c OK [MODIFIED 1]")
	if contains(out, "FETCH") {
		t.Errorf("UNCHANGEDSINCE 0 changed flags: %q", out)
	}
	c.do("d FETCH 1 BODY.PEEK[HEADER.FIELDS ()]", "d BAD")
	c.do(`e FETCH 1 BODY.PEEK[HEADER.FIELDS ("Subject X")]`, "e BAD")
	c.do(`f FETCH 1 BODY.PEEK[HEADER.FIELDS ("Subject")]`, "f OK")
}

// Another session's expunge of many messages reaches a session as
// EXPUNGE responses numbered as RFC 9051 §7.5.1 says (each renumbers the
// messages after it), and its message list is compacted in one pass.
func TestExpungeNotificationsNumbering(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for i := 1; i <= 40; i++ {
		e.deliver(t, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))
	}
	a, b := e.login(t), e.login(t)
	a.do("s SELECT INBOX", "s OK")
	b.do("s SELECT INBOX", "s OK")
	var odd []string
	for i := 1; i <= 40; i += 2 {
		odd = append(odd, fmt.Sprint(i))
	}
	a.do(`t UID STORE `+strings.Join(odd, ",")+` +FLAGS.SILENT (\Deleted)`, "t OK")
	a.do("x EXPUNGE", "x OK")
	out := b.do("n NOOP", "n OK")
	uids := make([]int, 40) // the client's view: sequence number - 1 → UID
	for i := range uids {
		uids[i] = i + 1
	}
	for _, l := range out {
		var n int
		if _, err := fmt.Sscanf(l, "* %d EXPUNGE", &n); err == nil {
			uids = append(uids[:n-1], uids[n:]...)
		}
	}
	if len(uids) != 20 {
		t.Fatalf("%d messages left after the EXPUNGEs, want 20: %q", len(uids), out)
	}
	for i, u := range uids {
		if u != 2*(i+1) {
			t.Fatalf("after the EXPUNGEs the client has UIDs %v, want the even ones", uids)
		}
	}
	out = b.do("f FETCH 1:* (UID)", "f OK")
	if len(out) != 21 || !contains(out, "* 20 FETCH (UID 40)") || !contains(out, "* 1 FETCH (UID 2)") {
		t.Errorf("server's view after the EXPUNGEs: %q", out)
	}
}

// A message holding NUL (stored through APPEND with literal8, RFC 3516)
// is sent with NUL as 0x80 in BODY[] (a plain literal may not hold NUL,
// RFC 9051 §9) and as it is in BINARY[1], as literal8.
func TestFetchNUL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	msg := "Subject: nul\r\n\r\na\x00b\r\n"
	c.send(fmt.Sprintf("a APPEND INBOX ~{%d+}\r\n%s\r\n", len(msg), msg))
	c.line("a OK")
	c.do("s SELECT INBOX", "s OK")
	out := c.do("f FETCH 1 (BODY.PEEK[] BINARY.PEEK[1])", "f OK")
	all := strings.Join(out, "\n")
	if !strings.Contains(all, "BODY[] {"+fmtInt(len(msg))+"}\nSubject: nul\r\n\r\na\x80b") {
		t.Errorf("BODY[] with NUL: %q", all)
	}
	if !strings.Contains(all, "BINARY[1] ~{5}\na\x00b\r\n") {
		t.Errorf("BINARY[1] with NUL: %q", all)
	}
}

// A NUL octet in a plain literal is a syntax error (RFC 9051 §4.3: a
// literal is CHAR8, which excludes NUL): APPEND stores nothing, answers
// BAD and the session goes on; the same message as a literal8 is taken.
func TestAppendNULNeedsLiteral8(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	msg := "Subject: nul\r\n\r\n" + strings.Repeat("y", 9000) + "a\x00b\r\n"
	c.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
	c.line("a BAD")
	c.do(`s STATUS INBOX (MESSAGES)`, "s OK")
	if out := c.do(`t STATUS INBOX (MESSAGES)`, "t OK"); !contains(out, "(MESSAGES 0)") {
		t.Errorf("a message with NUL was stored from a plain literal: %q", out)
	}
	c.send(fmt.Sprintf("b APPEND INBOX ~{%d+}\r\n%s\r\n", len(msg), msg))
	c.line("b OK [APPENDUID")
	if out := c.do(`u STATUS INBOX (MESSAGES)`, "u OK"); !contains(out, "(MESSAGES 1)") {
		t.Errorf("after the literal8: %q", out)
	}
}

// BINARY[] (an empty section) is the whole message, header included, as
// BODY[] is; BINARY.SIZE[] is its size. A part's BINARY is its decoded
// body.
func TestBinaryWholeMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	msg := "Subject: b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
	c.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
	c.line("a OK")
	c.do("s SELECT INBOX", "s OK")
	out := strings.Join(c.do("f FETCH 1 (BINARY.PEEK[] BINARY.SIZE[] BINARY.PEEK[1])", "f OK"), "\n")
	for _, want := range []string{"BINARY[] {" + fmtInt(len(msg)) + "}\n" + msg, "BINARY.SIZE[] " + fmtInt(len(msg)), "BINARY[1] {5}\nhello"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in %q", want, out)
		}
	}
}

// A line that never ends is not skipped for ever: past 1 MiB of it the
// session ends with BYE (under COMPRESS a few kilobytes inflate to
// gigabytes of such a line). This holds for a command and during IDLE.
func TestEndlessLineEndsSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, start := range []string{"", "i IDLE\r\n"} {
		c := e.login(t)
		if start != "" {
			c.send(start)
			c.line("+ ")
		}
		go func() {
			chunk := []byte(strings.Repeat("x", 64<<10))
			if start == "" {
				_, _ = c.nc.Write([]byte("a NOOP "))
			}
			for range 64 { // 4 MiB, no line end
				if _, err := c.nc.Write(chunk); err != nil {
					return
				}
			}
		}()
		got := readToEnd(c)
		if len(got) == 0 || got[len(got)-1] != "* BYE Line too long" {
			t.Errorf("after %q and 4 MiB without a line end: %q", start, got)
		}
	}
}

// readToEnd reads lines until the server ends the connection (or 10 s
// pass) and returns them without their line ends.
func readToEnd(c *client) []string {
	var got []string
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			return got
		}
		got = append(got, strings.TrimRight(l, "\r\n"))
	}
}

// APPEND's internal date must fall in 1900-2199: a year like 9999 or 0001
// is refused with BAD (it was stored wrapped round to another century),
// and one inside is kept as given.
func TestAppendDateRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	msg := "Subject: d\r\n\r\nx\r\n"
	for i, d := range []string{"31-Dec-9999 23:59:59 -2359", "01-Jan-3000 00:00:00 +0000", "01-Jan-1600 00:00:00 +0000", "01-Jan-0001 00:00:00 +0000"} {
		c.send(fmt.Sprintf("a%d APPEND INBOX \"%s\" {%d+}\r\n%s\r\n", i, d, len(msg), msg))
		c.line(fmt.Sprintf("a%d BAD", i))
	}
	c.send(fmt.Sprintf("b APPEND INBOX \"02-Mar-1999 10:11:12 +0100\" {%d+}\r\n%s\r\n", len(msg), msg))
	c.line("b OK")
	c.do("s SELECT INBOX", "s OK")
	if out := strings.Join(c.do("f FETCH 1:* INTERNALDATE", "f OK"), "\n"); !strings.Contains(out, `INTERNALDATE "02-Mar-1999 `) || strings.Count(out, "INTERNALDATE") != 1 {
		t.Errorf("internal dates: %q", out)
	}
}

// A refused command that goes on in literals is not skipped for ever
// either: its literals count towards the same 1 MiB.
func TestRefusedLiteralsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	go func() {
		lit := " {60000+}\r\n" + strings.Repeat("y", 60000)
		_, _ = c.nc.Write([]byte("a SEARCH CHARSET BOGUS"))
		for range 100 { // 6 MB of literals, no line end
			if _, err := c.nc.Write([]byte(lit)); err != nil {
				return
			}
		}
	}()
	got := readToEnd(c)
	if len(got) == 0 || got[len(got)-1] != "* BYE Line too long" {
		t.Errorf("after 6 MB of literals in a refused command: %q", got)
	}
}

// TestSearchEndsWhenClientLeaves: a long SEARCH stops soon after its
// client closes the connection, instead of running to its end; the
// account's one allowed session is free again at once.
func TestSearchEndsWhenClientLeaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *imap.Options) { o.MaxConnectionsPerUser = 1 })
	body := strings.Repeat("lorem ipsum dolor sit amet ", 2000) // 54 KB
	var ds []store.Delivery
	for i := range 1500 {
		msg := fmt.Sprintf("Subject: m%d\r\n\r\n%s\r\n", i, body)
		ds = append(ds, store.Delivery{Account: "me@example.test", Body: strings.NewReader(msg), BodySize: int64(len(msg))})
	}
	for _, err := range e.st.Deliver(context.Background(), ds) {
		if err != nil {
			t.Fatal(err)
		}
	}
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	var keys []string
	for i := range 64 {
		keys = append(keys, fmt.Sprintf("BODY absent%d", i))
	}
	// Time the whole search first.
	start := time.Now()
	c.do("a SEARCH "+strings.Join(keys, " "), "a OK")
	whole := time.Since(start)
	c.send("b SEARCH " + strings.Join(keys, " ") + "\r\n")
	time.Sleep(20 * time.Millisecond)
	c.nc.Close()
	left := time.Now()
	for {
		if tryLogin(e.addr) {
			break
		}
		if time.Since(left) > whole+5*time.Second {
			t.Fatalf("no login for %v after the client left (a whole search takes %v)", time.Since(left), whole)
		}
		time.Sleep(20 * time.Millisecond)
	}
	freed := time.Since(left)
	switch {
	case whole < 200*time.Millisecond:
		t.Fatalf("a whole search takes only %v: too short to tell", whole)
	case freed > whole/2:
		t.Errorf("the session was freed %v after its client left; a whole search takes %v", freed, whole)
	}
	t.Logf("freed after %v; a whole search takes %v", freed, whole)
}

// tryLogin reports whether a new session can log in now; it leaves.
func tryLogin(addr string) bool {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	until := func(r *bufio.Reader, tag string) string {
		for {
			l, err := r.ReadString('\n')
			if err != nil || strings.HasPrefix(l, tag+" ") || strings.HasPrefix(l, "* BYE") {
				return l
			}
		}
	}
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "* OK") {
		return false
	}
	fmt.Fprintf(nc, "s STARTTLS\r\n")
	if l := until(br, "s"); !strings.HasPrefix(l, "s OK") {
		return false
	}
	tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
	if tc.Handshake() != nil {
		return false
	}
	fmt.Fprintf(tc, "l LOGIN me@example.test %s\r\nz LOGOUT\r\n", password)
	return strings.HasPrefix(until(bufio.NewReader(tc), "l"), "l OK")
}
