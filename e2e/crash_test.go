package e2e_test

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crashSenders runs 8 smtplib senders in threads. Each sends numbered
// messages msg-<sender>-<n> in a loop; a message is retried until it gets a
// 250 after DATA (a new connection after any failure). It stops when the
// stop file appears or the deadline passes and prints, per subject, how
// many attempts were made and which got their 250.
const crashSenders = `
import threading
senders, stopfile, deadline = int(sys.argv[1]), sys.argv[2], time.time() + float(sys.argv[3])
lock = threading.Lock()
acked, tries, errors, rejected = [], {}, {}, []

def message(subj):
    filler = "".join("line %03d of %s: the quick brown fox jumps over the lazy dog\r\n" % (k, subj) for k in range(30))
    return ("From: sender@client.example.net\r\nTo: me@example.test\r\nSubject: %s\r\n"
            "Message-ID: <%s@client.example.net>\r\n\r\n%send of %s\r\n" % (subj, subj, filler, subj)).encode()

def sender(i):
    n, s = 0, None
    while time.time() < deadline and not os.path.exists(stopfile):
        subj = "msg-%d-%d" % (i, n)
        try:
            if s is None:
                s = smtplib.SMTP(HOST, PORT, local_hostname="sender%d.example.net" % i, timeout=5)
            with lock:
                tries[subj] = tries.get(subj, 0) + 1
            s.sendmail("sender%d@client.example.net" % i, ["me@example.test"], message(subj))
            with lock:
                acked.append([subj, time.time()])
            n += 1
            continue
        except smtplib.SMTPResponseException as e:
            kind = "%d" % e.smtp_code
            if 500 <= e.smtp_code < 600 and not isinstance(e, smtplib.SMTPServerDisconnected):
                with lock:
                    rejected.append([subj, e.smtp_code, str(e.smtp_error)])
                n += 1
        except smtplib.SMTPRecipientsRefused as e:
            kind = "rcpt refused"
        except (OSError, smtplib.SMTPException) as e:
            kind = type(e).__name__
        with lock:
            errors[kind] = errors.get(kind, 0) + 1
        try:
            if s is not None:
                s.close()
        except Exception:
            pass
        s = None
        time.sleep(0.02)
    if s is not None:
        try:
            s.quit()
        except Exception:
            pass

threads = [threading.Thread(target=sender, args=(i,)) for i in range(senders)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"acked": acked, "tries": tries, "errors": errors, "rejected": rejected}))
`

// TestCrashKill9 kills the server with SIGKILL under load, three times at
// random moments (killSchedule), restarting it on the same data directory each time.
// Every message that got its 250 must be in the Maildir, complete; a
// message sent once and acknowledged must be there exactly once. Only a
// message with an attempt whose 250 was lost (and was then retried) may be
// there more than once, and never more often than it was sent.
func TestCrashKill9(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{})
	stopFile := filepath.Join(t.TempDir(), "stop")
	start := time.Now()
	py := startPython(t, s, 50*time.Second, crashSenders, "8", stopFile, "40")

	rng, seed := killSchedule(t)
	var restarts []time.Time
	for round := range 3 {
		after := 700*time.Millisecond + time.Duration(rng.Int64N(int64(1800*time.Millisecond)))
		t.Logf("kill %d after %v (seed %d)", round+1, after.Round(time.Millisecond), seed)
		time.Sleep(after)
		s.kill9()
		time.Sleep(100 * time.Millisecond) // senders meet a closed port
		s.restart()
		restarts = append(restarts, time.Now())
	}
	time.Sleep(1500 * time.Millisecond) // the senders retry and go on
	if err := os.WriteFile(stopFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Acked    [][2]any       `json:"acked"` // subject, unix time
		Tries    map[string]int `json:"tries"`
		Errors   map[string]int
		Rejected [][]any
	}
	if err := json.Unmarshal([]byte(py.finish(t, 20*time.Second)), &got); err != nil {
		t.Fatalf("senders' output: %v", err)
	}
	s.stop()
	st := s.mail()
	t.Logf("load ran %v; %d messages acknowledged, %d distinct messages tried; client errors %v",
		time.Since(start).Round(time.Millisecond), len(got.Acked), len(got.Tries), got.Errors)

	if len(got.Rejected) > 0 {
		t.Errorf("permanent refusals under load: %v", got.Rejected)
	}
	acked := map[string]bool{}
	lastRestart := float64(restarts[len(restarts)-1].UnixNano()) / 1e9
	ackedAfterLast := 0
	for _, a := range got.Acked {
		subj, _ := a[0].(string)
		when, _ := a[1].(float64)
		acked[subj] = true
		if when > lastRestart {
			ackedAfterLast++
		}
	}
	if ackedAfterLast == 0 {
		t.Errorf("no message acknowledged after the last restart: the server did not recover")
	}

	count := map[string]int{}
	for _, m := range st.inbox("me@example.test") {
		count[m.Subject]++
		if !strings.HasPrefix(m.Subject, "msg-") || !strings.HasSuffix(m.Body, "end of "+m.Subject+"\n") {
			t.Errorf("incomplete or foreign message visible in %s/: key %s, Subject %q, body ends %q",
				m.Subdir, m.Key, m.Subject, tail([]byte(m.Body), 40))
		}
	}
	var lost, dupAcked, dupRetried, unsent []string
	for subj := range acked {
		switch n := count[subj]; {
		case n == 0:
			lost = append(lost, subj)
		case n > 1 && got.Tries[subj] == 1:
			dupAcked = append(dupAcked, subj)
		}
	}
	for subj, n := range count {
		switch {
		case n > got.Tries[subj]:
			unsent = append(unsent, subj)
		case n > 1 && got.Tries[subj] > 1:
			dupRetried = append(dupRetried, subj)
		}
	}
	sort.Strings(lost)
	sort.Strings(dupAcked)
	sort.Strings(dupRetried)
	sort.Strings(unsent)
	if len(lost) > 0 {
		t.Errorf("%d acknowledged messages lost: %v", len(lost), lost)
	}
	if len(dupAcked) > 0 {
		t.Errorf("%d messages sent once, acknowledged, and delivered more than once: %v", len(dupAcked), dupAcked)
	}
	if len(unsent) > 0 {
		t.Errorf("%d messages delivered more often than they were sent: %v", len(unsent), unsent)
	}
	if len(dupRetried) > 0 {
		t.Logf("%d duplicates of messages retried after a lost 250 (allowed): %v", len(dupRetried), dupRetried)
	}
	unacked := 0
	for subj := range count {
		if !acked[subj] {
			unacked++
		}
	}
	t.Logf("delivered %d distinct messages: %d acknowledged, %d never acknowledged", len(count), len(acked), unacked)
	for acct, md := range st.Accounts {
		if len(md.Tmp) > 0 {
			t.Logf("%s: %d files left in tmp/ by the kills (not messages): %q", acct, len(md.Tmp), md.Tmp)
		}
	}
	// The daemon removes staging files of a crashed run when it starts,
	// and the last run ended gracefully.
	if len(st.SpoolTmp) > 0 {
		t.Errorf("%d staging files left in DATA/tmp: %q", len(st.SpoolTmp), st.SpoolTmp)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("crash test took %v, budget 60s", d)
	}
}

// killSchedule returns the random source for the moments of SIGKILL and
// its seed: POSTHORN_KILL_SEED when set (to repeat a run), else the clock,
// so that every run tries a different schedule. The seed is logged.
func killSchedule(t *testing.T) (*rand.Rand, uint64) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("POSTHORN_KILL_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("POSTHORN_KILL_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("kill schedule seed %d (repeat with POSTHORN_KILL_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 7)), seed
}
