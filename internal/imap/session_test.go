package imap_test

import (
	"crypto/tls"
	"strconv"
	"strings"
	"testing"
	"time"
)

const msg1 = "From: Alice <alice@a.test>\r\nTo: me@example.test\r\nSubject: first message\r\nDate: Mon, 02 Jan 2026 10:00:00 +0000\r\nMessage-ID: <m1@a.test>\r\n\r\nHello there, this is the body.\r\n"

const msg2 = "From: bob@b.test\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: multipart/mixed; boundary=xx\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\nplain part with needle\r\n--xx\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--xx--\r\n"

func TestCapabilitiesAndLoginNeedTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	out := c.do("a CAPABILITY", "a OK")
	if !contains(out, "STARTTLS") || !contains(out, "LOGINDISABLED") || contains(out, "AUTH=PLAIN") {
		t.Errorf("capabilities before TLS: %q", out)
	}
	c.do("b LOGIN me@example.test "+password, "b NO [PRIVACYREQUIRED]")
	c.do("c AUTHENTICATE PLAIN", "c NO [PRIVACYREQUIRED]")
}

func TestSTARTTLSInjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	c.send("s STARTTLS\r\nXINJ NOOP\r\n")
	c.line("s OK")
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	_ = tc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 100)
	if n, _ := tc.Read(buf); n > 0 {
		t.Fatalf("injected command answered inside TLS: %q", buf[:n])
	}
}

func TestBadLoginAndBlock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t) // works
	c.do("x LOGOUT", "x OK")
	c = e.dial(t)
	c.do("s STARTTLS", "s OK")
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	tc.Handshake()
	c.nc, c.br = tc, newReader(tc)
	c.do("l LOGIN me@example.test wrong", "l NO [AUTHENTICATIONFAILED]")
}

func TestListAndSelect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	e.deliver(t, msg2)
	c := e.login(t)
	out := c.do(`a LIST "" "*"`, "a OK")
	for _, want := range []string{`* LIST (\HasNoChildren) "/" "INBOX"`, `\Sent) "/" "Sent"`, `\Trash) "/" "Trash"`, `\Archive`, `\Junk`, `\Drafts`} {
		if !contains(out, want) {
			t.Errorf("LIST lacks %q: %q", want, out)
		}
	}
	out = c.do(`b LIST "" ""`, "b OK")
	if !contains(out, `(\Noselect) "/" ""`) {
		t.Errorf("delimiter: %q", out)
	}
	out = c.do(`c LIST (SPECIAL-USE) "" "*" RETURN (STATUS (MESSAGES UNSEEN))`, "c OK")
	if contains(out, `"INBOX"`) || !contains(out, `* STATUS "Sent" (MESSAGES 0 UNSEEN 0)`) {
		t.Errorf("LIST-EXTENDED: %q", out)
	}
	out = c.do("d SELECT INBOX", "d OK [READ-WRITE]")
	for _, want := range []string{"* 2 EXISTS", "[UIDVALIDITY ", "[UIDNEXT 3]", `* FLAGS (`, "[PERMANENTFLAGS ("} {
		if !contains(out, want) {
			t.Errorf("SELECT lacks %q: %q", want, out)
		}
	}
	out = c.do("e STATUS INBOX (MESSAGES UNSEEN UIDNEXT SIZE)", "e OK")
	if !contains(out, "MESSAGES 2 UNSEEN 2 UIDNEXT 3 SIZE ") {
		t.Errorf("STATUS: %q", out)
	}
}

func TestFetch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	e.deliver(t, msg2)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	out := c.do("f FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)", "f OK")
	if !contains(out, `* 1 FETCH (UID 1 FLAGS () RFC822.SIZE `+itoa(len(msg1))+` ENVELOPE ("Mon, 02 Jan 2026 10:00:00 +0000" "first message" (("Alice" NIL "alice" "a.test"))`) {
		t.Errorf("envelope: %q", out)
	}
	out = c.do("g FETCH 2 BODYSTRUCTURE", "g OK")
	if !contains(out, `BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 22 1 NIL NIL NIL NIL)("application" "octet-stream" NIL NIL NIL "base64" 4 NIL NIL NIL NIL) "mixed" ("boundary" "xx") NIL NIL NIL)`) {
		t.Errorf("bodystructure: %q", out)
	}
	out = c.do("h FETCH 2 (BODY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "h OK")
	if !contains(out, "BODY[1] {22}\nplain part with needle") || !contains(out, "BINARY[2] ~{3}") || !contains(out, "BINARY.SIZE[2] 3") ||
		!contains(out, "BODY[HEADER.FIELDS (SUBJECT)] {34}\nSubject: =?utf-8?q?caf=C3=A9?=") {
		t.Errorf("sections: %q", out)
	}
	if contains(out, `\Seen`) {
		t.Error("PEEK set \\Seen")
	}
	out = c.do("i FETCH 1 BODY[TEXT]<6.5>", "i OK")
	if !contains(out, "BODY[TEXT]<6> {5}\nthere") || !contains(out, `FLAGS (\Seen)`) {
		t.Errorf("partial / implicit seen: %q", out)
	}
	c.do("j FETCH 3 FLAGS", "j BAD")
	c.do("k UID FETCH 3:* FLAGS", "k OK")
}

func TestStoreSearchCopyMoveExpunge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	e.deliver(t, msg2)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	out := c.do(`a STORE 1 +FLAGS (\Flagged $Important)`, "a OK")
	if !contains(out, `* 1 FETCH (FLAGS (\Flagged $Important))`) {
		t.Errorf("STORE: %q", out)
	}
	for q, want := range map[string]string{
		"FLAGGED":               "* SEARCH 1",
		"UNFLAGGED":             "* SEARCH 2",
		`SUBJECT "café"`:        "* SEARCH 2",
		"TEXT needle":           "* SEARCH 2",
		"BODY hello":            "* SEARCH 1",
		"FROM alice":            "* SEARCH 1",
		"KEYWORD $Important":    "* SEARCH 1",
		"OR FROM bob SEEN":      "* SEARCH 2",
		"NOT FROM bob":          "* SEARCH 1",
		"LARGER 200":            "* SEARCH 2",
		"SENTSINCE 1-Jan-2026":  "* SEARCH 1",
		"HEADER Message-ID m1@": "* SEARCH 1",
		"UID 2":                 "* SEARCH 2",
	} {
		out := c.do("q SEARCH "+q, "q OK")
		if !contains(out, want) {
			t.Errorf("SEARCH %s: %q, want %q", q, out, want)
		}
	}
	out = c.do("r UID SEARCH RETURN (MIN MAX COUNT) ALL", "r OK")
	if !contains(out, `* ESEARCH (TAG "r") UID MIN 1 MAX 2 COUNT 2`) {
		t.Errorf("ESEARCH: %q", out)
	}
	out = c.do("c COPY 1 Archive", "c OK [COPYUID ")
	out = c.do("m UID MOVE 2 Trash", "m OK")
	if !contains(out, "* OK [COPYUID ") || !contains(out, "* 2 EXPUNGE") {
		t.Errorf("MOVE: %q", out)
	}
	c.do(`d STORE 1 +FLAGS.SILENT (\Deleted)`, "d OK")
	out = c.do("x EXPUNGE", "x OK")
	if !contains(out, "* 1 EXPUNGE") {
		t.Errorf("EXPUNGE: %q", out)
	}
	out = c.do("t STATUS Trash (MESSAGES)", "t OK")
	if !contains(out, "MESSAGES 1") {
		t.Errorf("Trash: %q", out)
	}
	c.do("n COPY 1 NoSuchBox", "n BAD") // empty mailbox: no message 1
}

func TestAppendAndIdle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	watcher := e.login(t)
	watcher.do("s SELECT INBOX", "s OK")
	watcher.send("i IDLE\r\n")
	watcher.line("+ idling")
	c := e.login(t)
	body := "Subject: appended\r\n\r\nhi\r\n"
	c.send("a APPEND INBOX (\\Seen) {" + itoa(len(body)) + "}\r\n")
	c.line("+ ")
	c.send(body + "\r\n")
	c.line("a OK [APPENDUID ")
	start := time.Now()
	watcher.line("* 1 EXISTS")
	if d := time.Since(start); d > time.Second {
		t.Errorf("IDLE saw the APPEND after %v", d)
	}
	e.deliver(t, msg1)
	watcher.line("* 2 EXISTS")
	watcher.send("DONE\r\n")
	watcher.line("i OK")
	c.do("b APPEND NoSuch {1+}\r\nx", "b NO [TRYCREATE]")
}

// A session in IDLE writes through a small buffer (parkWriter): updates
// longer than it arrive whole and in order, and the session gets its full
// buffer back for what follows, IDLE after IDLE.
func TestIdleUpdatesThroughSmallBuffer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for range 12 {
		e.deliver(t, msg1)
	}
	watcher := e.login(t)
	watcher.do("s SELECT INBOX", "s OK")
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	for round := range 2 {
		watcher.send("i IDLE\r\n")
		watcher.line("+ idling")
		flag := []string{"$Alpha", "$Beta"}[round]
		c.do("f STORE 1:12 +FLAGS.SILENT ("+flag+")", "f OK")
		for i := 1; i <= 12; i++ {
			l := watcher.line("* " + itoa(i) + " FETCH")
			if !strings.Contains(l, flag) {
				t.Fatalf("round %d: update %d = %q, want %s", round, i, l, flag)
			}
		}
		watcher.send("DONE\r\n")
		watcher.line("i OK")
		out := watcher.do("g FETCH 1:12 (FLAGS UID)", "g OK")
		if n := len(out); n != 13 {
			t.Fatalf("round %d: FETCH after IDLE gave %d lines: %q", round, n, out)
		}
	}
}

func TestQresync(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	e.deliver(t, msg2)
	e.deliver(t, msg1)
	c := e.login(t)
	c.do("e ENABLE QRESYNC", "e OK")
	out := c.do("s SELECT INBOX", "s OK")
	var validity, modseq string
	for _, l := range out {
		if v, ok := strings.CutPrefix(l, "* OK [UIDVALIDITY "); ok {
			validity, _, _ = strings.Cut(v, "]")
		}
		if v, ok := strings.CutPrefix(l, "* OK [HIGHESTMODSEQ "); ok {
			modseq, _, _ = strings.Cut(v, "]")
		}
	}
	c.do(`a STORE 1 +FLAGS (\Seen)`, "a OK")
	c.do(`b STORE 3 +FLAGS (\Deleted)`, "b OK")
	out = c.do("x EXPUNGE", "x OK")
	// The tagged OK carries the new HIGHESTMODSEQ, above the one at
	// SELECT (the STOREs and the expunge each took a mod-sequence).
	var after string
	if v, ok := strings.CutPrefix(out[len(out)-1], "x OK [HIGHESTMODSEQ "); ok {
		after, _, _ = strings.Cut(v, "]")
	}
	n, _ := strconv.ParseUint(after, 10, 64)
	before, _ := strconv.ParseUint(modseq, 10, 64)
	if before == 0 || n <= before || !contains(out, "* VANISHED 3") {
		t.Errorf("EXPUNGE under QRESYNC: %q", out)
	}
	c.do("u UNSELECT", "u OK")
	out = c.do("q SELECT INBOX (QRESYNC ("+validity+" "+modseq+" 1:3))", "q OK")
	if !contains(out, "* VANISHED (EARLIER) 3") || !contains(out, `FETCH (UID 1 FLAGS (\Seen) MODSEQ (`) {
		t.Errorf("QRESYNC: %q", out)
	}
	out = c.do("f UID FETCH 1:* (FLAGS) (CHANGEDSINCE "+modseq+" VANISHED)", "f OK")
	if !contains(out, "* VANISHED (EARLIER) 3") || contains(out, "UID 2 ") {
		t.Errorf("CHANGEDSINCE VANISHED: %q", out)
	}
}

func TestBadInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	c.do("a FOO", "a BAD")
	c.do("b SELECT (((((", "b BAD")
	c.do("c SEARCH "+strings.Repeat("(", 100)+"ALL"+strings.Repeat(")", 100), "c BAD")
	c.send("d LOGIN {99999999}\r\n")
	c.line("d BAD")
	c.do("e APPEND INBOX {999999999999}", "e NO [TOOBIG]")
	c.send("f NOOP\n")
	c.line("f BAD")
	c.do("g NOOP", "g OK")
	c.do("h CREATE ../escape", "h NO")
	c.do("i CREATE &AC4ALgAv-x", "i BAD") // modified UTF-7 for "../x", non-canonical
	c.do(`j CREATE "a%b"`, "j NO")
	c.do("k NOOP", "k OK")
}

func TestMailboxManagement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	c.do("a CREATE Projects/2026/Q1", "a OK")
	out := c.do(`b LIST "" "Projects/%"`, "b OK")
	if !contains(out, `(\HasChildren) "/" "Projects/2026"`) {
		t.Errorf("children: %q", out)
	}
	c.do("c RENAME Projects Work", "c OK")
	out = c.do(`d LIST "" "*"`, "d OK")
	if !contains(out, `"Work/2026/Q1"`) || contains(out, "Projects") {
		t.Errorf("after rename: %q", out)
	}
	c.do("e DELETE Work/2026/Q1", "e OK")
	c.do(`f CREATE "Café"`, "f OK")
	out = c.do(`g LIST "" "Caf*"`, "g OK")
	if !contains(out, `"Caf&AOk-"`) {
		t.Errorf("mUTF-7: %q", out)
	}
	c.do("h SUBSCRIBE Work", "h OK")
	out = c.do(`i LSUB "" "*"`, "i OK")
	if !contains(out, `"Work"`) {
		t.Errorf("LSUB: %q", out)
	}
	out = c.do("j GETQUOTAROOT INBOX", "j OK")
	if !contains(out, `* QUOTAROOT "INBOX" ""`) {
		t.Errorf("quota: %q", out)
	}
	c.do("k DELETE INBOX", "k NO")
	out = c.do(`l ID ("name" "test")`, "l OK")
	if !contains(out, `"Posthorn"`) {
		t.Errorf("ID: %q", out)
	}
	c.do("m NAMESPACE", "m OK")
}

func itoa(n int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n))
}

// TestOverlongTokens sends tokens longer than the command limit in every
// position a token loop reads: each must end in BAD (or BYE) at once, with
// the session still answering, instead of a loop that never ends.
func TestOverlongTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	long := strings.Repeat("A", 70<<10)
	digits := strings.Repeat("1", 70<<10)
	pre := e.dial(t)
	pre.send(long + "\r\n") // the tag itself
	pre.line("* BAD")
	pre.do("a "+long, "a BAD")
	pre.do("a1 NOOP", "a1 OK")

	c := e.login(t)
	c.do("b SELECT INBOX", "b OK")
	for i, cmd := range []string{
		"FETCH 1:* " + long,
		"FETCH " + strings.Repeat("1,", 35<<10) + "1 FLAGS",
		"FETCH 1 BODY[" + digits + "]",
		"FETCH 1 BODY[1." + long + "]",
		"FETCH 1 BODY[]<" + digits + ">",
		"LIST \"\" " + strings.Repeat("*", 70<<10),
		"STORE 1 +FLAGS (\\" + long + ")",
		"SEARCH LARGER " + digits,
		"LOGIN " + long + " x",
	} {
		tag := "t" + fmtInt(i)
		c.send(tag + " " + cmd + "\r\n")
		got := c.readLine()
		for strings.HasPrefix(got, "* ") && !strings.HasPrefix(got, "* BYE") {
			got = c.readLine()
		}
		if !strings.HasPrefix(got, tag+" BAD") {
			t.Fatalf("%s: got %.80q, want %s BAD", cmd[:20], got, tag)
		}
		c.do("n"+fmtInt(i)+" NOOP", "n"+fmtInt(i)+" OK")
	}
}

// TestLongMailboxNames: a name whose Maildir++ directory would pass the
// file system's limit is refused cleanly, leaving no superiors behind, and
// RENAME checks the names of the children it would move.
func TestLongMailboxNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	long := strings.Repeat("x", 300)
	c.do("a CREATE top/"+long, "a NO [CANNOT]")
	if lines := c.do(`b LIST "" "*"`, "b OK"); contains(lines, "top") {
		t.Fatalf("a refused CREATE left a superior behind: %q", lines)
	}
	c.do("c CREATE p/"+strings.Repeat("y", 200), "c OK")
	c.do("d RENAME p "+strings.Repeat("q", 100), "d NO [CANNOT]")
	if lines := c.do(`e LIST "" "*"`, "e OK"); !contains(lines, "p/yyy") || contains(lines, "qqq") {
		t.Fatalf("a refused RENAME changed the tree: %q", lines)
	}
	c.do("f NOOP", "f OK")
	c.do("g RENAME p p/q/r", "g NO [CANNOT]") // under itself
}

// TestHeaderOnlyFetch: items served from the header section alone agree
// with the whole message, from the cache as on first read, alone or beside
// body items; a header section too long for the cache is read whole.
func TestHeaderOnlyFetch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	big := "X-Big: " + strings.Repeat("z", 300<<10) + "\r\nSubject: big one\r\n\r\nbig body\r\n"
	e.deliver(t, big)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	for _, tag := range []string{"a", "b"} { // the second round hits the cache
		out := c.do(tag+" FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.HEADER)", tag+" OK")
		if !contains(out, `"first message"`) || !contains(out, "BODY[HEADER.FIELDS (SUBJECT)] {26}\nSubject: first message\r\n\r\n") ||
			!contains(out, "RFC822.HEADER {"+itoa(strings.Index(msg1, "\r\n\r\n")+4)+"}") {
			t.Fatalf("round %s: %q", tag, out)
		}
	}
	out := c.do("c FETCH 1 (ENVELOPE BODY.PEEK[TEXT])", "c OK")
	if !contains(out, `"first message"`) || !contains(out, "BODY[TEXT] {32}\nHello there, this is the body.\r\n") {
		t.Fatalf("header beside body: %q", out)
	}
	out = c.do("d FETCH 2 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "d OK")
	if !contains(out, `"big one"`) || !contains(out, "Subject: big one") {
		t.Fatalf("long header: %q", out)
	}
	if out := c.do(`e UID SEARCH SUBJECT "big"`, "e OK"); !contains(out, "* SEARCH 2") {
		t.Fatalf("search on a long header: %q", out)
	}
	if out := c.do(`f SEARCH SUBJECT "FIRST" SENTON 2-Jan-2026`, "f OK"); !contains(out, "* SEARCH 1") {
		t.Fatalf("header search: %q", out)
	}
	if out := c.do(`g SEARCH TEXT "big body"`, "g OK"); !contains(out, "* SEARCH 2") {
		t.Fatalf("text search: %q", out)
	}
}
