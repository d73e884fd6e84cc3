package e2e_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPostfixDeliversOverLMTP: Postfix in front (virtual_transport style:
// a transport map sends example.test to lmtp:inet:…) hands mail to
// posthorn's LMTP listener; the message is then read over IMAP with
// Python's imaplib. An unknown recipient is refused by LMTP and Postfix
// bounces it.
func TestPostfixDeliversOverLMTP(t *testing.T) {
	t.Parallel()
	s, p := accessServer(t)
	s.stop()
	lmtp := freePort(t)
	b, _ := os.ReadFile(s.config)
	os.WriteFile(s.config, []byte(strings.Replace(string(b), "[listen]\n", fmt.Sprintf("[listen]\nlmtp = [\"127.0.0.1:%d\"]\n", lmtp), 1)), 0o640)
	s.restart()

	pfPort := sharedPort(t, "127.0.0.7")
	pf := newPostfix(t, "front.test", "127.0.0.7", pfPort, []string{"pat"},
		map[string]string{"example.test": "lmtp:inet:127.0.0.1:" + strconv.Itoa(lmtp)})
	msg := "From: pat@front.test\nTo: me@example.test\nSubject: through postfix and lmtp\nMIME-Version: 1.0\n" +
		"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nvia LMTP: grüße\n"
	if r := run(t, 30*time.Second, msg, nil, postfixSendmail(t, pf), "-C", pf.conf, "-f", "pat@front.test", "me@example.test"); r.err != nil {
		t.Fatalf("postfix sendmail: %s", r)
	}
	if r := run(t, 30*time.Second, "Subject: nobody\n\nx\n", nil, postfixSendmail(t, pf), "-C", pf.conf, "-f", "pat@front.test", "nosuch@example.test"); r.err != nil {
		t.Fatalf("postfix sendmail: %s", r)
	}
	out := pyAccess(t, s, p, `
import time
m = login()
for _ in range(100):
    m.select("INBOX")
    typ, data = m.search(None, 'SUBJECT', '"through postfix"')
    if data[0]:
        break
    time.sleep(0.2)
typ, data = m.fetch(data[0].split()[0], "(BODY.PEEK[])")
raw = data[0][1]
print("HAS-RECEIVED-POSTFIX" if b"Received: from mx.front.test" in raw or b"by mx.front.test" in raw else "NO-POSTFIX-HOP")
print(raw.decode("utf-8").split("\r\n\r\n", 1)[1].strip())
`)
	if !strings.Contains(out, "via LMTP: grüße") || !strings.Contains(out, "HAS-RECEIVED-POSTFIX") {
		t.Errorf("over IMAP:\n%s", out)
	}
	// The refused recipient comes back to pat as Postfix's bounce.
	f := waitMaildir(t, pf.inbox("pat"), "Undelivered Mail Returned to Sender", 30*time.Second)
	if !strings.Contains(f.raw, "nosuch@example.test") {
		t.Errorf("bounce does not name the refused recipient:\n%s", f.raw)
	}
}
