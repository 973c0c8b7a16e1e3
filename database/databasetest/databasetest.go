// Package databasetest runs storage tests against every database healthgw
// supports: a fresh SQLite file always, and PostgreSQL (in a throwaway
// schema) when HEALTHGW_TEST_POSTGRES holds a DSN.
package databasetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
)

// EnvPostgres names the variable holding a PostgreSQL DSN for tests.
const EnvPostgres = "HEALTHGW_TEST_POSTGRES"

// Each runs fn as a subtest once per available database, each with a fresh,
// empty database.
func Each(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// EachOpener is like Each but hands fn the opener of its database kind,
// for tests that need several fresh databases (SQLite or Postgres).
func EachOpener(t *testing.T, fn func(t *testing.T, open func(t *testing.T) *gorm.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv(EnvPostgres) == "" {
			t.Skip(EnvPostgres + " not set")
		}
		fn(t, Postgres)
	})
}

// EachDSN is like Each but hands fn a DSN, for code that opens the
// database itself (CLI commands, restarts).
func EachDSN(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLiteDSN(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, PostgresDSN(t)) })
}

// SQLiteDSN returns the path of a fresh SQLite file in t.TempDir.
func SQLiteDSN(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "test.db")
}

// SQLite opens a fresh SQLite database, closed when the test ends.
func SQLite(t *testing.T) *gorm.DB {
	t.Helper()
	return open(t, SQLiteDSN(t))
}

// PostgresDSN creates a throwaway schema (dropped when the test ends) and
// returns a DSN whose search_path selects it. It skips the test when
// HEALTHGW_TEST_POSTGRES is unset.
func PostgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skip(EnvPostgres + " not set")
	}
	admin := open(t, base)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "t_" + hex.EncodeToString(b[:])
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Postgres opens a fresh PostgreSQL schema, or skips (see PostgresDSN).
func Postgres(t *testing.T) *gorm.DB {
	t.Helper()
	return open(t, PostgresDSN(t))
}

func open(t *testing.T, dsn string) *gorm.DB {
	t.Helper()
	db, err := database.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	return db
}

// ErrInjected is the error FailWrites injects.
var ErrInjected = errors.New("databasetest: injected write failure")

// FailWrites makes db's n-th create, update or delete from now on
// (counting from 1) and every later one fail with ErrInjected, until
// restore is called. Tests use it to show that a failed transaction
// leaves nothing behind.
func FailWrites(db *gorm.DB, n int) (restore func()) {
	var count atomic.Int64
	name := fmt.Sprintf("databasetest:fail-writes:%p", &count)
	hook := func(tx *gorm.DB) {
		if count.Add(1) >= int64(n) {
			tx.AddError(ErrInjected)
		}
	}
	cb := db.Callback()
	cb.Create().Before("gorm:create").Register(name, hook)
	cb.Update().Before("gorm:update").Register(name, hook)
	cb.Delete().Before("gorm:delete").Register(name, hook)
	return func() {
		cb.Create().Remove(name)
		cb.Update().Remove(name)
		cb.Delete().Remove(name)
	}
}
