package imap_test

import (
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestSort: SORT and UID SORT by every key of RFC 5256 §3 and RFC 5957,
// with REVERSE, ties in mailbox order, and a search program.
func TestSort(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	msgs := []string{
		"From: Carol <carol@c.test>\r\nTo: zed@z.test\r\nCc: bob@b.test\r\nSubject: Re: [list] banana\r\nDate: Wed, 04 Jan 2026 10:00:00 +0000\r\n\r\nshort\r\n",
		"From: =?utf-8?q?=C3=81lvaro?= <alvaro@a.test>\r\nTo: amy@a.test\r\nSubject: apple\r\nDate: Tue, 03 Jan 2026 10:00:00 +0000\r\n\r\na longer body than the first\r\n",
		"From: bob@b.test\r\nSubject: Fwd: Apple (fwd)\r\nDate: not a date\r\n\r\nthe longest body of all three, by a few words\r\n",
		"From: Carol <carol@c.test>\r\nTo: amy@a.test\r\nSubject: cherry\r\nDate: Mon, 02 Jan 2026 23:00:00 -0500\r\n\r\nx\r\n",
	}
	for _, m := range msgs {
		e.deliver(t, m)
	}
	c := e.login(t)
	c.do("s SELECT INBOX", "s OK")
	for _, tc := range []struct{ cmd, want string }{
		{"SORT (SUBJECT) UTF-8 ALL", "* SORT 2 3 1 4"},         // apple, Apple (stable), banana, cherry
		{"SORT (REVERSE SUBJECT) UTF-8 ALL", "* SORT 4 1 2 3"}, // ties keep mailbox order under REVERSE
		{"SORT (FROM) UTF-8 ALL", "* SORT 2 3 1 4"},            // alvaro, bob, carol, carol
		{"SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 3 1 4 2"},     // bob@b.test, Carol, Carol, Álvaro (octets)
		{"SORT (TO) UTF-8 ALL", "* SORT 3 2 4 1"},              // "" < amy = amy < zed
		{"SORT (CC SUBJECT) UTF-8 ALL", "* SORT 2 3 4 1"},      // no Cc first, by subject; then bob
		{"SORT (SIZE) US-ASCII ALL", "* SORT " + bySize(msgs)},
		{"SORT (ARRIVAL) UTF-8 ALL", "* SORT 1 2 3 4"},
		{"SORT (DATE) UTF-8 ALL", "* SORT 4 2 1 3"}, // 4 is Jan 3 04:00 UTC; 3 has no date: its arrival
		{"SORT (REVERSE DATE) UTF-8 FROM carol", "* SORT 1 4"},
		{"UID SORT (SUBJECT) UTF-8 UNSEEN", "* SORT 2 3 1 4"},
		{"SORT (SUBJECT) UTF-8 SUBJECT nothing", "* SORT"},
	} {
		out := c.do("t "+tc.cmd, "t OK")
		if !contains(out, tc.want) || strings.HasPrefix(out[0], tc.want+" ") {
			t.Errorf("%s: got %q, want %q", tc.cmd, out, tc.want)
		}
	}
	for _, bad := range []string{"SORT SUBJECT UTF-8 ALL", "SORT () UTF-8 ALL", "SORT (REVERSE) UTF-8 ALL", "SORT (NAME) UTF-8 ALL", "SORT (SUBJECT)"} {
		c.do("b "+bad, "b BAD")
	}
	c.do("n SORT (SUBJECT) KOI8-R ALL", "n NO [BADCHARSET")
	c.do("o SORT (SUBJECT) ALL", "o NO [BADCHARSET") // the charset is not optional
	c.do("z NOOP", "z OK")
}

// bySize lists the sequence numbers of msgs from the smallest.
func bySize(msgs []string) string {
	idx := make([]int, len(msgs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return len(msgs[idx[a]]) < len(msgs[idx[b]]) })
	var out []string
	for _, i := range idx {
		out = append(out, strconv.Itoa(i+1))
	}
	return strings.Join(out, " ")
}
