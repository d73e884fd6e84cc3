package e2e_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The fault tests: a remote MX that misbehaves, DNS that fails, and state
// on disk that is damaged behind the server's back.

// backoffs is the retry schedule of the fault tests: [queue] min_backoff
// 1s doubling up to max_backoff 4s.
var backoffs = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}

// checkSchedule checks that each retry of rcpt came when the schedule says:
// after the nth failed attempt, the next one starts backoffs[n-1] later,
// give or take the queue's 1s poll and a loaded machine. Log times are
// taken at the end of an attempt, so fast attempts are needed (not the
// slow server).
func checkSchedule(t *testing.T, rcpt string, evs []queueEvent) {
	t.Helper()
	var gaps []string
	for i := 1; i < len(evs); i++ {
		want := backoffs[min(i-1, len(backoffs)-1)]
		gap := evs[i].at.Sub(evs[i-1].at)
		gaps = append(gaps, gap.Round(10*time.Millisecond).String())
		if gap < want-500*time.Millisecond || gap > want+8*time.Second {
			t.Errorf("%s: attempt %d came %v after attempt %d, want about %v (min_backoff 1s doubling, max 4s)",
				rcpt, i+1, gap.Round(time.Millisecond), i, want)
		}
	}
	if len(gaps) > 0 {
		t.Logf("%s: %d attempts, %v apart", rcpt, len(evs), gaps)
	}
}

// TestFaultOutboundRetries sends one message per kind of remote trouble
// through the queue to a fake MX: the connection reset in the middle of
// DATA (twice), 450 for one recipient and 250 for the other (twice), a
// slow server (1s before each reply), SERVFAIL for the domain's MX lookup
// (until the test lifts it), and a normal server. Each is retried on
// schedule, nothing is bounced or lost, and each recipient gets exactly
// one copy: the 250 recipient of the split transaction is not sent again.
func TestFaultOutboundRetries(t *testing.T) {
	t.Parallel()
	start := time.Now()
	mx := newFakeMX(t)
	mx.setRule("ok.test", &mxRule{})
	mx.setRule("reset.test", &mxRule{resetData: 2})
	mx.setRule("mixed.test", &mxRule{tempFail: map[string]int{"b@mixed.test": 2}})
	mx.setRule("slow.test", &mxRule{delay: time.Second})
	mx.setRule("servfail.test", &mxRule{})
	dns := newFakeDNS(t, mxZone("ok.test", "reset.test", "mixed.test", "slow.test", "servfail.test"))
	dns.setFail("servfail.test.", true)
	s := newRelServer(t, relOpts{submission: true,
		tables: outboundTables(mx.port, dns.addr, "1s", "4s")})
	sub := fmt.Sprintf("127.0.0.1:%d", s.sub)

	cases := []struct {
		subject string
		rcpts   []string
	}{
		{"fault ok", []string{"a@ok.test"}},
		{"fault reset", []string{"a@reset.test"}},
		{"fault mixed", []string{"a@mixed.test", "b@mixed.test"}},
		{"fault slow", []string{"a@slow.test"}},
		{"fault servfail", []string{"a@servfail.test"}},
	}
	for _, c := range cases {
		if err := submitTLS(sub, c.rcpts, testMessage("me@example.test", strings.Join(c.rcpts, ", "), c.subject, 2000)); err != nil {
			t.Fatalf("submission of %q: %v", c.subject, err)
		}
	}
	// SERVFAIL until the queue has deferred the message twice.
	waitFor(t, 30*time.Second, "two deferrals of a@servfail.test", func() bool {
		n := 0
		for _, e := range queueEvents(s.logText(), "a@servfail.test") {
			if e.kind == "deferred" {
				n++
			}
		}
		return n >= 2
	})
	dns.setFail("servfail.test.", false)
	s.waitQueueDrained(45 * time.Second)
	log := s.logText()

	for _, c := range cases {
		for _, r := range c.rcpts {
			if n := mx.countRcpt(r); n != 1 {
				t.Errorf("%s (%q): %d copies at the remote MX, want exactly 1", r, c.subject, n)
			}
		}
	}
	for _, g := range mx.mails("") {
		if !strings.Contains(g.data, "end of "+g.subject+"\r\n") {
			t.Errorf("the remote MX got an incomplete copy of %q (%d bytes)", g.subject, len(g.data))
		}
	}
	want := map[string][]string{ // recipient → the outcomes the queue must log, in order
		"a@ok.test":       {"delivered"},
		"a@slow.test":     {"delivered"},
		"a@reset.test":    {"deferred", "deferred", "delivered"},
		"a@mixed.test":    {"delivered"},
		"b@mixed.test":    {"deferred", "deferred", "delivered"},
		"a@servfail.test": {"deferred", "deferred", "delivered"},
	}
	for rcpt, kinds := range want {
		evs := queueEvents(log, rcpt)
		var got []string
		for _, e := range evs {
			got = append(got, e.kind)
		}
		if rcpt == "a@servfail.test" && len(got) > 3 && !slices.Contains(got[:len(got)-1], "delivered") {
			kinds = got // the test lifted SERVFAIL late: more deferrals are fine
		}
		if strings.Join(got, ",") != strings.Join(kinds, ",") {
			t.Errorf("%s: queue logged %v, want %v", rcpt, got, kinds)
			continue
		}
		for _, e := range evs {
			if e.kind == "deferred" && (e.code < 400 || e.code > 499) {
				t.Errorf("%s: deferred with code %d: %s", rcpt, e.code, e.line)
			}
		}
		if last := evs[len(evs)-1]; last.attempts != len(evs) {
			t.Errorf("%s: delivered after %d attempts by the log, want %d: %s", rcpt, last.attempts, len(evs), last.line)
		}
		if rcpt != "a@slow.test" {
			checkSchedule(t, rcpt, evs)
		}
	}
	mx.mu.Lock()
	resetTxns, mixedB := mx.rules["reset.test"].txns, mx.rules["mixed.test"].rcptSeen
	mx.mu.Unlock()
	if resetTxns != 3 {
		t.Errorf("reset.test: %d transactions, want 3 (two cut in DATA, one delivered)", resetTxns)
	}
	if mixedB["a@mixed.test"] != 1 || mixedB["b@mixed.test"] != 3 {
		t.Errorf("mixed.test: RCPT a %d times, b %d times; want a once (accepted at once), b 3 times (450, 450, 250)",
			mixedB["a@mixed.test"], mixedB["b@mixed.test"])
	}
	if strings.Contains(log, "msg=bounced") {
		t.Errorf("something bounced:\n%s", grepLines(log, "msg=bounced"))
	}
	// No DSN: nothing failed, and nobody asked for delay notices.
	if files := scanInbox(t, s.inboxDir()); len(files) != 0 {
		t.Errorf("the sender got %d messages (DSNs?), want none: first %q", len(files), files[0].subject)
	}
	t.Logf("6 recipients in 5 messages delivered once each; %d deliveries at the fake MX; took %v",
		len(mx.mails("")), time.Since(start).Round(time.Millisecond))
}

// grepLines returns the lines of text that contain sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestFaultOutboundSilentMX: a remote MX that accepts the connection and
// then never answers (here: after RCPT) must neither block other mail nor
// lose the message, and must not keep the server from stopping. posthorn
// has no [outbound] setting for the command timeout: internal/outbound
// uses its 5-minute default (RFC 5321 §4.5.3.2) for each reply, and the
// queue runner waits for running deliveries on shutdown, without a
// deadline. So SIGTERM waits up to 5 minutes per silent server: this test
// allows shutdown_timeout plus 5s and fails otherwise. The silent MX's
// message also has a recipient at a good MX, who must get one copy, not
// a second one after a kill -9 and restart.
func TestFaultOutboundSilentMX(t *testing.T) {
	t.Parallel()
	mx := newFakeMX(t)
	mx.setRule("silent.test", &mxRule{stall: true})
	mx.setRule("ok.test", &mxRule{})
	dns := newFakeDNS(t, mxZone("silent.test", "ok.test"))
	s := newRelServer(t, relOpts{submission: true, tables: outboundTables(mx.port, dns.addr, "1s", "4s")})
	sub := fmt.Sprintf("127.0.0.1:%d", s.sub)

	// One message for two domains: ok.test takes its copy at once.
	if err := submitTLS(sub, []string{"a@silent.test", "b@ok.test"}, testMessage("me@example.test", "a@silent.test, b@ok.test", "to the silent MX", 2000)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the queue's session to the silent MX", func() bool { return mx.stalledNow() == 1 })
	waitFor(t, 20*time.Second, "the copy for b@ok.test", func() bool { return mx.countRcpt("b@ok.test") == 1 })
	// Other mail still goes out while one worker waits.
	if err := submitTLS(sub, []string{"a@ok.test"}, testMessage("me@example.test", "a@ok.test", "beside the silent MX", 2000)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "delivery to ok.test beside the silent MX", func() bool { return mx.countRcpt("a@ok.test") == 1 })
	// Past connect_timeout (3s) the message is still queued: not lost, not
	// bounced.
	time.Sleep(4 * time.Second)
	if empty, out := s.queueEmpty(); empty || !strings.Contains(out, "a@silent.test") {
		t.Fatalf("the message to the silent MX is not in the queue:\n%s", out)
	}
	if strings.Contains(s.logText(), "msg=bounced") {
		t.Errorf("bounced:\n%s", grepLines(s.logText(), "msg=bounced"))
	}

	// A crash now (kill -9) must not cost b@ok.test a second copy: its
	// 250 came long ago.
	s.kill9()
	waitFor(t, 10*time.Second, "the silent session to end with the process", func() bool { return mx.stalledNow() == 0 })
	s.restart()
	waitFor(t, 20*time.Second, "the retry's session to the silent MX", func() bool { return mx.stalledNow() == 1 })
	time.Sleep(time.Second)
	if n := mx.countRcpt("b@ok.test"); n != 1 {
		t.Errorf("BUG: b@ok.test got %d copies, want 1: its 250 came at once, but queue.attempt saves the state of a "+
			"message's recipients only when the sessions to all its domains have ended, and the one to the silent MX "+
			"had not when the server was killed", n)
	}

	t0 := time.Now()
	s.signal(syscall.SIGTERM)
	limit := shutdownTimeout + 5*time.Second
	inTime, err := s.wait(limit)
	switch {
	case !inTime:
		t.Errorf("BUG: after SIGTERM the server was still running %v later (killed); an outbound session to a silent MX "+
			"holds the shutdown: queue.Run waits for its workers and the SMTP client waits up to its 5-minute command "+
			"timeout, which [outbound] cannot set", time.Since(t0).Round(time.Millisecond))
	case err != nil:
		t.Errorf("exit after SIGTERM: %v", err)
	default:
		t.Logf("stopped %v after SIGTERM with a session to the silent MX open", time.Since(t0).Round(time.Millisecond))
	}

	// The MX recovers; after a restart and a flush the message arrives,
	// once.
	mx.setRule("silent.test", &mxRule{})
	mx.releaseStalled()
	s.restart()
	s.admin("", "queue", "flush")
	waitFor(t, 30*time.Second, "delivery to the recovered MX", func() bool { return mx.countRcpt("a@silent.test") >= 1 })
	s.waitQueueDrained(30 * time.Second)
	if n := mx.countRcpt("a@silent.test"); n != 1 {
		t.Errorf("a@silent.test: %d copies, want 1", n)
	}
	if n := mx.countRcpt("a@ok.test"); n != 1 {
		t.Errorf("a@ok.test: %d copies, want 1", n)
	}
	t.Logf("copies at the MX: a@silent.test %d, b@ok.test %d, a@ok.test %d",
		mx.countRcpt("a@silent.test"), mx.countRcpt("b@ok.test"), mx.countRcpt("a@ok.test"))
}

// TestFaultCorruptQueueFile: a queue body cut short behind the server's
// back (DATA/queue/<id>). The server starts, sets the file aside in
// DATA/queue/corrupt/ with a log line, returns the message to its sender
// (5.3.0) and keeps serving.
func TestFaultCorruptQueueFile(t *testing.T) {
	t.Parallel()
	// The MX refuses connections: the message stays queued.
	dns := newFakeDNS(t, mxZone("remote.test"))
	s := newRelServer(t, relOpts{submission: true, imap: true, tables: outboundTables(freePort(t), dns.addr, "1h", "1h")})
	if err := submitTLS(fmt.Sprintf("127.0.0.1:%d", s.sub), []string{"x@remote.test"},
		testMessage("me@example.test", "x@remote.test", "queued then damaged", 20000)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the first attempt deferred", func() bool { return len(queueEvents(s.logText(), "x@remote.test")) > 0 })
	s.stop()
	qdir := filepath.Join(s.data, "queue")
	var ids []string
	for _, e := range listDir(qdir) {
		if fi, err := os.Stat(filepath.Join(qdir, e)); err == nil && fi.Mode().IsRegular() {
			ids = append(ids, e)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("want one queue file in %s, found %q", qdir, ids)
	}
	body := filepath.Join(qdir, ids[0])
	fi, _ := os.Stat(body)
	if err := os.Truncate(body, fi.Size()/2); err != nil {
		t.Fatal(err)
	}

	s.restart()
	s.admin("", "queue", "flush")
	waitFor(t, 20*time.Second, "a log line about the damaged queue file", func() bool {
		return strings.Contains(s.logText(), "queue file damaged, set aside")
	})
	if _, err := os.Stat(filepath.Join(qdir, "corrupt", ids[0])); err != nil {
		t.Errorf("damaged queue file not in queue/corrupt/: %v", err)
	}
	s.waitQueueDrained(20 * time.Second)
	var dsn *mailFileInfo
	waitFor(t, 20*time.Second, "the DSN to the sender", func() bool {
		for _, f := range scanInbox(t, s.inboxDir()) {
			if strings.Contains(f.body, "5.3.0") && strings.Contains(f.body, "x@remote.test") {
				dsn = &f
				return true
			}
		}
		return false
	})
	t.Logf("sender told: %q", dsn.subject)
	// And it keeps serving.
	if err := sendSMTP(s.addr(), "a@client.example.net", "me@example.test", testMessage("a@client.example.net", "me@example.test", "after the damage", 500)); err != nil {
		t.Fatalf("SMTP after the damaged queue file: %v", err)
	}
	v := checkIndexMatchesMaildir(t, s)
	if v.subjects()["after the damage"] != 1 {
		t.Errorf("new mail not visible over IMAP: %v", v.Msgs)
	}
}

// TestFaultQueueCrashLeftovers: what a kill -9 in the middle of Enqueue
// leaves behind (store/local/queue.go writes DATA/queue/tmp/<id>, renames
// it to DATA/queue/<id>, then commits the rows): a temp file, or a body
// without rows. The client got no 250, so these are garbage; nothing ever
// removes them, and each crash under submission load leaves more. Files
// two days old (mtime) must be gone, or set aside, a little after a start.
func TestFaultQueueCrashLeftovers(t *testing.T) {
	t.Parallel()
	s := newRelServer(t, relOpts{noStart: true})
	qdir := filepath.Join(s.data, "queue")
	old := time.Now().Add(-48 * time.Hour)
	tmpLeft := filepath.Join(qdir, "tmp", "ORPHANTMP7Q2RXK4WZ3")
	bodyLeft := filepath.Join(qdir, "ORPHANBODY5M6N7P2Q")
	for _, p := range []string{tmpLeft, bodyLeft} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(testMessage("me@example.test", "x@remote.test", "left by a crash", 5000)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	s.restart()
	if ok, out := s.queueEmpty(); !ok {
		t.Errorf("orphan files show up in the queue:\n%s", out)
	}
	time.Sleep(3 * time.Second)
	for _, p := range []string{tmpLeft, bodyLeft} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("BUG: %s (two days old, no queue rows) is still there after a start: crash leftovers in DATA/queue are never removed",
				strings.TrimPrefix(p, s.data+"/"))
		}
	}
}

// TestFaultTornWAL: kill -9, then the end of the index's write-ahead log
// is cut off and its shared-memory index garbled (a torn write). SQLite
// drops the incomplete frames; the server starts, re-indexes from the
// Maildir, and the index agrees with the files.
func TestFaultTornWAL(t *testing.T) {
	t.Parallel()
	s := newRelServer(t, relOpts{imap: true})
	for i := range 6 {
		subj := fmt.Sprintf("before the tear %d", i)
		if err := sendSMTP(s.addr(), "a@client.example.net", "me@example.test", testMessage("a@client.example.net", "me@example.test", subj, 500)); err != nil {
			t.Fatal(err)
		}
	}
	s.kill9()
	wal := filepath.Join(s.data, "posthorn.db-wal")
	fi, err := os.Stat(wal)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("no write-ahead log after kill -9 (%v): the test needs one", err)
	}
	t.Logf("write-ahead log after kill -9: %d bytes; cut to %d", fi.Size(), fi.Size()/2+100)
	if err := os.Truncate(wal, fi.Size()/2+100); err != nil {
		t.Fatal(err)
	}
	if err := garble(filepath.Join(s.data, "posthorn.db-shm"), 0, 256); err != nil {
		t.Fatal(err)
	}
	s.restart()
	if err := sendSMTP(s.addr(), "a@client.example.net", "me@example.test", testMessage("a@client.example.net", "me@example.test", "after the tear", 500)); err != nil {
		t.Fatalf("SMTP after the torn WAL: %v", err)
	}
	v := checkIndexMatchesMaildir(t, s)
	if n := len(scanInbox(t, s.inboxDir())); n != 7 || v.subjects()["after the tear"] != 1 {
		t.Errorf("%d files (want 7), IMAP sees %v", n, v.Msgs)
	}
	t.Logf("after the tear IMAP sees (UID, Subject): %v", v.Msgs)
}

// garble overwrites n bytes at off with a pattern.
func garble(path string, off int64, n int) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteAt([]byte(strings.Repeat("\xde\xad\xbe\xef", n/4+1)[:n]), off)
	return err
}

// tablePage returns the page number and page size of a table's root page,
// read with Python's sqlite3 (immutable: the file is not touched).
func tablePage(t *testing.T, db, table string) (page, size int64) {
	t.Helper()
	var out [2]int64
	pythonJSON(t, nil, 30*time.Second, &out, `
import sqlite3
c = sqlite3.connect("file:%s?mode=ro&immutable=1" % sys.argv[1], uri=True)
page = c.execute("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (sys.argv[2],)).fetchone()[0]
print(json.dumps([page, c.execute("PRAGMA page_size").fetchone()[0]]))
`, db, table)
	return out[0], out[1]
}

// damagedIndexCase prepares a server with mail, stops it cleanly (the
// write-ahead log is checkpointed into posthorn.db), lets damage change
// posthorn.db, starts it again and expects it to serve: start, a log line
// that names the damaged index, SMTP for the account not refused
// permanently, IMAP agreeing with the Maildir.
func damagedIndexCase(t *testing.T, damage func(t *testing.T, db string)) {
	s := newRelServer(t, relOpts{imap: true})
	for i := range 3 {
		subj := fmt.Sprintf("before the damage %d", i)
		if err := sendSMTP(s.addr(), "a@client.example.net", "me@example.test", testMessage("a@client.example.net", "me@example.test", subj, 500)); err != nil {
			t.Fatal(err)
		}
	}
	s.stop()
	db := filepath.Join(s.data, "posthorn.db")
	damage(t, db)
	err := s.startOnce()
	for i := 0; i < 20 && errors.Is(err, errAddrInUse); i++ { // someone else's port for a moment
		time.Sleep(100 * time.Millisecond)
		err = s.startOnce()
	}
	if err != nil {
		t.Fatalf("BUG: the server does not start with a damaged index; the Maildirs are intact and the docs say the "+
			"index can be rebuilt from them, but nothing does:\n%v", err)
	}
	s.mu.Lock()
	last, _ := os.ReadFile(s.logs[len(s.logs)-1])
	s.mu.Unlock()
	log := strings.ToLower(string(last))
	if !strings.Contains(log, "posthorn.db") || !(strings.Contains(log, "set aside") || strings.Contains(log, "damaged") || strings.Contains(log, "corrupt")) {
		t.Errorf("BUG: no log line says that posthorn.db was found damaged and what was done with it:\n%s", tail(last, 3000))
	}
	err = sendSMTP(s.addr(), "a@client.example.net", "me@example.test", testMessage("a@client.example.net", "me@example.test", "after the damage", 500))
	if c := smtpCode(err); c >= 500 {
		t.Errorf("BUG: mail for me@example.test refused permanently after the index damage: %v", err)
	} else if err != nil {
		t.Logf("mail for me@example.test deferred: %v", err)
	}
	v := checkIndexMatchesMaildir(t, s)
	t.Logf("IMAP after the damage: error %q, STATUS %s %q, SELECT %s, %d messages", v.Error, v.StatusTyp, v.Status, v.SelectTyp, len(v.Msgs))
}

// TestFaultDamagedIndexPage: the root page of the messages table (the
// mailbox index) in posthorn.db is overwritten with garbage. Every mailbox
// could be rebuilt from its Maildir.
func TestFaultDamagedIndexPage(t *testing.T) {
	t.Parallel()
	damagedIndexCase(t, func(t *testing.T, db string) {
		page, size := tablePage(t, db, "messages")
		if err := garble(db, (page-1)*size, int(size)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFaultTruncatedIndex: posthorn.db cut to half its size (a torn copy,
// a full disk during a checkpoint, a bad restore).
func TestFaultTruncatedIndex(t *testing.T) {
	t.Parallel()
	damagedIndexCase(t, func(t *testing.T, db string) {
		fi, err := os.Stat(db)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(db, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFaultLostWALNewUIDValidity: kill -9, then the index's write-ahead
// log is deleted (an operator's mistake, a damaged file): SQLite starts
// from its last checkpoint, which knew nothing of the last messages. The
// server found their files and gave them UIDs again from there, under the
// same UIDVALIDITY, in any order, and after an expunge the next message
// could take a UID that a client still had in its cache for another one.
// The mailbox's UID mark shows the index is behind it: INBOX gets a new
// UIDVALIDITY, and clients start it afresh.
func TestFaultLostWALNewUIDValidity(t *testing.T) {
	t.Parallel()
	s := newRelServer(t, relOpts{imap: true})
	send := func(subj string) {
		t.Helper()
		if err := sendSMTP(s.addr(), "a@client.example.net", "me@example.test", testMessage("a@client.example.net", "me@example.test", subj, 300)); err != nil {
			t.Fatal(err)
		}
	}
	send("checkpointed")
	s.stop() // a clean stop checkpoints the log into posthorn.db
	s.restart()
	before := viewIMAP(t, s.imap).status("UIDVALIDITY")
	for i := range 3 {
		send(fmt.Sprintf("only in the log %d", i))
	}
	time.Sleep(3 * time.Second) // the UID marks are written every 2 s
	s.kill9()
	for _, f := range []string{"posthorn.db-wal", "posthorn.db-shm"} {
		if err := os.Remove(filepath.Join(s.data, f)); err != nil && f == "posthorn.db-wal" {
			t.Fatalf("no write-ahead log to lose: %v", err)
		}
	}
	s.restart()
	v := checkIndexMatchesMaildir(t, s)
	if after := v.status("UIDVALIDITY"); after == before || before <= 0 {
		t.Errorf("BUG: UIDVALIDITY %d before, %d after the index lost its last commits: the UIDs given out since may be given again", before, after)
	}
	if !strings.Contains(s.logText(), "mailbox index is behind its UID mark") {
		t.Error("no log line says the index lost commits")
	}
}
