package local

import (
	"context"
	"database/sql"
	"sync"
)

// readDB is the read pool with a cache of prepared statements: the hot
// lookups of every delivery (domain, account, aliases, Sieve script) are
// parsed once instead of on every call.
type readDB struct {
	*sql.DB
	stmts sync.Map // query → *sql.Stmt
}

func (r *readDB) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := r.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := r.DB.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := r.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// QueryContext runs q through its cached prepared statement.
func (r *readDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := r.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs q through its cached prepared statement. A
// preparation error surfaces from Scan, as with sql.DB.
func (r *readDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := r.stmt(ctx, q)
	if err != nil {
		return r.DB.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// querier runs a query: the read pool, or a read transaction on it.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// readTx is a read transaction that uses the pool's prepared statements
// (database/sql reuses a statement already prepared on the transaction's
// connection).
type readTx struct {
	*sql.Tx
	r *readDB
}

func (t readTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := t.r.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return t.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

func (t readTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := t.r.stmt(ctx, q)
	if err != nil {
		return t.Tx.QueryRowContext(ctx, q, args...)
	}
	return t.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}

// Close closes the statements, then the pool.
func (r *readDB) Close() error {
	r.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	return r.DB.Close()
}

// writeStmts are the writer's hot statements, prepared once on its single
// connection. A transaction uses them through tx.Stmt, which reuses that
// preparation (database/sql prepares again only on a new connection).
type writeStmts struct {
	insertMessage, messageUID, bumpMailbox *sql.Stmt
}

func prepareWrites(db *sql.DB) (*writeStmts, error) {
	var ws writeStmts
	for _, q := range []struct {
		st  **sql.Stmt
		sql string
	}{
		// RETURNING gives the UID only when the row is new; a conflict
		// (Sync saw the file first) returns nothing.
		{&ws.insertMessage, `INSERT INTO messages(mailbox_id, uid, modseq, base, file, flags, internal_date, size)
			SELECT id, uidnext, highestmodseq + 1, ?, ?, ?, ?, ? FROM mailboxes WHERE id = ?
			ON CONFLICT(mailbox_id, base) DO NOTHING RETURNING uid`},
		{&ws.messageUID, `SELECT uid FROM messages WHERE mailbox_id = ? AND base = ?`},
		{&ws.bumpMailbox, `UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 WHERE id = ?`},
	} {
		st, err := db.Prepare(q.sql)
		if err != nil {
			ws.close()
			return nil, err
		}
		*q.st = st
	}
	return &ws, nil
}

func (ws *writeStmts) close() {
	for _, st := range []*sql.Stmt{ws.insertMessage, ws.messageUID, ws.bumpMailbox} {
		if st != nil {
			st.Close()
		}
	}
}
