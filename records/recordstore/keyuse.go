package recordstore

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/records"
)

// KeyUse is one key-encryption key version a database depends on: the
// records of Holder wrapped under Sample.KeyVersion, and one of their data
// keys.
type KeyUse struct {
	Holder string
	Count  int64
	Sample records.WrappedKey
}

// KeyUses lists, for every (holder, key version) of the unshredded records
// (pending included), how many there are and the data key of the first
// one. It only reads: a database without the records table has none.
func KeyUses(ctx context.Context, db *gorm.DB) ([]KeyUse, error) {
	db = db.WithContext(ctx)
	if !db.Migrator().HasTable(&row{}) {
		return nil, nil
	}
	var groups []struct {
		Holder     string
		KeyVersion int
		N          int64
		First      string
	}
	err := db.Model(&row{}).Select("holder, key_version, COUNT(*) AS n, MIN(id) AS first").
		Where("shredded = ?", false).Group("holder, key_version").Order("holder, key_version").Scan(&groups).Error
	if err != nil {
		return nil, fmt.Errorf("recordstore: key uses: %w", err)
	}
	out := make([]KeyUse, 0, len(groups))
	for _, g := range groups {
		var r row
		if err := db.Select("id", "format", "key_version", "wrapped_key").Where("id = ?", g.First).Take(&r).Error; err != nil {
			return nil, fmt.Errorf("recordstore: key uses: %w", err)
		}
		out = append(out, KeyUse{Holder: g.Holder, Count: g.N, Sample: records.WrappedKey{ID: r.ID, Format: r.Format, KeyVersion: r.KeyVersion, Wrapped: r.WrappedKey}})
	}
	return out, nil
}
