package fetch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

func TestIMAPFetchAndDelete(t *testing.T) {
	t.Parallel()
	p := newIMAPPeer(t, nil)
	p.add(t, "INBOX", testMessage("one"), testMessage("two"), testMessage("three"))
	d := &memDeliverer{}
	f := newFetcher(t, p.source(), d, t.TempDir())
	st, err := once(t, f)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Fetched: 3, Deleted: 3}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if got, want := d.subjects(), []string{"one", "two", "three"}; !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
	if n := mailboxSize(t, p, "INBOX"); n != 0 {
		t.Errorf("%d messages left on the server, want 0", n)
	}
	d.mu.Lock()
	first := d.msgs[0]
	d.mu.Unlock()
	if first.from != "sender@remote.test" || first.account != "me@example.test" {
		t.Errorf("delivered from %q to %q", first.from, first.account)
	}
	h := header(first.msg)
	if !strings.HasPrefix(string(first.msg), "Received: from 127.0.0.1\r\n\tby mx.example.test (posthorn fetch) with IMAP\r\n") {
		t.Errorf("message does not start with our Received field:\n%s", first.msg)
	}
	if id := h.Get(IDField); !regexpMatch(`^test/INBOX/\d+/1$`, id) {
		t.Errorf("fetch id %q", id)
	}
	if st, err := once(t, f); err != nil || st != (Stats{}) {
		t.Errorf("second pass: %+v, %v; want nothing", st, err)
	}
}

func TestIMAPKeepFetchesOnlyNew(t *testing.T) {
	t.Parallel()
	p := newIMAPPeer(t, nil)
	p.add(t, "INBOX", testMessage("one"), testMessage("two"))
	d := &memDeliverer{}
	src := p.source()
	src.Keep = true
	dir := t.TempDir()
	f := newFetcher(t, src, d, dir)
	if st, err := once(t, f); err != nil || st.Fetched != 2 || st.Deleted != 0 {
		t.Fatalf("first pass: %+v, %v", st, err)
	}
	p.add(t, "INBOX", testMessage("three"))
	f.Close()
	f = newFetcher(t, src, d, dir) // state survives a restart
	if st, err := once(t, f); err != nil || st.Fetched != 1 {
		t.Fatalf("second pass: %+v, %v", st, err)
	}
	if got := d.subjects(); !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Errorf("delivered %q", got)
	}
	if n := mailboxSize(t, p, "INBOX"); n != 3 {
		t.Errorf("%d messages on the server, want 3 (keep)", n)
	}
}

// TestIMAPCrashWindows interrupts delivery at both sides of the store:
// before (nothing stored) and after (stored, but the fetcher never heard),
// then "restarts" with a new Fetcher on the same state.
func TestIMAPCrashWindows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		before, after bool
	}{{"before store", true, false}, {"after store", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newIMAPPeer(t, nil)
			p.add(t, "INBOX", testMessage("one"), testMessage("two"), testMessage("three"))
			d := &memDeliverer{}
			crash := func(msg []byte) error {
				if header(msg).Get("Subject") == "two" {
					return errCrash
				}
				return nil
			}
			if tc.before {
				d.before = crash
			} else {
				d.after = crash
			}
			dir := t.TempDir()
			f := newFetcher(t, p.source(), d, dir)
			if _, err := once(t, f); !errors.Is(err, errCrash) {
				t.Fatalf("first pass: %v, want the simulated crash", err)
			}
			f.Close()
			d.before, d.after = nil, nil
			f = newFetcher(t, p.source(), d, dir)
			if _, err := once(t, f); err != nil {
				t.Fatal(err)
			}
			if got := d.subjects(); !slices.Equal(got, []string{"one", "two", "three"}) {
				t.Errorf("delivered %q, want each once", got)
			}
			if d.resumed != 1 {
				t.Errorf("resumed %d deliveries, want 1", d.resumed)
			}
			if n := mailboxSize(t, p, "INBOX"); n != 0 {
				t.Errorf("%d messages left on the server", n)
			}
		})
	}
}

// TestIMAPUIDValidityChange: a folder re-created on the server gets new
// UIDs; what was delivered is not delivered again, what is new is.
func TestIMAPUIDValidityChange(t *testing.T) {
	t.Parallel()
	p := newIMAPPeer(t, nil, "Work")
	msgs := [][]byte{testMessage("one"), testMessage("two")}
	p.add(t, "Work", msgs...)
	d := &memDeliverer{}
	src := p.source()
	src.Keep, src.Folders = true, []string{"Work"}
	f := newFetcher(t, src, d, t.TempDir())
	if st, err := once(t, f); err != nil || st.Fetched != 2 {
		t.Fatalf("first pass: %+v, %v", st, err)
	}
	if err := p.user.Delete("Work"); err != nil {
		t.Fatal(err)
	}
	if err := p.user.Create("Work", nil); err != nil {
		t.Fatal(err)
	}
	p.add(t, "Work", append(msgs, testMessage("three"))...)
	st, err := once(t, f)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Fetched: 1, Duplicates: 2}); st != want {
		t.Errorf("after UIDVALIDITY change: %+v, want %+v", st, want)
	}
	if got := d.subjects(); !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Errorf("delivered %q", got)
	}
	if _, any := f.state.Legacy("Work", ""); any {
		t.Error("legacy fingerprints kept after a complete pass")
	}
}

func TestIMAPLimits(t *testing.T) {
	t.Parallel()
	p := newIMAPPeer(t, nil)
	big := append(testMessage("big"), strings.Repeat("x", 2<<20)...)
	loop := append([]byte("X-Posthorn-Fetch: test/INBOX/1/1\r\n"), testMessage("loop")...)
	p.add(t, "INBOX", testMessage("one"), big, loop, testMessage("refused"), testMessage("two"))
	d := &memDeliverer{before: func(msg []byte) error {
		if header(msg).Get("Subject") == "refused" {
			return fmt.Errorf("%w: no thanks", ErrRefused)
		}
		return nil
	}}
	f := newFetcher(t, p.source(), d, t.TempDir())
	st, err := once(t, f)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Fetched: 2, Skipped: 3, Deleted: 2}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if n := mailboxSize(t, p, "INBOX"); n != 3 {
		t.Errorf("%d messages on the server, want the 3 skipped", n)
	}
	if st, err := once(t, f); err != nil || st != (Stats{}) {
		t.Errorf("second pass: %+v, %v: skipped messages are not tried again", st, err)
	}
}

// TestIMAPIdleTwoFolders: Run watches two folders with IDLE; a message
// added to each arrives without waiting for the interval.
func TestIMAPIdleTwoFolders(t *testing.T) {
	t.Parallel()
	p := newIMAPPeer(t, nil, "Lists")
	d := &memDeliverer{}
	src := p.source()
	src.Idle, src.Folders, src.Interval = true, []string{"INBOX", "Lists"}, time.Hour
	f := newFetcher(t, src, d, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(300 * time.Millisecond) // both connections in IDLE
	start := time.Now()
	p.add(t, "INBOX", testMessage("in inbox"))
	p.add(t, "Lists", testMessage("in lists"))
	for d.count() < 2 {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("after 10s only %q arrived", d.subjects())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("both messages delivered %v after they were added", time.Since(start).Round(time.Millisecond))
	got := d.subjects()
	slices.Sort(got)
	if !slices.Equal(got, []string{"in inbox", "in lists"}) {
		t.Errorf("delivered %q", got)
	}
}

// TestIMAPReconnect: Run survives a server that refuses the login at
// first (backoff, then a new connection).
func TestIMAPReconnect(t *testing.T) {
	t.Parallel()
	p := newIMAPPeer(t, nil)
	p.add(t, "INBOX", testMessage("one"))
	d := &memDeliverer{}
	src := p.source()
	src.Idle = true
	var tries atomic.Int32
	src.Password = func(context.Context) (string, error) {
		if tries.Add(1) < 3 {
			return "wrong", nil
		}
		return "secret", nil
	}
	f := newFetcher(t, src, d, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for d.count() < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered after %d logins", tries.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIMAPTLSFingerprint(t *testing.T) {
	t.Parallel()
	conf, der := selfSigned(t)
	p := newIMAPPeer(t, conf)
	p.add(t, "INBOX", testMessage("one"))
	for _, tc := range []struct {
		name, fp string
		ok       bool
	}{
		{"pinned", Fingerprint(der), true},
		{"pinned with colons", colons(Fingerprint(der)), true},
		{"wrong pin", strings.Repeat("ab", 32), false},
		{"system roots", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := p.source()
			src.TLS, src.Insecure, src.Fingerprint, src.Keep = TLSImplicit, false, tc.fp, true
			f := newFetcher(t, src, &memDeliverer{}, t.TempDir())
			st, err := once(t, f)
			if tc.ok && (err != nil || st.Fetched != 1) {
				t.Errorf("got %+v, %v; want one message", st, err)
			}
			if !tc.ok && err == nil {
				t.Error("connected to a peer that does not match")
			}
		})
	}
}

func colons(hex string) string {
	var parts []string
	for i := 0; i < len(hex); i += 2 {
		parts = append(parts, strings.ToUpper(hex[i:i+2]))
	}
	return strings.Join(parts, ":")
}

// mailboxSize counts the messages of a folder on the peer.
func mailboxSize(t *testing.T, p *imapPeer, folder string) int {
	t.Helper()
	st, err := p.user.Status(folder, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	return int(*st.NumMessages)
}

// uvProxy sits between the fetcher and an IMAP peer and, after the
// fetcher's second body FETCH, makes the server announce a new
// UIDVALIDITY (a hostile or broken server; RFC 9051 §2.3.1.1 says old
// UIDs then mean nothing).
func uvProxy(t *testing.T, peer string) string {
	t.Helper()
	bodies := 0
	return uvProxyOn(t, peer, func(line string) bool {
		if strings.Contains(line, "BODY.PEEK[]") {
			bodies++
		}
		return bodies == 2 && strings.Contains(line, "BODY.PEEK[]")
	}, false)
}

// uvProxyOn injects the announcement after the client line for which
// trigger is true: before the server's next octets, or right after them
// (after, so that it arrives with the reply, in the same read).
func uvProxyOn(t *testing.T, peer string, trigger func(string) bool, after bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", peer)
		if err != nil {
			c.Close()
			return
		}
		inject := make(chan struct{}, 1)
		go func() { // server to client, with the announcement
			buf := make([]byte, 4096)
			for {
				n, err := s.Read(buf)
				out := buf[:n]
				select {
				case <-inject:
					ann := []byte("* OK [UIDVALIDITY 999] all UIDs changed\r\n")
					if after {
						out = append(append([]byte(nil), out...), ann...)
					} else {
						out = append(ann, out...)
					}
				default:
				}
				if len(out) > 0 {
					c.Write(out)
				}
				if err != nil {
					c.Close()
					return
				}
			}
		}()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if trigger(line) {
				inject <- struct{}{}
			}
			if _, werr := s.Write([]byte(line)); werr != nil || err != nil {
				s.Close()
				return
			}
		}
	}()
	return ln.Addr().String()
}

// TestIMAPUIDValidityMovedMidPass: when the server announces a new
// UIDVALIDITY in the middle of a pass, the message fetched under it is
// not delivered (it may be another one now), and nothing is deleted by
// the old UIDs (a hostile server made the fetcher expunge messages it
// never fetched).
func TestIMAPUIDValidityMovedMidPass(t *testing.T) {
	t.Parallel()
	p := newIMAPPeer(t, nil)
	p.add(t, "INBOX", testMessage("one"), testMessage("two"), testMessage("three"))
	src := p.source()
	host, port, _ := net.SplitHostPort(uvProxy(t, p.addr))
	src.Host = host
	src.Port, _ = strconv.Atoi(port)
	d := &memDeliverer{}
	f := newFetcher(t, src, d, t.TempDir())
	_, err := once(t, f)
	if !errors.Is(err, errUIDValidityMoved) {
		t.Fatalf("pass: %v, want errUIDValidityMoved", err)
	}
	if got := d.subjects(); len(got) > 1 {
		t.Errorf("delivered %q after the UIDVALIDITY moved, want at most the first", got)
	}
	if n := mailboxSize(t, p, "INBOX"); n != 3 {
		t.Errorf("%d messages left on the server, want all 3: nothing may be deleted by old UIDs", n)
	}
}

// TestIMAPUIDValidityMovedWithSelect: a new UIDVALIDITY sent in the same
// read as the SELECT response (right after its tagged OK) is not taken
// for the one SELECT announced: nothing is fetched by the old UIDs.
func TestIMAPUIDValidityMovedWithSelect(t *testing.T) {
	t.Parallel()
	p := newIMAPPeer(t, nil)
	p.add(t, "INBOX", testMessage("one"), testMessage("two"))
	src := p.source()
	host, port, _ := net.SplitHostPort(uvProxyOn(t, p.addr, func(l string) bool { return strings.Contains(strings.ToUpper(l), "SELECT") }, true))
	src.Host = host
	src.Port, _ = strconv.Atoi(port)
	d := &memDeliverer{}
	f := newFetcher(t, src, d, t.TempDir())
	if _, err := once(t, f); !errors.Is(err, errUIDValidityMoved) {
		t.Fatalf("pass: %v, want errUIDValidityMoved", err)
	}
	if got := d.subjects(); len(got) != 0 || mailboxSize(t, p, "INBOX") != 2 {
		t.Errorf("delivered %q, %d left on the server; want nothing fetched, 2 left", got, mailboxSize(t, p, "INBOX"))
	}
}

// TestRunSurvivesPanic: a panic in a pass (here the deliverer's; in the
// field, a parser meeting what a hostile server sent) is counted and the
// pass retried with the backoff: it used to end the daemon, and again at
// every start while the server sent the same.
func TestRunSurvivesPanic(t *testing.T) {
	t.Parallel()
	p := newIMAPPeer(t, nil)
	p.add(t, "INBOX", testMessage("one"), testMessage("two"))
	var calls atomic.Int32
	d := &memDeliverer{before: func([]byte) error {
		if calls.Add(1) == 1 {
			panic("deliverer bug")
		}
		return nil
	}}
	src := p.source()
	src.Interval = 50 * time.Millisecond
	f := newFetcher(t, src, d, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for d.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if got := d.subjects(); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("delivered %q after the panic, want one and two", got)
	}
	if n := f.Panics(); n != 1 {
		t.Errorf("Panics() = %d, want 1", n)
	}
}

// emptyBodies answers every BODY[] with an empty literal, {0}, as a
// server does that cannot read a message file for now.
type emptyBodies struct {
	imapserver.SessionIMAP4rev2
	on *atomic.Bool
}

func (s emptyBodies) Fetch(w *imapserver.FetchWriter, set imap.NumSet, o *imap.FetchOptions) error {
	uids, ok := set.(imap.UIDSet)
	whole := len(o.BodySection) == 1 && o.BodySection[0].Specifier == imap.PartSpecifierNone && len(o.BodySection[0].Part) == 0
	if !s.on.Load() || !whole || !ok {
		return s.SessionIMAP4rev2.Fetch(w, set, o)
	}
	n, _ := uids.Nums()
	for i, uid := range n {
		m := w.CreateMessage(uint32(i + 1)) // one message per test mailbox
		m.WriteUID(uid)
		for _, sec := range o.BodySection {
			m.WriteBodySection(sec, 0).Close()
		}
		if err := m.Close(); err != nil {
			return err
		}
	}
	return nil
}

// TestIMAPEmptyBodyIsNoMessage: BODY[] {0} for a message listed with a
// size fails the pass; delivering the empty literal recorded the message
// as fetched (and deleted it on the server) while its content was lost.
func TestIMAPEmptyBodyIsNoMessage(t *testing.T) {
	t.Parallel()
	var broken atomic.Bool
	broken.Store(true)
	p := newWrappedIMAPPeer(t, nil, func(s imapserver.Session) imapserver.Session {
		return emptyBodies{s.(imapserver.SessionIMAP4rev2), &broken}
	})
	p.add(t, "INBOX", testMessage("one"))
	d := &memDeliverer{}
	f := newFetcher(t, p.source(), d, t.TempDir())
	if st, err := once(t, f); err == nil || st.Fetched != 0 || d.count() != 0 {
		t.Fatalf("empty body: stats %+v, err %v, %d delivered; want an error and nothing", st, err, d.count())
	}
	if n := mailboxSize(t, p, "INBOX"); n != 1 {
		t.Fatalf("%d messages on the server, want 1", n)
	}
	broken.Store(false) // the server recovers: the next pass gets it
	if st, err := once(t, f); err != nil || st.Fetched != 1 {
		t.Fatalf("after recovery: %+v, %v", st, err)
	}
	if got := d.subjects(); !slices.Equal(got, []string{"one"}) {
		t.Errorf("delivered %q", got)
	}
	// A message whose body stays empty is left on the server after a few
	// passes, so that the mail after it is not held back for ever.
	broken.Store(true)
	p.add(t, "INBOX", testMessage("stuck"))
	for range maxUnreadPasses - 1 {
		if _, err := once(t, f); err == nil {
			t.Fatal("a pass with an empty body succeeded")
		}
	}
	if st, err := once(t, f); err != nil || st.Skipped != 1 {
		t.Fatalf("pass %d: %+v, %v; want the message skipped", maxUnreadPasses, st, err)
	}
	broken.Store(false)
	p.add(t, "INBOX", testMessage("after"))
	if st, err := once(t, f); err != nil || st.Fetched != 1 {
		t.Fatalf("the mail after it: %+v, %v", st, err)
	}
	if got := d.subjects(); !slices.Equal(got, []string{"one", "after"}) {
		t.Errorf("delivered %q", got)
	}
}

// unlistedUID leaves the UID in omit out of the listing FETCH (the one
// that asks for RFC822.SIZE), as a glitching server may.
type unlistedUID struct {
	imapserver.SessionIMAP4rev2
	omit *atomic.Uint32
}

func (s unlistedUID) Fetch(w *imapserver.FetchWriter, set imap.NumSet, o *imap.FetchOptions) error {
	uids, ok := set.(imap.UIDSet)
	if omit := s.omit.Load(); ok && o.RFC822Size && omit != 0 {
		n, _ := uids.Nums()
		kept := imap.UIDSet{}
		for _, u := range n {
			if uint32(u) != omit {
				kept.AddNum(u)
			}
		}
		if len(kept) == 0 {
			return nil
		}
		set = kept
	}
	return s.SessionIMAP4rev2.Fetch(w, set, o)
}

// unlistingPeer is a test IMAP server that leaves the UID in omit (none
// when 0) out of its listing FETCH.
func unlistingPeer(t *testing.T, omit *atomic.Uint32) *imapPeer {
	return newWrappedIMAPPeer(t, nil, func(s imapserver.Session) imapserver.Session {
		return unlistedUID{s.(imapserver.SessionIMAP4rev2), omit}
	})
}

// TestIMAPUnlistedUIDNotSkipped: a message that UID SEARCH returns but
// the listing leaves out fails the pass instead of being passed over; the
// messages after it once moved the folder's high-water mark past it, and
// no later pass looked at it again. One that stays unlisted is left on
// the server after a few passes, so that later mail is not held back.
func TestIMAPUnlistedUIDNotSkipped(t *testing.T) {
	t.Parallel()
	var omit atomic.Uint32
	omit.Store(2)
	p := unlistingPeer(t, &omit)
	for _, s := range []string{"one", "two", "three"} {
		p.add(t, "INBOX", testMessage(s))
	}
	d := &memDeliverer{}
	f := newFetcher(t, p.source(), d, t.TempDir())
	if _, err := once(t, f); err == nil {
		t.Fatal("a pass with a message left unlisted succeeded")
	}
	omit.Store(0)
	if st, err := once(t, f); err != nil || st.Fetched+d.count() < 3 {
		t.Fatalf("after recovery: %+v, %v, %d delivered", st, err, d.count())
	}
	if got := d.subjects(); !slices.Contains(got, "two") || len(got) != 3 {
		t.Errorf("delivered %q, want one, two and three once each", got)
	}
	omit.Store(4)
	p.add(t, "INBOX", testMessage("stuck"))
	p.add(t, "INBOX", testMessage("after"))
	for range maxUnreadPasses - 1 {
		if _, err := once(t, f); err == nil {
			t.Fatal("a pass with a message left unlisted succeeded")
		}
	}
	if st, err := once(t, f); err != nil || st.Skipped != 1 || st.Fetched != 1 {
		t.Fatalf("pass %d: %+v, %v; want the unlisted message skipped and the next fetched", maxUnreadPasses, st, err)
	}
	if got := d.subjects(); got[len(got)-1] != "after" || slices.Contains(got, "stuck") {
		t.Errorf("delivered %q", got)
	}
}

// TestIMAPUnlistedInUIDOrder: an unlisted UID is handled in UID order with
// the listed ones: skipped (after its passes) before a lower message
// whose delivery failed, it moved the folder's high-water mark past that
// one, which was then never fetched (review of run 5's fix).
func TestIMAPUnlistedInUIDOrder(t *testing.T) {
	t.Parallel()
	var omit atomic.Uint32
	omit.Store(2)
	p := unlistingPeer(t, &omit)
	p.add(t, "INBOX", testMessage("one"))
	p.add(t, "INBOX", testMessage("two"))
	d := &memDeliverer{}
	var fail atomic.Bool
	fail.Store(true)
	d.before = func([]byte) error {
		if fail.Load() {
			return errors.New("local delivery: temporary failure")
		}
		return nil
	}
	f := newFetcher(t, p.source(), d, t.TempDir())
	for range maxUnreadPasses {
		if _, err := once(t, f); err == nil {
			t.Fatal("a pass with a failing delivery succeeded")
		}
	}
	fail.Store(false)
	omit.Store(0)
	for range 2 {
		once(t, f)
	}
	if got := d.subjects(); !slices.Contains(got, "one") {
		t.Errorf("delivered %q: message one (UID 1) was never fetched", got)
	}
}

// TestUnreadCountedAcrossRuns: the passes that could not read a message
// are counted in the state, so that `posthorn fetch` run by cron (a new
// process each time) also leaves it on the server after a few runs; the
// count was in memory, started again at each run, and one unreadable
// message held back all later mail for ever.
func TestUnreadCountedAcrossRuns(t *testing.T) {
	t.Parallel()
	var omit atomic.Uint32
	omit.Store(1)
	p := unlistingPeer(t, &omit)
	p.add(t, "INBOX", testMessage("stuck"))
	p.add(t, "INBOX", testMessage("after"))
	d := &memDeliverer{}
	dir := t.TempDir()
	for i := range maxUnreadPasses {
		f := newFetcher(t, p.source(), d, dir) // a new run, as from cron
		st, err := once(t, f)
		f.Close()
		last := i == maxUnreadPasses-1
		if !last && err == nil {
			t.Fatalf("run %d: a pass with an unlisted message succeeded", i+1)
		}
		if last && (err != nil || st.Skipped != 1 || st.Fetched != 1) {
			t.Fatalf("run %d: %+v, %v; want the unlisted message skipped and the next fetched", i+1, st, err)
		}
	}
	if got := d.subjects(); !slices.Equal(got, []string{"after"}) {
		t.Errorf("delivered %q", got)
	}
	st, err := OpenState(dir, p.source().Name) // the count ended with the skip
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if len(st.unread) != 0 {
		t.Errorf("counts left: %v", st.unread)
	}
}
