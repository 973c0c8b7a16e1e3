package comet

import (
	"errors"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	"golang.org/x/mod/sumdb/tlog"
)

// TestRestartRefusesEditedTree: a stored hash or the last entry edited
// while the node was down makes NewApp refuse to start.
func TestRestartRefusesEditedTree(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, db dbm.DB)
	}{
		{"interior hash edited", func(t *testing.T, db dbm.DB) {
			k := hashKey(tlog.StoredHashIndex(2, 0)) // the subtree over entries [0, 3], part of the root
			b, err := db.Get(k)
			if err != nil || len(b) != tlog.HashSize {
				t.Fatalf("read hash: %v", err)
			}
			b = append([]byte(nil), b...)
			b[0] ^= 1
			if err := db.SetSync(k, b); err != nil {
				t.Fatal(err)
			}
		}},
		{"last entry edited", func(t *testing.T, db dbm.DB) {
			b, err := db.Get(entryKey(4))
			if err != nil || b == nil {
				t.Fatalf("read entry: %v", err)
			}
			b = append(append([]byte(nil), b...), ' ')
			if err := db.SetSync(entryKey(4), b); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, appState := testGateways(t, 1)
			db := dbm.NewMemDB()
			a := newTestApp(t, db, appState)
			at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			for h := int64(1); h <= 5; h++ {
				tx, _ := signTestTx(t, 0, keys[0], testEntry(int(h)))
				runBlock(t, a, h, at, [][]byte{tx})
			}
			if _, err := NewApp(db, AppOptions{}); err != nil {
				t.Fatalf("restart of an intact store: %v", err)
			}
			tc.edit(t, db)
			if _, err := NewApp(db, AppOptions{}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("restart after the edit = %v, want ErrCorrupt", err)
			}
		})
	}
}
