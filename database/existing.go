package database

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"gorm.io/gorm"
)

// ErrNoDatabase is returned by OpenExisting when there is no healthgw
// database at the DSN.
var ErrNoDatabase = errors.New("no healthgw database")

// sqlitePath is the file a SQLite DSN names ("" for PostgreSQL).
func sqlitePath(dsn string) string {
	if DialectOf(dsn) != SQLite {
		return ""
	}
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path
}

// SQLiteFile is the file a SQLite DSN names ("" for PostgreSQL).
func SQLiteFile(dsn string) string {
	if dsn == "" {
		dsn = DefaultPath
	}
	return sqlitePath(dsn)
}

// OpenExisting opens a database that a gateway (or a command run with
// --create) has already initialised; it never creates one. For SQLite the
// file must exist; for either dialect it must hold healthgw's tables.
func OpenExisting(ctx context.Context, dsn string) (*gorm.DB, error) {
	if p := sqlitePath(dsn); p != "" {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s (start the gateway there first, or pass --create)", ErrNoDatabase, p)
		} else if err != nil {
			return nil, fmt.Errorf("database %s: %w", p, err)
		}
	}
	db, err := Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	ok, err := HasState(ctx, db)
	if err == nil && !ok {
		_, ok, err = ReadKeySet(ctx, db)
	}
	if err != nil || !ok {
		_ = Close(db)
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w in %s: it is empty (start the gateway there first, or pass --create)", ErrNoDatabase, redact(dsn))
	}
	return db, nil
}

// redact drops the password of a PostgreSQL URL for messages.
func redact(dsn string) string {
	if DialectOf(dsn) == SQLite {
		return sqlitePath(dsn)
	}
	if i := strings.Index(dsn, "@"); i >= 0 {
		if j := strings.Index(dsn, "://"); j >= 0 && j < i {
			return dsn[:j+3] + "…" + dsn[i:]
		}
	}
	return dsn
}

// sqliteFileMode is the mode of a SQLite database file and of its -wal and
// -shm files (SQLite gives them the database file's mode).
const sqliteFileMode = 0o600

// prepareSQLiteFile creates the database file with mode 0600 before SQLite
// does (SQLite would create it 0644 under the usual umask), and tightens
// an existing file and its -wal/-shm companions to 0600.
// created reports that this call made the (empty) file.
func prepareSQLiteFile(path string) (created bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, sqliteFileMode)
	switch {
	case err == nil:
		return true, f.Close()
	case !errors.Is(err, fs.ErrExist):
		return false, nil // let SQLite report why it cannot open the path
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, sqliteFileMode); err != nil {
				return false, fmt.Errorf("database %s: %w", p, err)
			}
		}
	}
	return false, nil
}
