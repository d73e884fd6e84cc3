package unixmail

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestForwardSelfSubaddress: the user's own sub-address in .forward is
// the user's mailbox, as "\user" and "user" are. It was lost: with
// another target next to it silently, alone as "No such user".
func TestForwardSelfSubaddress(t *testing.T) {
	s, dir := host(t, "carol+list: bob\n", nil)
	fwd := func(user, text string) { write(t, filepath.Join(dir, "home", user, ".forward"), text, 0o644) }
	fwd("alice", "alice+archive, carol\n")
	resolveTwice(t, s, "alice", []string{"mbox:alice", "mbox:carol"}, nil)
	fwd("alice", "alice+archive\n")
	resolveTwice(t, s, "alice", []string{"mbox:alice"}, nil)
	fwd("alice", "\\alice+archive\n")
	resolveTwice(t, s, "alice", []string{"mbox:alice"}, nil)
	fwd("alice", "alice+archive@host.test, friend@remote.test\n")
	resolveTwice(t, s, "alice", []string{"addr:friend@remote.test", "mbox:alice"}, nil)
	// A sub-address that is an alias of its own is the alias.
	fwd("carol", "carol+list\n")
	resolveTwice(t, s, "carol", []string{"mbox:bob"}, nil)
}

// TestForwardLoop: a .forward loop is reported as a loop (Postfix: 5.4.6
// mail forwarding loop), not as "No such user"; a loop beside other
// targets leaves them be, and a name reached twice (not in a circle) is
// no loop.
func TestForwardLoop(t *testing.T) {
	s, dir := host(t, "staff: alice, team\nteam: alice, bob\n", nil)
	fwd := func(user, text string) { write(t, filepath.Join(dir, "home", user, ".forward"), text, 0o644) }
	fwd("alice", "bob\n")
	fwd("bob", "alice\n")
	for _, in := range []string{"alice", "bob", "staff"} {
		if got, err := s.Resolve(in); !errors.Is(err, ErrLoop) {
			t.Errorf("%s: %v %v, want ErrLoop", in, names(got), err)
		}
	}
	fwd("alice", "bob, friend@remote.test\n")
	resolveTwice(t, s, "alice", []string{"addr:friend@remote.test"}, nil)
	fwd("alice", "\\alice\n")
	fwd("bob", "\\bob\n")
	resolveTwice(t, s, "staff", []string{"mbox:alice", "mbox:bob"}, nil)
}

// TestIncludeUnusableDefers: an include file that cannot be used defers
// the alias with a configuration error; it bounced as "No such user".
func TestIncludeUnusableDefers(t *testing.T) {
	s, dir := host(t, "", nil)
	good := filepath.Join(dir, "good.txt")
	open := filepath.Join(dir, "writable.txt")
	write(t, good, "alice\n", 0o644)
	write(t, open, "alice\n", 0o666)
	owned := filepath.Join(dir, "owned.txt")
	write(t, owned, "alice\n", 0o644)
	if err := os.Chown(owned, 54321, 54321); err != nil {
		t.Fatalf("chown (the tests run as root): %v", err)
	}
	editAliases(t, dir, "list: :include:"+good+"\nmissing: :include:"+filepath.Join(dir, "nosuch.txt")+
		"\nopen: :include:"+open+"\nowned: :include:"+owned+"\nrel: :include:good.txt\nisdir: :include:"+dir+"\n")
	resolveTwice(t, s, "list", []string{"mbox:alice"}, nil)
	for _, in := range []string{"missing", "open", "owned", "rel", "isdir"} {
		resolveTwice(t, s, in, nil, ErrConfig)
	}
}
