package imap_test

import (
	"strings"
	"testing"
)

// TestSearchReturnAfterKeys: RETURN and CHARSET after the first search
// key are a syntax error. They were taken as a nil key and the search
// panicked (found by a red-team run).
func TestSearchReturnAfterKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	for _, q := range []string{"ALL RETURN (ALL)", "ALL RETURN", "ALL CHARSET UTF-8", "FROM alice RETURN (COUNT) ALL"} {
		c.do("a SEARCH "+q, "a BAD")
	}
	c.do("b SEARCH RETURN (COUNT) CHARSET UTF-8 ALL", "b OK")
	c.do("c SORT (DATE) UTF-8 ALL RETURN", "c BAD")
	c.do("d NOOP", "d OK") // the session lives on (the harness also checks for panics)
}

// TestExpungedByAnotherSession: a message another session expunged, before
// this one was told, is skipped: FETCH serves the others and ends in
// NO [EXPUNGEISSUED] (RFC 2180 §4.1.2), SEARCH and SORT leave it out. They
// failed whole with NO [SERVERBUG] and an error in the log.
func TestExpungedByAnotherSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	e.deliver(t, msg2)
	e.deliver(t, msg1)
	a := e.login(t)
	a.do("s SELECT INBOX", "s OK")
	b := e.login(t)
	b.do("s SELECT INBOX", "s OK")
	b.do(`d STORE 1 +FLAGS.SILENT (\Deleted)`, "d OK")
	b.do("x EXPUNGE", "x OK")

	out := a.do("f FETCH 1:* (UID BODY.PEEK[])", "f NO [EXPUNGEISSUED]")
	if !contains(out, "* 2 FETCH (UID 2 BODY[]") || !contains(out, "* 3 FETCH (UID 3 BODY[]") {
		t.Errorf("FETCH did not serve the messages that remain: %q", out)
	}
	if got := a.do("g SEARCH BODY hello", "g OK"); !contains(got, "* SEARCH 3") || contains(got, "* SEARCH 1") {
		t.Errorf("SEARCH: %q", got)
	}
	if got := a.do("h SORT (SUBJECT) UTF-8 ALL", "h OK"); !contains(got, "* SORT") {
		t.Errorf("SORT: %q", got)
	}
	a.do("k THREAD REFERENCES UTF-8 ALL", "k OK")
	if got := a.do("i NOOP", "i OK"); !contains(got, "* 1 EXPUNGE") {
		t.Errorf("NOOP did not report the expunge: %q", got)
	}
	a.do("j FETCH 1:* UID", "j OK")
}

// TestChangedSinceImpliesModseq: RFC 7162 §3.1.4.1, CHANGEDSINCE adds the
// MODSEQ item; 0 is no mod-sequence-value (§7).
func TestChangedSinceImpliesModseq(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	out := c.do("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)", "a OK")
	if !contains(out, "MODSEQ (") {
		t.Errorf("no MODSEQ with CHANGEDSINCE: %q", out)
	}
	c.do("b UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)", "b BAD")
	c.do(`c STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (\Seen)`, "c BAD")
	c.do(`d SEARCH MODSEQ "/flags/\\Seen" all 1`, "d OK")
	c.do(`e SEARCH MODSEQ "/flags/\\Seen" bogus 1`, "e BAD")
	c.do(`f SEARCH MODSEQ "/nonsense" priv 1`, "f BAD")
}

// TestStatusAppendLimit: RFC 7889 §4 defines the APPENDLIMIT STATUS item
// that the capability announces.
func TestStatusAppendLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	out := c.do("a STATUS INBOX (MESSAGES APPENDLIMIT)", "a OK")
	if !contains(out, "(MESSAGES 0 APPENDLIMIT ") {
		t.Errorf("STATUS: %q", out)
	}
}

// TestTopLevelMessageRFC822Sections: part 1 of a message whose own body
// is message/rfc822 is the encapsulated message whole (RFC 9051 §6.4.5);
// 1.HEADER and 1.TEXT are its header and body. BODY[1] gave only the
// inner body and 1.HEADER, 1.TEXT were empty.
func TestTopLevelMessageRFC822Sections(t *testing.T) {
	t.Parallel()
	inner := "Subject: inner\r\n\r\ninner body\r\n"
	outer := "Subject: outer\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n" + inner
	e := newEnv(t, nil)
	e.deliver(t, outer)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	for sec, want := range map[string]string{
		"1":        inner,
		"1.HEADER": "Subject: inner\r\n\r\n",
		"1.TEXT":   "inner body\r\n",
		"1.1":      "inner body\r\n",
		"TEXT":     inner,
	} {
		out := c.do("f FETCH 1 BODY.PEEK["+sec+"]", "f OK")
		lit := "BODY[" + sec + "] {" + fmtInt(len(want)) + "}\n" + want
		if !contains(out, strings.TrimSuffix(lit, "\r\n")) {
			t.Errorf("BODY[%s]: %q, want %q", sec, out, lit)
		}
	}
}

// TestMoveToSelectedMailbox: refused with a reason, not "invalid name".
func TestMoveToSelectedMailbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	for _, name := range []string{"INBOX", "inbox"} {
		if out := c.do("m MOVE 1 "+name, "m NO [CANNOT]"); !contains(out, "mailbox they are in") {
			t.Errorf("MOVE to %s: %q", name, out)
		}
	}
	c.do("c COPY 1 INBOX", "c OK")
	c.do("t SELECT inbox", "t OK")
	c.do("n MOVE 1 INBOX", "n NO [CANNOT]")
}

// TestCheckIsANoop: CHECK (RFC 3501 §6.4.1) answers OK in the selected
// state; it was BAD, and mbsync failed on every sync that changed
// something (red-team run).
func TestCheckIsANoop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	c.do("a CHECK", "a BAD") // not selected
	c.do("s SELECT INBOX", "s OK")
	c.do("b CHECK", "b OK")
}

// TestCreateSpecialUse: CREATE (USE (...)) takes one RFC 6154 special
// use; anything else gets NO [USEATTR] and creates nothing (RFC 6154
// §5.3). Any flag was taken, \Noselect included, and a second use was
// dropped in silence (red-team run).
func TestCreateSpecialUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	if out := c.do("a CAPABILITY", "a OK"); !contains(out, "CREATE-SPECIAL-USE") {
		t.Errorf("capability: %q", out)
	}
	c.do(`b CREATE Sent2 (USE (\Sent))`, "b OK")
	if out := c.do(`c LIST (SPECIAL-USE) "" "Sent2"`, "c OK"); !contains(out, `\Sent`) {
		t.Errorf("LIST: %q", out)
	}
	for _, u := range []string{`\Noselect`, `\Foo`, `\Sent \Drafts`} {
		c.do(`d CREATE Q (USE (`+u+`))`, "d NO [USEATTR]")
	}
	if out := c.do(`e LIST "" "Q"`, "e OK"); contains(out, `"Q"`) {
		t.Errorf("a refused CREATE made the mailbox: %q", out)
	}
}

// TestStoreReportsUnchangedFlags: a STORE that changes nothing (+FLAGS of
// a flag already set) still returns the message's flags (RFC 9051
// §6.4.6); it returned none, and Python's imaplib got [None].
func TestStoreReportsUnchangedFlags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.deliver(t, msg1)
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	c.do(`a STORE 1 +FLAGS (\Seen)`, "a OK")
	if out := c.do(`b STORE 1 +FLAGS (\Seen)`, "b OK"); !contains(out, `* 1 FETCH (FLAGS (\Seen))`) {
		t.Errorf("unchanged STORE: %q", out)
	}
	if out := c.do(`c STORE 1 +FLAGS.SILENT (\Seen)`, "c OK"); contains(out, "FETCH") {
		t.Errorf(".SILENT answered with FETCH: %q", out)
	}
}
