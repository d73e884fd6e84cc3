package e2e_test

import (
	"strings"
	"testing"
)

// TestAliases sends with swaks to a two-target alias, an unknown address
// caught by the domain's catch-all, and a sub-address, and reads the
// result with Python's mailbox module.
func TestAliases(t *testing.T) {
	t.Parallel()
	s := newServer(t, opts{
		users: []string{"me@example.test", "other@example.test"},
		aliases: [][]string{
			{"info@example.test", "me@example.test", "other@example.test"},
			{"@example.test", "me@example.test"},
		},
	})
	for _, c := range []struct{ to, subject string }{
		{"info@example.test", "to the info alias"},
		{"unknown@example.test", "to nobody in particular"},
		{"me+tag@example.test", "to a sub-address"},
		{"Other@Example.Test", "case-insensitive"},
	} {
		swaks(t, s.addr(), "--from", "you@example.net", "--to", c.to, "--header", "Subject: "+c.subject)
	}
	st := s.mail()
	if n := len(st.inbox("me@example.test")); n != 3 {
		t.Errorf("me@example.test has %d messages, want 3", n)
	}
	if n := len(st.inbox("other@example.test")); n != 2 {
		t.Errorf("other@example.test has %d messages, want 2", n)
	}
	for _, acct := range []string{"me@example.test", "other@example.test"} {
		m := wantOne(t, st, acct, "to the info alias")
		checkTrace(t, m, "<you@example.net>", acct)
		// RFC 5321 §4.4: the Received "for" clause names the RCPT given.
		if !strings.Contains(m.Received[0], "for <info@example.test>") {
			t.Errorf("%s: Received = %q, want for <info@example.test>", acct, m.Received[0])
		}
	}
	checkTrace(t, wantOne(t, st, "me@example.test", "to nobody in particular"), "<you@example.net>", "me@example.test")
	checkTrace(t, wantOne(t, st, "me@example.test", "to a sub-address"), "<you@example.net>", "me@example.test")
	checkTrace(t, wantOne(t, st, "other@example.test", "case-insensitive"), "<you@example.net>", "other@example.test")
}
