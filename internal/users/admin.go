package users

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
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
	h, err := HashPassword(pw)
	if err != nil {
		return Account{}, err
	}
	a := Account{Address: addr, PasswordHash: h, Created: time.Now().UTC()}
	return a, s.dir.AddAccount(ctx, a)
}

// LocalOf returns the local part of a canonical address.
func LocalOf(addr string) string { l, _ := Split(addr); return l }

// SetPassword replaces an account's password.
func (s *Service) SetPassword(ctx context.Context, addr, pw string) error {
	h, err := HashPassword(pw)
	if err != nil {
		return err
	}
	return s.dir.SetPassword(ctx, addr, h)
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
		if err := s.dir.AddAlias(ctx, key, t); err != nil && !errors.Is(err, ErrExists) {
			return "", err
		}
	}
	return key, nil
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

// Authenticate checks a password for an account. Callers must rate-limit.
func (s *Service) Authenticate(ctx context.Context, addr, pw string) (Account, error) {
	a, err := s.dir.Account(ctx, addr)
	if err != nil {
		return Account{}, err
	}
	ok, err := CheckPassword(a.PasswordHash, pw)
	if err != nil || !ok || a.Disabled {
		return Account{}, ErrNotFound
	}
	return a, nil
}
