package database_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
)

// TestKeySet: a key set is bound once (a second bind changes nothing),
// keys that joined later are added without touching the recorded ones,
// and a start that undoes its binding removes only its own rows.
func TestKeySet(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		if _, ok, err := database.ReadKeySet(ctx, db); err != nil || ok {
			t.Fatalf("new database: bound %v, %v", ok, err)
		}
		if has, err := database.HasState(ctx, db); err != nil || has {
			t.Fatalf("new database: state %v, %v", has, err)
		}
		first := database.KeySet{"checkpoint": "vk-1", "pseudonym": "mac-1"}
		if err := database.BindKeySet(ctx, db, first); err != nil {
			t.Fatal(err)
		}
		if err := database.BindKeySet(ctx, db, database.KeySet{"checkpoint": "vk-2"}); !errors.Is(err, database.ErrKeySetExists) {
			t.Fatalf("second bind: %v, want ErrKeySetExists", err)
		}
		for _, bad := range []database.KeySet{nil, {"": "x"}, {"k": ""}} {
			if err := database.AddKeys(ctx, db, bad); err == nil {
				t.Errorf("AddKeys(%v) accepted", bad)
			}
		}
		if err := database.AddKeys(ctx, db, database.KeySet{"checkpoint": "vk-other", "challenge": "pub-1"}); err != nil {
			t.Fatal(err)
		}
		want := database.KeySet{"checkpoint": "vk-1", "pseudonym": "mac-1", "challenge": "pub-1"}
		got, ok, err := database.ReadKeySet(ctx, db)
		if err != nil || !ok {
			t.Fatalf("read: %v %v", ok, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("key set (-want +got):\n%s", diff)
		}
		if has, err := database.HasState(ctx, db); err != nil || has {
			t.Errorf("a database holding only its key set: state %v, %v", has, err)
		}
		// Removing a key that is recorded with another identifier leaves it.
		if err := database.RemoveKeys(ctx, db, database.KeySet{"challenge": "pub-1", "pseudonym": "mac-other"}); err != nil {
			t.Fatal(err)
		}
		got, _, _ = database.ReadKeySet(ctx, db)
		if diff := cmp.Diff(database.KeySet{"checkpoint": "vk-1", "pseudonym": "mac-1"}, got); diff != "" {
			t.Errorf("after RemoveKeys (-want +got):\n%s", diff)
		}
	})
}

type parentRow struct {
	ID int `gorm:"primaryKey"`
}

func (parentRow) TableName() string { return "droptest_parents" }

type childRow struct {
	ID       int `gorm:"primaryKey"`
	ParentID int
	Parent   parentRow `gorm:"foreignKey:ParentID"`
}

func (childRow) TableName() string { return "droptest_children" }

// TestDropTables: tables are dropped whatever the order given, also when
// one references another.
func TestDropTables(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		if err := db.AutoMigrate(&parentRow{}, &childRow{}); err != nil {
			t.Fatal(err)
		}
		if err := db.Create(&parentRow{ID: 1}).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Create(&childRow{ID: 1, ParentID: 1}).Error; err != nil {
			t.Fatal(err)
		}
		if err := database.DropTables(ctx, db, []string{"droptest_parents", "droptest_children", "not_there"}); err != nil {
			t.Fatal(err)
		}
		tables, err := database.Tables(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"droptest_parents", "droptest_children"} {
			if slices.Contains(tables, name) {
				t.Errorf("%s not dropped (tables %v)", name, tables)
			}
		}
	})
}

// TestSQLitePageCache: every SQLite connection's page cache is bounded to
// SQLiteCacheKiB.
func TestSQLitePageCache(t *testing.T) {
	db, err := database.Open(t.Context(), databasetest.SQLiteDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	// Hold several connections at once, so that each is a new one.
	var conns []interface{ Close() error }
	for range 3 {
		c, err := sqlDB.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var size int
		if err := c.QueryRowContext(t.Context(), "PRAGMA cache_size").Scan(&size); err != nil {
			t.Fatal(err)
		}
		if size != -database.SQLiteCacheKiB {
			t.Errorf("cache_size %d, want -%d (KiB)", size, database.SQLiteCacheKiB)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}
