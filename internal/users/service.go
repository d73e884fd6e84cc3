package users

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// Errors of address resolution. Callers turn them into protocol replies.
var (
	ErrNotLocal   = errors.New("users: domain is not ours")
	ErrNoSuchUser = errors.New("users: no such user")
	ErrAliasLoop  = errors.New("users: alias expansion too deep or too wide")
)

// Limits of alias expansion, against loops and alias bombs.
const (
	maxAliasDepth   = 10
	maxAliasTargets = 1000
)

// Options configure a Service.
type Options struct {
	Directory Directory
	// SubaddressSeparator lists the characters that start a sub-address
	// ("+": user+tag@domain reaches user@domain). Empty disables it.
	SubaddressSeparator string
	// Guard limits failed logins; one Guard should be shared by every
	// Service of a process. Nil gets a Guard with default limits.
	Guard  *Guard
	Logger *slog.Logger
	// Hostname is the server's own name: root@hostname, postmaster@hostname
	// and the other administrative names reach Postmaster even though
	// hostname is not one of our domains (sendmail appends it to bare
	// names: cron mail goes there).
	Hostname string
	// Postmaster receives mail for the administrative names (root,
	// postmaster, abuse, hostmaster, mailer-daemon) in our domains when no
	// alias or account has them. Empty: the oldest enabled account, so
	// that such mail always reaches someone (RFC 5321 §4.5.1).
	Postmaster string
	// StandInKey keys the SCRAM salts made up for names that are no
	// account (see sasl.NewSCRAMSHA256): keep it secret and the same
	// across restarts. Nil: a key per process.
	StandInKey []byte
}

// Service applies the address and account rules on a Directory.
type Service struct {
	hostname, postmaster string

	dir   Directory
	sep   string
	log   *slog.Logger
	guard *Guard
	slots chan struct{}
	key   []byte // SCRAM stand-in key
}

// New returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Directory == nil {
		return nil, errors.New("users: Options.Directory is required")
	}
	if strings.ContainsAny(opts.SubaddressSeparator, "@.\" \t") {
		return nil, fmt.Errorf("users: bad sub-address separator %q", opts.SubaddressSeparator)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := opts.Guard
	if g == nil {
		g = NewGuard(GuardOptions{})
	}
	return &Service{hostname: strings.ToLower(opts.Hostname), postmaster: opts.Postmaster, dir: opts.Directory, sep: opts.SubaddressSeparator, log: log, guard: g,
		slots: make(chan struct{}, verifySlots), key: opts.StandInKey}, nil
}

// Directory returns the underlying directory.
func (s *Service) Directory() Directory { return s.dir }

// NormalizeDomain returns the canonical form of a domain name: lower-case
// A-labels, no trailing dot. It refuses what is not a valid host name.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(d, ".")
	a, err := idna.Lookup.ToASCII(d)
	if err != nil || a == "" || strings.HasPrefix(a, "[") {
		return "", fmt.Errorf("users: bad domain %q", d)
	}
	return strings.ToLower(a), nil
}

// NormalizeLocal returns the canonical form of a local part: NFC, lower-case.
// Local parts are case-insensitive here, as on nearly every mail system.
func NormalizeLocal(l string) string {
	return strings.ToLower(norm.NFC.String(l))
}

// Canonical joins a local part and domain into the canonical address.
func Canonical(local, domain string) (string, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return "", err
	}
	if local == "" {
		return "", errors.New("users: empty local part")
	}
	return NormalizeLocal(local) + "@" + d, nil
}

// Split divides a canonical address at its last '@'.
func Split(addr string) (local, domain string) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return addr, ""
	}
	return addr[:i], addr[i+1:]
}

// IsLocalDomain reports whether domain (any case, U- or A-labels) is ours.
func (s *Service) IsLocalDomain(ctx context.Context, domain string) (bool, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return false, nil
	}
	return s.dir.HasDomain(ctx, d)
}

// Resolution is where mail for one address goes.
type Resolution struct {
	Accounts []string // canonical addresses of local accounts
	Remote   []string // addresses elsewhere (forwarding through aliases)
}

// Resolve expands an address in one of our domains to the accounts and
// remote addresses it reaches. Order of rules: an alias for the exact
// address, an account, the same two for the address without its
// sub-address, then the domain's catch-all. It returns ErrNotLocal when the
// domain is not ours and ErrNoSuchUser when nothing matches, or only
// disabled accounts do.
func (s *Service) Resolve(ctx context.Context, local, domain string) (Resolution, error) {
	addr, err := Canonical(local, domain)
	if err != nil {
		return Resolution{}, ErrNoSuchUser
	}
	local, domain = Split(addr)
	if ok, err := s.dir.HasDomain(ctx, domain); err != nil {
		return Resolution{}, err
	} else if !ok {
		if domain == s.hostname && IsAdminName(local) {
			return s.admin(ctx)
		}
		return Resolution{}, ErrNotLocal
	}
	r := resolver{s: s, seen: make(map[string]bool)}
	found, err := r.expand(ctx, addr, 0)
	switch {
	case err != nil:
		return Resolution{}, err
	case (!found || len(r.res.Accounts)+len(r.res.Remote) == 0) && IsAdminName(local):
		return s.admin(ctx)
	case !found || len(r.res.Accounts)+len(r.res.Remote) == 0:
		return Resolution{}, ErrNoSuchUser
	}
	return r.res, nil
}

// adminNames must always reach someone (RFC 5321 §4.5.1, RFC 2142).
var adminNames = []string{"root", "postmaster", "abuse", "hostmaster", "mailer-daemon"}

// IsAdminName tells whether a local part is an administrative name.
func IsAdminName(local string) bool {
	for _, n := range adminNames {
		if strings.EqualFold(local, n) {
			return true
		}
	}
	return false
}

// admin resolves the administrative names: Postmaster, or else the oldest
// enabled account.
func (s *Service) admin(ctx context.Context) (Resolution, error) {
	if s.postmaster != "" {
		local, domain := Split(s.postmaster)
		if IsAdminName(local) {
			// Resolve it without coming back here.
			r := resolver{s: s, seen: make(map[string]bool)}
			if found, err := r.expand(ctx, s.postmaster, 0); err != nil || !found || len(r.res.Accounts)+len(r.res.Remote) == 0 {
				return Resolution{}, ErrNoSuchUser
			}
			return r.res, nil
		}
		res, err := s.Resolve(ctx, local, domain)
		if errors.Is(err, ErrNotLocal) {
			return Resolution{Remote: []string{s.postmaster}}, nil
		}
		return res, err
	}
	all, err := s.dir.Accounts(ctx, "")
	if err != nil {
		return Resolution{}, err
	}
	var oldest *Account
	for i, a := range all {
		if !a.Disabled && (oldest == nil || a.Created.Before(oldest.Created)) {
			oldest = &all[i]
		}
	}
	if oldest == nil {
		return Resolution{}, ErrNoSuchUser
	}
	return Resolution{Accounts: []string{oldest.Address}}, nil
}

// DomainOf returns the domain of a canonical address.
func DomainOf(addr string) string { _, d := Split(addr); return d }

type resolver struct {
	s          *Service
	seen       map[string]bool
	res        Resolution
	n          int
	noCatchAll bool
}

// expand resolves addr; found reports whether any rule matched it.
func (r *resolver) expand(ctx context.Context, addr string, depth int) (found bool, err error) {
	if depth > maxAliasDepth || r.n > maxAliasTargets {
		return false, ErrAliasLoop
	}
	if r.seen[addr] {
		return true, nil // already expanded: a loop or a duplicate, deliver once
	}
	r.seen[addr] = true
	local, domain := Split(addr)
	if ok, err := r.s.dir.HasDomain(ctx, domain); err != nil {
		return false, err
	} else if !ok {
		r.add(&r.res.Remote, addr) // remote local parts keep their case
		return true, nil
	}
	local = NormalizeLocal(local)
	addr = local + "@" + domain
	if found, err := r.exact(ctx, addr, depth); found || err != nil {
		return found, err
	}
	if base := r.s.stripSubaddress(local); base != local {
		if found, err := r.exact(ctx, base+"@"+domain, depth); found || err != nil {
			return found, err
		}
	}
	if r.noCatchAll {
		return false, nil
	}
	return r.targets(ctx, "@"+domain, addr, depth)
}

// exact applies the alias for addr, or else the account addr.
func (r *resolver) exact(ctx context.Context, addr string, depth int) (bool, error) {
	if found, err := r.targets(ctx, addr, addr, depth); found || err != nil {
		return found, err
	}
	return r.account(ctx, addr)
}

// targets expands the alias key. A target equal to self means "also keep a
// copy in the account self" and is not expanded again.
func (r *resolver) targets(ctx context.Context, key, self string, depth int) (bool, error) {
	ts, err := r.s.dir.AliasTargets(ctx, key)
	if err != nil || len(ts) == 0 {
		return false, err
	}
	any := false
	for _, t := range ts {
		var ok bool
		if t == self {
			ok, err = r.account(ctx, self)
		} else {
			ok, err = r.expand(ctx, t, depth+1)
		}
		if err != nil {
			return false, err
		}
		if !ok {
			r.s.log.Warn("alias target does not exist", "alias", key, "target", t)
		}
		any = any || ok
	}
	return any, nil
}

func (r *resolver) account(ctx context.Context, addr string) (bool, error) {
	a, err := r.s.dir.Account(ctx, addr)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// A disabled account still matches its address: it receives nothing,
	// but the rules stop here, so its mail is refused instead of falling
	// through to the domain's catch-all (someone else's mailbox).
	if !a.Disabled {
		r.add(&r.res.Accounts, addr)
	}
	return true, nil
}

func (r *resolver) add(list *[]string, addr string) {
	for _, a := range *list {
		if a == addr {
			return
		}
	}
	r.n++
	*list = append(*list, addr)
}

// stripSubaddress removes "+tag" (or the configured separators) from a
// local part. A separator at the very start is not a sub-address.
func (s *Service) stripSubaddress(local string) string {
	if s.sep == "" {
		return local
	}
	if i := strings.IndexAny(local, s.sep); i > 0 {
		return local[:i]
	}
	return local
}
