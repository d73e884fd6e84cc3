package local

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"posthorn/internal/store"
)

// migrations are applied in order; schema_version in meta counts how many
// have run. Never edit one that has shipped: append a new one.
var migrations = []string{
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
	CREATE TABLE domains (
		name    TEXT PRIMARY KEY,
		created INTEGER NOT NULL
	);
	CREATE TABLE accounts (
		id       INTEGER PRIMARY KEY,
		address  TEXT NOT NULL UNIQUE,
		domain   TEXT NOT NULL REFERENCES domains(name),
		password TEXT NOT NULL,
		maildir  TEXT NOT NULL,
		created  INTEGER NOT NULL,
		disabled INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX accounts_domain ON accounts(domain);
	CREATE TABLE aliases (
		address TEXT NOT NULL,
		target  TEXT NOT NULL,
		domain  TEXT NOT NULL,
		PRIMARY KEY (address, target)
	);
	CREATE INDEX aliases_domain ON aliases(domain);
	CREATE TABLE mailboxes (
		id            INTEGER PRIMARY KEY,
		account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		name          TEXT NOT NULL,
		special_use   TEXT NOT NULL DEFAULT '',
		uidvalidity   INTEGER NOT NULL,
		uidnext       INTEGER NOT NULL DEFAULT 1,
		highestmodseq INTEGER NOT NULL DEFAULT 1,
		subscribed    INTEGER NOT NULL DEFAULT 1,
		UNIQUE (account_id, name)
	);
	CREATE TABLE messages (
		mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
		uid           INTEGER NOT NULL,
		modseq        INTEGER NOT NULL,
		base          TEXT NOT NULL,
		file          TEXT NOT NULL,
		flags         TEXT NOT NULL DEFAULT '',
		internal_date INTEGER NOT NULL,
		size          INTEGER NOT NULL,
		PRIMARY KEY (mailbox_id, uid)
	);
	CREATE UNIQUE INDEX messages_base ON messages(mailbox_id, base);
	CREATE TABLE expunged (
		mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
		uid        INTEGER NOT NULL,
		modseq     INTEGER NOT NULL,
		PRIMARY KEY (mailbox_id, uid)
	);
	INSERT INTO meta(key, value) VALUES ('uidvalidity', 0);`,

	// 2: outbound queue, SCRAM credentials, app passwords.
	`CREATE TABLE queue_messages (
		id      TEXT PRIMARY KEY,
		sender  TEXT NOT NULL,
		envid   TEXT NOT NULL DEFAULT '',
		ret     TEXT NOT NULL DEFAULT '',
		utf8    INTEGER NOT NULL DEFAULT 0,
		created INTEGER NOT NULL,
		size    INTEGER NOT NULL
	);
	CREATE TABLE queue_rcpts (
		message_id   TEXT NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
		addr         TEXT NOT NULL,
		orcpt        TEXT NOT NULL DEFAULT '',
		notify       TEXT NOT NULL DEFAULT '',
		state        TEXT NOT NULL,
		attempts     INTEGER NOT NULL DEFAULT 0,
		next_attempt INTEGER NOT NULL,
		last_attempt INTEGER NOT NULL DEFAULT 0,
		code         INTEGER NOT NULL DEFAULT 0,
		enhanced     TEXT NOT NULL DEFAULT '',
		text         TEXT NOT NULL DEFAULT '',
		remote       TEXT NOT NULL DEFAULT '',
		warned       INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (message_id, addr)
	);
	CREATE INDEX queue_rcpts_due ON queue_rcpts(state, next_attempt);
	ALTER TABLE accounts ADD COLUMN scram TEXT NOT NULL DEFAULT '';
	CREATE TABLE app_passwords (
		id         INTEGER PRIMARY KEY,
		account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		name       TEXT NOT NULL,
		hash       TEXT NOT NULL,
		scopes     TEXT NOT NULL,
		created    INTEGER NOT NULL,
		UNIQUE (account_id, name)
	);`,

	// 3: per-account quota in bytes, 0 for none.
	`ALTER TABLE accounts ADD COLUMN quota INTEGER NOT NULL DEFAULT 0;`,

	// 4: Sieve scripts and the vacation reply record.
	`CREATE TABLE sieve_scripts (
		account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		name       TEXT NOT NULL,
		content    TEXT NOT NULL,
		active     INTEGER NOT NULL DEFAULT 0,
		modified   INTEGER NOT NULL,
		PRIMARY KEY (account_id, name)
	);
	CREATE TABLE vacation_sent (
		account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		key        TEXT NOT NULL,
		sender     TEXT NOT NULL,
		sent       INTEGER NOT NULL,
		PRIMARY KEY (account_id, key, sender)
	);`,

	// 5: CONDSTORE/QRESYNC and every session's poll ask for the changes
	// after a MODSEQ: an index answers without reading the whole mailbox.
	`CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
	CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);`,

	// 6: subscriptions of names that are no mailbox: a deleted mailbox's
	// (RFC 9051 §6.3.7: the server must not drop it), or one subscribed
	// before it exists. A mailbox's own is its subscribed column.
	`CREATE TABLE lone_subscriptions (
		account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		name       TEXT NOT NULL,
		PRIMARY KEY (account_id, name)
	);`,
}

// migrate brings the schema up to date in one transaction.
func migrate(db *sql.DB) error {
	_, err := migrateFresh(db)
	return err
}

// migrateFresh is migrate, and reports whether the database had no schema
// at all (a new file, or one emptied or deleted behind our back).
func migrateFresh(db *sql.DB) (bool, error) {
	tx, err := db.Begin()
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	var v int
	err = tx.QueryRow(`SELECT version FROM schema_version`).Scan(&v)
	fresh := errors.Is(err, sql.ErrNoRows)
	if fresh {
		_, err = tx.Exec(`INSERT INTO schema_version VALUES (0)`)
	}
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	if v > len(migrations) {
		return false, fmt.Errorf("index schema version %d is newer than this posthorn (%d): downgrade refused", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		if _, err := tx.Exec(migrations[v]); err != nil {
			return false, fmt.Errorf("migration %d: %w", v+1, err)
		}
	}
	if _, err := tx.Exec(`UPDATE schema_version SET version = ?`, v); err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	return fresh, tx.Commit()
}

// classify marks out-of-space errors as store.ErrFull.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(err.Error(), "database or disk is full") {
		return fmt.Errorf("%w: %w", store.ErrFull, err)
	}
	return err
}
