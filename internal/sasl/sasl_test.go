package sasl

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

func verifyFixed(authz, user, pw string) (string, error) {
	if user == "me@example.test" && pw == "secret" && (authz == "" || authz == user) {
		return user, nil
	}
	return "", ErrAuthFailed
}

func TestPlain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		resp []byte
		err  error
	}{
		{PlainResponse("", "me@example.test", "secret"), nil},
		{PlainResponse("me@example.test", "me@example.test", "secret"), nil},
		{PlainResponse("boss@example.test", "me@example.test", "secret"), ErrAuthFailed},
		{PlainResponse("", "me@example.test", "wrong"), ErrAuthFailed},
		{[]byte("me@example.test\x00secret"), ErrSyntax},
		{[]byte("\x00\x00"), ErrSyntax},
		{make([]byte, MaxResponse+1), ErrTooLong},
	} {
		s := NewPlain(verifyFixed)
		_, done, err := s.Next(tc.resp)
		if !errors.Is(err, tc.err) || (err == nil) != done {
			t.Errorf("%q: done %v err %v, want %v", tc.resp, done, err, tc.err)
		}
		if err == nil && s.Identity() != "me@example.test" {
			t.Errorf("identity %q", s.Identity())
		}
	}
	// Without an initial response the server asks with an empty challenge.
	s := NewPlain(verifyFixed)
	if ch, done, err := s.Next(nil); err != nil || done || len(ch) != 0 {
		t.Fatalf("first step: %q %v %v", ch, done, err)
	}
	if _, done, err := s.Next(PlainResponse("", "me@example.test", "secret")); !done || err != nil {
		t.Fatalf("second step: %v %v", done, err)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	s := NewLogin(verifyFixed)
	if ch, _, _ := s.Next(nil); string(ch) != "Username:" {
		t.Fatalf("challenge %q", ch)
	}
	if ch, _, _ := s.Next([]byte("me@example.test")); string(ch) != "Password:" {
		t.Fatalf("challenge %q", ch)
	}
	if _, done, err := s.Next([]byte("secret")); !done || err != nil || s.Identity() != "me@example.test" {
		t.Fatalf("done %v err %v id %q", done, err, s.Identity())
	}
	// Initial response carries the user name.
	s = NewLogin(verifyFixed)
	if ch, _, _ := s.Next([]byte("me@example.test")); string(ch) != "Password:" {
		t.Fatalf("challenge %q", ch)
	}
	if _, _, err := s.Next([]byte("nope")); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestSCRAM(t *testing.T) {
	t.Parallel()
	creds, err := NewSCRAMCredentials("secret")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseSCRAMCredentials(creds.String())
	if err != nil || parsed.String() != creds.String() {
		t.Fatalf("round trip: %v %q", err, parsed.String())
	}
	lookup := func(authz, user string) (SCRAMCredentials, string, error) {
		if user != "me@example.test" {
			return SCRAMCredentials{}, "", ErrAuthFailed
		}
		return parsed, user, nil
	}
	for _, pw := range []string{"secret", "wrong"} {
		cl, err := NewSCRAMClient("me@example.test", pw)
		if err != nil {
			t.Fatal(err)
		}
		s := NewSCRAMSHA256(lookup, nil)
		first, _ := cl.Step(nil)
		ch, done, err := s.Next(first)
		if err != nil || done {
			t.Fatalf("server-first: %v", err)
		}
		final, err := cl.Step(ch)
		if err != nil {
			t.Fatal(err)
		}
		ch, done, err = s.Next(final)
		if pw == "wrong" {
			if !errors.Is(err, ErrAuthFailed) {
				t.Errorf("wrong password: %v", err)
			}
			continue
		}
		if err != nil || !done || s.Identity() != "me@example.test" {
			t.Fatalf("server-final: done %v err %v", done, err)
		}
		if _, err := cl.Step(ch); err != nil || !cl.Valid() {
			t.Errorf("client does not accept the server signature: %v", err)
		}
	}
	for _, bad := range []string{"", "SCRAM-SHA-256$x:y$z", "SCRAM-SHA-1$1:AA==$AA==:AA==", "SCRAM-SHA-256$0:AA==$AA==:AA=="} {
		if _, err := ParseSCRAMCredentials(bad); err == nil {
			t.Errorf("ParseSCRAMCredentials(%q) accepted", bad)
		}
	}
}

func TestSCRAMGarbage(t *testing.T) {
	t.Parallel()
	s := NewSCRAMSHA256(func(string, string) (SCRAMCredentials, string, error) { return SCRAMCredentials{}, "", ErrAuthFailed }, nil)
	for _, in := range []string{"", "n,,", "x,,n=a,r=b", "p=tls-unique,,n=a,r=b"} {
		_, done, err := s.Next([]byte(in))
		if err == nil || done {
			t.Errorf("%q accepted", in)
		}
		s = NewSCRAMSHA256(func(string, string) (SCRAMCredentials, string, error) { return SCRAMCredentials{}, "", ErrAuthFailed }, nil)
	}
}

// serverFirst runs client-first for user (and authz) and returns the
// server-first message's salt and iteration count.
func serverFirst(t *testing.T, lookup SCRAMLookup, authz, user string) (salt []byte, iters string, s Server) {
	t.Helper()
	return serverFirstKeyed(t, lookup, nil, authz, user)
}

// serverFirstKeyed is serverFirst with a stand-in key.
func serverFirstKeyed(t *testing.T, lookup SCRAMLookup, key []byte, authz, user string) (salt []byte, iters string, s Server) {
	t.Helper()
	s = NewSCRAMSHA256(lookup, key)
	gs2 := "n,,"
	if authz != "" {
		gs2 = "n,a=" + authz + ","
	}
	ch, done, err := s.Next([]byte(gs2 + "n=" + user + ",r=abcdef"))
	if err != nil || done {
		t.Fatalf("%s: client-first: done %v err %v", user, done, err)
	}
	f := strings.Split(string(ch), ",")
	if len(f) != 3 || !strings.HasPrefix(f[0], "r=abcdef") || !strings.HasPrefix(f[1], "s=") || !strings.HasPrefix(f[2], "i=") {
		t.Fatalf("%s: server-first %q", user, ch)
	}
	salt, err = base64.StdEncoding.DecodeString(f[1][2:])
	if err != nil {
		t.Fatalf("%s: salt: %v", user, err)
	}
	return salt, f[2][2:], s
}

// TestSCRAMStandInKey: a made-up salt depends on the key only, so a
// server that keeps its key across restarts answers an unknown name with
// the same salt before and after, as it does for a real account.
func TestSCRAMStandInKey(t *testing.T) {
	t.Parallel()
	unknown := func(string, string) (SCRAMCredentials, string, error) { return SCRAMCredentials{}, "", ErrAuthFailed }
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a, _, _ := serverFirstKeyed(t, unknown, k1, "", "nobody@example.test")
	b, _, _ := serverFirstKeyed(t, unknown, append([]byte(nil), k1...), "", "nobody@example.test")
	c, _, _ := serverFirstKeyed(t, unknown, k2, "", "nobody@example.test")
	if !bytes.Equal(a, b) {
		t.Errorf("one key, two salts: %x %x", a, b)
	}
	if bytes.Equal(a, c) {
		t.Errorf("two keys, one salt %x", a)
	}
}

// TestSCRAMUnknownUser: a name that is no account (or may not act as the
// authz) is answered like a real one at client-first, and fails at
// client-final as a wrong password does, so SCRAM does not tell which
// names exist.
func TestSCRAMUnknownUser(t *testing.T) {
	t.Parallel()
	creds, err := NewSCRAMCredentials("secret")
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(authz, user string) (SCRAMCredentials, string, error) {
		switch {
		case user == "canon@example.test", user == "alias@example.test":
			return SCRAMCredentials{}, "canon@example.test", ErrAuthFailed
		case user != "me@example.test", authz != "" && authz != user:
			return SCRAMCredentials{}, "", ErrAuthFailed
		}
		return creds, user, nil
	}
	realSalt, realIters, _ := serverFirst(t, lookup, "", "me@example.test")
	salt, iters, _ := serverFirst(t, lookup, "", "nobody@example.test")
	if len(salt) != len(realSalt) || iters != realIters || iters != "4096" {
		t.Errorf("unknown user: salt of %d bytes, i=%s; a real one: %d bytes, i=%s", len(salt), iters, len(realSalt), realIters)
	}
	again, _, _ := serverFirst(t, lookup, "", "nobody@example.test")
	upper, _, _ := serverFirst(t, lookup, "", "NoBody@Example.TEST")
	other, _, _ := serverFirst(t, lookup, "", "someone@example.test")
	if !bytes.Equal(salt, again) || !bytes.Equal(salt, upper) {
		t.Errorf("one name, several salts: %x %x %x", salt, again, upper)
	}
	if bytes.Equal(salt, other) || bytes.Equal(salt, realSalt) {
		t.Error("two names share a salt")
	}
	// The lookup's canonical name keys the salt when it gives one.
	canon, _, _ := serverFirst(t, lookup, "", "canon@example.test")
	alias, _, _ := serverFirst(t, lookup, "", "alias@example.test")
	if !bytes.Equal(canon, alias) {
		t.Errorf("spellings of one canonical name: %x, %x", canon, alias)
	}
	// A refused authz shows the user's own salt: a made-up one would
	// differ from what the user gets without authz.
	if s, _, _ := serverFirst(t, lookup, "boss@example.test", "me@example.test"); !bytes.Equal(s, realSalt) {
		t.Errorf("refused authz: salt %x, want the user's %x", s, realSalt)
	}

	// Every failure at client-final is the wrong-password one.
	finish := func(authz, user, pw string) error {
		t.Helper()
		cl, err := scram.SHA256.NewClient(user, pw, authz)
		if err != nil {
			t.Fatal(err)
		}
		conv := cl.NewConversation()
		first, _ := conv.Step("")
		s := NewSCRAMSHA256(lookup, nil)
		ch, _, err := s.Next([]byte(first))
		if err != nil {
			t.Fatalf("%s: client-first: %v", user, err)
		}
		final, err := conv.Step(string(ch))
		if err != nil {
			t.Fatalf("%s: client-final: %v", user, err)
		}
		out, done, err := s.Next([]byte(final))
		if done || out != nil || s.Identity() != "" {
			t.Errorf("%s: done %v, challenge %q, identity %q", user, done, out, s.Identity())
		}
		return err
	}
	wrong := finish("", "me@example.test", "wrong")
	if wrong != ErrAuthFailed {
		t.Fatalf("wrong password: %v", wrong)
	}
	for _, tc := range []struct{ authz, user, pw string }{
		{"", "nobody@example.test", "secret"},
		{"", "nobody@example.test", "wrong"},
		{"", "canon@example.test", "secret"},
		{"boss@example.test", "me@example.test", "secret"}, // right password, refused authz
	} {
		if err := finish(tc.authz, tc.user, tc.pw); err != wrong {
			t.Errorf("%+v: %v, want %v", tc, err, wrong)
		}
	}
}

// TestSCRAMLookupError: an error other than ErrAuthFailed (a blocked
// address, a broken store) still ends the exchange at client-first.
func TestSCRAMLookupError(t *testing.T) {
	t.Parallel()
	errBlocked := errors.New("blocked")
	s := NewSCRAMSHA256(func(string, string) (SCRAMCredentials, string, error) { return SCRAMCredentials{}, "", errBlocked }, nil)
	if _, done, err := s.Next([]byte("n,,n=me@example.test,r=abcdef")); done || err != errBlocked {
		t.Errorf("done %v err %v, want %v", done, err, errBlocked)
	}
}
