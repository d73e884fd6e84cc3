package daemon

import (
	"context"
	"errors"
	"net/netip"
	"sync"

	"posthorn/internal/managesieve"
	"posthorn/internal/sasl"
	"posthorn/internal/sieve"
	"posthorn/internal/store"
	"posthorn/internal/users"
)

// Limits on one account's scripts. Scripts live in the directory (the
// index and its copy DATA/directory.json, rewritten on every directory
// change), so what users store there is bounded in total, not only per
// script: 32 scripts of 1 MiB each made every change rewrite 32 MiB per
// account (192 MiB as JSON escaped them). One script may be as large as Pigeonhole's default
// (sieve_max_script_size 1M), and all of an account's together as large
// as one such script: hand-written filters take a few KiB, and a client
// edits in place (PUTSCRIPT of the same name), which the total allows.
const (
	maxScripts      = 32
	maxScriptBytes  = sieve.MaxScriptSize
	maxScriptsBytes = 1 << 20 // all of one account's scripts
)

// sieveBackend adapts the users service and the store to
// managesieve.Backend. ManageSieve logins use the "imap" scope of app
// passwords: mail clients manage filters with their IMAP credentials.
type sieveBackend struct {
	users *users.Service
	store store.Store
}

var (
	_ managesieve.Backend = sieveBackend{}
	_ managesieve.Scripts = sieveScripts{}
)

// SieveBackend returns the ManageSieve server's backend over us and st.
func SieveBackend(us *users.Service, st store.Store) managesieve.Backend {
	return sieveBackend{users: us, store: st}
}

func (b sieveBackend) Mechanisms() []string { return []string{sasl.Plain, sasl.ScramSHA256} }

func (b sieveBackend) SASL(ctx context.Context, mech string, ip netip.Addr) (sasl.Server, error) {
	srv, err := b.users.SASL(ctx, mech, "imap", ip)
	if err != nil {
		return nil, err
	}
	return blockMap{srv, managesieve.ErrBlocked}, nil
}

func (b sieveBackend) Scripts(_ context.Context, identity string) (managesieve.Scripts, error) {
	return sieveScripts{st: b.store, acct: identity}, nil
}

// sieveScripts is one account's scripts in the store.
type sieveScripts struct {
	st   store.Store
	acct string
}

func (s sieveScripts) List(ctx context.Context) ([]managesieve.Script, error) {
	list, err := s.st.SieveScripts(ctx, s.acct)
	out := make([]managesieve.Script, 0, len(list))
	for _, sc := range list {
		out = append(out, managesieve.Script{Name: sc.Name, Active: sc.Active})
	}
	return out, err
}

func (s sieveScripts) Get(ctx context.Context, name string) (string, error) {
	text, err := s.st.SieveScript(ctx, s.acct, name)
	return text, scriptErr(err)
}

func (s sieveScripts) Check(_ context.Context, content string) error {
	_, err := sieve.Compile(content)
	var ce *sieve.CheckError
	if errors.As(err, &ce) {
		return &managesieve.CheckError{Line: ce.Line, Msg: ce.Msg}
	}
	return err
}

// putLocks serialises the count-then-store of PUTSCRIPT per account: 40
// sessions storing at once all passed the count and left 53 scripts
// against a limit of 32. (One process; the admin CLI is not limited.)
var putLocks sync.Map // account → *sync.Mutex

func (s sieveScripts) Put(ctx context.Context, name, content string) error {
	mu, _ := putLocks.LoadOrStore(s.acct, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if err := s.HaveSpace(ctx, name, storedCost(content)); err != nil {
		return err
	}
	if err := s.Check(ctx, content); err != nil {
		return err
	}
	return s.st.PutSieveScript(ctx, s.acct, name, content)
}

func (s sieveScripts) SetActive(ctx context.Context, name string) error {
	return scriptErr(s.st.ActivateSieveScript(ctx, s.acct, name))
}

func (s sieveScripts) Delete(ctx context.Context, name string) error {
	return scriptErr(s.st.DeleteSieveScript(ctx, s.acct, name))
}

func (s sieveScripts) Rename(ctx context.Context, oldName, newName string) error {
	return scriptErr(s.st.RenameSieveScript(ctx, s.acct, oldName, newName))
}

// storedCost is what a script takes in the directory's JSON copy: its
// octets, plus what JSON escaping adds (a control character becomes six
// octets, \u0001; a quote, backslash or line end two; U+2028 and U+2029
// six for three). PUTSCRIPT is held to the limits by it, so that a
// script of control characters cannot make every directory change
// rewrite six times its size (red-team run: 1 MiB of \x01, 6 MiB of
// JSON). HAVESPACE, asked before the script is sent, uses the size.
func storedCost(content string) int64 {
	n := int64(len(content))
	for i := 0; i < len(content); i++ {
		switch c := content[i]; {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
			n++
		case c < 0x20:
			n += 5
		case c == 0xe2 && i+2 < len(content) && content[i+1] == 0x80 && (content[i+2] == 0xa8 || content[i+2] == 0xa9):
			n += 3
		}
	}
	return n
}

// HaveSpace answers whether a script of size octets may be stored as
// name: NO (QUOTA/MAXSIZE) for one too large, (QUOTA/MAXSCRIPTS) for one
// script too many, (QUOTA) for too many octets in all (RFC 5804 §1.3).
// A replacement counts instead of the script it replaces; one that does
// not grow the account's scripts is allowed even over the total, so that
// an account over it (the limit is new, and the admin CLI is not bound
// by it) can still shrink its scripts in place.
func (s sieveScripts) HaveSpace(ctx context.Context, name string, size int64) error {
	if size > maxScriptBytes {
		return managesieve.ErrTooLarge
	}
	list, err := s.st.SieveScripts(ctx, s.acct)
	if err != nil {
		return err
	}
	// The stored scripts count as stored too: counted by their octets,
	// 32 scripts of control characters each just under the limit made
	// 6 MiB of JSON against the 1 MiB in all.
	var others, old int64
	replaced := false
	for _, sc := range list {
		text, err := s.st.SieveScript(ctx, s.acct, sc.Name)
		if err != nil {
			return err
		}
		if sc.Name == name {
			replaced, old = true, storedCost(text)
			continue
		}
		others += storedCost(text)
	}
	if !replaced && len(list) >= maxScripts {
		return managesieve.ErrTooManyScripts
	}
	if others+size > maxScriptsBytes && size > old {
		return managesieve.ErrQuota
	}
	return nil
}

func (s sieveScripts) Close() {}

// scriptErr maps store errors to the wire package's.
func scriptErr(err error) error {
	switch {
	case errors.Is(err, users.ErrNotFound):
		return managesieve.ErrNoScript
	case errors.Is(err, users.ErrExists):
		return managesieve.ErrExists
	case errors.Is(err, store.ErrActive):
		return managesieve.ErrActive
	}
	return err
}
