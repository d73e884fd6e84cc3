package e2e_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestIMAPSelectedMailboxReplaced: while one session has a mailbox
// selected, another deletes it and creates one of the same name with new
// messages, or renames another mailbox onto the name. The first session's
// UIDs name nothing in the new mailbox: it must neither read nor flag nor
// expunge the new messages (Dovecot ends such a session with BYE, and so
// does posthorn).
func TestIMAPSelectedMailboxReplaced(t *testing.T) {
	t.Parallel()
	a := newAtkServer(t, atkOpts{})
	b, err := atkIMAP("127.0.0.1", a)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.close() }()
	n := 0
	cmd := func(c *atkConn, raw string) ([]string, string) {
		t.Helper()
		n++
		tag := fmt.Sprintf("t%d", n)
		lines, tagged, err := c.imapCmd(tag, tag+" "+raw+"\r\n", atkSlow)
		if err != nil && tagged == "" {
			return lines, "(closed: " + err.Error() + ")"
		}
		return lines, tagged
	}
	fill := func(box, prefix string) {
		t.Helper()
		if _, tagged := cmd(b, "CREATE "+box); !strings.Contains(tagged, "OK") {
			t.Fatalf("CREATE %s: %s", box, tagged)
		}
		for i := range 3 {
			msg := fmt.Sprintf("Subject: %s-%d\r\n\r\nbody\r\n", prefix, i)
			if _, tagged := cmd(b, fmt.Sprintf("APPEND %s {%d+}\r\n%s", box, len(msg), msg)); !strings.Contains(tagged, "OK") {
				t.Fatalf("APPEND to %s: %s", box, tagged)
			}
		}
	}
	count := func(box string) string {
		t.Helper()
		lines, _ := cmd(b, "STATUS "+box+" (MESSAGES)")
		return strings.Join(lines, " ")
	}
	for _, tc := range []struct {
		name    string
		replace func()
	}{
		{"deleted and created again", func() {
			cmd(b, "DELETE victim1")
			fill("victim1", "NEW")
		}},
		{"another renamed onto it", func() {
			fill("other2", "NEW")
			cmd(b, "RENAME victim2 gone2")
			cmd(b, "RENAME other2 victim2")
		}},
	} {
		box := "victim1"
		if strings.HasSuffix(tc.name, "onto it") {
			box = "victim2"
		}
		fill(box, "OLD")
		c, err := atkIMAP("127.0.0.1", a)
		if err != nil {
			t.Fatal(err)
		}
		if _, tagged := cmd(c, "SELECT "+box); !strings.Contains(tagged, "OK") {
			t.Fatalf("%s: SELECT: %s", tc.name, tagged)
		}
		tc.replace()
		var seen []string
		for _, raw := range []string{"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", "STORE 1:* +FLAGS (\\Deleted)", "EXPUNGE", "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"} {
			lines, tagged := cmd(c, raw)
			seen = append(seen, lines...)
			seen = append(seen, tagged)
		}
		all := strings.Join(seen, "\n")
		if strings.Contains(all, "NEW-") {
			t.Errorf("%s: the old session read the new mailbox's messages:\n%s", tc.name, all)
		}
		if !strings.Contains(all, "* BYE") {
			t.Errorf("%s: no BYE for the session whose mailbox went:\n%s", tc.name, all)
		}
		if got := count(box); !strings.Contains(got, "MESSAGES 3") {
			t.Errorf("%s: the new %s after the old session's STORE and EXPUNGE: %s", tc.name, box, got)
		}
		cmd(b, "EXAMINE "+box)
		lines, _ := cmd(b, "FETCH 1:* FLAGS")
		if f := strings.Join(lines, "\n"); strings.Contains(f, `\Deleted`) {
			t.Errorf("%s: the new mailbox's messages were flagged by the old session:\n%s", tc.name, f)
		}
		c.close()
	}

	// A session in IDLE on the mailbox hears BYE when it goes, and the
	// connection ends.
	fill("idled", "IDLE")
	c, err := atkIMAP("127.0.0.1", a)
	if err != nil {
		t.Fatal(err)
	}
	cmd(c, "SELECT idled")
	if err := c.send("i IDLE\r\n"); err != nil {
		t.Fatal(err)
	}
	if l, err := c.line(atkSlow); err != nil || !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q %v", l, err)
	}
	cmd(b, "DELETE idled")
	var heard []string
	var end error
	for {
		l, err := c.line(10 * time.Second)
		if err != nil {
			end = err
			break
		}
		heard = append(heard, l)
	}
	var ne net.Error
	if len(heard) == 0 || !strings.HasPrefix(heard[len(heard)-1], "* BYE") || errors.As(end, &ne) && ne.Timeout() {
		t.Errorf("IDLE on a deleted mailbox: %q, then %v; want a BYE and the end of the connection", heard, end)
	}
	c.close()

	// A session renaming its own selected mailbox (or a parent of it)
	// stays on it under the new name.
	fill("own/child", "OWN")
	if _, tagged := cmd(b, "SELECT own/child"); !strings.Contains(tagged, "OK") {
		t.Fatalf("SELECT own/child: %s", tagged)
	}
	cmd(b, "RENAME own mine")
	lines, tagged := cmd(b, "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	if all := strings.Join(append(lines, tagged), "\n"); !strings.Contains(tagged, "OK") || strings.Count(all, "OWN-") != 3 || strings.Contains(all, "BYE") {
		t.Errorf("after renaming the selected mailbox's parent:\n%s", all)
	}
	if _, tagged := cmd(b, "STORE 1 +FLAGS (\\Flagged)"); !strings.Contains(tagged, "OK") {
		t.Errorf("STORE after the rename: %s", tagged)
	}
	a.checkPanics(t)
}
