package database

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// KeySet is what a database remembers of the keys it was created with, so
// that a gateway started with other keys refuses instead of orphaning the
// data. It holds only public values: the checkpoint verifier key, the
// access-token key ID and a keyed hash of the pseudonym secret (never the
// secret).
type KeySet struct {
	CheckpointKey  string // checkpoint verifier key: <name>+<hash>+<key>
	AccessTokenKID string // the access-token key's JWK key ID
	PseudonymMAC   string // hex HMAC-SHA256 of a fixed label under the pseudonym secret
}

// keySetTable is the one-row table behind KeySet.
const keySetTable = "healthgw_keyset"

type keySetRow struct {
	ID             int    `gorm:"primaryKey;autoIncrement:false"`
	CheckpointKey  string `gorm:"not null"`
	AccessTokenKID string `gorm:"not null"`
	PseudonymMAC   string `gorm:"not null"`
	CreatedAt      time.Time
}

func (keySetRow) TableName() string { return keySetTable }

// ErrKeySetExists is returned by BindKeySet when the database already
// belongs to a key set.
var ErrKeySetExists = errors.New("database: the database already belongs to a key set")

// ReadKeySet returns the key set the database belongs to; ok is false
// when it records none. It only reads: a database without the table is
// left as it is.
func ReadKeySet(ctx context.Context, db *gorm.DB) (ks KeySet, ok bool, err error) {
	db = db.WithContext(ctx)
	if !db.Migrator().HasTable(keySetTable) {
		return KeySet{}, false, nil
	}
	var rows []keySetRow
	if err := db.Where("id = ?", 1).Limit(1).Find(&rows).Error; err != nil {
		return KeySet{}, false, fmt.Errorf("read key set: %w", err)
	}
	if len(rows) == 0 {
		return KeySet{}, false, nil
	}
	r := rows[0]
	return KeySet{CheckpointKey: r.CheckpointKey, AccessTokenKID: r.AccessTokenKID, PseudonymMAC: r.PseudonymMAC}, true, nil
}

// BindKeySet records ks as the database's key set, in one transaction.
// If the database already belongs to a key set it returns ErrKeySetExists
// and changes nothing.
func BindKeySet(ctx context.Context, db *gorm.DB, ks KeySet) error {
	if ks.CheckpointKey == "" || ks.AccessTokenKID == "" || ks.PseudonymMAC == "" {
		return errors.New("bind key set: incomplete key set")
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.AutoMigrate(&keySetRow{}); err != nil {
			return fmt.Errorf("bind key set: %w", err)
		}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&keySetRow{
			ID: 1, CheckpointKey: ks.CheckpointKey, AccessTokenKID: ks.AccessTokenKID, PseudonymMAC: ks.PseudonymMAC,
		})
		if res.Error != nil {
			return fmt.Errorf("bind key set: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrKeySetExists
		}
		return nil
	})
}

// HasState reports whether the database holds any table other than the
// key-set record: whether it already holds a gateway's data.
func HasState(ctx context.Context, db *gorm.DB) (bool, error) {
	tables, err := db.WithContext(ctx).Migrator().GetTables()
	if err != nil {
		return false, fmt.Errorf("list tables: %w", err)
	}
	for _, t := range tables {
		if t != keySetTable {
			return true, nil
		}
	}
	return false, nil
}
