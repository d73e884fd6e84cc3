package users

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"posthorn/internal/sasl"
)

var testIP = netip.MustParseAddr("192.0.2.77")

func TestAppPasswordScopes(t *testing.T) {
	t.Parallel()
	s, _ := adminService(t, "+")
	ctx := context.Background()
	if _, err := s.AddAccount(ctx, "me", "example.test", "main"); err != nil {
		t.Fatal(err)
	}
	pw, err := s.AddAppPassword(ctx, "me@example.test", "phone", []string{"imap"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddAppPassword(ctx, "me@example.test", "phone", []string{"smtp"}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := s.AddAppPassword(ctx, "me@example.test", "x", []string{"ftp"}); err == nil {
		t.Error("unknown scope accepted")
	}
	for i, tc := range []struct {
		proto, pw string
		ok        bool
	}{
		{"imap", pw, true},
		{"smtp", pw, false}, // out of scope
		{"pop3", pw, false},
		{"smtp", "main", true}, // the account password works everywhere
	} {
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
		_, err := s.Authenticate(ctx, Login{IP: ip, Protocol: tc.proto, User: "me@example.test", Password: tc.pw})
		if (err == nil) != tc.ok {
			t.Errorf("%s with %q: err %v, want ok=%v", tc.proto, tc.pw, err, tc.ok)
		}
	}
}

func TestGuardBlocksAndDelays(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := NewGuard(GuardOptions{MaxFailures: 3, Window: time.Minute, BlockTime: 10 * time.Minute, MaxDelay: time.Second, Now: clock})
	var delays []time.Duration
	for i := 0; i < 3; i++ {
		d, blocked := g.Failed(testIP, "me@example.test")
		delays = append(delays, d)
		if blocked != (i == 2) {
			t.Fatalf("failure %d: blocked=%v", i+1, blocked)
		}
	}
	if delays[0] != 250*time.Millisecond || delays[1] != 500*time.Millisecond || delays[2] != time.Second {
		t.Errorf("delays %v", delays)
	}
	if !g.Blocked(testIP) || g.Blocked(netip.MustParseAddr("192.0.2.78")) {
		t.Error("block must hit the failing IP only")
	}
	// IPv6 is counted per /64.
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff")
	for i := 0; i < 3; i++ {
		g.Failed(a, "")
	}
	if !g.Blocked(b) {
		t.Error("another address of the same /64 is not blocked")
	}
	mu.Lock()
	now = now.Add(11 * time.Minute)
	mu.Unlock()
	if g.Blocked(testIP) {
		t.Error("block did not expire")
	}
}

func TestBlockedIPNeverChecksPassword(t *testing.T) {
	t.Parallel()
	d := newFakeDir()
	d.mustDomain("example.test")
	g := NewGuard(GuardOptions{MaxFailures: 2, MaxDelay: time.Millisecond})
	s, _ := New(Options{Directory: d, Guard: g})
	ctx := context.Background()
	if _, err := s.AddAccount(ctx, "me", "example.test", "right"); err != nil {
		t.Fatal(err)
	}
	l := Login{IP: testIP, Protocol: "smtp", User: "me@example.test", Password: "wrong"}
	if _, err := s.Authenticate(ctx, l); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Fatalf("first failure: %v", err)
	}
	if _, err := s.Authenticate(ctx, l); !errors.Is(err, ErrBlocked) {
		t.Fatalf("second failure: %v, want ErrBlocked", err)
	}
	l.Password = "right"
	if _, err := s.Authenticate(ctx, l); !errors.Is(err, ErrBlocked) {
		t.Fatalf("right password from a blocked IP: %v", err)
	}
	l.IP = netip.MustParseAddr("192.0.2.99")
	if _, err := s.Authenticate(ctx, l); err != nil {
		t.Fatalf("another IP: %v", err)
	}
}

func TestSASLThroughService(t *testing.T) {
	t.Parallel()
	s, _ := adminService(t, "+")
	ctx := context.Background()
	if _, err := s.AddAccount(ctx, "me", "example.test", "secret"); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"secret", "bad"} {
		srv, err := s.SASL(ctx, sasl.ScramSHA256, "imap", netip.MustParseAddr("203.0.113.9"))
		if err != nil {
			t.Fatal(err)
		}
		cl, _ := sasl.NewSCRAMClient("Me@Example.TEST", pw)
		first, _ := cl.Step(nil)
		ch, _, err := srv.Next(first)
		if err != nil {
			t.Fatal(err)
		}
		final, _ := cl.Step(ch)
		_, done, err := srv.Next(final)
		if pw == "secret" && (!done || err != nil || srv.Identity() != "me@example.test") {
			t.Errorf("SCRAM: done %v err %v id %q", done, err, srv.Identity())
		}
		if pw == "bad" && !errors.Is(err, sasl.ErrAuthFailed) {
			t.Errorf("SCRAM wrong password: %v", err)
		}
	}
	srv, _ := s.SASL(ctx, sasl.Plain, "smtp", netip.MustParseAddr("203.0.113.10"))
	if _, done, err := srv.Next(sasl.PlainResponse("", "me@example.test", "secret")); !done || err != nil {
		t.Errorf("PLAIN: %v %v", done, err)
	}
}

// TestSCRAMUnknownUserIsAFailure: SCRAM for a name that is no account
// runs to client-final, where it fails and counts in the Guard like a
// wrong password; all spellings of the name get one salt.
func TestSCRAMUnknownUserIsAFailure(t *testing.T) {
	t.Parallel()
	d := newFakeDir()
	d.mustDomain("example.test")
	g := NewGuard(GuardOptions{MaxFailures: 2, MaxDelay: time.Millisecond})
	s, _ := New(Options{Directory: d, Guard: g})
	ctx := context.Background()
	var salts []string
	for i, user := range []string{"nobody@example.test", "NoBody@Example.TEST."} {
		srv, _ := s.SASL(ctx, sasl.ScramSHA256, "imap", testIP)
		cl, _ := sasl.NewSCRAMClient(user, "secret")
		first, _ := cl.Step(nil)
		ch, _, err := srv.Next(first)
		if err != nil {
			t.Fatalf("%s: client-first: %v", user, err)
		}
		salts = append(salts, strings.Split(string(ch), ",")[1])
		final, _ := cl.Step(ch)
		want := sasl.ErrAuthFailed
		if i == 1 {
			want = ErrBlocked // the second failure blocks: the first counted
		}
		if _, done, err := srv.Next(final); done || !errors.Is(err, want) {
			t.Errorf("%s: done %v err %v, want %v", user, done, err, want)
		}
	}
	if salts[0] != salts[1] {
		t.Errorf("one name, two salts: %v", salts)
	}
}

func TestOwns(t *testing.T) {
	t.Parallel()
	s, d := adminService(t, "+")
	ctx := context.Background()
	for _, l := range []string{"me", "you"} {
		if _, err := s.AddAccount(ctx, l, "example.test", "pw"); err != nil {
			t.Fatal(err)
		}
	}
	for alias, targets := range map[string][]string{
		"info@example.test": {"me@example.test"},
		"team@example.test": {"me@example.test", "you@example.test"},
		"@example.test":     {"me@example.test"},
	} {
		if _, err := s.AddAlias(ctx, alias, targets); err != nil {
			t.Fatal(err)
		}
	}
	_ = d
	for addr, want := range map[string]bool{
		"me@example.test":        true,
		"ME@Example.Test":        true,
		"me+lists@example.test":  true,
		"info@example.test":      true,
		"team@example.test":      true,
		"you@example.test":       false,
		"anything@example.test":  false, // catch-all does not make me everyone
		"me@other.test":          false,
		"boss@elsewhere.example": false,
	} {
		if got, err := s.Owns(ctx, "me@example.test", addr); err != nil || got != want {
			t.Errorf("Owns(me, %s) = %v, %v; want %v", addr, got, err, want)
		}
	}
}

// TestParallelGuessesAreBounded: guesses sent at once from one IP are
// checked no more than MaxFailures times; each used to pass the block
// check before any had failed, and 150 at once were all checked (a right
// one among them logged in after the IP was blocked).
func TestParallelGuessesAreBounded(t *testing.T) {
	t.Parallel()
	d := newFakeDir()
	d.mustDomain("example.test")
	g := NewGuard(GuardOptions{MaxFailures: 5, MaxDelay: time.Millisecond})
	s, _ := New(Options{Directory: d, Guard: g})
	ctx := context.Background()
	if _, err := s.AddAccount(ctx, "me", "example.test", "right"); err != nil {
		t.Fatal(err)
	}
	var lookups atomic.Int32 // one per credential check
	d.fail = func(op string) error {
		if op == "Account" {
			lookups.Add(1)
		}
		return nil
	}
	const n = 60
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := fmt.Sprintf("wrong%d", i)
			_, err := s.Authenticate(ctx, Login{IP: testIP, Protocol: "imap", User: "me@example.test", Password: pw})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Error("a wrong password logged in")
		}
	}
	if checked := lookups.Load(); checked > 5 {
		t.Errorf("%d of %d parallel guesses were checked, want at most MaxFailures (5)", checked, n)
	}
	d.fail = nil
	if _, err := s.Authenticate(ctx, Login{IP: testIP, Protocol: "imap", User: "me@example.test", Password: "right"}); !errors.Is(err, ErrBlocked) {
		t.Errorf("the right password after the burst: %v, want ErrBlocked", err)
	}
}

// TestOwnLoginKeepsOthersFailures: logging in to an account of one's own
// clears that account's failures only; it used to clear the IP's, so
// nine guesses at another account and one own login, repeated, never
// got blocked.
func TestOwnLoginKeepsOthersFailures(t *testing.T) {
	t.Parallel()
	d := newFakeDir()
	d.mustDomain("example.test")
	g := NewGuard(GuardOptions{MaxFailures: 4, MaxDelay: time.Millisecond})
	s, _ := New(Options{Directory: d, Guard: g})
	ctx := context.Background()
	for _, u := range []string{"me", "bob"} {
		if _, err := s.AddAccount(ctx, u, "example.test", "pw-"+u); err != nil {
			t.Fatal(err)
		}
	}
	guess := Login{IP: testIP, Protocol: "imap", User: "me@example.test", Password: "guess"}
	own := Login{IP: testIP, Protocol: "imap", User: "bob@example.test", Password: "pw-bob"}
	var err error
	for i := 0; i < 4 && !errors.Is(err, ErrBlocked); i++ {
		for j := 0; j < 3; j++ {
			_, err = s.Authenticate(ctx, guess)
		}
		if _, oerr := s.Authenticate(ctx, own); oerr != nil && !errors.Is(oerr, ErrBlocked) {
			t.Fatalf("own login: %v", oerr)
		}
	}
	if !errors.Is(err, ErrBlocked) {
		t.Errorf("guesses interleaved with own logins: %v, want a block", err)
	}
	// A user who mistyped their own password is cleared by logging in.
	other := netip.MustParseAddr("192.0.2.55")
	typo := Login{IP: other, Protocol: "imap", User: "bob@example.test", Password: "typo"}
	ok := Login{IP: other, Protocol: "imap", User: "bob@example.test", Password: "pw-bob"}
	for range 3 {
		for range 3 {
			s.Authenticate(ctx, typo)
		}
		if _, err := s.Authenticate(ctx, ok); err != nil {
			t.Fatalf("own typos then the right password: %v", err)
		}
	}
}

// TestFailedPauseFreesItsSlot: a failed check gives its slot back before
// its pause, so that others behind a shared address (an office NAT, a
// webmail) are not held for the pause of someone else's mistake.
func TestFailedPauseFreesItsSlot(t *testing.T) {
	t.Parallel()
	d := newFakeDir()
	d.mustDomain("example.test")
	g := NewGuard(GuardOptions{MaxFailures: 8, MaxDelay: 10 * time.Second})
	s, _ := New(Options{Directory: d, Guard: g})
	ctx := context.Background()
	for _, u := range []string{"me", "bob"} {
		if _, err := s.AddAccount(ctx, u, "example.test", "pw-"+u); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 {
		g.Failed(testIP, "x@example.test")
	}
	// One more failure: 7 of 8, one check at a time from now on, and a
	// pause of 10 s for its author (long, so that a good login slowed by
	// -race on a busy machine is never taken for one that waited).
	go s.Authenticate(ctx, Login{IP: testIP, Protocol: "imap", User: "bob@example.test", Password: "typo"})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		n := g.ips[guardKey(testIP)].n
		g.mu.Unlock()
		if n == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failure was not recorded")
		}
	}
	t0 := time.Now()
	if _, err := s.Authenticate(ctx, Login{IP: testIP, Protocol: "imap", User: "me@example.test", Password: "pw-me"}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("a good login waited %v behind another's failure", d)
	}
}

// TestTrustedNetworkNeverBlocked: an address in Trusted (a webmail
// server) is never blocked, however many of its users mistype; each
// account's failures still slow the next try at it.
func TestTrustedNetworkNeverBlocked(t *testing.T) {
	t.Parallel()
	g := NewGuard(GuardOptions{MaxFailures: 3, MaxDelay: time.Second, Trusted: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	web := netip.MustParseAddr("198.51.100.7")
	var delay time.Duration
	for i := range 10 {
		var blocked bool
		delay, blocked = g.Failed(web, "user@example.test")
		if blocked || g.Blocked(web) {
			t.Fatalf("trusted address blocked after %d failures", i+1)
		}
	}
	if delay != time.Second {
		t.Errorf("the account's delay after 10 failures: %v, want the maximum", delay)
	}
	end, err := g.Begin(context.Background(), web)
	if err != nil {
		t.Fatalf("Begin for a trusted address: %v", err)
	}
	end()
}

// TestGuardForgetsCleanAddresses: an address that logged in without a
// failure leaves no record behind (every address used to stay until the
// map held 100,000 of them, then each new one scanned it all).
func TestGuardForgetsCleanAddresses(t *testing.T) {
	t.Parallel()
	g := NewGuard(GuardOptions{})
	for i := range 200 {
		ip := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		end, err := g.Begin(context.Background(), ip)
		if err != nil {
			t.Fatal(err)
		}
		g.Succeeded(ip, "me@example.test")
		end()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := len(g.ips); n != 0 {
		t.Errorf("%d address records left", n)
	}
}

// TestSCRAMWithoutInitialResponseNamesTheAccount: with no initial
// response (IMAP without SASL-IR, AUTH SCRAM-SHA-256 alone) the first
// step is empty and the name comes with the next; a failure still counts
// against that account, not against "".
func TestSCRAMWithoutInitialResponseNamesTheAccount(t *testing.T) {
	t.Parallel()
	d := newFakeDir()
	d.mustDomain("example.test")
	g := NewGuard(GuardOptions{MaxDelay: time.Millisecond})
	s, _ := New(Options{Directory: d, Guard: g})
	ctx := context.Background()
	if _, err := s.AddAccount(ctx, "me", "example.test", "right"); err != nil {
		t.Fatal(err)
	}
	srv, _ := s.SASL(ctx, sasl.ScramSHA256, "imap", testIP)
	if _, _, err := srv.Next(nil); err != nil {
		t.Fatalf("empty first step: %v", err)
	}
	cl, _ := sasl.NewSCRAMClient("me@example.test", "wrong")
	first, _ := cl.Step(nil)
	ch, _, err := srv.Next(first)
	if err != nil {
		t.Fatalf("client-first: %v", err)
	}
	final, _ := cl.Step(ch)
	if _, _, err := srv.Next(final); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Fatalf("wrong proof: %v", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.accts["me@example.test"]; f == nil || f.n != 1 {
		t.Errorf("the account's failures: %+v, want 1", f)
	}
	if by := g.ips[guardKey(testIP)].by; by[""] != 0 {
		t.Errorf("failures filed under no account: %v", by)
	}
}
