package local

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"posthorn/internal/store"
)

// The index is a cache of the Maildirs for mail, but it is the only home
// of domains, accounts, aliases, Sieve scripts and the queue state. When
// SQLite finds it damaged, Open does not give up and does not serve half
// an index: it sets the damaged files aside, starts a fresh index, copies
// every table it can still read, and rebuilds what it cannot from the
// Maildirs (mailboxes from the folder directories; messages by the sync
// that follows, with a new UIDVALIDITY when UIDs could not be kept).
// Without the accounts it refuses to start: answering 550 "no such user"
// for everyone would bounce mail that the operator can still save from a
// backup.

// salvageTables are copied, in this order (foreign keys), from a damaged
// index, each all or nothing.
var salvageTables = []struct{ name string }{
	{"meta"}, {"domains"}, {"accounts"}, {"aliases"}, {"app_passwords"}, {"sieve_scripts"}, {"vacation_sent"},
	{"queue_messages"}, {"queue_rcpts"}, {"mailboxes"}, {"messages"}, {"expunged"}, {"lone_subscriptions"},
}

// damaged tells whether err is SQLite reporting a corrupt database.
func damaged(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errIndexLost) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "malformed") || strings.Contains(msg, "not a database") ||
		strings.Contains(msg, "(11)") || strings.Contains(msg, "(26)") || strings.Contains(msg, "corrupt")
}

// checkIndex runs SQLite's quick_check on an open index.
func checkIndex(db *sql.DB) error {
	var res string
	if err := db.QueryRow(`PRAGMA quick_check`).Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("quick_check: %s (11)", res)
	}
	return nil
}

// recoverIndex sets the damaged index aside and builds a new one from
// what can be read of it. It is called with no connection open.
func (s *Store) recoverIndex(path string, cause error) error {
	aside := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405"))
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("local: set the damaged index aside: %w", err)
		}
	}
	s.log.Error("index damaged: set aside, rebuilding from what is readable and from the Maildirs",
		"damaged", aside, "err", cause)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(0)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := migrate(db); err != nil {
		return fmt.Errorf("local: new index: %w", err)
	}
	lost := map[string]bool{}
	if _, err := db.Exec(`ATTACH DATABASE ? AS old`, aside); err != nil {
		s.log.Error("index damaged: nothing readable in it", "err", err)
		for _, t := range salvageTables {
			lost[t.name] = true
		}
	} else {
		for _, t := range salvageTables {
			if err := copyTable(db, t.name); err != nil {
				lost[t.name] = true
				s.log.Error("index damaged: table lost", "table", t.name, "err", err)
			}
		}
		if _, err := db.Exec(`DETACH DATABASE old`); err != nil {
			return err
		}
	}
	if !lost["domains"] && !lost["accounts"] && emptyDirectory(db) {
		lost["domains"], lost["accounts"] = true, true // the index was lost: see errIndexLost
	}
	if lost["domains"] || lost["accounts"] {
		if err := s.restoreDirectory(db); err != nil {
			return fmt.Errorf("local: the accounts are neither in the damaged index %s nor in %s (%v): restore the index from a backup", aside, directoryFile, err)
		}
		s.log.Warn("index damaged: domains, accounts, aliases, app passwords and Sieve scripts restored from " + directoryFile)
		lost["mailboxes"] = true
	}
	if lost["mailboxes"] || lost["messages"] || lost["expunged"] {
		if err := s.rebuildMailboxes(db); err != nil {
			return err
		}
	}
	if lost["queue_messages"] || lost["queue_rcpts"] || errors.Is(cause, errIndexLost) {
		s.reportQueueLoss(db)
	}
	s.log.Warn("index rebuilt", "damaged_copy", aside, "tables_lost", len(lost))
	return nil
}

// emptyDirectory reports whether db holds no domains and no accounts.
func emptyDirectory(db *sql.DB) bool {
	var n int
	err := db.QueryRow(`SELECT (SELECT count(*) FROM domains) + (SELECT count(*) FROM accounts)`).Scan(&n)
	return err == nil && n == 0
}

// reportQueueLoss says at once how many queued messages lost their
// envelopes with the index (their bodies stay in DATA/queue; the sweep
// sets them aside in queue/corrupt/ an hour later).
func (s *Store) reportQueueLoss(db *sql.DB) {
	ents, err := os.ReadDir(s.queueDir())
	if err != nil {
		return
	}
	n := 0
	for _, e := range ents {
		if !e.Type().IsRegular() || !validQueueID(e.Name()) {
			continue
		}
		var one int
		if db.QueryRow(`SELECT 1 FROM queue_messages WHERE id = ?`, e.Name()).Scan(&one) != nil {
			n++
		}
	}
	if n > 0 {
		s.log.Error("queued messages lost their envelopes with the index: their bodies stay in the queue directory and are set aside in queue/corrupt/ after an hour; restore the index from a backup to send them",
			"messages", n, "dir", s.queueDir())
	}
}

// errIndexLost is an index without domains or accounts beside a
// directory.json that has some: a posthorn.db deleted or emptied (a zero
// length file is a valid empty database). Served as it is, it refused
// all mail for our own domains with 554 and every login, and the next
// admin command overwrote directory.json with the empty directory. It
// counts as damage, so that the index is rebuilt from the copy.
var errIndexLost = errors.New("index holds no domains or accounts but " + directoryFile + " does: the index was lost")

// checkNotLost closes the index and returns errIndexLost when it has been
// lost (see there). Only an index this Open made from nothing can be:
// one emptied by admin commands (the last domain deleted) is between the
// index commit and its directory.json save for a moment, and must not be
// taken for lost then.
func (s *Store) checkNotLost() error {
	if !s.freshIndex {
		return nil
	}
	var n int
	if err := s.wdb.QueryRow(`SELECT (SELECT count(*) FROM domains) + (SELECT count(*) FROM accounts)`).Scan(&n); err != nil || n > 0 {
		return err
	}
	if saved, err := s.savedDirectorySize(); err != nil || saved == 0 {
		return nil // a new store, or one emptied on purpose: its copy is empty too
	}
	s.rdb.Close()
	s.wdb.Close()
	return errIndexLost
}

// savedDirectorySize counts the domains and accounts in directory.json.
func (s *Store) savedDirectorySize() (int, error) {
	dump, err := s.readDirectory()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	return len(dump["domains"]) + len(dump["accounts"]), nil
}

// copyTable copies one table from the attached damaged index, all or
// nothing.
func copyTable(db *sql.DB, table string) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM main.` + table); err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO main.` + table + ` SELECT * FROM old.` + table); err != nil {
		return err
	}
	return tx.Commit()
}

// rebuildMailboxes recreates every account's mailboxes from its Maildir
// folders, each with a new UIDVALIDITY (RFC 9051 §2.3.1.1: the old UIDs
// are gone), and empty: the startup sync indexes the messages.
func (s *Store) rebuildMailboxes(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM expunged`, `DELETE FROM messages`, `DELETE FROM mailboxes`} {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	rows, err := tx.Query(`SELECT id, maildir FROM accounts`)
	if err != nil {
		return err
	}
	type acct struct {
		id  int64
		dir string
	}
	var accts []acct
	for rows.Next() {
		var a acct
		if err := rows.Scan(&a.id, &a.dir); err != nil {
			rows.Close()
			return err
		}
		accts = append(accts, a)
	}
	rows.Close()
	special := map[string]string{}
	for _, m := range store.DefaultMailboxes {
		special[m.Name] = m.SpecialUse
	}
	for _, a := range accts {
		names := []string{"INBOX"}
		ents, _ := os.ReadDir(filepath.Join(s.mailDir, a.dir))
		for _, e := range ents {
			if name, ok := folderName(e.Name()); ok && e.IsDir() {
				names = append(names, name)
			}
		}
		for _, n := range names {
			if err := createMailbox(tx, a.id, n, special[n]); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// folderName is the mailbox name of a Maildir++ folder directory
// (".Lists.dev" → "Lists/dev"), the inverse of folderDir.
func folderName(dir string) (string, bool) {
	if !strings.HasPrefix(dir, ".") || dir == "." || dir == ".." {
		return "", false
	}
	parts := strings.Split(dir[1:], ".")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil || u == "" {
			return "", false
		}
		parts[i] = u
	}
	return strings.Join(parts, "/"), true
}

// directoryTables are what a damaged index cannot lose: they exist nowhere
// else. A copy of them is kept in DATA/directory.json, rewritten after
// every change (admin commands: rare and small).
var directoryTables = []string{"domains", "accounts", "aliases", "app_passwords", "sieve_scripts"}

const directoryFile = "directory.json"

// writeDir is write for changes to the directory tables: it also empties
// the directory cache and saves their copy (which tells other processes'
// caches, see dircache.go).
func (s *Store) writeDir(ctx context.Context, fn func(*sql.Tx) error) error {
	err := s.write(ctx, fn)
	s.dcache.changed()
	if err != nil {
		return err
	}
	if err := s.saveDirectory(ctx); err != nil {
		s.log.Error("directory copy not saved", "err", err)
	}
	return nil
}

// saveDirectory writes the directory tables as JSON, durably (temporary
// file, fsync, rename, fsync of the directory). Admin commands run in
// their own processes, so dumps are serialised by an flock: each reads
// the tables after taking it, so the last one written has every change.
func (s *Store) saveDirectory(ctx context.Context) error {
	lock, err := os.OpenFile(filepath.Join(s.dir, directoryFile+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	dump := map[string][]map[string]any{}
	for _, t := range directoryTables {
		rows, err := s.rdb.DB.QueryContext(ctx, `SELECT * FROM `+t)
		if err != nil {
			return err
		}
		all, err := scanAll(rows)
		if err != nil {
			return err
		}
		dump[t] = all
	}
	b, err := marshalDirectory(dump)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, fmt.Sprintf("%s.tmp%d", directoryFile, os.Getpid()))
	if err := writeFileSynced(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, directoryFile)); err != nil {
		return err
	}
	return syncDir(s.dir)
}

// marshalDirectory encodes the dump as JSON without json.Marshal's HTML
// escaping: that writes each '<', '>' and '&' as six octets ("\u003c"),
// so a user's Sieve script of 1 MiB of '<' (a valid script: a comment)
// took 6 MiB in the copy, rewritten on every directory change. The file
// is never put in HTML, and is the same JSON to a decoder (RFC 8259 §7:
// escaping is optional for all but '"', '\\' and control characters).
func marshalDirectory(dump map[string][]map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(dump); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func scanAll(rows *sql.Rows) ([]map[string]any, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := map[string]any{}
		for i, c := range cols {
			if b, ok := vals[i].([]byte); ok {
				vals[i] = string(b)
			}
			row[c] = vals[i]
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// readDirectory reads DATA/directory.json.
func (s *Store) readDirectory() (map[string][]map[string]any, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, directoryFile))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var dump map[string][]map[string]any
	if err := dec.Decode(&dump); err != nil {
		return nil, err
	}
	return dump, nil
}

// restoreDirectory fills the directory tables of a fresh index from
// DATA/directory.json.
func (s *Store) restoreDirectory(db *sql.DB) error {
	dump, err := s.readDirectory()
	if err != nil {
		return err
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range directoryTables {
		if _, err := tx.Exec(`DELETE FROM ` + t); err != nil {
			return err
		}
		for _, row := range dump[t] {
			var cols, marks []string
			var args []any
			for c, v := range row {
				if !validColumn(c) {
					return fmt.Errorf("bad column %q in %s", c, directoryFile)
				}
				if n, ok := v.(json.Number); ok {
					i, err := n.Int64()
					if err != nil {
						return err
					}
					v = i
				}
				cols, marks, args = append(cols, c), append(marks, "?"), append(args, v)
			}
			q := `INSERT INTO ` + t + `(` + strings.Join(cols, ",") + `) VALUES (` + strings.Join(marks, ",") + `)`
			if _, err := tx.Exec(q, args...); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

func validColumn(c string) bool {
	for _, r := range c {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return c != ""
}

func writeFileSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
