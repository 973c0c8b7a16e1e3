package gormlog_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/verify"
)

// fillTo appends entries until the log holds n and waits for a checkpoint
// of that size.
func fillTo(t *testing.T, l *gormlog.Log, n int) {
	t.Helper()
	size, err := l.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := int(size); i < n; i++ {
		if _, err := l.Append(t.Context(), accessEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.WaitCheckpoint(t.Context(), uint64(n)); err != nil {
		t.Fatal(err)
	}
}

func mustExec(t *testing.T, db *gorm.DB, sql string, args ...any) {
	t.Helper()
	if err := db.Exec(sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func rowHashes(t *testing.T, db *gorm.DB, idx int) []byte {
	t.Helper()
	var b [][]byte
	if err := db.Raw("SELECT hashes FROM ledger_entries WHERE idx = ?", idx).Scan(&b).Error; err != nil || len(b) != 1 {
		t.Fatalf("hashes of %d: %v", idx, err)
	}
	return b[0]
}

// TestOpenRefusesTamperedLog edits a closed log the ways a database
// writer could and checks that Open refuses it, naming the first bad
// entry, and signs nothing.
func TestOpenRefusesTamperedLog(t *testing.T) {
	other, _ := testKeys(t)
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *gorm.DB)
		index  int64
	}{
		{"rollback with checkpoints kept", func(t *testing.T, db *gorm.DB) {
			mustExec(t, db, "DELETE FROM ledger_entries WHERE idx >= ?", 40)
			mustExec(t, db, "UPDATE ledger_head SET size = ?", 40)
		}, 40},
		{"interior hash edited", func(t *testing.T, db *gorm.DB) {
			h := bytes.Clone(rowHashes(t, db, 31))
			h[3*32+1] ^= 1 // level 3: the subtree over [24, 31]
			mustExec(t, db, "UPDATE ledger_entries SET hashes = ? WHERE idx = ?", h, 31)
		}, 31},
		{"leaf hash edited", func(t *testing.T, db *gorm.DB) {
			h := bytes.Clone(rowHashes(t, db, 12))
			h[0] ^= 1
			mustExec(t, db, "UPDATE ledger_entries SET hashes = ? WHERE idx = ?", h, 12)
		}, 12},
		{"entry byte edited", func(t *testing.T, db *gorm.DB) {
			var b [][]byte
			db.Raw("SELECT data FROM ledger_entries WHERE idx = 7").Scan(&b)
			edited := bytes.Replace(b[0], []byte("rec-7"), []byte("rec-8"), 1)
			mustExec(t, db, "UPDATE ledger_entries SET data = ? WHERE idx = ?", edited, 7)
		}, 7},
		{"latest checkpoint signed by another key", func(t *testing.T, db *gorm.DB) {
			var notes [][]byte
			db.Raw("SELECT note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1").Scan(&notes)
			c, err := ledger.ParseCheckpoint(notes[0])
			if err != nil {
				t.Fatal(err)
			}
			raw, err := ledger.SignCheckpoint(c, other)
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, db, "UPDATE ledger_checkpoints SET note = ? WHERE size = ?", raw, int64(c.Size))
		}, -1},
		{"every checkpoint deleted", func(t *testing.T, db *gorm.DB) {
			mustExec(t, db, "DELETE FROM ledger_checkpoints")
		}, -1},
	}
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s, v := testKeys(t)
				mustExec(t, db, "DROP TABLE IF EXISTS ledger_entries")
				mustExec(t, db, "DROP TABLE IF EXISTS ledger_head")
				mustExec(t, db, "DROP TABLE IF EXISTS ledger_checkpoints")
				l, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, CheckpointInterval: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				fillTo(t, l, 30)
				fillTo(t, l, 64)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				tc.tamper(t, db)
				var before int64
				db.Raw("SELECT count(*) FROM ledger_checkpoints").Scan(&before)
				_, err = gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour})
				if !errors.Is(err, gormlog.ErrInconsistent) || !errors.Is(err, gormlog.ErrCorrupt) {
					t.Fatalf("Open = %v, want ErrInconsistent", err)
				}
				var f *verify.Failure
				if !errors.As(err, &f) || f.Index != tc.index {
					t.Fatalf("Open = %v, want the failure at index %d", err, tc.index)
				}
				if tc.index >= 0 && !strings.Contains(err.Error(), "entry ") {
					t.Errorf("error does not name the entry: %v", err)
				}
				var after int64
				db.Raw("SELECT count(*) FROM ledger_checkpoints").Scan(&after)
				if after != before {
					t.Errorf("refused Open changed the checkpoints: %d -> %d", before, after)
				}
			})
		}
	})
}

// TestPublishRefusesFork edits a stored hash under a running log: the next
// checkpoint would not be consistent with the previous one, so the log
// signs nothing more, is not ready and refuses appends.
func TestPublishRefusesFork(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, v := testKeys(t)
		l, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		fillTo(t, l, 17)
		if err := l.Ready(t.Context()); err != nil {
			t.Fatalf("Ready before the edit: %v", err)
		}
		h := bytes.Clone(rowHashes(t, db, 16))
		h[0] ^= 1
		mustExec(t, db, "UPDATE ledger_entries SET hashes = ? WHERE idx = ?", h, 16)
		if _, err := l.Append(t.Context(), accessEntry(17)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if _, err := l.WaitCheckpoint(ctx, 18); !errors.Is(err, gormlog.ErrInconsistent) {
			t.Fatalf("WaitCheckpoint = %v, want ErrInconsistent", err)
		}
		if err := l.Ready(t.Context()); !errors.Is(err, gormlog.ErrInconsistent) {
			t.Errorf("Ready = %v, want ErrInconsistent", err)
		}
		if _, err := l.Append(t.Context(), accessEntry(5000)); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("Append after the fault = %v, want ErrUnavailable", err)
		}
		raw, err := l.Checkpoint(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if c, err := ledger.OpenCheckpoint(raw, v, testOrigin); err != nil || c.Size != 17 {
			t.Errorf("latest checkpoint %+v, %v; want the last consistent one (17)", c, err)
		}
	})
}

// TestPublishRefusesEditedCachedHash: an edit of a hash high in the tree
// (one the log keeps in memory) under the running log is seen at the next
// checkpoint: what is signed is what is stored.
func TestPublishRefusesEditedCachedHash(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, v := testKeys(t)
		l, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		fillTo(t, l, 16)
		if _, err := ledger.InclusionProof(t.Context(), l, 3, 16); err != nil { // fills the cache
			t.Fatal(err)
		}
		h := bytes.Clone(rowHashes(t, db, 15))
		h[4*32] ^= 1 // level 4: the root of the first 16 entries
		mustExec(t, db, "UPDATE ledger_entries SET hashes = ? WHERE idx = ?", h, 15)
		if _, err := l.Append(t.Context(), accessEntry(16)); err != nil {
			t.Fatal(err)
		}
		if _, err := l.WaitCheckpoint(t.Context(), 17); !errors.Is(err, gormlog.ErrInconsistent) {
			t.Fatalf("WaitCheckpoint = %v, want ErrInconsistent", err)
		}
	})
}

// TestRollbackUnderRunningLog: a database restored to an older size under
// a running log makes its next append fail and the log not ready; it
// never writes a second history.
func TestRollbackUnderRunningLog(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, v := testKeys(t)
		l, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		fillTo(t, l, 16)
		mustExec(t, db, "DELETE FROM ledger_entries WHERE idx >= ?", 8)
		mustExec(t, db, "UPDATE ledger_head SET size = ?", 8)
		if _, err := l.Append(t.Context(), accessEntry(100)); !errors.Is(err, ledger.ErrUnavailable) || !errors.Is(err, gormlog.ErrInconsistent) {
			t.Fatalf("Append after a rollback = %v, want ErrUnavailable and ErrInconsistent", err)
		}
		if err := l.Ready(t.Context()); !errors.Is(err, gormlog.ErrInconsistent) {
			t.Errorf("Ready = %v, want ErrInconsistent", err)
		}
		var n int64
		db.Raw("SELECT count(*) FROM ledger_entries").Scan(&n)
		if n != 8 {
			t.Errorf("%d rows after the refused append, want 8", n)
		}
	})
}

// TestOriginFixed: the origin chosen at creation is stored and kept; a
// different one is refused.
func TestOriginFixed(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, v := testKeys(t)
		l, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, Origin: "gw.example/ledger"})
		if err != nil {
			t.Fatal(err)
		}
		fillTo(t, l, 3)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = gormlog.Open(t.Context(), db, gormlog.Options{Signer: s})
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Origin(); got != "gw.example/ledger" {
			t.Errorf("reopened origin %q", got)
		}
		fillTo(t, l, 5)
		raw, _ := l.Checkpoint(t.Context())
		if _, err := ledger.OpenCheckpoint(raw, v, "gw.example/ledger"); err != nil {
			t.Errorf("checkpoint after reopen: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, Origin: "other.example/ledger"}); !errors.Is(err, gormlog.ErrOriginMismatch) {
			t.Errorf("Open with another origin = %v, want ErrOriginMismatch", err)
		}
		ro, err := gormlog.OpenReadOnly(t.Context(), db, gormlog.Options{})
		if err != nil || ro.Origin() != "gw.example/ledger" {
			t.Errorf("read-only origin %q, %v", ro.Origin(), err)
		}
	})
}
