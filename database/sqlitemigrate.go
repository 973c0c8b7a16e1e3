package database

import (
	"math"

	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
)

// sqliteDialector is the SQLite dialector with a migrator that reads a
// column of unlimited length (TEXT, BLOB) as having none.
//
// gorm's migrator compares a column's length with the field's size tag
// (size:63 on a TEXT column). On a table with rows it takes the length
// from the driver's result columns, and modernc.org/sqlite reports
// math.MaxInt64 for a TEXT column (database/sql's convention for an
// unlimited length), where glebarez/go-sqlite reported none: every
// AutoMigrate then saw a changed column and rebuilt the table (copied it
// to a new one), at every start, for every table with a sized TEXT
// column and at least one row. A SQLite TEXT column has no length, so
// there is nothing to compare.
type sqliteDialector struct{ *sqlite.Dialector }

// Migrator implements gorm.Dialector.
func (d sqliteDialector) Migrator(db *gorm.DB) gorm.Migrator {
	return sqliteMigrator{d.Dialector.Migrator(db)}
}

type sqliteMigrator struct{ gorm.Migrator }

// ColumnTypes implements gorm.Migrator.
func (m sqliteMigrator) ColumnTypes(dst any) ([]gorm.ColumnType, error) {
	cts, err := m.Migrator.ColumnTypes(dst)
	for i, ct := range cts {
		cts[i] = unlimitedColumn{ct}
	}
	return cts, err
}

// columnType names the embedded gorm.ColumnType apart from its
// ColumnType method.
type columnType = gorm.ColumnType

type unlimitedColumn struct{ columnType }

// Length implements gorm.ColumnType: none for an unlimited length.
func (c unlimitedColumn) Length() (int64, bool) {
	n, ok := c.columnType.Length()
	if n == math.MaxInt64 {
		return 0, false
	}
	return n, ok
}
