package users

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"posthorn/internal/sasl"
)

// Protocols that credentials may be scoped to.
var Protocols = []string{"smtp", "imap", "pop3"}

// ErrBlocked means the client IP is temporarily blocked after too many
// failed logins. Protocols answer with a temporary error and hang up.
var ErrBlocked = errors.New("users: too many failed logins, try again later")

// Login is one authentication attempt.
type Login struct {
	IP       netip.Addr
	Protocol string // "smtp", "imap", "pop3"
	Authz    string // requested authorization identity, "" for none
	User     string
	Password string
}

// dummyHash is verified for unknown users so that a wrong user name costs
// the same time as a wrong password (no user enumeration by timing).
var dummyHash, _ = HashPassword("posthorn dummy password for timing")

// verifySlots bounds concurrent password hashing (memory and CPU).
const verifySlots = 4

// Authenticate checks a login: the account password, or an app password
// scoped to the protocol. It applies the Guard: a blocked IP gets
// ErrBlocked, a failure waits before returning sasl.ErrAuthFailed.
func (s *Service) Authenticate(ctx context.Context, l Login) (Account, error) {
	end, err := s.guard.Begin(ctx, l.IP)
	if errors.Is(err, ErrBlocked) {
		s.log.Warn("login refused: address blocked", "remote", l.IP.String(), "proto", l.Protocol)
	}
	if err != nil {
		return Account{}, err
	}
	defer end()
	a, ok, err := s.check(ctx, l)
	if err != nil {
		return Account{}, err
	}
	if !ok {
		return Account{}, s.failed(ctx, l.IP, l.Protocol, l.User, end)
	}
	s.guard.Succeeded(l.IP, a.Address)
	return a, nil
}

// check verifies the credentials without side effects.
func (s *Service) check(ctx context.Context, l Login) (Account, bool, error) {
	addr, err := s.loginAddress(l.User)
	if err != nil || (l.Authz != "" && l.Authz != l.User && l.Authz != addr) {
		_, _ = s.verify(ctx, dummyHash, l.Password)
		return Account{}, false, nil
	}
	a, err := s.dir.Account(ctx, addr)
	if errors.Is(err, ErrNotFound) || err == nil && a.Disabled {
		_, _ = s.verify(ctx, dummyHash, l.Password)
		return Account{}, false, nil
	}
	if err != nil {
		return Account{}, false, err
	}
	if ok, _ := s.verify(ctx, a.PasswordHash, l.Password); ok {
		return a, true, nil
	}
	aps, err := s.dir.AppPasswords(ctx, addr)
	if err != nil {
		return Account{}, false, err
	}
	for _, ap := range aps {
		if !slices.Contains(ap.Scopes, l.Protocol) {
			continue
		}
		if ok, _ := s.verify(ctx, ap.Hash, l.Password); ok {
			return a, true, nil
		}
	}
	return Account{}, false, nil
}

// verify runs CheckPassword within the concurrency limit.
func (s *Service) verify(ctx context.Context, hash, pw string) (bool, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.slots }()
	return CheckPassword(hash, pw)
}

// failed records a failure, ends the check (end: the Guard's bound is on
// checks, not on the pause after one, which would hold a slot of a
// shared address for seconds), waits the Guard's delay and returns the
// error.
func (s *Service) failed(ctx context.Context, ip netip.Addr, proto, user string, end func()) error {
	addr, _ := s.loginAddress(user)
	delay, blocked := s.guard.Failed(ip, addr)
	end()
	s.log.Warn("login failed", "remote", ip.String(), "proto", proto, "account", sanitize(user), "blocked", blocked)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	if blocked {
		return ErrBlocked
	}
	return sasl.ErrAuthFailed
}

// sanitize keeps a user-supplied name safe and short for the log.
func sanitize(s string) string {
	if len(s) > 100 {
		s = s[:100]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// loginAddress turns a login name into a canonical account address.
func (s *Service) loginAddress(user string) (string, error) {
	local, domain := Split(user)
	if local == "" || domain == "" {
		return "", fmt.Errorf("users: login %q is not an address", user)
	}
	return Canonical(local, domain)
}

// SASL returns a server for mech that logs into this service for protocol
// proto from ip, with the Guard applied. mech is sasl.Plain, sasl.Login or
// sasl.ScramSHA256.
func (s *Service) SASL(ctx context.Context, mech, proto string, ip netip.Addr) (sasl.Server, error) {
	verify := func(authz, user, pw string) (string, error) {
		a, err := s.Authenticate(ctx, Login{IP: ip, Protocol: proto, Authz: authz, User: user, Password: pw})
		return a.Address, err
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlain(verify), nil
	case sasl.Login:
		return sasl.NewLogin(verify), nil
	case sasl.ScramSHA256:
		return &guardedSCRAM{s: s, ctx: ctx, ip: ip, proto: proto, Server: sasl.NewSCRAMSHA256(s.scramLookup(ctx, ip), s.key)}, nil
	}
	return nil, fmt.Errorf("users: unknown SASL mechanism %q", mech)
}

// scramLookup finds stored SCRAM credentials. SCRAM proves the account
// password only: app passwords have no SCRAM credentials. A refusal still
// names the canonical address, which keys the fake salt that sasl answers
// with, so that every spelling of a name that is no account gets one salt.
func (s *Service) scramLookup(ctx context.Context, ip netip.Addr) sasl.SCRAMLookup {
	return func(authz, user string) (sasl.SCRAMCredentials, string, error) {
		if s.guard.Blocked(ip) {
			return sasl.SCRAMCredentials{}, "", ErrBlocked
		}
		addr, err := s.loginAddress(user)
		if err != nil || (authz != "" && authz != user && authz != addr) {
			return sasl.SCRAMCredentials{}, addr, sasl.ErrAuthFailed
		}
		a, err := s.dir.Account(ctx, addr)
		if err != nil || a.Disabled || a.SCRAM == "" {
			return sasl.SCRAMCredentials{}, addr, sasl.ErrAuthFailed
		}
		c, err := sasl.ParseSCRAMCredentials(a.SCRAM)
		return c, addr, err
	}
}

// guardedSCRAM counts SCRAM outcomes in the Guard like password checks.
type guardedSCRAM struct {
	sasl.Server
	s     *Service
	ctx   context.Context
	ip    netip.Addr
	proto string
	user  string
	begun bool // the client-first message was seen
}

func (g *guardedSCRAM) Next(resp []byte) ([]byte, bool, error) {
	end := func() {}
	switch {
	case !g.begun:
		// Without an initial response (IMAP without SASL-IR, AUTH
		// SCRAM-SHA-256 alone) the first call has nothing: the name
		// comes with the client-first message, the next one.
		if resp != nil {
			g.begun, g.user = true, scramUser(resp)
		}
	default:
		// The client's proof: the check, under the Guard's bound on
		// checks at once (the first step only looks the name up).
		e, err := g.s.guard.Begin(g.ctx, g.ip)
		if err != nil {
			return nil, false, err
		}
		end = e
		defer end()
	}
	ch, done, err := g.Server.Next(resp)
	switch {
	case errors.Is(err, sasl.ErrAuthFailed):
		return nil, false, g.s.failed(g.ctx, g.ip, g.proto, g.user, end)
	case done:
		g.s.guard.Succeeded(g.ip, g.Identity())
	}
	return ch, done, err
}

// scramUser picks n=user from a client-first message, for the Guard.
func scramUser(resp []byte) string {
	for _, f := range strings.Split(string(resp), ",") {
		if u, ok := strings.CutPrefix(f, "n="); ok {
			return strings.NewReplacer("=2C", ",", "=3D", "=").Replace(u)
		}
	}
	return ""
}
