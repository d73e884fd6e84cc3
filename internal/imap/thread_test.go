package imap_test

import (
	"fmt"
	"testing"
)

// TestThread: THREAD=REFERENCES links by References and In-Reply-To,
// keeps a dummy for a missing parent with several children, gathers
// same-subject threads (a reply under the original), ignores a
// self-reference, and orders by date; ORDEREDSUBJECT groups by base
// subject alone (RFC 5256 §3).
func TestThread(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	msg := func(id, refs, subject string, day int) string {
		h := fmt.Sprintf("Message-ID: <%s@x.test>\r\nSubject: %s\r\nDate: %02d Jan 2026 10:00:00 +0000\r\n", id, subject, day)
		if refs != "" {
			h += "References: " + refs + "\r\n"
		}
		return h + "\r\nbody\r\n"
	}
	for _, m := range []string{
		msg("a", "", "Hello", 2),                          // 1
		msg("b", "<a@x.test>", "Re: Hello", 3),            // 2
		msg("c", "<a@x.test> <b@x.test>", "Re: Hello", 4), // 3
		msg("d", "<x@x.test>", "Other", 5),                // 4
		msg("e", "<x@x.test>", "Re: Other", 6),            // 5
		msg("f", "", "Re: Hello", 7),                      // 6
		msg("g", "", "Lonely", 1),                         // 7
		msg("h", "<h@x.test>", "Zed", 8),                  // 8
		"Subject: [list] Re: Fwd: hello (fwd)\r\nIn-Reply-To: <b@x.test>\r\nDate: 09 Jan 2026 10:00:00 +0000\r\n\r\nx\r\n", // 9
	} {
		e.deliver(t, m)
	}
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	for _, tc := range []struct{ cmd, want string }{
		{"THREAD REFERENCES UTF-8 ALL", "* THREAD (7)(1 (2 (3)(9))(6))((4)(5))(8)"},
		{"THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD (7)(1 (2)(3)(6)(9))(4 5)(8)"},
		{"UID THREAD REFERENCES UTF-8 NOT SUBJECT Lonely", "* THREAD (1 (2 (3)(9))(6))((4)(5))(8)"},
		{"THREAD REFERENCES UTF-8 SUBJECT Other", "* THREAD ((4)(5))"},
		{"THREAD REFERENCES UTF-8 SUBJECT nothing", "* THREAD"},
	} {
		out := c.do("t "+tc.cmd, "t OK")
		if out[0] != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.cmd, out[0], tc.want)
		}
	}
	c.do("b THREAD NOSUCH UTF-8 ALL", "b BAD")
	c.do("b THREAD REFERENCES ALL", "b NO [BADCHARSET")
	c.do("z NOOP", "z OK")
}
