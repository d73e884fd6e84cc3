package e2e_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mixedLoad runs, in threads, every kind of client that hands the server
// mail it must keep: each sends numbered messages KIND-rROUND-THREAD-N and
// retries a message (on a new connection) until it is acknowledged.
//
//	mx  SMTP on port 25 to me@example.test
//	sl  submission (STARTTLS, AUTH) to me@example.test
//	sr  submission to r@remote.test: through the queue to the fake MX
//	ap  IMAP APPEND to INBOX (an OK must survive)
//
// It stops at the stop file or the deadline and prints, per subject, the
// attempts made and the acknowledgements received.
const mixedLoad = `
import email.utils, imaplib, threading
cfg = json.loads(sys.argv[1])
stopfile, deadline, rnd = cfg["stop"], time.time() + cfg["deadline"], cfg["round"]
USER, PW, LOCAL, REMOTE = cfg["user"], cfg["pw"], cfg["user"], "r@remote.test"
lock = threading.Lock()
acked, tries, errors, rejected = [], {}, {}, []

class TempFail(Exception):
    pass

def message(subj, frm, to):
    filler = "".join("line %03d of %s: the quick brown fox jumps over the lazy dog\r\n" % (k, subj) for k in range(30))
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@client.example.net>\r\nDate: %s\r\n\r\n%send of %s\r\n"
            % (frm, to, subj, subj, email.utils.formatdate(), filler, subj)).encode()

def running():
    return time.time() < deadline and not os.path.exists(stopfile)

def note(kind, what):
    with lock:
        k = kind + ": " + what
        errors[k] = errors.get(k, 0) + 1

def mx_connect():
    return smtplib.SMTP(HOST, PORT, local_hostname="client.example.net", timeout=5)

def sub_connect():
    s = smtplib.SMTP(HOST, cfg["sub"], local_hostname="client.example.net", timeout=5)
    s.starttls(context=unverified())
    s.login(USER, PW)
    return s

def smtp_sender(frm, rcpt):
    def send(c, subj):
        c.sendmail(frm, [rcpt], message(subj, frm, rcpt))
    return send

def imap_connect():
    m = imaplib.IMAP4("127.0.0.1", cfg["imap"], timeout=5)
    m.starttls(ssl_context=unverified())
    m.login(USER, PW)
    return m

def imap_append(c, subj):
    typ, data = c.append("INBOX", None, None, message(subj, "archive@client.example.net", USER))
    if typ != "OK":
        raise TempFail("APPEND %s %s" % (typ, data))

def drop(c):
    try:
        if isinstance(c, imaplib.IMAP4):
            c.shutdown()
        else:
            c.close()
    except Exception:
        pass

def worker(kind, i, connect, send):
    n, c = 0, None
    while running():
        subj = "%s-r%d-%d-%d" % (kind, rnd, i, n)
        try:
            if c is None:
                c = connect()
            with lock:
                tries[subj] = tries.get(subj, 0) + 1
            send(c, subj)
            with lock:
                acked.append([subj, time.time()])
            n += 1
            continue
        except smtplib.SMTPRecipientsRefused as e:
            codes = sorted(v[0] for v in e.recipients.values())
            if all(x >= 500 for x in codes):
                with lock:
                    rejected.append([subj, codes[0], str(e.recipients)])
                n += 1
            note(kind, "RCPT %s" % codes)
        except smtplib.SMTPResponseException as e:
            if e.smtp_code >= 500:
                with lock:
                    rejected.append([subj, e.smtp_code, str(e.smtp_error)])
                n += 1
            note(kind, "%d" % e.smtp_code)
        except Exception as e:
            note(kind, type(e).__name__)
        if c is not None:
            drop(c)
        c = None
        time.sleep(0.05)
    if c is not None:
        try:
            if kind == "ap":
                c.logout()
            else:
                c.quit()
        except Exception:
            pass

specs = [("mx", i, mx_connect, smtp_sender("sender%d@client.example.net" % i, LOCAL)) for i in range(3)]
specs += [("sl", i, sub_connect, smtp_sender(USER, LOCAL)) for i in range(2)]
specs += [("sr", i, sub_connect, smtp_sender(USER, REMOTE)) for i in range(2)]
specs += [("ap", 0, imap_connect, imap_append)]
threads = [threading.Thread(target=worker, args=s) for s in specs]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"acked": acked, "tries": tries, "errors": errors, "rejected": rejected}))
`

// loadResult is what mixedLoad prints.
type loadResult struct {
	Acked    [][2]any       `json:"acked"` // subject, unix time
	Tries    map[string]int `json:"tries"`
	Errors   map[string]int `json:"errors"`
	Rejected [][]any        `json:"rejected"`
}

// kindOf is the client kind of a load subject: mx, sl, sr or ap.
func kindOf(subject string) string {
	k, _, _ := strings.Cut(subject, "-")
	return k
}

// TestCrashMixedKill9 kills the server with SIGKILL three times, at
// random moments, while it receives mail on port 25, takes submissions
// for a local and a remote recipient, stores IMAP APPENDs and delivers its
// queue to a fake remote MX. After each restart, with the load stopped:
//   - every acknowledged message is in the Maildir exactly once, complete
//     (duplicates only of messages whose acknowledgement was lost and that
//     were sent again);
//   - the queue resumes by itself and empties; every acknowledged remote
//     message reached the MX at least once; a second copy only of a message
//     sent twice, or whose delivery a kill interrupted between the MX's 250
//     and the queue's bookkeeping;
//   - the index agrees with the Maildir (IMAP STATUS, SELECT and every
//     message's Subject), UIDVALIDITY never changes and UIDs are stable;
//   - the staging directory DATA/tmp is empty.
func TestCrashMixedKill9(t *testing.T) {
	t.Parallel()
	start := time.Now()
	mx := newFakeMX(t)
	mx.setRule("remote.test", &mxRule{dataDelay: 30 * time.Millisecond})
	dns := newFakeDNS(t, mxZone("remote.test"))
	s := newRelServer(t, relOpts{submission: true, imap: true, tables: outboundTables(mx.port, dns.addr, "1s", "2s")})

	rng, seed := killSchedule(t)
	var (
		kills    [][2]time.Time         // SIGKILL sent, process gone
		acked    = map[string]float64{} // subject → when acknowledged
		tries    = map[string]int{}
		errCount = map[string]int{}
		uidOf    = map[string]int{} // unique subject → UID seen earlier
		validity = -1
		totals   = map[string]int{} // reported numbers
	)
	for round := 1; round <= 3; round++ {
		stop := filepath.Join(t.TempDir(), "stop")
		arg, _ := json.Marshal(map[string]any{"stop": stop, "deadline": 40, "round": round,
			"user": "me@example.test", "pw": userPW, "sub": s.sub, "imap": s.imap})
		py := startPython(t, s.server, 60*time.Second, mixedLoad, string(arg))
		after := 700*time.Millisecond + time.Duration(rng.Int64N(int64(1800*time.Millisecond)))
		time.Sleep(after)
		killAt := time.Now()
		s.kill9()
		kills = append(kills, [2]time.Time{killAt, time.Now()})
		time.Sleep(100 * time.Millisecond) // clients meet a closed port
		s.restart()
		restarted := time.Now()
		time.Sleep(1500 * time.Millisecond) // clients reconnect and go on
		if err := os.WriteFile(stop, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		var got loadResult
		if err := json.Unmarshal([]byte(py.finish(t, 30*time.Second)), &got); err != nil {
			t.Fatalf("round %d: load output: %v", round, err)
		}
		if len(got.Rejected) > 0 {
			t.Errorf("round %d: permanent refusals under load: %v", round, got.Rejected)
		}
		afterRestart := 0
		for _, a := range got.Acked {
			subj, _ := a[0].(string)
			when, _ := a[1].(float64)
			acked[subj] = when
			totals["acked "+kindOf(subj)]++
			if when > float64(restarted.UnixNano())/1e9 {
				afterRestart++
			}
		}
		for subj, n := range got.Tries {
			tries[subj] = n
		}
		for k, n := range got.Errors {
			errCount[k] += n
		}
		if afterRestart == 0 {
			t.Errorf("round %d: nothing acknowledged after the restart: the server did not recover", round)
		}
		t.Logf("round %d: killed %v after the load began; %d acknowledged (%d after the restart)",
			round, after.Round(time.Millisecond), len(got.Acked), afterRestart)

		// The queue resumes by itself (no flush) and empties.
		s.waitQueueDrained(45 * time.Second)
		checkLocal(t, s, round, acked, tries, totals)
		v := checkIndexMatchesMaildir(t, s)
		if vv := v.status("UIDVALIDITY"); validity == -1 {
			validity = vv
		} else if vv != validity {
			t.Errorf("round %d: UIDVALIDITY changed from %d to %d", round, validity, vv)
		}
		seen := v.subjects()
		for _, m := range v.Msgs {
			subj, _ := m[1].(string)
			uid := int(m[0].(float64))
			if seen[subj] != 1 {
				continue
			}
			if old, ok := uidOf[subj]; ok && old != uid {
				t.Errorf("round %d: %q had UID %d, now %d", round, subj, old, uid)
			}
			uidOf[subj] = uid
		}
		checkSink(t, mx, round, acked, tries, kills, totals)
		if left := listDir(filepath.Join(s.data, "tmp")); len(left) > 0 {
			t.Errorf("round %d: staging files left in DATA/tmp after the restart: %q", round, left)
		}
		mdTmp := listDir(filepath.Join(s.inboxDir(), "tmp"))
		qTmp := listDir(filepath.Join(s.data, "queue", "tmp"))
		var orphans []string
		for _, n := range listDir(filepath.Join(s.data, "queue")) {
			if fi, err := os.Stat(filepath.Join(s.data, "queue", n)); err == nil && fi.Mode().IsRegular() {
				orphans = append(orphans, n)
			}
		}
		t.Logf("round %d: left by the kills: %d files in the Maildir's tmp/ (removed after 36h by design), "+
			"%d in DATA/queue/tmp, %d queue bodies without a queue entry (see TestFaultQueueCrashLeftovers)",
			round, len(mdTmp), len(qTmp), len(orphans))
	}
	s.stop()
	if left := listDir(filepath.Join(s.data, "tmp")); len(left) > 0 {
		t.Errorf("staging files left in DATA/tmp after a clean stop: %q", left)
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(totals)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, totals[k]))
	}
	t.Logf("seed %d; totals: %s; client errors: %v; took %v", seed, strings.Join(parts, " "), errCount,
		time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d > 100*time.Second {
		t.Errorf("took %v, budget 100s", d)
	}
}

// checkLocal checks the INBOX of me@example.test against the local
// acknowledgements (kinds mx, sl, ap).
func checkLocal(t *testing.T, s *relServer, round int, acked map[string]float64, tries map[string]int, totals map[string]int) {
	t.Helper()
	count := map[string]int{}
	for _, f := range scanInbox(t, s.inboxDir()) {
		count[f.subject]++
		if k := kindOf(f.subject); (k != "mx" && k != "sl" && k != "ap") || !strings.HasSuffix(f.body, "end of "+f.subject+"\n") {
			t.Errorf("round %d: incomplete or foreign message in %s/%s: Subject %q, ends %q",
				round, f.sub, f.name, f.subject, tail([]byte(f.body), 40))
		}
	}
	var lost, dupAcked, tooMany []string
	dupRetried := 0
	for subj := range acked {
		if kindOf(subj) == "sr" {
			continue
		}
		switch n := count[subj]; {
		case n == 0:
			lost = append(lost, subj)
		case n > 1 && tries[subj] == 1:
			dupAcked = append(dupAcked, subj)
		}
	}
	for subj, n := range count {
		switch {
		case n > tries[subj]:
			tooMany = append(tooMany, fmt.Sprintf("%s (%d copies, %d tries)", subj, n, tries[subj]))
		case n > 1:
			dupRetried++
		}
	}
	sort.Strings(lost)
	sort.Strings(dupAcked)
	sort.Strings(tooMany)
	if len(lost) > 0 {
		t.Errorf("round %d: %d acknowledged messages lost: %v", round, len(lost), lost)
	}
	if len(dupAcked) > 0 {
		t.Errorf("round %d: %d messages sent once, acknowledged and stored more than once: %v", round, len(dupAcked), dupAcked)
	}
	if len(tooMany) > 0 {
		t.Errorf("round %d: messages stored more often than sent: %v", round, tooMany)
	}
	unacked := 0
	for subj := range count {
		if _, ok := acked[subj]; !ok {
			unacked++
		}
	}
	totals["local lost"] = len(lost)
	totals["local dup (acked once)"] = len(dupAcked)
	totals["local dup (sent again after a lost ack)"] = dupRetried
	totals["local stored, never acked"] = unacked
	t.Logf("round %d: INBOX holds %d distinct messages; duplicates: %d of messages sent again, %d of messages acked once; %d stored but never acknowledged",
		round, len(count), dupRetried, len(dupAcked), unacked)
}

// checkSink checks the fake MX against the acknowledged remote
// submissions (kind sr).
func checkSink(t *testing.T, mx *fakeMX, round int, acked map[string]float64, tries map[string]int, kills [][2]time.Time, totals map[string]int) {
	t.Helper()
	arrivals := map[string][]time.Time{}
	for _, g := range mx.mails("remote.test") {
		arrivals[g.subject] = append(arrivals[g.subject], g.at)
		if kindOf(g.subject) != "sr" || !strings.Contains(g.data, "end of "+g.subject+"\r\n") {
			t.Errorf("round %d: incomplete or foreign message at the MX: Subject %q", round, g.subject)
		}
	}
	var lost, unexplained []string
	byRetry, byKill := 0, 0
	for subj := range acked {
		if kindOf(subj) == "sr" && len(arrivals[subj]) == 0 {
			lost = append(lost, subj)
		}
	}
	for subj, at := range arrivals {
		if len(at) < 2 {
			continue
		}
		if tries[subj] > 1 && len(at) <= tries[subj] {
			byRetry++
			continue
		}
		// A kill after the MX had the whole first copy and before the
		// last copy came.
		killed := slices.ContainsFunc(kills, func(k [2]time.Time) bool { return !k[1].Before(at[0]) && !k[0].After(at[len(at)-1]) })
		if killed && len(at) <= tries[subj]+len(kills) {
			byKill++
			continue
		}
		unexplained = append(unexplained, fmt.Sprintf("%s (%d copies, %d tries)", subj, len(at), tries[subj]))
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("round %d: %d acknowledged remote messages never reached the MX: %v", round, len(lost), lost)
	}
	if len(unexplained) > 0 {
		t.Errorf("round %d: duplicates at the MX that neither a retry nor a kill explains: %v", round, unexplained)
	}
	totals["remote lost"] = len(lost)
	totals["remote dup (sent again after a lost ack)"] = byRetry
	totals["remote dup (kill between the MX's 250 and the queue update)"] = byKill
	t.Logf("round %d: the MX holds %d distinct remote messages; duplicates: %d of messages sent again, %d across a kill",
		round, len(arrivals), byRetry, byKill)
}

// fillDisk writes path until the file system is full, then gives back
// leave bytes, and returns the size of the file.
func fillDisk(t *testing.T, path string, leave int64) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			m, err := f.Write(buf)
			n += int64(m)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("filling the disk: %v", err)
			}
		}
	}
	if leave > 0 {
		n = max(0, n-leave)
		if err := f.Truncate(n); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// freeSpace is what statfs says is available in dir.
func freeSpace(dir string) uint64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0
	}
	return st.Bavail * uint64(st.Bsize)
}

// mountTmpfs moves the server's data directory onto a tmpfs of the given
// size, mounted where it was. The server must be stopped. The mount goes
// when the test ends (after the server is stopped).
func mountTmpfs(t *testing.T, s *server, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test mounts a tmpfs and must run as root (uid %d): CI runs the e2e tests as root", os.Geteuid())
	}
	orig := s.data + ".orig"
	if err := os.Rename(s.data, orig); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.data, 0o711); err != nil {
		t.Fatal(err)
	}
	if r := run(t, 20*time.Second, "", nil, "mount", "-t", "tmpfs", "-o", "size="+size+",mode=0711", "tmpfs", s.data); r.err != nil {
		t.Fatalf("mount tmpfs: %s", r)
	}
	t.Cleanup(func() {
		if s.running() {
			s.stop()
		}
		if r := run(t, 20*time.Second, "", nil, "umount", s.data); r.err != nil {
			t.Errorf("umount %s: %s", s.data, r)
			run(t, 20*time.Second, "", nil, "umount", "-l", s.data)
		}
	})
	if r := run(t, 20*time.Second, "", nil, "cp", "-a", orig+"/.", s.data+"/"); r.err != nil {
		t.Fatalf("copy the data directory: %s", r)
	}
}

// pyAppend APPENDs messages to INBOX over IMAP and prints each tagged
// reply.
const pyAppend = `
import imaplib
cfg = json.loads(sys.argv[1])
m = imaplib.IMAP4("127.0.0.1", cfg["port"], timeout=20)
m.starttls(ssl_context=unverified())
m.login("me@example.test", cfg["pw"])
out = []
for subj, pad in cfg["msgs"]:
    body = ("From: me@example.test\r\nSubject: %s\r\n\r\n" % subj) + ("x" * 70 + "\r\n") * (pad // 72) + ("end of %s\r\n" % subj)
    try:
        typ, data = m.append("INBOX", None, None, body.encode())
        out.append([typ, b" ".join(d for d in data if isinstance(d, bytes)).decode()])
    except Exception as e:
        out.append(["EXC", "%s: %s" % (type(e).__name__, e)])
m.logout()
print(json.dumps(out))
`

func imapAppend(t *testing.T, port int, msgs [][2]any) [][2]string {
	t.Helper()
	arg, _ := json.Marshal(map[string]any{"port": port, "pw": userPW, "msgs": msgs})
	var out [][2]string
	pythonJSON(t, nil, 60*time.Second, &out, pyAppend, string(arg))
	return out
}

// TestFullDiskTmpfs runs the server with its data directory on an 8 MiB
// tmpfs and fills it. A transaction that passed MAIL before the disk
// filled gets a 4xx for its DATA; a new one gets 452 4.3.1 at MAIL; IMAP
// APPEND gets NO. Nothing half-written shows in new/ or cur/, nothing is
// left in tmp/, the index agrees with the Maildir. When the filler file is
// deleted, mail and APPEND work again without a restart.
func TestFullDiskTmpfs(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := newRelServer(t, relOpts{imap: true, noStart: true, smtp: map[string]string{"max_message_size": `"256KiB"`}})
	mountTmpfs(t, s.server, "8m")
	s.restart()
	const from, to = "a@client.example.net", "me@example.test"
	if err := sendSMTP(s.addr(), from, to, testMessage(from, to, "before the fill", 20000)); err != nil {
		t.Fatalf("SMTP before the fill: %v", err)
	}
	if out := imapAppend(t, s.imap, [][2]any{{"appended before the fill", 20000}}); out[0][0] != "OK" {
		t.Fatalf("APPEND before the fill: %v", out)
	}
	// A transaction that has passed MAIL and RCPT.
	early, err := smtpDial(s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	if err := early.Mail(from); err != nil {
		t.Fatalf("MAIL before the fill: %v", err)
	}
	if err := early.Rcpt(to); err != nil {
		t.Fatalf("RCPT before the fill: %v", err)
	}

	// Almost full: 150 KiB free. MAIL has passed; the message (200 KB) is
	// staged in memory, but its Maildir copy does not fit.
	filler := filepath.Join(s.data, "filler")
	fillDisk(t, filler, 150<<10)
	t.Logf("almost full: %d bytes free", freeSpace(s.data))
	var dataErr error
	if w, err := early.Data(); err != nil {
		dataErr = err
	} else {
		_, _ = w.Write([]byte(testMessage(from, to, "during the fill", 200000)))
		dataErr = w.Close()
	}
	if c := smtpCode(dataErr); c < 400 || c > 499 {
		t.Errorf("DATA with too little space for the message: %v, want a 4xx reply", dataErr)
	} else {
		t.Logf("DATA with too little space: %v", dataErr)
	}
	early.Close()
	// APPEND of a message larger than the space left.
	for _, r := range imapAppend(t, s.imap, [][2]any{{"big append on a full disk", 200000}}) {
		if r[0] != "NO" {
			t.Errorf("APPEND larger than the space left: %s %s, want NO", r[0], r[1])
		} else {
			t.Logf("APPEND larger than the space left: NO %s", r[1])
		}
	}
	// Completely full.
	filler2 := filepath.Join(s.data, "filler2")
	fillDisk(t, filler2, 0)
	t.Logf("full: %d bytes free", freeSpace(s.data))
	err = sendSMTP(s.addr(), from, to, testMessage(from, to, "refused on a full disk", 2000))
	if smtpCode(err) != 452 || !strings.Contains(err.Error(), "4.3.1") {
		t.Errorf("MAIL on a full disk: %v, want 452 4.3.1", err)
	} else {
		t.Logf("MAIL on a full disk: %v", err)
	}
	for _, r := range imapAppend(t, s.imap, [][2]any{{"appended on a full disk", 500}}) {
		switch {
		case r[0] != "NO":
			t.Errorf("APPEND on a full disk: %s %s, want NO", r[0], r[1])
		case !strings.Contains(r[1], "[OVERQUOTA]"):
			t.Logf("APPEND on a full disk: NO without [OVERQUOTA]: %s", r[1])
		default:
			t.Logf("APPEND on a full disk: NO %s", r[1])
		}
	}
	checkNothingHalfWritten := func(when string, want []string) {
		t.Helper()
		var got []string
		for _, f := range scanInbox(t, s.inboxDir()) {
			got = append(got, f.subject)
			if !strings.HasSuffix(f.body, "end of "+f.subject+"\n") {
				t.Errorf("%s: incomplete message %s/%s (Subject %q, %d bytes)", when, f.sub, f.name, f.subject, len(f.body))
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: INBOX holds %q, want %q", when, got, want)
		}
		if left := listDir(filepath.Join(s.inboxDir(), "tmp")); len(left) > 0 {
			t.Errorf("%s: files left in the Maildir's tmp/: %q", when, left)
		}
		if left := listDir(filepath.Join(s.data, "tmp")); len(left) > 0 {
			t.Errorf("%s: staging files left in DATA/tmp: %q", when, left)
		}
		checkIndexMatchesMaildir(t, s)
	}
	checkNothingHalfWritten("disk full", []string{"before the fill", "appended before the fill"})

	// Space comes back; no restart.
	for _, f := range []string{filler, filler2} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := sendSMTP(s.addr(), from, to, testMessage(from, to, "during the fill", 200000)); err != nil {
		t.Errorf("SMTP after space came back (the client's retry): %v", err)
	}
	if err := sendSMTP(s.addr(), from, to, testMessage(from, to, "after the fill", 2000)); err != nil {
		t.Errorf("SMTP after space came back: %v", err)
	}
	if out := imapAppend(t, s.imap, [][2]any{{"appended after the fill", 20000}}); out[0][0] != "OK" {
		t.Errorf("APPEND after space came back: %v", out)
	}
	checkNothingHalfWritten("space back", []string{"before the fill", "appended before the fill", "during the fill", "after the fill", "appended after the fill"})
	if strings.Contains(s.logText(), "low disk space") {
		t.Logf("logged: %s", strings.SplitN(grepLines(s.logText(), "low disk space"), "\n", 2)[0])
	}
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}
