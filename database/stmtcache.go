package database

import (
	"context"
	"database/sql"
	"sync"

	"gorm.io/gorm"
)

// MaxCachedStatements bounds the SQL texts a SQLite database keeps
// prepared (see stmtCache), and MaxCachedStatementLen the length of one.
// gorm builds its statements with placeholders, so the texts are the
// statements' shapes: a few dozen in the gateway. A longer text (a batched
// insert of many rows: one shape per row count, each parsed rarely) or one
// past the bound runs unprepared, as it would without the cache. Each
// cached statement is prepared on up to DefaultMaxConns connections, a few
// KiB each.
const (
	MaxCachedStatements   = 256
	MaxCachedStatementLen = 2048
)

// stmtCache is the gorm connection pool of a SQLite database: a statement
// run outside a transaction runs as a database/sql prepared statement,
// kept per SQL text, so SQLite parses and plans it once per connection
// instead of on every execution (the driver, modernc.org/sqlite, keeps a
// prepared statement's handle). On a gated read the parse was the largest
// single cost after the decision's seal.
//
// Transactions are not cached: BeginTx returns the plain *sql.Tx, whose
// statements are prepared on the transaction's own connection as before.
// That is why this is not gorm's PrepareStmt, which prepares a
// transaction's new statements on the pool: a write transaction (holding
// SQLite's one write lock) then waited for a pool connection while every
// connection waited for the write lock. Here a statement is prepared only
// by a caller outside any transaction, and database/sql prepares it again
// on each connection it runs on while it holds that connection, so no
// caller waits for a connection it could not otherwise get.
type stmtCache struct {
	db *sql.DB

	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

var (
	_ gorm.ConnPool       = (*stmtCache)(nil)
	_ gorm.TxBeginner     = (*stmtCache)(nil)
	_ gorm.GetDBConnector = (*stmtCache)(nil)
)

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: make(map[string]*sql.Stmt)}
}

// stmt returns the prepared statement for query, preparing it on first
// use; nil (run it unprepared) when the cache is full, query is longer
// than MaxCachedStatementLen or cannot be prepared (the unprepared run
// reports the error).
func (c *stmtCache) stmt(ctx context.Context, query string) *sql.Stmt {
	if len(query) > MaxCachedStatementLen {
		return nil
	}
	c.mu.RLock()
	s, ok := c.stmts[query]
	full := len(c.stmts) >= MaxCachedStatements
	c.mu.RUnlock()
	if ok || full {
		return s
	}
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if have, ok := c.stmts[query]; ok {
		// Another caller prepared it first: keep one.
		_ = s.Close()
		return have
	}
	if len(c.stmts) >= MaxCachedStatements {
		_ = s.Close()
		return nil
	}
	c.stmts[query] = s
	return s
}

// PrepareContext implements gorm.ConnPool.
func (c *stmtCache) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return c.db.PrepareContext(ctx, query)
}

// ExecContext implements gorm.ConnPool.
func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := c.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return c.db.ExecContext(ctx, query, args...)
}

// QueryContext implements gorm.ConnPool.
func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := c.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return c.db.QueryContext(ctx, query, args...)
}

// QueryRowContext implements gorm.ConnPool.
func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := c.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return c.db.QueryRowContext(ctx, query, args...)
}

// BeginTx implements gorm.TxBeginner: a plain transaction, not cached.
func (c *stmtCache) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	return c.db.BeginTx(ctx, opts)
}

// GetDBConn implements gorm.GetDBConnector (gorm.DB.DB).
func (c *stmtCache) GetDBConn() (*sql.DB, error) { return c.db, nil }

// close closes the cached statements.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, s := range c.stmts {
		_ = s.Close()
		delete(c.stmts, q)
	}
}
