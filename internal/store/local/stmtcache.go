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

// Close closes the statements, then the pool.
func (r *readDB) Close() error {
	r.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	return r.DB.Close()
}
