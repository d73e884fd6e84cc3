package users

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"posthorn/internal/sasl"
)

// AddDomain makes a domain ours.
func (s *Service) AddDomain(ctx context.Context, name string) (string, error) {
	d, err := NormalizeDomain(name)
	if err != nil {
		return "", err
	}
	return d, s.dir.AddDomain(ctx, d)
}

// DeleteDomain removes a domain. Unless force, it refuses while accounts or
// aliases still use it; with force they go too.
func (s *Service) DeleteDomain(ctx context.Context, name string, force bool) error {
	d, err := NormalizeDomain(name)
	if err != nil {
		return err
	}
	accts, err := s.dir.Accounts(ctx, d)
	if err != nil {
		return err
	}
	aliases, err := s.dir.Aliases(ctx, d)
	if err != nil {
		return err
	}
	if !force && len(accts)+len(aliases) > 0 {
		return fmt.Errorf("domain %s still has %d accounts and %d aliases (use --force to delete them too)", d, len(accts), len(aliases))
	}
	for _, a := range aliases {
		if err := s.dir.DeleteAlias(ctx, a.Address, ""); err != nil {
			return err
		}
	}
	for _, a := range accts {
		if err := s.dir.DeleteAccount(ctx, a.Address); err != nil {
			return err
		}
	}
	return s.dir.DeleteDomain(ctx, d)
}

// AddAccount creates an account with password pw in one of our domains.
func (s *Service) AddAccount(ctx context.Context, local, domain, pw string) (Account, error) {
	addr, err := s.localAddress(ctx, local, domain)
	if err != nil {
		return Account{}, err
	}
	if s.stripSubaddress(LocalOf(addr)) != LocalOf(addr) {
		return Account{}, fmt.Errorf("%s: local part contains the sub-address separator %q", addr, s.sep)
	}
	h, sc, err := credentials(pw)
	if err != nil {
		return Account{}, err
	}
	a := Account{Address: addr, PasswordHash: h, SCRAM: sc, Created: time.Now().UTC()}
	return a, s.dir.AddAccount(ctx, a)
}

// LocalOf returns the local part of a canonical address.
func LocalOf(addr string) string { l, _ := Split(addr); return l }

// SetPassword replaces an account's password.
func (s *Service) SetPassword(ctx context.Context, addr, pw string) error {
	h, sc, err := credentials(pw)
	if err != nil {
		return err
	}
	return s.dir.SetPassword(ctx, addr, h, sc)
}

// credentials derives the argon2id hash and the SCRAM-SHA-256 credentials
// of a password. Neither lets anyone recover the password.
func credentials(pw string) (hash, scram string, err error) {
	if hash, err = HashPassword(pw); err != nil {
		return "", "", err
	}
	sc, err := sasl.NewSCRAMCredentials(pw)
	if err != nil {
		return "", "", err
	}
	return hash, sc.String(), nil
}

// AddAppPassword creates a generated password named name for addr, valid
// for the given protocols only, and returns it (it is not stored).
func (s *Service) AddAppPassword(ctx context.Context, addr, name string, scopes []string) (string, error) {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, "\x00\r\n") {
		return "", fmt.Errorf("bad app password name %q", name)
	}
	if len(scopes) == 0 {
		return "", fmt.Errorf("an app password needs at least one scope (%s)", strings.Join(Protocols, ", "))
	}
	for _, sc := range scopes {
		if !slices.Contains(Protocols, sc) {
			return "", fmt.Errorf("unknown scope %q (want %s)", sc, strings.Join(Protocols, ", "))
		}
	}
	pw := GeneratePassword()
	h, err := HashPassword(pw)
	if err != nil {
		return "", err
	}
	return pw, s.dir.AddAppPassword(ctx, addr, AppPassword{Name: name, Hash: h, Scopes: scopes, Created: time.Now().UTC()})
}

// Owns reports whether account may use address as its sender: the account
// itself, a sub-address of it, or an alias that delivers to it. Catch-alls
// do not count, or the catch-all's owner could be anyone in the domain.
func (s *Service) Owns(ctx context.Context, account, address string) (bool, error) {
	local, domain := Split(address)
	addr, err := Canonical(local, domain)
	if err != nil {
		return false, nil
	}
	if addr == account {
		return true, nil
	}
	if ok, err := s.dir.HasDomain(ctx, DomainOf(addr)); err != nil || !ok {
		return false, err
	}
	r := resolver{s: s, seen: make(map[string]bool), noCatchAll: true}
	if _, err := r.expand(ctx, addr, 0); err != nil && !errors.Is(err, ErrAliasLoop) {
		return false, err
	}
	return slices.Contains(r.res.Accounts, account), nil
}

// AddAlias maps alias ("local@domain" or "@domain" for a catch-all) in one
// of our domains to each target.
func (s *Service) AddAlias(ctx context.Context, alias string, targets []string) (string, error) {
	key, err := s.aliasKey(ctx, alias)
	if err != nil {
		return "", err
	}
	if len(targets) == 0 {
		return "", errors.New("an alias needs at least one target")
	}
	for _, t := range targets {
		t, err := s.target(ctx, t)
		if err != nil {
			return "", err
		}
		if err := s.dir.AddAlias(ctx, key, t); err != nil && !errors.Is(err, ErrExists) {
			return "", err
		}
	}
	return key, nil
}

// target canonicalises an alias target: the domain always, the local part
// only in our own domains (elsewhere its case may matter).
func (s *Service) target(ctx context.Context, t string) (string, error) {
	local, domain := Split(t)
	d, err := NormalizeDomain(domain)
	if err != nil || local == "" || strings.ContainsAny(local, "\x00\r\n") {
		return "", fmt.Errorf("bad alias target %q", t)
	}
	if ok, err := s.dir.HasDomain(ctx, d); err != nil {
		return "", err
	} else if ok {
		local = NormalizeLocal(local)
	}
	return local + "@" + d, nil
}

// aliasKey canonicalises an alias address and checks its domain is ours.
func (s *Service) aliasKey(ctx context.Context, alias string) (string, error) {
	local, domain := Split(alias)
	if domain == "" {
		return "", fmt.Errorf("alias %q: want local@domain or @domain", alias)
	}
	if local == "" {
		d, err := s.ourDomain(ctx, domain)
		return "@" + d, err
	}
	return s.localAddress(ctx, local, domain)
}

// AliasKey is aliasKey for callers outside (alias del).
func (s *Service) AliasKey(ctx context.Context, alias string) (string, error) {
	return s.aliasKey(ctx, alias)
}

func (s *Service) localAddress(ctx context.Context, local, domain string) (string, error) {
	d, err := s.ourDomain(ctx, domain)
	if err != nil {
		return "", err
	}
	if local == "" || strings.ContainsAny(local, "\x00\r\n") {
		return "", fmt.Errorf("bad local part %q", local)
	}
	return NormalizeLocal(local) + "@" + d, nil
}

func (s *Service) ourDomain(ctx context.Context, domain string) (string, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return "", err
	}
	ok, err := s.dir.HasDomain(ctx, d)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("domain %s is not ours (add it with: posthorn domain add %s)", d, d)
	}
	return d, nil
}
