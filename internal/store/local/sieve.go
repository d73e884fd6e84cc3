package local

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"posthorn/internal/store"
	"posthorn/internal/users"
)

var _ store.Sieve = (*Store)(nil)

// SieveScripts implements store.Sieve.
func (s *Store) SieveScripts(ctx context.Context, account string) ([]store.SieveScript, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT s.name, s.active, length(CAST(s.content AS BLOB)), s.modified
		FROM sieve_scripts s JOIN accounts a ON a.id = s.account_id WHERE a.address = ? ORDER BY s.name`, account)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SieveScript
	for rows.Next() {
		var sc store.SieveScript
		var mod int64
		if err := rows.Scan(&sc.Name, &sc.Active, &sc.Size, &mod); err != nil {
			return nil, err
		}
		sc.Modified = time.Unix(mod, 0).UTC()
		out = append(out, sc)
	}
	return out, rows.Err()
}

// SieveScript implements store.Sieve.
func (s *Store) SieveScript(ctx context.Context, account, name string) (string, error) {
	var content string
	err := s.rdb.QueryRowContext(ctx, `SELECT s.content FROM sieve_scripts s JOIN accounts a ON a.id = s.account_id
		WHERE a.address = ? AND s.name = ?`, account, name).Scan(&content)
	if errors.Is(err, sql.ErrNoRows) {
		return "", users.ErrNotFound
	}
	return content, err
}

// ActiveSieveScript implements store.Sieve.
func (s *Store) ActiveSieveScript(ctx context.Context, account string) (store.SieveScript, string, error) {
	type active struct {
		sc      store.SieveScript
		content string
		ok      bool
	}
	a, err := get(s.dcache, "s:"+account, func() (active, bool, error) {
		var a active
		var mod int64
		err := s.rdb.QueryRowContext(ctx, `SELECT s.name, s.content, s.modified FROM sieve_scripts s
			JOIN accounts a ON a.id = s.account_id WHERE a.address = ? AND s.active = 1`, account).Scan(&a.sc.Name, &a.content, &mod)
		if errors.Is(err, sql.ErrNoRows) {
			return a, true, nil
		}
		a.ok = true
		a.sc.Active, a.sc.Size, a.sc.Modified = true, int64(len(a.content)), time.Unix(mod, 0).UTC()
		return a, true, err
	})
	if err == nil && !a.ok {
		err = users.ErrNotFound
	}
	return a.sc, a.content, err
}

// PutSieveScript implements store.Sieve.
func (s *Store) PutSieveScript(ctx context.Context, account, name, content string) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		id, err := accountID(tx, account)
		if err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT INTO sieve_scripts(account_id, name, content, modified) VALUES (?, ?, ?, ?)
			ON CONFLICT (account_id, name) DO UPDATE SET content = excluded.content, modified = excluded.modified`,
			id, name, content, time.Now().Unix())
		return err
	})
}

// ActivateSieveScript implements store.Sieve.
func (s *Store) ActivateSieveScript(ctx context.Context, account, name string) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		id, err := accountID(tx, account)
		if err != nil {
			return err
		}
		if name != "" {
			var n int
			if err := tx.QueryRow(`SELECT count(*) FROM sieve_scripts WHERE account_id = ? AND name = ?`, id, name).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return users.ErrNotFound
			}
		}
		_, err = tx.Exec(`UPDATE sieve_scripts SET active = (name = ?) WHERE account_id = ?`, name, id)
		return err
	})
}

// DeleteSieveScript implements store.Sieve.
func (s *Store) DeleteSieveScript(ctx context.Context, account, name string) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		id, err := accountID(tx, account)
		if err != nil {
			return err
		}
		var active bool
		err = tx.QueryRow(`SELECT active FROM sieve_scripts WHERE account_id = ? AND name = ?`, id, name).Scan(&active)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return users.ErrNotFound
		case err != nil:
			return err
		case active:
			return store.ErrActive
		}
		_, err = tx.Exec(`DELETE FROM sieve_scripts WHERE account_id = ? AND name = ?`, id, name)
		return err
	})
}

// RenameSieveScript implements store.Sieve.
func (s *Store) RenameSieveScript(ctx context.Context, account, oldName, newName string) error {
	return s.writeDir(ctx, func(tx *sql.Tx) error {
		id, err := accountID(tx, account)
		if err != nil {
			return err
		}
		return affected(tx.Exec(`UPDATE sieve_scripts SET name = ?, modified = ? WHERE account_id = ? AND name = ?`,
			newName, time.Now().Unix(), id, oldName))
	})
}

// VacationDue implements store.Sieve. Records older than a month (the
// longest :days allowed) are pruned as new ones are written.
func (s *Store) VacationDue(ctx context.Context, account, key, sender string, period time.Duration, now time.Time) (bool, error) {
	due := false
	sender = strings.ToLower(sender)
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(tx, account)
		if err != nil {
			return err
		}
		var sent int64
		err = tx.QueryRow(`SELECT sent FROM vacation_sent WHERE account_id = ? AND key = ? AND sender = ?`, id, key, sender).Scan(&sent)
		switch {
		case err == nil && now.Sub(time.Unix(sent, 0)) < period:
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.Exec(`INSERT INTO vacation_sent(account_id, key, sender, sent) VALUES (?, ?, ?, ?)
			ON CONFLICT (account_id, key, sender) DO UPDATE SET sent = excluded.sent`, id, key, sender, now.Unix()); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM vacation_sent WHERE account_id = ? AND sent < ?`, id, now.Add(-31*24*time.Hour).Unix()); err != nil {
			return err
		}
		due = true
		return nil
	})
	return due, err
}
