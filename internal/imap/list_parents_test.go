package imap_test

import (
	"slices"
	"strings"
	"testing"
)

// listLines returns the untagged lines of out that start with prefix.
func listLines(out []string, prefix string) []string {
	var ls []string
	for _, l := range out {
		if strings.HasPrefix(l, prefix) {
			ls = append(ls, l)
		}
	}
	return ls
}

// After DELETE of the parents of P2/a/b, "%" still finds the way down:
// each level comes once, \Noselect for IMAP4rev1 (RFC 3501 §6.3.8),
// \NonExistent for LIST-EXTENDED and IMAP4rev2 (RFC 5258 §3, RFC 9051
// §6.3.9), in name order and without STATUS; "*" and a selection need
// no such line.
func TestListPercentShowsDeletedParents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	c.do("a CREATE P2/a/b", "a OK")
	c.do("b DELETE P2/a", "b OK")
	c.do("c DELETE P2", "c OK")
	c.do("d CREATE O1", "d OK")
	c.do("e CREATE Q1", "e OK")

	out := listLines(c.do(`f LIST "" "%"`, "f OK"), "* LIST")
	want := `* LIST (\Noselect \HasChildren) "/" "P2"`
	i := slices.Index(out, want)
	if i < 1 || i+1 >= len(out) || !strings.HasSuffix(out[i-1], `"O1"`) || !strings.HasSuffix(out[i+1], `"Q1"`) || len(listLines(out, want)) != 1 {
		t.Errorf(`LIST "" "%%": want %q once between O1 and Q1: %q`, want, out)
	}
	out = c.do(`g LIST "" "P2/%"`, "g OK")
	if !contains(out, `* LIST (\Noselect \HasChildren) "/" "P2/a"`) {
		t.Errorf(`LIST "" "P2/%%": %q`, out)
	}
	out = c.do(`h LIST "" "*"`, "h OK")
	if contains(out, `"P2"`) || contains(out, `"P2/a"`) || !contains(out, `"P2/a/b"`) {
		t.Errorf(`LIST "" "*": %q`, out)
	}
	out = c.do(`i LIST "" "%" RETURN (STATUS (MESSAGES))`, "i OK")
	if !contains(out, `* LIST (\NonExistent \HasChildren) "/" "P2"`) || contains(out, `STATUS "P2"`) {
		t.Errorf("LIST-EXTENDED: %q", out)
	}
	// Deleted, P2 and P2/a stay subscribed (RFC 9051 §6.3.7): drop that.
	c.do("j1 UNSUBSCRIBE P2", "j1 OK")
	c.do("j2 UNSUBSCRIBE P2/a", "j2 OK")
	if out = c.do(`j LIST (SUBSCRIBED) "" "%"`, "j OK"); contains(out, `"P2"`) {
		t.Errorf("a selection lists no level without RECURSIVEMATCH: %q", out)
	}
	c.do("k ENABLE IMAP4rev2", "k OK")
	out = c.do(`l LIST "" "%"`, "l OK")
	if !contains(out, `* LIST (\NonExistent \HasChildren) "/" "P2"`) {
		t.Errorf("IMAP4rev2: %q", out)
	}
}

// subscribeOnly makes RM/x/y exist with only it subscribed.
func subscribeOnly(c *client) {
	c.do("s1 CREATE RM/x/y", "s1 OK")
	c.do("s2 UNSUBSCRIBE RM", "s2 ")
	c.do("s3 UNSUBSCRIBE RM/x", "s3 ")
	c.do("s4 SUBSCRIBE RM/x/y", "s4 OK")
}

// LSUB "%" returns an unsubscribed level above a subscribed mailbox with
// \Noselect (RFC 3501 §6.3.9), and "*" does not need it.
func TestLsubPercentShowsUnsubscribedLevel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	subscribeOnly(c)
	out := c.do(`a LSUB "" "RM/%"`, "a OK")
	if !contains(out, `* LSUB (\Noselect \HasChildren) "/" "RM/x"`) {
		t.Errorf(`LSUB "" "RM/%%": %q`, out)
	}
	out = c.do(`b LSUB "" "*"`, "b OK")
	if contains(out, `"RM/x"`) || contains(out, `"RM"`) || !contains(out, `"RM/x/y"`) {
		t.Errorf(`LSUB "" "*": %q`, out)
	}
}

// RECURSIVEMATCH returns a name whose descendant, beyond the pattern,
// meets the selection, with CHILDINFO: a mailbox as it is, a name that
// is none with \NonExistent (RFC 5258 §3, §4; RFC 9051 §6.3.9).
func TestListRecursiveMatchChildInfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	subscribeOnly(c)
	out := c.do(`a LIST (SUBSCRIBED RECURSIVEMATCH) "" "RM%"`, "a OK")
	if !contains(out, `* LIST (\HasChildren) "/" "RM" ("CHILDINFO" ("SUBSCRIBED"))`) {
		t.Errorf("RECURSIVEMATCH: %q", out)
	}
	if out = c.do(`b LIST (SUBSCRIBED) "" "RM%"`, "b OK"); contains(out, `"RM"`) {
		t.Errorf("without RECURSIVEMATCH: %q", out)
	}
	c.do("c SUBSCRIBE RM", "c OK")
	c.do("d DELETE RM/x", "d OK")
	out = c.do(`e LIST (SUBSCRIBED RECURSIVEMATCH) "" "%/%"`, "e OK")
	if !contains(out, `* LIST (\NonExistent \HasChildren) "/" "RM/x" ("CHILDINFO" ("SUBSCRIBED"))`) {
		t.Errorf("RECURSIVEMATCH, deleted parent: %q", out)
	}
	out = c.do(`f LIST (SUBSCRIBED RECURSIVEMATCH) "" "RM"`, "f OK")
	if !contains(out, `* LIST (\HasChildren \Subscribed) "/" "RM" ("CHILDINFO" ("SUBSCRIBED"))`) {
		t.Errorf("RECURSIVEMATCH, subscribed parent: %q", out)
	}
}

// RECURSIVEMATCH alone, or with only REMOTE, is BAD (RFC 5258 §3).
func TestListRecursiveMatchAloneIsBad(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	c.do(`a LIST (RECURSIVEMATCH) "" "*"`, "a BAD")
	c.do(`b LIST (REMOTE RECURSIVEMATCH) "" "*"`, "b BAD")
	c.do(`c LIST (RECURSIVEMATCH SUBSCRIBED) "" "*"`, "c OK")
	c.do("d NOOP", "d OK")
}

// A subscription outlives its mailbox (RFC 9051 §6.3.7: the server must
// not remove it): LIST (SUBSCRIBED) returns it \NonExistent \Subscribed
// (RFC 5258 §3), LSUB \Noselect, plain LIST not at all; a name may be
// subscribed before it exists, and creating it takes the subscription
// over, so that UNSUBSCRIBE and DELETE then leave nothing behind.
func TestSubscriptionOutlivesMailbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login(t)
	c.do("a CREATE Gone", "a OK")
	c.do("b SUBSCRIBE Gone", "b OK")
	c.do("c DELETE Gone", "c OK")
	if out := c.do(`d LIST (SUBSCRIBED) "" "*"`, "d OK"); !contains(out, `* LIST (\NonExistent \Subscribed) "/" "Gone"`) {
		t.Errorf("LIST (SUBSCRIBED) after DELETE: %q", out)
	}
	if out := c.do(`e1 LIST (SUBSCRIBED SPECIAL-USE) "" "*"`, "e1 OK"); contains(out, `"Gone"`) {
		t.Errorf("a subscription alone has no special use: %q", out)
	}
	if out := c.do(`e LSUB "" "G*"`, "e OK"); !contains(out, `* LSUB (\Noselect) "/" "Gone"`) {
		t.Errorf("LSUB after DELETE: %q", out)
	}
	if out := c.do(`f LIST "" "*" RETURN (SUBSCRIBED STATUS (MESSAGES))`, "f OK"); contains(out, `"Gone"`) {
		t.Errorf("plain LIST names a subscription alone: %q", out)
	}
	c.do("g SUBSCRIBE Later/Box", "g OK")
	if out := c.do(`h LIST (SUBSCRIBED) "" "Later/*"`, "h OK"); !contains(out, `* LIST (\NonExistent \Subscribed) "/" "Later/Box"`) {
		t.Errorf("subscribed before CREATE: %q", out)
	}
	c.do("i CREATE Gone", "i OK")
	if out := c.do(`j LIST (SUBSCRIBED) "" "Gone"`, "j OK"); !contains(out, `* LIST (\HasNoChildren \Subscribed) "/" "Gone"`) || len(listLines(out, "* LIST")) != 1 {
		t.Errorf("re-created: %q", out)
	}
	c.do("k UNSUBSCRIBE Gone", "k OK")
	c.do("l DELETE Gone", "l OK")
	c.do("m UNSUBSCRIBE Later/Box", "m OK")
	if out := c.do(`n LSUB "" "*"`, "n OK"); contains(out, `"Gone"`) || contains(out, `"Later/Box"`) {
		t.Errorf("after UNSUBSCRIBE: %q", out)
	}
	c.do("o SUBSCRIBE ../x", "o NO")
}
