package gormlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrFormatV1: the database holds a ledger in the first entry format
// (bodies in clear in the public tree), which this version neither reads
// nor converts: a v1 log cannot become private without rewriting history.
var ErrFormatV1 = errors.New("gormlog: the database holds a ledger in entry format v1 (bodies in clear in the public log); this version writes format v2 and cannot open it: keep the old version to read it, and start this one on a new database")

// headID is the primary key of the one ledger_head row.
const headID = 1

// entryRow is one entry and the tree hashes its append stored.
//
// data is the entry's public leaf (what the tree hashes and the tiles
// serve); env_* its envelope (ledger.Envelope): the signed header and the
// opening, sealed or (registry entries) in clear. The envelope is not in
// the tree: the leaf commits to the header (its seal), the header to the
// opening (its commitment).
type entryRow struct {
	Idx       int64  `gorm:"column:idx;primaryKey;autoIncrement:false"`
	Data      []byte `gorm:"column:data;not null"`
	Hashes    []byte `gorm:"column:hashes;not null"`
	EnvHeader []byte `gorm:"column:env_header;not null"`
	EnvSealed []byte `gorm:"column:env_sealed;not null"`
	EnvClear  []byte `gorm:"column:env_clear;not null"`
}

func (entryRow) TableName() string { return "ledger_entries" }

// headRow holds the durable size (writers lock it) and the log's origin,
// chosen once when the log is created.
type headRow struct {
	ID     int64  `gorm:"column:id;primaryKey;autoIncrement:false"`
	Size   int64  `gorm:"column:size;not null"`
	Origin string `gorm:"column:origin;not null;default:''"`
}

func (headRow) TableName() string { return "ledger_head" }

// checkpointRow is one published signed checkpoint.
type checkpointRow struct {
	Size      int64     `gorm:"column:size;primaryKey;autoIncrement:false"`
	Note      []byte    `gorm:"column:note;not null"`
	CreatedAt time.Time `gorm:"column:created_at;not null"`
}

func (checkpointRow) TableName() string { return "ledger_checkpoints" }

// migrate creates the tables and the head row if they are missing.
func migrate(ctx context.Context, db *gorm.DB) error {
	db = db.WithContext(ctx)
	if m := db.Migrator(); m.HasTable(&entryRow{}) && !m.HasColumn(&entryRow{}, "env_header") {
		return ErrFormatV1
	}
	if err := db.AutoMigrate(&entryRow{}, &headRow{}, &checkpointRow{}); err != nil {
		return fmt.Errorf("migrate ledger tables: %w", err)
	}
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&headRow{ID: headID, Size: 0}).Error; err != nil {
		return fmt.Errorf("create ledger head: %w", err)
	}
	return nil
}

// defaultCacheEntries bounds the hash cache.
const defaultCacheEntries = 1 << 18

// cacheMinLevel: only hashes of subtrees of at least 2^cacheMinLevel
// leaves are cached. They are the ones many proofs share; leaf-level
// hashes are read from the database.
const cacheMinLevel = 3

// hashCache keeps stored hashes of durable entries, which never change.
// When full it is emptied (the upper tree levels refill it quickly).
type hashCache struct {
	mu  sync.RWMutex
	m   map[int64]tlog.Hash
	max int
}

func newHashCache(max int) *hashCache {
	return &hashCache{m: make(map[int64]tlog.Hash), max: max}
}

func (c *hashCache) get(x int64) (tlog.Hash, bool) {
	c.mu.RLock()
	h, ok := c.m[x]
	c.mu.RUnlock()
	return h, ok
}

func (c *hashCache) put(x int64, h tlog.Hash) {
	if level, _ := tlog.SplitStoredHashIndex(x); level < cacheMinLevel {
		return
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[x] = h
	c.mu.Unlock()
}
