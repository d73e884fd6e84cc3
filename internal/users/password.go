package users

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// argon2id parameters: OWASP's recommendation for a small server (19 MiB,
// 2 passes, 1 lane) keeps a verification near 20 ms on one core and the
// memory of a burst of logins bounded.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
	// MaxPasswordLen bounds what we hash: longer inputs are refused.
	MaxPasswordLen = 1024

	// Cost caps for stored hashes (imported ones may ask for anything):
	// one verification must never take much memory or time, or a burst
	// of wrong passwords could exhaust the server. Hashes above the caps
	// are refused as ErrBadHash; rehash such accounts with user passwd.
	maxArgonMemory = 256 * 1024 // KiB
	maxArgonTime   = 10
	maxBcryptCost  = 14
)

var b64 = base64.RawStdEncoding

// ErrBadHash is returned for a stored hash in no format we know.
var ErrBadHash = errors.New("users: unknown password hash format")

// HashPassword returns the argon2id hash of pw as a PHC string.
func HashPassword(pw string) (string, error) {
	if len(pw) == 0 || len(pw) > MaxPasswordLen {
		return "", fmt.Errorf("users: password must be 1 to %d bytes", MaxPasswordLen)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches hash. It understands argon2id
// PHC strings and bcrypt hashes (for accounts imported from elsewhere).
func CheckPassword(hash, pw string) (bool, error) {
	if len(pw) > MaxPasswordLen {
		return false, nil
	}
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		return checkArgon2id(hash, pw)
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost > maxBcryptCost {
			return false, ErrBadHash
		}
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		return err == nil, err
	}
	return false, ErrBadHash
}

func checkArgon2id(hash, pw string) (bool, error) {
	// $argon2id$v=19$m=…,t=…,p=…$salt$key
	f := strings.Split(hash, "$")
	if len(f) != 6 {
		return false, ErrBadHash
	}
	var v int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(f[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, ErrBadHash
	}
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > maxArgonMemory || t == 0 || t > maxArgonTime || p == 0 || p > 16 {
		return false, ErrBadHash
	}
	salt, err1 := b64.DecodeString(f[4])
	key, err2 := b64.DecodeString(f[5])
	if err1 != nil || err2 != nil || len(key) == 0 || len(key) > 128 {
		return false, ErrBadHash
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// GeneratePassword returns a random password: 26 base32 characters,
// 128 bits of entropy.
func GeneratePassword() string { return rand.Text() }
