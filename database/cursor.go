package database

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrGap is returned by Apply when the entries start beyond the
// projection's cursor: something between was never applied.
var ErrGap = errors.New("entries start beyond the projection cursor")

// Cursor is a projection's cursor: the index of the first ledger entry not
// yet applied, kept in a table of (name, next) rows. Every gorm
// projection uses it so that all of them skip, refuse and commit alike.
type Cursor struct {
	table string
	name  string
}

// NewCursor returns the cursor of projection name, kept in table.
func NewCursor(table, name string) Cursor { return Cursor{table: table, name: name} }

type cursorRow struct {
	Name string `gorm:"primaryKey;size:64"`
	Next uint64 `gorm:"not null"`
}

// Migrate creates the cursor table and the projection's row (at 0) when
// they are missing.
func (c Cursor) Migrate(ctx context.Context, db *gorm.DB) error {
	tx := db.WithContext(ctx)
	if err := tx.Table(c.table).AutoMigrate(&cursorRow{}); err != nil {
		return fmt.Errorf("migrate %s cursor: %w", c.name, err)
	}
	if err := tx.Table(c.table).Clauses(clause.OnConflict{DoNothing: true}).Create(&cursorRow{Name: c.name}).Error; err != nil {
		return fmt.Errorf("create %s cursor: %w", c.name, err)
	}
	return nil
}

// Next returns the index of the first entry not yet applied.
func (c Cursor) Next(ctx context.Context, db *gorm.DB) (uint64, error) {
	var r cursorRow
	if err := db.WithContext(ctx).Table(c.table).Take(&r, "name = ?", c.name).Error; err != nil {
		return 0, fmt.Errorf("read %s cursor: %w", c.name, err)
	}
	return r.Next, nil
}

// lock reads the cursor inside tx, holding its row until tx ends:
// SELECT … FOR UPDATE on PostgreSQL; SQLite transactions are IMMEDIATE
// (see Open), which serialises writers already.
func (c Cursor) lock(tx *gorm.DB) (uint64, error) {
	q := tx.Table(c.table)
	if DialectFor(tx) == Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var r cursorRow
	if err := q.Take(&r, "name = ?", c.name).Error; err != nil {
		return 0, fmt.Errorf("lock %s cursor: %w", c.name, err)
	}
	return r.Next, nil
}

func (c Cursor) set(tx *gorm.DB, next uint64) error {
	if err := tx.Table(c.table).Where("name = ?", c.name).Update("next", next).Error; err != nil {
		return fmt.Errorf("advance %s cursor to %d: %w", c.name, next, err)
	}
	return nil
}

// Apply is the one way a gorm projection applies ledger entries
// (entries[i] has index first+i). In one transaction it locks the cursor,
// refuses entries that start beyond it (ErrGap), skips those before it
// (applied already, by this or another process), calls apply with the
// rest and advances the cursor past them: the rows and the cursor commit
// together or not at all.
func Apply[E any](ctx context.Context, db *gorm.DB, c Cursor, first uint64, entries []E, apply func(tx *gorm.DB, first uint64, entries []E) error) error {
	if len(entries) == 0 {
		return nil
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		next, err := c.lock(tx)
		if err != nil {
			return err
		}
		end := first + uint64(len(entries))
		switch {
		case first > next:
			return fmt.Errorf("%s: %w: entries from %d, next to apply %d", c.name, ErrGap, first, next)
		case end <= next:
			return nil
		}
		if err := apply(tx, next, entries[next-first:]); err != nil {
			return err
		}
		return c.set(tx, end)
	})
}

// Reset empties a projection: in one transaction it locks the cursor,
// calls clear and rewinds the cursor to 0, so that following the log
// again rebuilds the projection.
func (c Cursor) Reset(ctx context.Context, db *gorm.DB, clear func(tx *gorm.DB) error) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := c.lock(tx); err != nil {
			return err
		}
		if err := clear(tx); err != nil {
			return err
		}
		return c.set(tx, 0)
	})
}
