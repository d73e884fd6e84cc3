package imap_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"posthorn/internal/imap"
	"posthorn/internal/store"
)

// hookBackend runs hook once, just before the next Changes of a session
// that has armed it: another session's work landing between the moment
// a command took its view and the moment it asked for changes.
type hookBackend struct {
	imap.Backend
	mu   sync.Mutex
	hook func()
}

func (b *hookBackend) Login(ctx context.Context, ip netip.Addr, user, pw string) (imap.User, error) {
	u, err := b.Backend.Login(ctx, ip, user, pw)
	if err != nil {
		return nil, err
	}
	return &hookUser{User: u, b: b}, nil
}

type hookUser struct {
	imap.User
	b *hookBackend
}

func (u *hookUser) Changes(ctx context.Context, name string, since uint64) (imap.Changes, error) {
	u.b.mu.Lock()
	h := u.b.hook
	u.b.hook = nil
	u.b.mu.Unlock()
	if h != nil {
		h()
	}
	return u.User.Changes(ctx, name, since)
}

func (b *hookBackend) arm(h func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hook = h
}

// TestQresyncSelectVanishedMatchesView: a message expunged by another
// session after SELECT took its view, but before it looked for changes,
// is not named in VANISHED (EARLIER): the view still counts it (EXISTS,
// sequence numbers), and the client that dropped it numbered every later
// message one off. It is reported as VANISHED at the next poll.
func TestQresyncSelectVanishedMatchesView(t *testing.T) {
	t.Parallel()
	hb := &hookBackend{}
	e := newEnv(t, func(o *imap.Options) { hb.Backend = o.Backend; o.Backend = hb })
	for range 3 {
		e.deliver(t, msg1)
	}
	ctx := context.Background()
	c := e.login(t)
	c.do("e ENABLE QRESYNC", "e OK")
	var validity string
	for _, l := range c.do("a SELECT INBOX", "a OK") {
		if v, ok := strings.CutPrefix(l, "* OK [UIDVALIDITY "); ok {
			validity, _, _ = strings.Cut(v, "]")
		}
	}
	c.do("u UNSELECT", "u OK")
	hb.arm(func() {
		if _, _, err := e.st.SetFlags(ctx, "me@example.test", "INBOX", []uint32{2}, store.FlagsAdd, []string{`\Deleted`}, 0); err != nil {
			t.Error(err)
		}
		if _, err := e.st.Expunge(ctx, "me@example.test", "INBOX", []uint32{2}); err != nil {
			t.Error(err)
		}
	})
	out := c.do("b SELECT INBOX (QRESYNC ("+validity+" 1 1:3))", "b OK")
	if contains(out, "* 3 EXISTS") && contains(out, "VANISHED (EARLIER) 2") {
		t.Errorf("UID 2 named vanished while EXISTS still counts it: %q", out)
	}
	if out := c.do("n NOOP", "n OK"); contains(out, "* 3 EXISTS") && !contains(out, "* VANISHED 2") {
		t.Errorf("the expunge was never reported: %q", out)
	}
	out = c.do("f FETCH 1:* (UID)", "f OK")
	if len(out) != 3 || !contains(out, "* 2 FETCH (UID 3)") {
		t.Errorf("view after the expunge: %q", out)
	}
}

// TestRacesWithAnotherSession: a message file gone while a command reads
// it gives NO [EXPUNGEISSUED], not [SERVERBUG]; MOVE and COPY of
// messages all expunged meanwhile carry no COPYUID with empty sets (RFC
// 4315 §3); a STORE of a flag another session already set answers with
// the current flags, not the session's older view.
func TestRacesWithAnotherSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for range 4 {
		e.deliver(t, msg1)
	}
	a, b := e.login(t), e.login(t)
	a.do("a SELECT INBOX", "a OK")
	b.do("b SELECT INBOX", "b OK")

	dir, err := e.st.MaildirPath(context.Background(), "me@example.test")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "new", "*"))
	if len(files) != 4 {
		t.Fatalf("%d files", len(files))
	}
	os.Remove(files[0]) // gone under the session, as when another one expunges it
	out := a.do("f FETCH 1:4 (BODY.PEEK[])", "f ")
	if last := out[len(out)-1]; strings.Contains(last, "SERVERBUG") || !strings.Contains(last, "EXPUNGEISSUED") {
		t.Errorf("FETCH of a vanished file: %q", last)
	}

	b.do(`s STORE 3 +FLAGS (\Deleted)`, "s OK")
	b.do("x EXPUNGE", "x OK")
	if out := a.do("m UID MOVE 3 Trash", "m OK"); contains(out, "COPYUID") && strings.Contains(strings.Join(out, "\n"), "  ]") {
		t.Errorf("COPYUID with empty sets: %q", out)
	}
	if out := a.do("c UID COPY 3 Trash", "c OK"); strings.Contains(out[len(out)-1], "COPYUID") {
		t.Errorf("COPYUID for nothing copied: %q", out)
	}

	b.do(`t UID STORE 4 +FLAGS (\Flagged)`, "t OK")
	out = a.do(`g UID STORE 4 +FLAGS (\Flagged)`, "g OK")
	for _, l := range out {
		if strings.Contains(l, "FETCH") && !strings.Contains(l, `\Flagged`) {
			t.Errorf("STORE answered with flags without the one stored: %q", out)
		}
	}
}
