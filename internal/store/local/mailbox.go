package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"posthorn/internal/store"
	"posthorn/internal/users"
)

// createMailbox adds a mailbox row with a fresh UIDVALIDITY.
func createMailbox(tx *sql.Tx, accountID int64, name, specialUse string) error {
	v, err := nextUIDValidity(tx)
	if err != nil {
		return err
	}
	_, err = tx.Exec(`INSERT INTO mailboxes(account_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)`,
		accountID, name, specialUse, v)
	if err != nil {
		return uniqueErr(err)
	}
	return dropLoneSubscription(tx, accountID, name) // the mailbox's column says now
}

// dropLoneSubscription forgets a name's subscription without a mailbox.
func dropLoneSubscription(tx *sql.Tx, accountID int64, name string) error {
	_, err := tx.Exec(`DELETE FROM lone_subscriptions WHERE account_id = ? AND name = ?`, accountID, name)
	return err
}

// nextUIDValidity returns a value never used before in this store: the
// current time, or one more than the last value if the clock has not moved
// on (RFC 9051 §2.3.1.1: a re-created mailbox needs a new UIDVALIDITY).
func nextUIDValidity(tx *sql.Tx) (uint32, error) {
	var last int64
	if err := tx.QueryRow(`SELECT value FROM meta WHERE key = 'uidvalidity'`).Scan(&last); err != nil {
		return 0, err
	}
	v := max(time.Now().Unix(), last+1)
	if v > 1<<32-1 {
		v = last + 1
	}
	_, err := tx.Exec(`UPDATE meta SET value = ? WHERE key = 'uidvalidity'`, v)
	return uint32(v), err
}

// canonicalMailbox spells INBOX in capitals, whatever the case given
// (RFC 9051 §5.1: INBOX is case-insensitive).
func canonicalMailbox(name string) string {
	if name == "" || strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// maxMailboxes bounds the mailboxes of one account: each is a directory
// and index rows a client could otherwise create without end. Dovecot's
// users rarely pass a few hundred.
const maxMailboxes = 10000

// CreateMailbox implements store.Mail.
func (s *Store) CreateMailbox(ctx context.Context, account, name, specialUse string) error {
	name = canonicalMailbox(name)
	root, err := s.MaildirPath(ctx, account)
	if err != nil {
		return err
	}
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM mailboxes m JOIN accounts a ON a.id = m.account_id WHERE a.address = ?`, account).Scan(&n); err != nil {
		return err
	}
	if n >= s.maxBoxes {
		return fmt.Errorf("%w: at most %d mailboxes per account", store.ErrOverQuota, s.maxBoxes)
	}
	sub, err := folderDir(name)
	if err != nil {
		return err
	}
	if err := makeMaildir(filepath.Join(root, sub), sub != ""); err != nil {
		return classify(err)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(tx, account)
		if err != nil {
			return err
		}
		return createMailbox(tx, id, name, specialUse)
	})
}

func accountID(tx *sql.Tx, account string) (int64, error) {
	var id int64
	err := tx.QueryRow(`SELECT id FROM accounts WHERE address = ?`, account).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, users.ErrNotFound
	}
	return id, err
}

// Mailboxes implements store.Mail.
func (s *Store) Mailboxes(ctx context.Context, account string) ([]store.Mailbox, error) {
	rows, err := s.rdb.QueryContext(ctx, `
		SELECT m.name, m.special_use, m.uidvalidity, m.uidnext, m.highestmodseq, m.subscribed,
		       (SELECT count(*) FROM messages WHERE mailbox_id = m.id)
		FROM mailboxes m JOIN accounts a ON a.id = m.account_id
		WHERE a.address = ? ORDER BY m.name = 'INBOX' DESC, m.name`, account)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Mailbox
	for rows.Next() {
		var m store.Mailbox
		if err := rows.Scan(&m.Name, &m.SpecialUse, &m.UIDValidity, &m.UIDNext, &m.HighestModSeq, &m.Subscribed, &m.Messages); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Messages implements store.Mail.
func (s *Store) Messages(ctx context.Context, account, mailbox string) ([]store.Message, error) {
	id, _, err := s.mailbox(ctx, account, mailbox)
	if err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT uid, modseq, flags, internal_date, size FROM messages WHERE mailbox_id = ? ORDER BY uid`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Message
	for rows.Next() {
		var m store.Message
		var flags string
		var date int64
		if err := rows.Scan(&m.UID, &m.ModSeq, &flags, &date, &m.Size); err != nil {
			return nil, err
		}
		m.Flags = strings.Fields(flags)
		m.InternalDate = time.Unix(0, date).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// mailbox returns a mailbox's id and its directory.
func (s *Store) mailbox(ctx context.Context, account, name string) (int64, string, error) {
	name = canonicalMailbox(name)
	if _, ok := expectedValidity(ctx, name); ok || name != "INBOX" {
		return s.lookupMailbox(ctx, account, name)
	}
	// INBOX is never deleted or renamed (RENAME moves its messages out):
	// its row lives as long as the account, so the directory cache may
	// keep it. Every delivery asks for it.
	type box struct {
		id  int64
		dir string
	}
	b, err := get(s.dcache, "i:"+account, func() (box, bool, error) {
		id, dir, err := s.lookupMailbox(ctx, account, name)
		return box{id, dir}, true, err
	})
	return b.id, b.dir, err
}

func (s *Store) lookupMailbox(ctx context.Context, account, name string) (int64, string, error) {
	var id int64
	var rel string
	var validity uint32
	err := s.rdb.QueryRowContext(ctx, `
		SELECT m.id, a.maildir, m.uidvalidity FROM mailboxes m JOIN accounts a ON a.id = m.account_id
		WHERE a.address = ? AND m.name = ?`, account, name).Scan(&id, &rel, &validity)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", store.ErrNoMailbox
	}
	if err != nil {
		return 0, "", err
	}
	if v, ok := expectedValidity(ctx, name); ok && v != validity {
		return 0, "", store.ErrNoMailbox // deleted and made again since the caller looked
	}
	dir, err := s.dirOf(rel, name)
	return id, dir, err
}

// expectedValidity is the UIDVALIDITY the caller expects of mailbox name
// (store.WithUIDValidity).
func expectedValidity(ctx context.Context, name string) (uint32, bool) {
	return store.ExpectedUIDValidity(ctx, name, func(a, b string) bool { return canonicalMailbox(a) == canonicalMailbox(b) })
}

// checkValidity repeats, inside a write transaction, the check of the
// expected UIDVALIDITY that the lookup of mailbox id made before it: the
// mailbox may have been deleted and made again in between.
func checkValidity(ctx context.Context, tx *sql.Tx, id int64, name string) error {
	want, ok := expectedValidity(ctx, name)
	if !ok {
		return nil
	}
	var v uint32
	err := tx.QueryRow(`SELECT uidvalidity FROM mailboxes WHERE id = ?`, id).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) || err == nil && v != want {
		return store.ErrNoMailbox
	}
	return err
}

// dirOf returns the directory of mailbox name in the account Maildir rel.
func (s *Store) dirOf(rel, name string) (string, error) {
	sub, err := folderDir(name)
	return filepath.Join(s.mailDir, rel, sub), err
}
