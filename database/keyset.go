package database

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// KeySet is what a database remembers of the keys it belongs to, so that
// a gateway started with other keys refuses instead of orphaning the
// data: for each key, by a stable name, a public identifier — a verifier
// key, a key ID, or a keyed hash of a secret; never a secret.
type KeySet map[string]string

// Names of the keys the first key-set table (healthgw_keyset, one row)
// recorded. ReadKeySet reports that table's row under these names.
const (
	KeyCheckpoint  = "checkpoint"   // checkpoint verifier key: <name>+<hash>+<key>
	KeyAccessToken = "access-token" // the access-token key's JWK key ID
	KeyPseudonym   = "pseudonym"    // hex HMAC-SHA256 of a fixed label under the pseudonym secret
)

// Key-set tables: one row a key, and the one-row table of databases
// bound before keys were listed by name (read, never written).
const (
	keysTable      = "healthgw_keys"
	legacyKeyTable = "healthgw_keyset"
)

// KeySetTables are the tables that hold a key set, not a gateway's data.
var KeySetTables = []string{keysTable, legacyKeyTable}

type keyRow struct {
	Name      string `gorm:"primaryKey;size:128"`
	KeyID     string `gorm:"column:key_id;not null"`
	CreatedAt time.Time
}

func (keyRow) TableName() string { return keysTable }

type legacyKeySetRow struct {
	ID             int `gorm:"primaryKey;autoIncrement:false"`
	CheckpointKey  string
	AccessTokenKID string
	PseudonymMAC   string
}

func (legacyKeySetRow) TableName() string { return legacyKeyTable }

// ErrKeySetExists is returned by BindKeySet when the database already
// belongs to a key set.
var ErrKeySetExists = errors.New("database: the database already belongs to a key set")

// ReadKeySet returns the key set the database belongs to; ok is false
// when it records none. It only reads: a database without the tables is
// left as it is.
func ReadKeySet(ctx context.Context, db *gorm.DB) (ks KeySet, ok bool, err error) {
	db = db.WithContext(ctx)
	ks = KeySet{}
	m := db.Migrator()
	if m.HasTable(legacyKeyTable) {
		var rows []legacyKeySetRow
		if err := db.Where("id = ?", 1).Limit(1).Find(&rows).Error; err != nil {
			return nil, false, fmt.Errorf("read key set: %w", err)
		}
		if len(rows) == 1 {
			r := rows[0]
			for name, id := range map[string]string{KeyCheckpoint: r.CheckpointKey, KeyAccessToken: r.AccessTokenKID, KeyPseudonym: r.PseudonymMAC} {
				if id != "" {
					ks[name] = id
				}
			}
		}
	}
	if m.HasTable(keysTable) {
		var rows []keyRow
		if err := db.Find(&rows).Error; err != nil {
			return nil, false, fmt.Errorf("read key set: %w", err)
		}
		for _, r := range rows {
			ks[r.Name] = r.KeyID
		}
	}
	return ks, len(ks) > 0, nil
}

// BindKeySet records ks as the database's key set, in one transaction.
// If the database already belongs to a key set it returns ErrKeySetExists
// and changes nothing.
func BindKeySet(ctx context.Context, db *gorm.DB, ks KeySet) error {
	if err := checkKeySet(ks); err != nil {
		return fmt.Errorf("bind key set: %w", err)
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, bound, err := ReadKeySet(ctx, tx); err != nil {
			return err
		} else if bound {
			return ErrKeySetExists
		}
		n, err := insertKeys(tx, ks)
		if err != nil {
			return fmt.Errorf("bind key set: %w", err)
		}
		if n != int64(len(ks)) { // a concurrent bind won
			return ErrKeySetExists
		}
		return nil
	})
}

// AddKeys records the keys of ks that the database's key set does not
// name yet (keys that joined the set after the database was bound) and
// leaves the others as they are; the caller reads the set again to check
// them.
func AddKeys(ctx context.Context, db *gorm.DB, ks KeySet) error {
	if err := checkKeySet(ks); err != nil {
		return fmt.Errorf("add keys: %w", err)
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := insertKeys(tx, ks); err != nil {
			return fmt.Errorf("add keys: %w", err)
		}
		return nil
	})
}

// RemoveKeys deletes the keys of ks that the database records with the
// same identifiers (a start-up undoing what it bound); others are left.
func RemoveKeys(ctx context.Context, db *gorm.DB, ks KeySet) error {
	db = db.WithContext(ctx)
	if len(ks) == 0 || !db.Migrator().HasTable(keysTable) {
		return nil
	}
	return db.Transaction(func(tx *gorm.DB) error {
		for _, name := range slices.Sorted(maps.Keys(ks)) {
			if err := tx.Where("name = ? AND key_id = ?", name, ks[name]).Delete(&keyRow{}).Error; err != nil {
				return fmt.Errorf("remove key %s: %w", name, err)
			}
		}
		return nil
	})
}

func checkKeySet(ks KeySet) error {
	if len(ks) == 0 {
		return errors.New("empty key set")
	}
	for name, id := range ks {
		if name == "" || id == "" {
			return fmt.Errorf("key %q: empty name or identifier", name)
		}
	}
	return nil
}

// insertKeys inserts the keys of ks not recorded yet and returns how many.
func insertKeys(tx *gorm.DB, ks KeySet) (int64, error) {
	if err := tx.AutoMigrate(&keyRow{}); err != nil {
		return 0, err
	}
	rows := make([]keyRow, 0, len(ks))
	for _, name := range slices.Sorted(maps.Keys(ks)) {
		rows = append(rows, keyRow{Name: name, KeyID: ks[name]})
	}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows)
	return res.RowsAffected, res.Error
}

// HasState reports whether the database holds any table other than the
// key-set tables: whether it already holds a gateway's data.
func HasState(ctx context.Context, db *gorm.DB) (bool, error) {
	tables, err := Tables(ctx, db)
	if err != nil {
		return false, err
	}
	for _, t := range tables {
		if !slices.Contains(KeySetTables, t) {
			return true, nil
		}
	}
	return false, nil
}

// Tables lists the database's tables.
func Tables(ctx context.Context, db *gorm.DB) ([]string, error) {
	tables, err := db.WithContext(ctx).Migrator().GetTables()
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return tables, nil
}

// DropTables drops the named tables (those that exist), in an order that
// foreign keys allow: a table another one still references is retried
// after the others. A start-up that made a new database and failed uses it
// to leave the database as it found it.
func DropTables(ctx context.Context, db *gorm.DB, names []string) error {
	m := db.WithContext(ctx).Migrator()
	left := slices.Clone(names)
	for len(left) > 0 {
		var retry []string
		var last error
		for _, t := range left {
			if !m.HasTable(t) {
				continue
			}
			if err := m.DropTable(t); err != nil {
				retry, last = append(retry, t), err
			}
		}
		if len(retry) == len(left) {
			return fmt.Errorf("drop tables %v: %w", retry, last)
		}
		left = retry
	}
	return nil
}
