package database_test

import (
	"context"
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
)

type rawRow struct {
	ID   int64 `gorm:"primaryKey"`
	Name string
	Done bool
}

// TestStatement: a Statement gives what gorm's Raw gives for the same
// text, on each dialect, outside and inside a transaction, finds no row
// where there is none, and runs nothing under a context that has ended.
func TestStatement(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		if err := db.WithContext(ctx).AutoMigrate(&rawRow{}); err != nil {
			t.Fatal(err)
		}
		for i, n := range []string{"a", "b", "c"} {
			if err := db.WithContext(ctx).Create(&rawRow{ID: int64(i + 1), Name: n, Done: i == 1}).Error; err != nil {
				t.Fatal(err)
			}
		}
		const q = `SELECT name FROM raw_rows WHERE id >= ? AND done = ? ORDER BY id`
		st := database.NewStatement(q)
		query := func(db *gorm.DB, from int64, done bool) []string {
			t.Helper()
			rows, err := st.Query(ctx, db, from, done)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				got = append(got, n)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			var want []string
			if err := db.WithContext(ctx).Raw(q, from, done).Scan(&want).Error; err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("Query(%d, %v) = %q, gorm's Raw %q", from, done, got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("Query(%d, %v) = %q, gorm's Raw %q", from, done, got, want)
				}
			}
			return got
		}
		if got := query(db.WithContext(ctx), 1, false); len(got) != 2 || got[0] != "a" || got[1] != "c" {
			t.Errorf("Query(1, false) = %q, want [a c]", got)
		}
		err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&rawRow{ID: 4, Name: "d"}).Error; err != nil {
				return err
			}
			// The transaction's own row: the statement runs on its connection.
			if got := query(tx, 3, false); len(got) != 2 || got[0] != "c" || got[1] != "d" {
				t.Errorf("in a transaction: Query(3, false) = %q, want [c d]", got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var name string
		if err := database.NewStatement(`SELECT name FROM raw_rows WHERE id = ?`).QueryRow(ctx, db.WithContext(ctx), 2).Scan(&name); err != nil || name != "b" {
			t.Errorf("QueryRow(2) = %q, %v; want b", name, err)
		}
		if err := database.NewStatement(`SELECT name FROM raw_rows WHERE id = ?`).QueryRow(ctx, db.WithContext(ctx), 99).Scan(&name); err == nil {
			t.Errorf("QueryRow(99) found %q, want no row", name)
		}
		// A context that has ended runs nothing.
		done, cancel := context.WithCancel(ctx)
		cancel()
		if err := database.NewStatement(`SELECT name FROM raw_rows WHERE id = ?`).QueryRow(done, db, 2).Scan(&name); !errors.Is(err, context.Canceled) {
			t.Errorf("QueryRow with a cancelled context: %v, want context.Canceled", err)
		}
		if rows, err := st.Query(done, db, 1, false); !errors.Is(err, context.Canceled) {
			if err == nil {
				rows.Close()
			}
			t.Errorf("Query with a cancelled context: %v, want context.Canceled", err)
		}
	})
}
