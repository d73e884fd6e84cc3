package users

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// phc builds an argon2id PHC string by hand, with any parameters, so the
// tests do not depend on HashPassword to make the hashes they check.
func phc(pw, salt string, m, t uint32, p uint8) string {
	key := argon2.IDKey([]byte(pw), []byte(salt), t, m, p, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s",
		m, t, p, b64.EncodeToString([]byte(salt)), b64.EncodeToString(key))
}

func TestHashPasswordFormat(t *testing.T) {
	t.Parallel()
	// 16-byte salt and 32-byte key in unpadded base64: 22 and 43 characters.
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !re.MatchString(h) {
		t.Errorf("HashPassword = %q, want a match for %s", h, re)
	}
}

func TestHashPasswordSalted(t *testing.T) {
	t.Parallel()
	h1, err1 := HashPassword("same")
	h2, err2 := HashPassword("same")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if h1 == h2 {
		t.Errorf("two hashes of one password are equal: %s", h1)
	}
	// Different salts, so different keys, and both still verify.
	for _, h := range []string{h1, h2} {
		if ok, err := CheckPassword(h, "same"); !ok || err != nil {
			t.Errorf("CheckPassword(%s) = %v, %v", h, ok, err)
		}
	}
}

func TestHashPasswordLength(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n  int
		ok bool
	}{
		{0, false},
		{1, true},
		{MaxPasswordLen, true},
		{MaxPasswordLen + 1, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			t.Parallel()
			pw := strings.Repeat("p", tc.n)
			h, err := HashPassword(pw)
			if (err == nil) != tc.ok {
				t.Fatalf("HashPassword(%d bytes): err %v, want ok=%v", tc.n, err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if ok, err := CheckPassword(h, pw); !ok || err != nil {
				t.Errorf("CheckPassword(%d bytes) = %v, %v", tc.n, ok, err)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	ours, err := HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("L", MaxPasswordLen+1)
	tests := []struct {
		name, hash, pw string
		want           bool
	}{
		{"argon2id right", ours, "secret", true},
		{"argon2id wrong", ours, "Secret", false},
		{"argon2id empty", ours, "", false},
		{"argon2id longer", ours, "secret2", false},
		// Hashes imported from elsewhere carry their own parameters.
		{"argon2id other parameters", phc("secret", "saltsaltsalt", 256, 3, 4), "secret", true},
		{"argon2id other parameters wrong", phc("secret", "saltsaltsalt", 256, 3, 4), "secreT", false},
		{"bcrypt 2a right", string(bc), "secret", true},
		{"bcrypt 2a wrong", string(bc), "secret!", false},
		{"bcrypt 2b right", "$2b$" + string(bc[4:]), "secret", true},
		{"bcrypt 2y right", "$2y$" + string(bc[4:]), "secret", true},
		{"bcrypt 2y wrong", "$2y$" + string(bc[4:]), "wrong", false},
		// The length limit holds even where the hash would match.
		{"at the length limit", phc(long[1:], "saltsaltsalt", 8, 1, 1), long[1:], true},
		{"over the length limit", phc(long, "saltsaltsalt", 8, 1, 1), long, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, err := CheckPassword(tc.hash, tc.pw)
			if ok != tc.want || err != nil {
				t.Errorf("CheckPassword(%q, %q) = %v, %v; want %v, nil", tc.hash, tc.pw, ok, err, tc.want)
			}
		})
	}
}

func TestCheckPasswordBadHash(t *testing.T) {
	t.Parallel()
	// A well-formed hash of "secret", cheap to check; each case breaks it.
	good := phc("secret", "0123456789abcdef", 8, 1, 1)
	if ok, err := CheckPassword(good, "secret"); !ok || err != nil {
		t.Fatalf("base hash does not verify: %v, %v", ok, err)
	}
	salt := b64.EncodeToString([]byte("0123456789abcdef"))
	key := good[strings.LastIndexByte(good, '$')+1:]
	withParams := func(p string) string { return "$argon2id$v=19$" + p + "$" + salt + "$" + key }
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"plain text", "secret"},
		{"argon2i", strings.Replace(good, "$argon2id$", "$argon2i$", 1)},
		{"prefix only", "$argon2id$"},
		{"truncated params", "$argon2id$v=19$m=8,t=1"},
		{"truncated before key", good[:strings.LastIndexByte(good, '$')]},
		{"extra field", good + "$extra"},
		{"version 16", strings.Replace(good, "v=19", "v=16", 1)},
		{"no version", strings.Replace(good, "v=19", "x=19", 1)},
		{"huge m", withParams("m=4294967295,t=1,p=1")},
		{"just over max m", withParams(fmt.Sprintf("m=%d,t=1,p=1", 1<<21+1))},
		{"m overflows", withParams("m=99999999999,t=1,p=1")},
		{"negative m", withParams("m=-8,t=1,p=1")},
		{"zero m", withParams("m=0,t=1,p=1")},
		{"zero t", withParams("m=8,t=0,p=1")},
		{"huge t", withParams("m=8,t=65,p=1")},
		{"zero p", withParams("m=8,t=1,p=0")},
		{"p overflows", withParams("m=8,t=1,p=256")},
		{"params missing", withParams("")},
		{"bad base64 salt", "$argon2id$v=19$m=8,t=1,p=1$!!!!$" + key},
		{"bad base64 key", "$argon2id$v=19$m=8,t=1,p=1$" + salt + "$@@@@"},
		{"padded base64 key", good + "="},
		{"empty key", "$argon2id$v=19$m=8,t=1,p=1$" + salt + "$"},
		{"key too long", "$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + b64.EncodeToString(make([]byte, 129))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, err := CheckPassword(tc.hash, "secret")
			if ok || !errors.Is(err, ErrBadHash) {
				t.Errorf("CheckPassword(%q) = %v, %v; want false, ErrBadHash", tc.hash, ok, err)
			}
		})
	}
}

func TestCheckPasswordBadBcrypt(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"$2b$", "$2b$04$short", "$2y$99$" + strings.Repeat("a", 53)} {
		if ok, err := CheckPassword(h, "secret"); ok || err == nil {
			t.Errorf("CheckPassword(%q) = %v, %v; want false and an error", h, ok, err)
		}
	}
}

// FuzzCheckPassword: no stored hash, however broken, may panic the
// server, and an error never comes with a match.
func FuzzCheckPassword(f *testing.F) {
	f.Fuzz(func(t *testing.T, hash, pw string) {
		if expensive(hash) {
			t.Skip("valid but costly KDF parameters")
		}
		ok, err := CheckPassword(hash, pw)
		if ok && err != nil {
			t.Errorf("CheckPassword(%q, %q) = true, %v", hash, pw, err)
		}
		if ok && len(pw) > MaxPasswordLen {
			t.Errorf("CheckPassword accepted a %d-byte password", len(pw))
		}
	})
}

// expensive reports whether checking hash would run a KDF with parameters
// too costly to fuzz. CheckPassword accepts argon2id up to 2 GiB × 64
// passes and bcrypt up to cost 31 (minutes to hours per call, and 2 GiB per
// fuzz worker); even our own 19 MiB × 2 costs ~50 ms a call. Parsing such
// hashes is covered by cheap ones, verifying them by the unit tests. The
// parameters are read with the same calls as CheckPassword, so exactly the
// costly inputs are skipped.
func expensive(hash string) bool {
	if c, err := bcrypt.Cost([]byte(hash)); err == nil && c > bcrypt.MinCost+1 {
		return true
	}
	f := strings.Split(hash, "$")
	if len(f) != 6 {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	return uint64(m)*uint64(t) > 1<<10 // more than 1 MiB × 1 pass
}
