// Package database opens healthgw's relational store through gorm: a
// pure-Go SQLite file in WAL mode by default, or PostgreSQL for production.
package database

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libtnb/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect is the SQL dialect behind a *gorm.DB.
type Dialect string

// Dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DefaultPath is the SQLite file used when no DSN is given.
const DefaultPath = "data/healthgw.db"

// DefaultMaxConns is the connection pool size (open and idle).
const DefaultMaxConns = 16

// SQLiteCacheKiB bounds each SQLite connection's page cache. Every pooled
// connection has a cache of its own, which fills as the database grows:
// at SQLite's default (2000 KiB) a pool of DefaultMaxConns grows the
// process by up to 32 MiB over hours, which a soak shows as memory that
// is never flat. The operating system's page cache holds the file
// anyway, so a small per-connection cache costs a read system call, not a
// disk read: 512 KiB (at most 8 MiB for the pool) measured the same
// latencies as the default in the soak (docs/design/operability.md).
const SQLiteCacheKiB = 512

// ErrBadDSN is returned for a DSN that names no supported database.
var ErrBadDSN = errors.New("database: unsupported DSN")

// DialectOf reports which dialect a DSN selects: postgres:// and
// postgresql:// URLs select PostgreSQL; anything else is a SQLite path
// (optionally prefixed sqlite:// or file:).
func DialectOf(dsn string) Dialect {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return Postgres
	}
	return SQLite
}

// Open opens the database named by dsn and checks that it answers. For
// SQLite it creates the parent directory, and enables WAL, synchronous=FULL
// (an acknowledged commit survives power loss), foreign keys, a busy
// timeout and a page cache of SQLiteCacheKiB per connection. gorm's own logging is off: queries may carry PHI.
func Open(ctx context.Context, dsn string) (*gorm.DB, error) {
	dsn = cmp.Or(dsn, DefaultPath)
	created := false
	db, err := open(ctx, dsn, &created)
	if err != nil && created {
		_ = os.Remove(sqlitePath(dsn)) // the empty file this call made
	}
	return db, err
}

// sqliteURIPath is path as the path of a SQLite file: URI (the driver
// opens the DSN as one): SQLite decodes %HH escapes there and ends the
// path at a #, so a path holding either would name another file.
func sqliteURIPath(path string) string {
	return strings.NewReplacer("%", "%25", "#", "%23").Replace(path)
}

func open(ctx context.Context, dsn string, created *bool) (*gorm.DB, error) {
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
		TranslateError:         true,
		// PostgreSQL: cache prepared statements (parsing is a share of a
		// simple query's cost). Not on SQLite: gorm's statement cache
		// prepares on the pool under its own lock, so a write transaction
		// (which holds SQLite's one write lock) that meets a new statement
		// waited for a pool connection while every connection waited for
		// the write lock: a stall until the busy timeout.
		PrepareStmt: DialectOf(dsn) == Postgres,
	}
	var (
		db  *gorm.DB
		err error
	)
	switch DialectOf(dsn) {
	case Postgres:
		db, err = gorm.Open(postgres.Open(dsn), cfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path == "" {
			return nil, ErrBadDSN
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("create database directory: %w", err)
			}
		}
		if err := checkSQLitePath(path); err != nil {
			return nil, err
		}
		if *created, err = prepareSQLiteFile(path); err != nil {
			return nil, err
		}
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "busy_timeout(10000)", fmt.Sprintf("cache_size(-%d)", SQLiteCacheKiB)} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		db, err = gorm.Open(sqliteDialector{&sqlite.Dialector{DSN: "file:" + sqliteURIPath(path) + "?" + q.Encode()}}, cfg)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("database handle: %w", err)
	}
	if DialectOf(dsn) == SQLite {
		// Statements outside transactions run prepared, once per
		// connection (stmtCache; PrepareStmt stays off, see above).
		c := newStmtCache(sqlDB)
		db.ConnPool, db.Statement.ConnPool = c, c
	}
	// Keep connections: opening one re-runs the pragmas and loses the
	// prepared-statement cache. SQLite serialises writers itself (WAL
	// allows concurrent readers), so a modest pool is enough.
	maxConns := DefaultMaxConns
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return db, nil
}

// DialectFor reports the dialect of an open database.
func DialectFor(db *gorm.DB) Dialect {
	if db.Dialector.Name() == "postgres" {
		return Postgres
	}
	return SQLite
}

// Close closes the database behind db.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	if c, ok := db.ConnPool.(*stmtCache); ok {
		c.close()
	}
	return sqlDB.Close()
}

// IsUniqueViolation reports whether err is a unique-constraint violation
// (gorm.ErrDuplicatedKey once translated).
func IsUniqueViolation(err error) bool {
	return errors.Is(err, gorm.ErrDuplicatedKey)
}
