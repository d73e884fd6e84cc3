// Package users answers "who is this, and where does their mail go?":
// domains, accounts, password hashes (argon2id), aliases, catch-alls and
// sub-addressing. It owns the rules; storage is a [Directory] that a store
// backend implements, so the same rules hold on SQLite and PostgreSQL.
//
// Addresses handled here are canonical: the domain in lower-case ASCII
// (A-labels for IDNs), the local part lower-cased and NFC-normalised. Parsing
// addresses off the wire is the smtp package's job; callers pass parts in.
package users

import (
	"context"
	"errors"
	"time"
)

// Errors a Directory returns.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// Account is a mailbox owner that can log in.
type Account struct {
	Address      string    // canonical local@domain
	PasswordHash string    // PHC string ($argon2id$…) or bcrypt ($2b$…)
	SCRAM        string    // SCRAM-SHA-256 stored credentials (sasl.SCRAMCredentials), "" if none
	Created      time.Time //
	Disabled     bool      // a disabled account receives no mail and cannot log in
}

// AppPassword is an extra password for one account, limited to some
// protocols, so that a phone's IMAP password cannot send mail, say.
type AppPassword struct {
	Name    string   // label chosen by the user, unique per account
	Hash    string   // argon2id PHC string
	Scopes  []string // protocols: "smtp", "imap", "pop3"
	Created time.Time
}

// Alias maps one address, or a whole domain ("@domain", catch-all), to
// targets, which may be local or remote addresses.
type Alias struct {
	Address string
	Targets []string
}

// Directory stores domains, accounts and aliases. Implementations must be
// safe for concurrent use, and changes must be visible to other processes
// using the same storage at once (admin commands run beside the daemon).
type Directory interface {
	AddDomain(ctx context.Context, name string) error // ErrExists
	DeleteDomain(ctx context.Context, name string) error
	Domains(ctx context.Context) ([]string, error)
	HasDomain(ctx context.Context, name string) (bool, error)

	AddAccount(ctx context.Context, a Account) error // ErrExists
	Account(ctx context.Context, address string) (Account, error)
	Accounts(ctx context.Context, domain string) ([]Account, error) // "" lists all
	SetPassword(ctx context.Context, address, hash, scram string) error
	DeleteAccount(ctx context.Context, address string) error

	AddAppPassword(ctx context.Context, address string, p AppPassword) error // ErrExists
	AppPasswords(ctx context.Context, address string) ([]AppPassword, error)
	DeleteAppPassword(ctx context.Context, address, name string) error

	AddAlias(ctx context.Context, address, target string) error    // ErrExists
	DeleteAlias(ctx context.Context, address, target string) error // target "" deletes all targets
	AliasTargets(ctx context.Context, address string) ([]string, error)
	Aliases(ctx context.Context, domain string) ([]Alias, error) // "" lists all
}
