package comet

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	"golang.org/x/mod/sumdb/tlog"
)

// TestRestartRefusesEditedTree: a stored hash, a leaf, one byte of an
// entry's envelope (its header or its sealed opening) or the transaction
// index edited while the node was down makes NewApp refuse to start,
// naming the entry and why.
func TestRestartRefusesEditedTree(t *testing.T) {
	flipEnvelopeByte := func(field string) func(t *testing.T, db dbm.DB) {
		return func(t *testing.T, db dbm.DB) {
			b, err := db.Get(envKey(2))
			if err != nil || b == nil {
				t.Fatalf("read transaction 2: %v", err)
			}
			b = bytes.Clone(b)
			// A byte in the middle of the field's base64 text, changed to
			// another base64 letter: the JSON still decodes.
			at := bytes.Index(b, []byte(`"`+field+`":"`))
			if at < 0 {
				t.Fatalf("no %s in %s", field, b)
			}
			end := at + len(field) + 4 + bytes.IndexByte(b[at+len(field)+4:], '"')
			i := (at + len(field) + 4 + end) / 2
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			if err := db.SetSync(envKey(2), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name string
		edit func(t *testing.T, db dbm.DB)
		want string
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
		}, "does not match the hashes below it"},
		{"last entry edited", func(t *testing.T, db dbm.DB) {
			b, err := db.Get(entryKey(4))
			if err != nil || b == nil {
				t.Fatalf("read entry: %v", err)
			}
			b = append(append([]byte(nil), b...), ' ')
			if err := db.SetSync(entryKey(4), b); err != nil {
				t.Fatal(err)
			}
		}, "entry 4: its bytes do not match its stored leaf hash"},
		{"sealed opening byte changed", flipEnvelopeByte("sealed"), "entry 2: its stored transaction"},
		{"header byte changed", flipEnvelopeByte("header"), "entry 2: its stored transaction"},
		{"transaction index deleted", func(t *testing.T, db dbm.DB) {
			raw, err := db.Get(envKey(3))
			if err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteSync(txKey(sha256.Sum256(raw))); err != nil {
				t.Fatal(err)
			}
		}, "entry 3: the transaction index does not name it"},
		{"transaction missing", func(t *testing.T, db dbm.DB) {
			if err := db.DeleteSync(envKey(1)); err != nil {
				t.Fatal(err)
			}
		}, "entry 1: its transaction (envelope) is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, appState := testGateways(t, 1)
			db := dbm.NewMemDB()
			a := newTestApp(t, db, appState)
			at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			for h := int64(1); h <= 5; h++ {
				tx, _ := testTx(t, 0, keys[0], int(h))
				runBlock(t, a, h, at, [][]byte{tx})
			}
			if _, err := NewApp(db, AppOptions{}); err != nil {
				t.Fatalf("restart of an intact store: %v", err)
			}
			tc.edit(t, db)
			_, err := NewApp(db, AppOptions{})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restart after the edit = %v, want ErrCorrupt saying %q", err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// BenchmarkStartCheck measures NewApp's start-up check (every leaf, stored
// hash, stored transaction with its two signatures, and the registry
// rebuilt) per committed entry:
//
//	go test -run '^$' -bench StartCheck ./ledger/comet/
func BenchmarkStartCheck(b *testing.B) {
	const entries = 2000
	keys, appState := testGateways(b, 1)
	db := dbm.NewMemDB()
	a := newTestApp(b, db, appState)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for h := int64(1); h <= entries/100; h++ {
		var txs [][]byte
		for i := range 100 {
			tx, _ := testTx(b, 0, keys[0], int(h)*100+i)
			txs = append(txs, tx)
		}
		runBlock(b, a, h, at, txs)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := NewApp(db, AppOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/entries, "µs/entry")
}
