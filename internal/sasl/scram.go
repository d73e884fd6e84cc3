package sasl

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/xdg-go/scram"
)

// scramIters is the PBKDF2 iteration count for new credentials: the
// RFC 7677 §4 minimum, which is also what Dovecot uses.
const scramIters = 4096

// SCRAMCredentials are what a server stores to verify SCRAM-SHA-256
// without knowing the password (RFC 5802 §3).
type SCRAMCredentials struct {
	Salt      []byte
	Iters     int
	StoredKey []byte
	ServerKey []byte
}

// NewSCRAMCredentials derives stored credentials from a password.
func NewSCRAMCredentials(password string) (SCRAMCredentials, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return SCRAMCredentials{}, err
	}
	cl, err := scram.SHA256.NewClient("", password, "")
	if err != nil {
		return SCRAMCredentials{}, fmt.Errorf("sasl: %w", err)
	}
	sc := cl.GetStoredCredentials(scram.KeyFactors{Salt: string(salt), Iters: scramIters})
	return SCRAMCredentials{Salt: salt, Iters: scramIters, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}, nil
}

var b64 = base64.StdEncoding

// String encodes c for storage: "SCRAM-SHA-256$iters:salt$stored:server".
func (c SCRAMCredentials) String() string {
	return fmt.Sprintf("%s$%d:%s$%s:%s", ScramSHA256, c.Iters, b64.EncodeToString(c.Salt),
		b64.EncodeToString(c.StoredKey), b64.EncodeToString(c.ServerKey))
}

// ParseSCRAMCredentials reverses String.
func ParseSCRAMCredentials(s string) (SCRAMCredentials, error) {
	bad := errors.New("sasl: malformed SCRAM credentials")
	f := strings.Split(s, "$")
	if len(f) != 3 || f[0] != ScramSHA256 {
		return SCRAMCredentials{}, bad
	}
	it, salt, ok1 := strings.Cut(f[1], ":")
	st, sv, ok2 := strings.Cut(f[2], ":")
	n, err := strconv.Atoi(it)
	if !ok1 || !ok2 || err != nil || n < 1 || n > 1<<20 {
		return SCRAMCredentials{}, bad
	}
	c := SCRAMCredentials{Iters: n}
	var e1, e2, e3 error
	c.Salt, e1 = b64.DecodeString(salt)
	c.StoredKey, e2 = b64.DecodeString(st)
	c.ServerKey, e3 = b64.DecodeString(sv)
	if e1 != nil || e2 != nil || e3 != nil {
		return SCRAMCredentials{}, bad
	}
	return c, nil
}

// SCRAMLookup returns the stored credentials and canonical identity for a
// user name; authz is the requested authorization identity ("" if none).
// It refuses a user (unknown, disabled, without SCRAM credentials, or not
// allowed to act as authz) with ErrAuthFailed, and may then still return
// the canonical form of the name as the identity: the server derives its
// stand-in salt from it, so that all spellings of one name get one salt,
// as those of a real account do. Any other error ends the exchange at once.
type SCRAMLookup func(authz, user string) (SCRAMCredentials, string, error)

type scramServer struct {
	conv    *scram.ServerConversation
	lookup  SCRAMLookup
	id      string
	ids     map[string]string // user name → canonical identity, from lookup
	lookErr error
	doomed  bool   // the lookup refused: the exchange runs on and fails
	key     []byte // keys the stand-in salts
	step    int
}

// NewSCRAMSHA256 returns a SCRAM-SHA-256 server (no channel binding).
// standInKey keys the salts it makes up for names without SCRAM
// credentials; it should be a secret kept across restarts (the daemon
// keeps one in its data directory), so that a made-up salt stays the same
// as a real one does. Nil uses a key made once per process.
func NewSCRAMSHA256(lookup SCRAMLookup, standInKey []byte) Server {
	if len(standInKey) == 0 {
		standInKey = processKey()
	}
	s := &scramServer{lookup: lookup, ids: map[string]string{}, key: standInKey}
	srv, _ := scram.SHA256.NewServer(s.credentials)
	s.conv = srv.NewConversation()
	return s
}

// credentials answers the conversation's credential lookup. A refused user
// is not refused here: a failure at client-first, where a known user gets
// the server-first message with its salt, would tell anyone which names
// exist. The exchange goes on with stand-in credentials and fails at
// client-final exactly as a wrong password does (PostgreSQL's
// mock_scram_secret does the same).
func (s *scramServer) credentials(user string) (scram.StoredCredentials, error) {
	authz := s.conv.AuthzID()
	c, id, err := s.lookup(authz, user)
	if errors.Is(err, ErrAuthFailed) {
		s.doomed = true
		c, err = s.standIn(authz, user, id)
	}
	if err != nil {
		s.lookErr = err
		return scram.StoredCredentials{}, err
	}
	s.ids[user] = id
	return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iters},
		StoredKey: c.StoredKey, ServerKey: c.ServerKey}, nil
}

// standIn returns the credentials for a refused user: its own when only
// the authorization identity was refused (a made-up salt would differ from
// the one the user gets without authz, and so show that it exists), fake
// ones otherwise. name is the canonical name from the lookup, if any.
func (s *scramServer) standIn(authz, user, name string) (SCRAMCredentials, error) {
	if authz != "" {
		c, _, err := s.lookup("", user)
		if !errors.Is(err, ErrAuthFailed) { // the user's own, or a block
			return c, err
		}
	}
	if name == "" {
		name = strings.ToLower(user)
	}
	return fakeCredentials(s.key, name), nil
}

// processKey is the stand-in key when the caller has none. A real salt
// stays until the password changes, while one under this key changes when
// the process restarts, so whoever records a name's salt before and after
// a restart could tell the two apart: servers pass a kept key instead.
var processKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand, Go 1.24)
	return k
})

// fakeCredentials are credentials for no account that look like those
// NewSCRAMCredentials makes: a 16-byte salt, the same iteration count, and
// keys of the right size. The salt is fixed for a name (HMAC-SHA-256 of it
// under key), as a real account's is. The server does no PBKDF2 for
// real credentials either (it checks the proof against StoredKey), so the
// exchange costs the same.
func fakeCredentials(key []byte, name string) SCRAMCredentials {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(label + "\x00" + name))
		return m.Sum(nil)
	}
	return SCRAMCredentials{Salt: derive("salt")[:16], Iters: scramIters,
		StoredKey: derive("stored"), ServerKey: derive("server")}
}

func (s *scramServer) Identity() string { return s.id }

func (s *scramServer) Next(resp []byte) ([]byte, bool, error) {
	if len(resp) > MaxResponse {
		return nil, false, ErrTooLong
	}
	switch s.step {
	case 0:
		s.step = 1
		if resp == nil {
			return []byte{}, false, nil
		}
		fallthrough
	case 1:
		s.step = 2
		out, err := s.conv.Step(string(resp))
		if err != nil {
			return nil, false, s.fail(err)
		}
		return []byte(out), false, nil
	case 2:
		s.step = 3
		out, err := s.conv.Step(string(resp))
		if err != nil || !s.conv.Valid() || s.doomed {
			return nil, false, s.fail(err)
		}
		s.id = s.ids[s.conv.Username()]
		return []byte(out), true, nil
	}
	return nil, false, ErrSyntax
}

// fail keeps the lookup's own error (a temporary block, say) and turns
// everything else into ErrAuthFailed.
func (s *scramServer) fail(err error) error {
	if s.lookErr != nil {
		return s.lookErr
	}
	if err != nil && strings.Contains(err.Error(), "parse") {
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return ErrAuthFailed
}

// SCRAMClient is the client side of SCRAM-SHA-256, for our own clients.
type SCRAMClient struct{ conv *scram.ClientConversation }

// NewSCRAMClient starts a client exchange.
func NewSCRAMClient(user, password string) (*SCRAMClient, error) {
	cl, err := scram.SHA256.NewClient(user, password, "")
	if err != nil {
		return nil, fmt.Errorf("sasl: %w", err)
	}
	return &SCRAMClient{conv: cl.NewConversation()}, nil
}

// Step answers a server challenge (nil for the initial response).
func (c *SCRAMClient) Step(challenge []byte) ([]byte, error) {
	out, err := c.conv.Step(string(challenge))
	return []byte(out), err
}

// Valid reports whether the server proved it knows the credentials.
func (c *SCRAMClient) Valid() bool { return c.conv.Valid() }
