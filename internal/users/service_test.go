package users

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"posthorn/internal/sasl"
)

// resolveDir returns the directory every Resolve case runs against:
//
//	example.test        no catch-all
//	catchall.test       "@catchall.test" → postmaster
//	xn--bcher-kva.test  bücher.test, stored in A-label form
//
// remote.test is not ours.
func resolveDir() *fakeDir {
	d := newFakeDir()
	for _, n := range []string{"example.test", "catchall.test", "xn--bcher-kva.test"} {
		d.mustDomain(n)
	}
	for _, a := range []string{"me", "you", "boss", "keep", "+plus"} {
		d.mustAccount(a+"@example.test", false)
	}
	d.mustAccount("off@example.test", true)
	d.mustAlias("team@example.test", "me@example.test", "you@example.test", "friend@remote.test")
	d.mustAlias("a@example.test", "b@example.test")
	d.mustAlias("b@example.test", "me@example.test")
	d.mustAlias("loopa@example.test", "loopb@example.test")
	d.mustAlias("loopb@example.test", "loopa@example.test")
	d.mustAlias("ring1@example.test", "ring2@example.test")
	d.mustAlias("ring2@example.test", "ring1@example.test", "you@example.test")
	d.mustAlias("info@example.test", "boss@example.test")
	d.mustAlias("me+list@example.test", "you@example.test")
	d.mustAlias("keep@example.test", "keep@example.test", "friend@remote.test")
	d.mustAlias("dup@example.test", "me@example.test", "team@example.test", "b@example.test")
	d.mustAlias("tooff@example.test", "off@example.test")
	d.mustAlias("ghost@example.test", "nobody@example.test")
	// chain0 → … → chain9 → me is 10 hops; deep0 → … → deep10 → me is 11.
	chain := func(prefix string, n int) {
		for i := range n {
			next := fmt.Sprintf("%s%d@example.test", prefix, i+1)
			if i == n-1 {
				next = "me@example.test"
			}
			d.mustAlias(fmt.Sprintf("%s%d@example.test", prefix, i), next)
		}
	}
	chain("chain", 10)
	chain("deep", 11)
	var wide []string
	for i := range maxAliasTargets + 500 {
		wide = append(wide, fmt.Sprintf("r%d@remote.test", i))
	}
	d.mustAlias("wide@example.test", wide...)

	d.mustAccount("postmaster@catchall.test", false)
	d.mustAccount("alice@catchall.test", false)
	d.mustAccount("offc@catchall.test", true)
	d.mustAlias("@catchall.test", "postmaster@catchall.test")
	d.mustAlias("sales@catchall.test", "alice@catchall.test")

	d.mustAccount("me@xn--bcher-kva.test", false)
	d.mustAccount("müller@xn--bcher-kva.test", false)
	return d
}

func TestResolve(t *testing.T) {
	t.Parallel()
	dir := resolveDir()
	acct := func(a ...string) Resolution { return Resolution{Accounts: a} }
	tests := []struct {
		name          string
		sep           string
		local, domain string
		want          Resolution
		err           error
	}{
		{name: "account", sep: "+", local: "me", domain: "example.test", want: acct("me@example.test")},
		{name: "unknown user", sep: "+", local: "nobody", domain: "example.test", err: ErrNoSuchUser},
		{name: "domain not ours", sep: "+", local: "me", domain: "remote.test", err: ErrNotLocal},
		{name: "bad domain", sep: "+", local: "me", domain: "exa mple.test", err: ErrNoSuchUser},
		{name: "empty local part", sep: "+", local: "", domain: "example.test", err: ErrNoSuchUser},
		{name: "alias local and remote", sep: "+", local: "team", domain: "example.test",
			want: Resolution{Accounts: []string{"me@example.test", "you@example.test"}, Remote: []string{"friend@remote.test"}}},
		{name: "alias chain", sep: "+", local: "a", domain: "example.test", want: acct("me@example.test")},
		{name: "alias loop with nothing behind it", sep: "+", local: "loopa", domain: "example.test", err: ErrNoSuchUser},
		{name: "alias loop with an exit", sep: "+", local: "ring1", domain: "example.test", want: acct("you@example.test")},
		{name: "chain of 10 hops", sep: "+", local: "chain0", domain: "example.test", want: acct("me@example.test")},
		{name: "chain of 11 hops", sep: "+", local: "deep0", domain: "example.test", err: ErrAliasLoop},
		{name: "too many targets", sep: "+", local: "wide", domain: "example.test", err: ErrAliasLoop},
		{name: "alias target missing", sep: "+", local: "ghost", domain: "example.test", err: ErrNoSuchUser},
		{name: "catch-all", sep: "+", local: "random", domain: "catchall.test", want: acct("postmaster@catchall.test")},
		{name: "account beats catch-all", sep: "+", local: "alice", domain: "catchall.test", want: acct("alice@catchall.test")},
		{name: "alias beats catch-all", sep: "+", local: "sales", domain: "catchall.test", want: acct("alice@catchall.test")},
		{name: "sub-address beats catch-all", sep: "+", local: "alice+tag", domain: "catchall.test", want: acct("alice@catchall.test")},
		{name: "no catch-all elsewhere", sep: "+", local: "random", domain: "example.test", err: ErrNoSuchUser},
		{name: "sub-address", sep: "+", local: "me+tag", domain: "example.test", want: acct("me@example.test")},
		{name: "sub-address empty tag", sep: "+", local: "me+", domain: "example.test", want: acct("me@example.test")},
		{name: "sub-address two tags", sep: "+", local: "me+a+b", domain: "example.test", want: acct("me@example.test")},
		{name: "sub-address of alias", sep: "+", local: "info+x", domain: "example.test", want: acct("boss@example.test")},
		{name: "exact alias beats sub-address", sep: "+", local: "me+list", domain: "example.test", want: acct("you@example.test")},
		{name: "second separator", sep: "+-", local: "me-tag", domain: "example.test", want: acct("me@example.test")},
		{name: "first separator of two", sep: "+-", local: "me+tag", domain: "example.test", want: acct("me@example.test")},
		{name: "dash is no separator by default", sep: "+", local: "me-tag", domain: "example.test", err: ErrNoSuchUser},
		{name: "separator disabled", sep: "", local: "me+tag", domain: "example.test", err: ErrNoSuchUser},
		{name: "separator disabled exact", sep: "", local: "me", domain: "example.test", want: acct("me@example.test")},
		{name: "leading separator kept", sep: "+", local: "+plus", domain: "example.test", want: acct("+plus@example.test")},
		{name: "case-insensitive", sep: "+", local: "ME", domain: "Example.TEST", want: acct("me@example.test")},
		{name: "case-insensitive sub-address", sep: "+", local: "Me+Tag", domain: "EXAMPLE.test", want: acct("me@example.test")},
		{name: "trailing dot", sep: "+", local: "me", domain: "example.test.", want: acct("me@example.test")},
		{name: "forward and keep", sep: "+", local: "keep", domain: "example.test",
			want: Resolution{Accounts: []string{"keep@example.test"}, Remote: []string{"friend@remote.test"}}},
		{name: "disabled account", sep: "+", local: "off", domain: "example.test", err: ErrNoSuchUser},
		{name: "alias to disabled account", sep: "+", local: "tooff", domain: "example.test", err: ErrNoSuchUser},
		{name: "disabled account not sent to catch-all", sep: "+", local: "offc", domain: "catchall.test", err: ErrNoSuchUser},
		{name: "disabled account sub-address not sent to catch-all", sep: "+", local: "offc+x", domain: "catchall.test", err: ErrNoSuchUser},
		{name: "IDN U-label", sep: "+", local: "me", domain: "bücher.test", want: acct("me@xn--bcher-kva.test")},
		{name: "IDN upper-case U-label", sep: "+", local: "Me", domain: "BÜCHER.test", want: acct("me@xn--bcher-kva.test")},
		{name: "IDN A-label", sep: "+", local: "me", domain: "xn--bcher-kva.test", want: acct("me@xn--bcher-kva.test")},
		{name: "NFD local part", sep: "+", local: "Mu\u0308ller", domain: "bücher.test", want: acct("müller@xn--bcher-kva.test")},
		{name: "duplicate targets once", sep: "+", local: "dup", domain: "example.test",
			want: Resolution{Accounts: []string{"me@example.test", "you@example.test"}, Remote: []string{"friend@remote.test"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(Options{Directory: dir, SubaddressSeparator: tc.sep})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Resolve(context.Background(), tc.local, tc.domain)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Resolve(%q, %q) = %+v, %v; want error %v", tc.local, tc.domain, got, err, tc.err)
				}
				if len(got.Accounts)+len(got.Remote) > 0 {
					t.Errorf("Resolve(%q, %q) returned %+v with error %v", tc.local, tc.domain, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q, %q): %v", tc.local, tc.domain, err)
			}
			if !sameSet(got.Accounts, tc.want.Accounts) || !sameSet(got.Remote, tc.want.Remote) {
				t.Errorf("Resolve(%q, %q) = %+v, want %+v", tc.local, tc.domain, got, tc.want)
			}
		})
	}
}

// sameSet reports whether a and b hold the same strings, each once: a
// duplicate in a is a failure (delivering twice), not an equivalence.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestStripSubaddress(t *testing.T) {
	t.Parallel()
	tests := []struct{ sep, in, want string }{
		{"+", "me+tag", "me"},
		{"+", "me+", "me"},
		{"+", "me+a+b", "me"},
		{"+", "me", "me"},
		{"+", "me-tag", "me-tag"},
		{"+", "+me", "+me"}, // a leading separator is no sub-address
		{"+", "+", "+"},
		{"+-", "me-tag", "me"},
		{"+-", "me-a+b", "me"},
		{"+-", "-me", "-me"},
		{"", "me+tag", "me+tag"},
	}
	for _, tc := range tests {
		s := &Service{sep: tc.sep}
		if got := s.stripSubaddress(tc.in); got != tc.want {
			t.Errorf("separator %q: stripSubaddress(%q) = %q, want %q", tc.sep, tc.in, got, tc.want)
		}
	}
}

func TestResolveDirectoryErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	for _, op := range []string{"HasDomain", "Account", "AliasTargets"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			d := resolveDir()
			d.fail = func(got string) error {
				if got == op {
					return boom
				}
				return nil
			}
			s, err := New(Options{Directory: d, SubaddressSeparator: "+"})
			if err != nil {
				t.Fatal(err)
			}
			// A storage failure must not look like "no such user" (a
			// permanent 550); callers answer it with a temporary error.
			if _, err := s.Resolve(context.Background(), "me", "example.test"); !errors.Is(err, boom) {
				t.Errorf("Resolve with failing %s: err %v, want %v", op, err, boom)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"plus", Options{Directory: newFakeDir(), SubaddressSeparator: "+"}, true},
		{"two separators", Options{Directory: newFakeDir(), SubaddressSeparator: "+-"}, true},
		{"none", Options{Directory: newFakeDir()}, true},
		{"no directory", Options{SubaddressSeparator: "+"}, false},
		{"at sign", Options{Directory: newFakeDir(), SubaddressSeparator: "+@"}, false},
		{"dot", Options{Directory: newFakeDir(), SubaddressSeparator: "."}, false},
		{"space", Options{Directory: newFakeDir(), SubaddressSeparator: " "}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(tc.opts)
			if (err == nil) != tc.ok || (s != nil) != tc.ok {
				t.Errorf("New(%+v) = %v, %v; want ok=%v", tc.opts, s, err, tc.ok)
			}
		})
	}
}

func TestNormalizeDomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want "" means an error
	}{
		{"example.test", "example.test"},
		{"Example.TEST", "example.test"},
		{"example.test.", "example.test"},
		{"bücher.test", "xn--bcher-kva.test"},
		{"BÜCHER.test", "xn--bcher-kva.test"},
		{"xn--bcher-kva.test", "xn--bcher-kva.test"},
		{"", ""},
		{"[192.0.2.1]", ""},
		{"exa mple.test", ""},
	}
	for _, tc := range tests {
		got, err := NormalizeDomain(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("NormalizeDomain(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// adminService returns a Service over a directory holding example.test
// and other.test.
func adminService(t *testing.T, sep string) (*Service, *fakeDir) {
	t.Helper()
	d := newFakeDir()
	d.mustDomain("example.test")
	d.mustDomain("other.test")
	s, err := New(Options{Directory: d, SubaddressSeparator: sep})
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

func TestAddAccount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		sep           string
		local, domain string
		want          string // canonical address; "" means refused
	}{
		{"plain", "+", "me", "example.test", "me@example.test"},
		{"canonicalised", "+", "Me", "Example.TEST.", "me@example.test"},
		{"foreign domain", "+", "me", "remote.test", ""},
		{"bad domain", "+", "me", "exa mple.test", ""},
		{"empty local part", "+", "", "example.test", ""},
		{"CRLF in local part", "+", "me\r\nRCPT", "example.test", ""},
		{"separator in local part", "+", "me+x", "example.test", ""},
		{"second separator in local part", "+-", "me-x", "example.test", ""},
		{"no separator configured", "", "me+x", "example.test", "me+x@example.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, d := adminService(t, tc.sep)
			ctx := context.Background()
			a, err := s.AddAccount(ctx, tc.local, tc.domain, "secret")
			if tc.want == "" {
				if err == nil {
					t.Fatalf("AddAccount(%q, %q) = %+v, want an error", tc.local, tc.domain, a)
				}
				if all, _ := d.Accounts(ctx, ""); len(all) != 0 {
					t.Errorf("refused AddAccount stored %+v", all)
				}
				return
			}
			if err != nil {
				t.Fatalf("AddAccount(%q, %q): %v", tc.local, tc.domain, err)
			}
			stored, err := d.Account(ctx, tc.want)
			if err != nil {
				t.Fatalf("account %s not stored: %v", tc.want, err)
			}
			if a.Address != tc.want || stored.Address != tc.want || stored.Disabled || stored.Created.IsZero() {
				t.Errorf("AddAccount = %+v, stored %+v; want address %s", a, stored, tc.want)
			}
			if ok, err := CheckPassword(stored.PasswordHash, "secret"); !ok || err != nil {
				t.Errorf("stored hash does not verify the password: %v, %v", ok, err)
			}
			if _, err := s.AddAccount(ctx, tc.local, tc.domain, "secret"); !errors.Is(err, ErrExists) {
				t.Errorf("second AddAccount: err %v, want ErrExists", err)
			}
		})
	}
}

func TestAddAccountBadPassword(t *testing.T) {
	t.Parallel()
	s, d := adminService(t, "+")
	for _, pw := range []string{"", strings.Repeat("x", MaxPasswordLen+1)} {
		if _, err := s.AddAccount(context.Background(), "me", "example.test", pw); err == nil {
			t.Errorf("AddAccount with a %d-byte password succeeded", len(pw))
		}
	}
	if all, _ := d.Accounts(context.Background(), ""); len(all) != 0 {
		t.Errorf("accounts stored: %+v", all)
	}
}

func TestDeleteDomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		account bool // example.test has an account
		alias   bool // example.test has an alias (a catch-all)
		force   bool
		deleted bool
	}{
		{name: "empty", deleted: true},
		{name: "has account", account: true},
		{name: "has alias", alias: true},
		{name: "has both", account: true, alias: true},
		{name: "force", account: true, alias: true, force: true, deleted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, d := adminService(t, "+")
			ctx := context.Background()
			if tc.account {
				d.mustAccount("me@example.test", false)
			}
			if tc.alias {
				d.mustAlias("@example.test", "me@example.test")
			}
			// other.test must survive whatever happens to example.test.
			d.mustAccount("me@other.test", false)
			d.mustAlias("x@other.test", "me@other.test")

			err := s.DeleteDomain(ctx, "Example.TEST", tc.force)
			if tc.deleted != (err == nil) {
				t.Fatalf("DeleteDomain: err %v, want deleted=%v", err, tc.deleted)
			}
			has, _ := d.HasDomain(ctx, "example.test")
			accts, _ := d.Accounts(ctx, "example.test")
			aliases, _ := d.Aliases(ctx, "example.test")
			if tc.deleted {
				if has || len(accts)+len(aliases) > 0 {
					t.Errorf("after delete: domain %v, accounts %+v, aliases %+v", has, accts, aliases)
				}
			} else if !has || tc.account != (len(accts) == 1) || tc.alias != (len(aliases) == 1) {
				t.Errorf("refused delete changed things: domain %v, accounts %+v, aliases %+v", has, accts, aliases)
			}
			has, _ = d.HasDomain(ctx, "other.test")
			accts, _ = d.Accounts(ctx, "other.test")
			aliases, _ = d.Aliases(ctx, "other.test")
			if !has || len(accts) != 1 || len(aliases) != 1 {
				t.Errorf("other.test damaged: domain %v, accounts %+v, aliases %+v", has, accts, aliases)
			}
		})
	}
}

func TestDeleteDomainUnknown(t *testing.T) {
	t.Parallel()
	s, _ := adminService(t, "+")
	if err := s.DeleteDomain(context.Background(), "nowhere.test", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteDomain(unknown): err %v, want ErrNotFound", err)
	}
}

func TestAddAlias(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		alias   string
		targets []string
		want    string // the key; "" means refused
	}{
		{"catch-all", "@Example.TEST", []string{"me@example.test"}, "@example.test"},
		{"catch-all IDN", "@bücher.test", []string{"me@example.test"}, "@xn--bcher-kva.test"},
		{"address", "Info@Example.TEST", []string{"me@example.test", "x@remote.test"}, "info@example.test"},
		{"foreign domain", "info@remote.test", []string{"me@example.test"}, ""},
		{"foreign catch-all", "@remote.test", []string{"me@example.test"}, ""},
		{"no domain", "info", []string{"me@example.test"}, ""},
		{"empty", "", []string{"me@example.test"}, ""},
		{"no targets", "info@example.test", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, d := adminService(t, "+")
			d.mustDomain("xn--bcher-kva.test")
			ctx := context.Background()
			key, err := s.AddAlias(ctx, tc.alias, tc.targets)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("AddAlias(%q) = %q, want an error", tc.alias, key)
				}
				if all, _ := d.Aliases(ctx, ""); len(all) != 0 {
					t.Errorf("refused AddAlias stored %+v", all)
				}
				return
			}
			if err != nil || key != tc.want {
				t.Fatalf("AddAlias(%q) = %q, %v; want %q", tc.alias, key, err, tc.want)
			}
			if got, _ := d.AliasTargets(ctx, key); !sameSet(got, tc.targets) {
				t.Errorf("targets of %s = %q, want %q", key, got, tc.targets)
			}
			// Adding the same targets again is not an error.
			if _, err := s.AddAlias(ctx, tc.alias, tc.targets); err != nil {
				t.Errorf("AddAlias again: %v", err)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	s, d := adminService(t, "+")
	ctx := context.Background()
	for _, l := range []string{"me", "off"} {
		if _, err := s.AddAccount(ctx, l, "example.test", "right"); err != nil {
			t.Fatal(err)
		}
	}
	d.mustDisable("off@example.test")

	tests := []struct {
		name, addr, pw string
		ok             bool
	}{
		{"right password", "me@example.test", "right", true},
		{"wrong password", "me@example.test", "wrong", false},
		{"empty password", "me@example.test", "", false},
		{"password prefix", "me@example.test", "righ", false},
		{"too long", "me@example.test", "right" + strings.Repeat("x", MaxPasswordLen), false},
		{"unknown account", "nobody@example.test", "right", false},
		{"disabled account", "off@example.test", "right", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}) // own IP: no shared delays
			a, err := s.Authenticate(ctx, Login{IP: ip, Protocol: "imap", User: tc.addr, Password: tc.pw})
			if tc.ok {
				if err != nil || a.Address != tc.addr {
					t.Errorf("Authenticate(%s) = %+v, %v; want success", tc.addr, a, err)
				}
				return
			}
			// One error for every failure, so a client cannot tell an
			// unknown account from a wrong password.
			if !errors.Is(err, sasl.ErrAuthFailed) || a.Address != "" {
				t.Errorf("Authenticate(%s) = %+v, %v; want sasl.ErrAuthFailed", tc.addr, a, err)
			}
		})
	}
}

// TestAdminNamesAlwaysResolve: root, postmaster and the other RFC 2142
// names reach someone even with no alias for them, in our domains and at
// the server's own hostname; other names at the hostname are not ours.
func TestAdminNamesAlwaysResolve(t *testing.T) {
	ctx := context.Background()
	d := resolveDir()
	s, err := New(Options{Directory: d, Hostname: "mx.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	// The oldest enabled account gets them by default.
	for _, addr := range [][2]string{{"root", "mx.example.test"}, {"Postmaster", "example.test"}, {"abuse", "catchall.test"}} {
		res, err := s.Resolve(ctx, addr[0], addr[1])
		if err != nil || len(res.Accounts) != 1 {
			t.Errorf("%s@%s: %+v %v", addr[0], addr[1], res, err)
		}
	}
	if _, err := s.Resolve(ctx, "me", "mx.example.test"); !errors.Is(err, ErrNotLocal) {
		t.Errorf("me@hostname: %v, want ErrNotLocal", err)
	}
	s, _ = New(Options{Directory: d, Hostname: "mx.example.test", Postmaster: "boss@example.test"})
	if res, err := s.Resolve(ctx, "root", "mx.example.test"); err != nil || !slices.Equal(res.Accounts, []string{"boss@example.test"}) {
		t.Errorf("root with Postmaster set: %+v %v", res, err)
	}
	s, _ = New(Options{Directory: d, Hostname: "mx.example.test", Postmaster: "admin@remote.test"})
	if res, err := s.Resolve(ctx, "postmaster", "example.test"); err != nil || !slices.Equal(res.Remote, []string{"admin@remote.test"}) {
		t.Errorf("remote Postmaster: %+v %v", res, err)
	}
}
