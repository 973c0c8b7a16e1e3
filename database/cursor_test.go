package database_test

import (
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
)

type itemRow struct {
	Index uint64 `gorm:"primaryKey;autoIncrement:false"`
	Value string
}

func (itemRow) TableName() string { return "cursor_test_items" }

func TestCursor(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		c := database.NewCursor("cursor_test_cursors", "items")
		if err := db.AutoMigrate(&itemRow{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Next(ctx, db); err == nil {
			t.Error("Next before Migrate succeeded")
		}
		for range 2 { // Migrate is idempotent and keeps the cursor
			if err := c.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
		}
		var calls [][2]uint64 // (first, len) the callback saw
		apply := func(first uint64, values []string) error {
			return database.Apply(ctx, db, c, first, values, func(tx *gorm.DB, first uint64, values []string) error {
				calls = append(calls, [2]uint64{first, uint64(len(values))})
				for i, v := range values {
					if err := tx.Create(&itemRow{Index: first + uint64(i), Value: v}).Error; err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err := apply(0, []string{"a", "b"}); err != nil {
			t.Fatal(err)
		}
		if err := apply(1, []string{"b", "c"}); err != nil { // b is skipped
			t.Fatal(err)
		}
		if err := apply(0, []string{"a"}); err != nil { // all applied already
			t.Fatal(err)
		}
		if err := apply(5, []string{"f"}); !errors.Is(err, database.ErrGap) {
			t.Errorf("a gap: %v, want ErrGap", err)
		}
		if want := [][2]uint64{{0, 2}, {2, 1}}; len(calls) != len(want) || calls[0] != want[0] || calls[1] != want[1] {
			t.Errorf("callback saw %v, want %v", calls, want)
		}
		if err := c.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Next(ctx, db); err != nil || n != 3 {
			t.Errorf("Next = %d, %v; want 3 (a second Migrate keeps it)", n, err)
		}
		// A failing callback leaves rows and cursor as they were.
		boom := errors.New("boom")
		err := database.Apply(ctx, db, c, 3, []string{"d", "e"}, func(tx *gorm.DB, first uint64, values []string) error {
			if err := tx.Create(&itemRow{Index: first, Value: values[0]}).Error; err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("failing apply: %v", err)
		}
		var n int64
		if err := db.Model(&itemRow{}).Count(&n).Error; err != nil || n != 3 {
			t.Errorf("%d rows after a failed apply, %v; want 3", n, err)
		}
		if err := c.Reset(ctx, db, func(tx *gorm.DB) error { return tx.Where("1 = 1").Delete(&itemRow{}).Error }); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Next(ctx, db); err != nil || n != 0 {
			t.Errorf("Next after Reset = %d, %v; want 0", n, err)
		}
	})
}
