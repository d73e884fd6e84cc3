package sasl

import (
	"errors"
	"testing"
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
		s := NewSCRAMSHA256(lookup)
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
	s := NewSCRAMSHA256(func(string, string) (SCRAMCredentials, string, error) { return SCRAMCredentials{}, "", ErrAuthFailed })
	for _, in := range []string{"", "n,,", "x,,n=a,r=b", "n,,n=me,r=abc", "p=tls-unique,,n=a,r=b"} {
		_, done, err := s.Next([]byte(in))
		if err == nil || done {
			t.Errorf("%q accepted", in)
		}
		s = NewSCRAMSHA256(func(string, string) (SCRAMCredentials, string, error) { return SCRAMCredentials{}, "", ErrAuthFailed })
	}
}
