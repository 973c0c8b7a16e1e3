package database

import (
	"path/filepath"
	"testing"
)

type sizedRow struct {
	ID   string `gorm:"primaryKey;size:63"`
	Name string `gorm:"size:200;not null"`
	N    uint64 `gorm:"not null;default:0"`
}

// TestAutoMigrateKeepsTable: migrating a table with sized TEXT columns
// and rows again, in a new process's Open, leaves it as it is (gorm's
// migrator rebuilt it when the driver reported TEXT's unlimited length).
func TestAutoMigrateKeepsTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "migrate.db")
	open := func() func() (string, int64) {
		db, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = Close(db) })
		if err := db.AutoMigrate(&sizedRow{}); err != nil {
			t.Fatal(err)
		}
		return func() (string, int64) {
			var r struct {
				SQL      string
				Rootpage int64
			}
			if err := db.Raw("SELECT sql, rootpage FROM sqlite_master WHERE type = 'table' AND name = 'sized_rows'").Scan(&r).Error; err != nil {
				t.Fatal(err)
			}
			return r.SQL, r.Rootpage
		}
	}
	table := open()
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Create(&sizedRow{ID: "a", Name: "one"}).Error; err != nil {
		t.Fatal(err)
	}
	_ = Close(db)
	sql0, root0 := table()
	for i := range 2 {
		sql, root := open()()
		if sql != sql0 || root != root0 {
			t.Fatalf("migration %d rebuilt the table: %q at page %d, was %q at page %d", i+1, sql, root, sql0, root0)
		}
	}
}
