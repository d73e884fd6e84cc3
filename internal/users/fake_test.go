package users

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// fakeDir is an in-memory Directory, safe for concurrent use. It stores
// what it is given as is, like the real backends: canonicalising is the
// Service's job. fail, when set, is consulted before every call and lets a
// test inject storage errors ("HasDomain", "Account", …).
type fakeDir struct {
	mu       sync.Mutex
	domains  map[string]bool
	accounts map[string]Account
	aliases  map[string][]string // address → targets, sorted
	apps     map[string][]AppPassword
	fail     func(op string) error
}

var _ Directory = (*fakeDir)(nil)

func newFakeDir() *fakeDir {
	return &fakeDir{
		domains:  make(map[string]bool),
		accounts: make(map[string]Account),
		aliases:  make(map[string][]string),
		apps:     make(map[string][]AppPassword),
	}
}

// check returns the injected error for op, if any. Callers hold d.mu.
func (d *fakeDir) check(op string) error {
	if d.fail == nil {
		return nil
	}
	return d.fail(op)
}

func (d *fakeDir) AddDomain(_ context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("AddDomain"); err != nil {
		return err
	}
	if d.domains[name] {
		return ErrExists
	}
	d.domains[name] = true
	return nil
}

func (d *fakeDir) DeleteDomain(_ context.Context, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("DeleteDomain"); err != nil {
		return err
	}
	if !d.domains[name] {
		return ErrNotFound
	}
	delete(d.domains, name)
	return nil
}

func (d *fakeDir) Domains(_ context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("Domains"); err != nil {
		return nil, err
	}
	var out []string
	for n := range d.domains {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

func (d *fakeDir) HasDomain(_ context.Context, name string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("HasDomain"); err != nil {
		return false, err
	}
	return d.domains[name], nil
}

func (d *fakeDir) AddAccount(_ context.Context, a Account) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("AddAccount"); err != nil {
		return err
	}
	if _, ok := d.accounts[a.Address]; ok {
		return ErrExists
	}
	d.accounts[a.Address] = a
	return nil
}

func (d *fakeDir) Account(_ context.Context, address string) (Account, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("Account"); err != nil {
		return Account{}, err
	}
	a, ok := d.accounts[address]
	if !ok {
		return Account{}, ErrNotFound
	}
	return a, nil
}

func (d *fakeDir) Accounts(_ context.Context, domain string) ([]Account, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("Accounts"); err != nil {
		return nil, err
	}
	var out []Account
	for addr, a := range d.accounts {
		if domain == "" || DomainOf(addr) == domain {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(x, y Account) int { return cmp.Compare(x.Address, y.Address) })
	return out, nil
}

func (d *fakeDir) SetPassword(_ context.Context, address, hash, scram string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("SetPassword"); err != nil {
		return err
	}
	a, ok := d.accounts[address]
	if !ok {
		return ErrNotFound
	}
	a.PasswordHash, a.SCRAM = hash, scram
	d.accounts[address] = a
	return nil
}

func (d *fakeDir) AddAppPassword(_ context.Context, address string, p AppPassword) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("AddAppPassword"); err != nil {
		return err
	}
	if _, ok := d.accounts[address]; !ok {
		return ErrNotFound
	}
	for _, q := range d.apps[address] {
		if q.Name == p.Name {
			return ErrExists
		}
	}
	d.apps[address] = append(d.apps[address], p)
	return nil
}

func (d *fakeDir) AppPasswords(_ context.Context, address string) ([]AppPassword, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("AppPasswords"); err != nil {
		return nil, err
	}
	return slices.Clone(d.apps[address]), nil
}

func (d *fakeDir) DeleteAppPassword(_ context.Context, address, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := slices.IndexFunc(d.apps[address], func(p AppPassword) bool { return p.Name == name })
	if i < 0 {
		return ErrNotFound
	}
	d.apps[address] = slices.Delete(d.apps[address], i, i+1)
	return nil
}

func (d *fakeDir) DeleteAccount(_ context.Context, address string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("DeleteAccount"); err != nil {
		return err
	}
	if _, ok := d.accounts[address]; !ok {
		return ErrNotFound
	}
	delete(d.accounts, address)
	return nil
}

func (d *fakeDir) AddAlias(_ context.Context, address, target string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("AddAlias"); err != nil {
		return err
	}
	ts := d.aliases[address]
	i, found := slices.BinarySearch(ts, target)
	if found {
		return ErrExists
	}
	d.aliases[address] = slices.Insert(ts, i, target)
	return nil
}

func (d *fakeDir) DeleteAlias(_ context.Context, address, target string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("DeleteAlias"); err != nil {
		return err
	}
	ts, ok := d.aliases[address]
	if !ok {
		return ErrNotFound
	}
	if target == "" {
		delete(d.aliases, address)
		return nil
	}
	i, found := slices.BinarySearch(ts, target)
	if !found {
		return ErrNotFound
	}
	if ts = slices.Delete(ts, i, i+1); len(ts) == 0 {
		delete(d.aliases, address)
	} else {
		d.aliases[address] = ts
	}
	return nil
}

func (d *fakeDir) AliasTargets(_ context.Context, address string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("AliasTargets"); err != nil {
		return nil, err
	}
	return slices.Clone(d.aliases[address]), nil
}

func (d *fakeDir) Aliases(_ context.Context, domain string) ([]Alias, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check("Aliases"); err != nil {
		return nil, err
	}
	var out []Alias
	for addr, ts := range d.aliases {
		if domain == "" || DomainOf(addr) == domain {
			out = append(out, Alias{Address: addr, Targets: slices.Clone(ts)})
		}
	}
	slices.SortFunc(out, func(x, y Alias) int { return cmp.Compare(x.Address, y.Address) })
	return out, nil
}

// Test set-up helpers: they write canonical entries straight into the
// directory, as a backend would hold them, without the cost of hashing.

func (d *fakeDir) mustDomain(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.domains[name] = true
}

func (d *fakeDir) mustAccount(addr string, disabled bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.accounts[addr] = Account{Address: addr, Disabled: disabled}
}

func (d *fakeDir) mustAlias(addr string, targets ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ts := append(d.aliases[addr], targets...)
	slices.Sort(ts)
	d.aliases[addr] = slices.Compact(ts)
}

func (d *fakeDir) mustDisable(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.accounts[addr]
	a.Disabled = true
	d.accounts[addr] = a
}
