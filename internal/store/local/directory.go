package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"posthorn/internal/store"
	"posthorn/internal/users"
)

// This file implements users.Directory.

var _ users.Directory = (*Store)(nil)

// AddDomain implements users.Directory.
func (s *Store) AddDomain(ctx context.Context, name string) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO domains(name, created) VALUES (?, ?)`, name, time.Now().Unix())
		return uniqueErr(err)
	})
}

// DeleteDomain implements users.Directory.
func (s *Store) DeleteDomain(ctx context.Context, name string) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		return affected(tx.Exec(`DELETE FROM domains WHERE name = ?`, name))
	})
}

// Domains implements users.Directory.
func (s *Store) Domains(ctx context.Context) ([]string, error) {
	return queryColumn[string](ctx, s.rdb, `SELECT name FROM domains ORDER BY name`)
}

// HasDomain implements users.Directory.
func (s *Store) HasDomain(ctx context.Context, name string) (bool, error) {
	return get(s.dcache, "d:"+name, func() (bool, bool, error) {
		var n int
		err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM domains WHERE name = ?`, name).Scan(&n)
		return n > 0, true, err
	})
}

// AddAccount implements users.Directory. It also creates the account's
// Maildir and default mailboxes.
func (s *Store) AddAccount(ctx context.Context, a users.Account) error {
	rel, err := accountPath(a.Address)
	if err != nil {
		return err
	}
	if err := s.makeFolders(rel); err != nil {
		return fmt.Errorf("local: create maildir: %w", classify(err))
	}
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO accounts(address, domain, password, scram, maildir, created, disabled) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			a.Address, users.DomainOf(a.Address), a.PasswordHash, a.SCRAM, rel, a.Created.Unix(), a.Disabled)
		if err != nil {
			return uniqueErr(err)
		}
		id, _ := res.LastInsertId()
		for _, m := range store.DefaultMailboxes {
			if err := createMailbox(tx, id, m.Name, m.SpecialUse); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) makeFolders(rel string) error {
	root := filepath.Join(s.mailDir, rel)
	for _, m := range store.DefaultMailboxes {
		sub, err := folderDir(m.Name)
		if err != nil {
			return err
		}
		if err := makeMaildir(filepath.Join(root, sub), sub != ""); err != nil {
			return err
		}
	}
	return nil
}

// Account implements users.Directory.
func (s *Store) Account(ctx context.Context, address string) (users.Account, error) {
	type found struct {
		a  users.Account
		ok bool
	}
	f, err := get(s.dcache, "a:"+address, func() (found, bool, error) {
		row := s.rdb.QueryRowContext(ctx, `SELECT address, password, scram, created, disabled FROM accounts WHERE address = ?`, address)
		a, err := scanAccount(row)
		if errors.Is(err, sql.ErrNoRows) {
			return found{}, true, nil
		}
		return found{a, true}, true, err
	})
	if err == nil && !f.ok {
		err = users.ErrNotFound
	}
	return f.a, err
}

// Accounts implements users.Directory.
func (s *Store) Accounts(ctx context.Context, domain string) ([]users.Account, error) {
	q := `SELECT address, password, scram, created, disabled FROM accounts WHERE ? = '' OR domain = ? ORDER BY address`
	rows, err := s.rdb.QueryContext(ctx, q, domain, domain)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []users.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func scanAccount(r interface{ Scan(...any) error }) (users.Account, error) {
	var a users.Account
	var created int64
	err := r.Scan(&a.Address, &a.PasswordHash, &a.SCRAM, &created, &a.Disabled)
	a.Created = time.Unix(created, 0).UTC()
	return a, err
}

// SetPassword implements users.Directory.
func (s *Store) SetPassword(ctx context.Context, address, hash, scram string) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		return affected(tx.Exec(`UPDATE accounts SET password = ?, scram = ? WHERE address = ?`, hash, scram, address))
	})
}

// AddAppPassword implements users.Directory.
func (s *Store) AddAppPassword(ctx context.Context, address string, p users.AppPassword) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		id, err := accountID(tx, address)
		if err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT INTO app_passwords(account_id, name, hash, scopes, created) VALUES (?, ?, ?, ?, ?)`,
			id, p.Name, p.Hash, strings.Join(p.Scopes, ","), p.Created.Unix())
		return uniqueErr(err)
	})
}

// AppPasswords implements users.Directory.
func (s *Store) AppPasswords(ctx context.Context, address string) ([]users.AppPassword, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT p.name, p.hash, p.scopes, p.created FROM app_passwords p
		JOIN accounts a ON a.id = p.account_id WHERE a.address = ? ORDER BY p.name`, address)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []users.AppPassword
	for rows.Next() {
		var p users.AppPassword
		var scopes string
		var created int64
		if err := rows.Scan(&p.Name, &p.Hash, &scopes, &created); err != nil {
			return nil, err
		}
		p.Scopes, p.Created = strings.Split(scopes, ","), time.Unix(created, 0).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeleteAppPassword implements users.Directory.
func (s *Store) DeleteAppPassword(ctx context.Context, address, name string) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		return affected(tx.Exec(`DELETE FROM app_passwords WHERE name = ? AND account_id = (SELECT id FROM accounts WHERE address = ?)`, name, address))
	})
}

// DeleteAccount implements users.Directory. The index rows go; the Maildir
// stays on disk for the operator to archive or remove.
func (s *Store) DeleteAccount(ctx context.Context, address string) error {
	s.layout.Add(1)
	defer s.layout.Add(1)
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		return affected(tx.Exec(`DELETE FROM accounts WHERE address = ?`, address))
	})
}

// MaildirPath returns the absolute Maildir directory of an account.
func (s *Store) MaildirPath(ctx context.Context, address string) (string, error) {
	var rel string
	err := s.rdb.QueryRowContext(ctx, `SELECT maildir FROM accounts WHERE address = ?`, address).Scan(&rel)
	if errors.Is(err, sql.ErrNoRows) {
		return "", users.ErrNotFound
	}
	return filepath.Join(s.mailDir, rel), err
}

// AddAlias implements users.Directory.
func (s *Store) AddAlias(ctx context.Context, address, target string) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO aliases(address, target, domain) VALUES (?, ?, ?)`, address, target, users.DomainOf(address))
		return uniqueErr(err)
	})
}

// DeleteAlias implements users.Directory.
func (s *Store) DeleteAlias(ctx context.Context, address, target string) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		return affected(tx.Exec(`DELETE FROM aliases WHERE address = ? AND (? = '' OR target = ?)`, address, target, target))
	})
}

// AliasTargets implements users.Directory.
func (s *Store) AliasTargets(ctx context.Context, address string) ([]string, error) {
	ts, err := get(s.dcache, "t:"+address, func() ([]string, bool, error) {
		ts, err := queryColumn[string](ctx, s.rdb, `SELECT target FROM aliases WHERE address = ? ORDER BY target`, address)
		return ts, true, err
	})
	return slices.Clone(ts), err
}

// Aliases implements users.Directory.
func (s *Store) Aliases(ctx context.Context, domain string) ([]users.Alias, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT address, target FROM aliases WHERE ? = '' OR domain = ? ORDER BY address, target`, domain, domain)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []users.Alias
	for rows.Next() {
		var addr, target string
		if err := rows.Scan(&addr, &target); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].Address == addr {
			out[n-1].Targets = append(out[n-1].Targets, target)
		} else {
			out = append(out, users.Alias{Address: addr, Targets: []string{target}})
		}
	}
	return out, rows.Err()
}

// queryColumn reads a one-column result.
func queryColumn[T any](ctx context.Context, q querier, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// uniqueErr maps a uniqueness violation to users.ErrExists.
func uniqueErr(err error) error {
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return users.ErrExists
	}
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed") {
		return fmt.Errorf("%w (referenced item missing or still in use)", err)
	}
	return err
}

// affected turns "no row changed" into users.ErrNotFound.
func affected(res sql.Result, err error) error {
	if err != nil {
		return uniqueErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return users.ErrNotFound
	}
	return nil
}
