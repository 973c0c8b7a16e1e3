package database

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/gorm"
)

type cacheRow struct {
	ID   int64 `gorm:"primaryKey"`
	Name string
}

func openCached(t *testing.T) (*gorm.DB, *stmtCache) {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Close(db) })
	c, ok := db.ConnPool.(*stmtCache)
	if !ok {
		t.Fatalf("SQLite connection pool is %T, want *stmtCache", db.ConnPool)
	}
	if err := db.AutoMigrate(&cacheRow{}); err != nil {
		t.Fatal(err)
	}
	return db, c
}

func (c *stmtCache) has(query string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.stmts[query]
	return ok
}

func (c *stmtCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.stmts)
}

// TestStmtCache: statements outside transactions are prepared once per
// SQL text and give the same results on every run; statements inside a
// transaction are not cached (they run on the transaction's connection).
func TestStmtCache(t *testing.T) {
	db, c := openCached(t)
	ctx := t.Context()
	const q = "SELECT name FROM cache_rows WHERE id = ?"
	for i := range 3 {
		if err := db.WithContext(ctx).Create(&cacheRow{ID: int64(i + 1), Name: fmt.Sprint("n", i+1)}).Error; err != nil {
			t.Fatal(err)
		}
		var got string
		if err := db.WithContext(ctx).Raw(q, i+1).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint("n", i+1); got != want {
			t.Errorf("run %d: got %q, want %q", i, got, want)
		}
	}
	if !c.has(q) {
		t.Errorf("%q not cached", q)
	}
	n := c.len()
	const inTx = "SELECT count(*) FROM cache_rows WHERE name <> ?"
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&cacheRow{ID: 10, Name: "tx"}).Error; err != nil {
			return err
		}
		var got int
		if err := tx.Raw(inTx, "").Scan(&got).Error; err != nil {
			return err
		}
		if got != 4 {
			t.Errorf("in the transaction: %d rows, want 4", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.has(inTx) || c.len() != n {
		t.Errorf("a transaction's statements were cached: %d statements, was %d", c.len(), n)
	}
	// A statement that cannot be prepared fails as it would unprepared,
	// and is not cached.
	const bad = "SELECT nothing FROM no_such_table"
	if err := db.WithContext(ctx).Exec(bad).Error; err == nil {
		t.Error("a statement on a missing table ran")
	}
	if c.has(bad) {
		t.Error("a failed statement was cached")
	}
}

// TestStmtCacheBound: past MaxCachedStatements texts a statement runs
// unprepared, with the same result.
func TestStmtCacheBound(t *testing.T) {
	db, c := openCached(t)
	ctx := t.Context()
	if err := db.WithContext(ctx).Create(&cacheRow{ID: 1, Name: "one"}).Error; err != nil {
		t.Fatal(err)
	}
	for i := range MaxCachedStatements + 10 {
		var got int64
		if err := db.WithContext(ctx).Raw(fmt.Sprintf("SELECT id + %d FROM cache_rows WHERE id = ?", i), 1).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		if want := int64(1 + i); got != want {
			t.Fatalf("statement %d: got %d, want %d", i, got, want)
		}
	}
	if got := c.len(); got != MaxCachedStatements {
		t.Errorf("%d statements cached, want the bound %d", got, MaxCachedStatements)
	}
}

// TestStmtCacheLong: a statement longer than MaxCachedStatementLen runs
// unprepared and is not cached.
func TestStmtCacheLong(t *testing.T) {
	db, c := openCached(t)
	q := "SELECT count(*) FROM cache_rows WHERE id NOT IN (" + strings.Repeat("?, ", MaxCachedStatementLen/3) + "?)"
	args := make([]any, MaxCachedStatementLen/3+1)
	for i := range args {
		args[i] = i + 100
	}
	if err := db.WithContext(t.Context()).Create(&cacheRow{ID: 1, Name: "one"}).Error; err != nil {
		t.Fatal(err)
	}
	var got int
	if err := db.WithContext(t.Context()).Raw(q, args...).Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	if got != 1 {
		t.Errorf("got %d rows, want 1", got)
	}
	if c.has(q) {
		t.Errorf("a statement of %d bytes was cached", len(q))
	}
}
