package gormlog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/ledger/verify"
)

// fillTo appends entries until the log holds n and waits for a checkpoint
// of that size.
func fillTo(t *testing.T, st *gormlog.Log, l *ledger.Node, n int) {
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
	if _, err := st.WaitCheckpoint(t.Context(), uint64(n)); err != nil {
		t.Fatal(err)
	}
}

func mustExec(t *testing.T, db *gorm.DB, sql string, args ...any) {
	t.Helper()
	if err := db.Exec(sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func column(t *testing.T, db *gorm.DB, col string, idx int) []byte {
	t.Helper()
	var b [][]byte
	if err := db.Raw("SELECT "+col+" FROM ledger_entries WHERE idx = ?", idx).Scan(&b).Error; err != nil || len(b) != 1 {
		t.Fatalf("%s of %d: %v", col, idx, err)
	}
	return b[0]
}

func rowHashes(t *testing.T, db *gorm.DB, idx int) []byte { return column(t, db, "hashes", idx) }

func dropLedger(t *testing.T, db *gorm.DB) {
	t.Helper()
	for _, tbl := range []string{"ledger_entries", "ledger_head", "ledger_checkpoints"} {
		mustExec(t, db, "DROP TABLE IF EXISTS "+tbl)
	}
}

// forgeAppend appends env as the next entry of the log in db, as a forger
// with write access to the database but neither the gateway's node key
// nor its checkpoint key can: the leaf the store would make, the tree
// hashes recomputed from the stored ones, and the head's size. It returns
// the index.
func forgeAppend(t *testing.T, db *gorm.DB, env ledger.Envelope) uint64 {
	t.Helper()
	ro, err := gormlog.OpenReadOnly(t.Context(), db, gormlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := ro.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ledger.NewLeafFor(env.Header, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hs, err := tlog.StoredHashes(int64(n), leaf, ro)
	if err != nil {
		t.Fatal(err)
	}
	var blob []byte
	for _, h := range hs {
		blob = append(blob, h[:]...)
	}
	mustExec(t, db, "INSERT INTO ledger_entries (idx, data, hashes, env_header, env_sealed, env_clear) VALUES (?,?,?,?,?,?)",
		int64(n), leaf, blob, env.Header, append([]byte{}, env.Sealed...), append([]byte{}, env.Clear...))
	mustExec(t, db, "UPDATE ledger_head SET size = ?", int64(n+1))
	return n
}

func checkpointCount(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Raw("SELECT count(*) FROM ledger_checkpoints").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// newFilledLog creates a fresh log in db (a gateway's embedded log:
// entry 0 registers the gateway), fills it with checkpoints at 30 and 64
// and closes it.
func newFilledLog(t *testing.T, db *gorm.DB, id ledger.Identity, s note.Signer) {
	t.Helper()
	dropLedger(t, db)
	st, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	n, err := ledger.OpenNode(t.Context(), st, id)
	if err != nil {
		t.Fatal(err)
	}
	fillTo(t, st, n, 30)
	fillTo(t, st, n, 64)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
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
		{"leaf byte edited", func(t *testing.T, db *gorm.DB) {
			b := column(t, db, "data", 7)
			i := bytes.Index(b, []byte(`"seal":"`)) + len(`"seal":"`)
			edited := bytes.Clone(b)
			edited[i] = "10"[min(1, int(edited[i]-'0'))] // another hex digit
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
				newFilledLog(t, db, ledgertest.Identity("gw-a"), s)
				tc.tamper(t, db)
				before := checkpointCount(t, db)
				_, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour})
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
				if after := checkpointCount(t, db); after != before {
					t.Errorf("refused Open changed the checkpoints: %d -> %d", before, after)
				}
			})
		}
	})
}

// TestStartRefusesForgedEntries plays a forger with write access to the
// database but without the gateway's node key or checkpoint key. An entry
// appended with recomputed hashes (the tree then extends the last
// checkpoint, so the store opens), or an envelope replaced under an
// existing leaf, makes the gateway's start (ledger.OpenNode) refuse with
// a *ledger.VerifyError naming the index; nothing is signed.
func TestStartRefusesForgedEntries(t *testing.T) {
	id := ledgertest.Identity("gw-a")
	forger := ledgertest.Identity("gw-a") // the gateway's ID, another node key
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *gorm.DB) uint64
		kind   error
	}{
		{"forged entry appended with recomputed hashes", func(t *testing.T, db *gorm.DB) uint64 {
			env, err := ledgertest.SignEnvelope(forger, accessEntry(1000), id.SealKey.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			return forgeAppend(t, db, env)
		}, ledger.ErrBadEntrySignature},
		{"forged registration appended", func(t *testing.T, db *gorm.DB) uint64 {
			env, err := ledgertest.SignEnvelope(forger, ledgertest.OrgEntry("org-forged"))
			if err != nil {
				t.Fatal(err)
			}
			return forgeAppend(t, db, env)
		}, ledger.ErrBadEntrySignature},
		{"gateway's own entry replayed under another leaf", func(t *testing.T, db *gorm.DB) uint64 {
			// A genuine envelope appended a second time: its signature
			// holds, its leaf and hashes are recomputed.
			env := ledger.Envelope{Header: column(t, db, "env_header", 5), Sealed: column(t, db, "env_sealed", 5)}
			i := forgeAppend(t, db, env)
			return i + 1 // accepted: a replay is a valid entry; the next one is forged
		}, nil},
		{"header swapped under an existing leaf", func(t *testing.T, db *gorm.DB) uint64 {
			h10, s10 := column(t, db, "env_header", 10), column(t, db, "env_sealed", 10)
			h11, s11 := column(t, db, "env_header", 11), column(t, db, "env_sealed", 11)
			mustExec(t, db, "UPDATE ledger_entries SET env_header = ?, env_sealed = ? WHERE idx = ?", h11, s11, 10)
			mustExec(t, db, "UPDATE ledger_entries SET env_header = ?, env_sealed = ? WHERE idx = ?", h10, s10, 11)
			return 10
		}, ledger.ErrSealMismatch},
		{"gateway registration replaced under its leaf", func(t *testing.T, db *gorm.DB) uint64 {
			env, err := ledgertest.RegistrationEnvelope(forger)
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, db, "UPDATE ledger_entries SET env_header = ?, env_clear = ? WHERE idx = 0", env.Header, env.Clear)
			return 0
		}, ledger.ErrSealMismatch},
	}
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s, v := testKeys(t)
				newFilledLog(t, db, id, s)
				index := tc.tamper(t, db)
				if tc.kind == nil { // the tamper left a valid log: forge once more
					env, err := ledgertest.SignEnvelope(forger, accessEntry(2000), id.SealKey.PublicKey())
					if err != nil {
						t.Fatal(err)
					}
					if got := forgeAppend(t, db, env); got != index {
						t.Fatalf("forged at %d, want %d", got, index)
					}
					tc.kind = ledger.ErrBadEntrySignature
				}
				before := checkpointCount(t, db)
				// Start twice, as the gateway does (store, then node; on a
				// refusal it closes the store): a refused start signs
				// nothing, so the next start refuses too.
				for start := range 2 {
					st, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour})
					if err != nil {
						// The tree was not edited: only the node may refuse.
						t.Fatalf("start %d: store Open: %v", start, err)
					}
					_, err = ledger.OpenNode(t.Context(), st, id)
					var ve *ledger.VerifyError
					if !errors.As(err, &ve) || ve.Index != index || !errors.Is(err, tc.kind) {
						t.Fatalf("start %d: OpenNode = %v, want a *ledger.VerifyError at %d (%v)", start, err, index, tc.kind)
					}
					if !strings.Contains(err.Error(), fmt.Sprintf("entry %d:", index)) {
						t.Errorf("start %d: error does not name the entry: %v", start, err)
					}
					_ = st.Close()
					if after := checkpointCount(t, db); after != before {
						t.Fatalf("start %d: a refused start signed a checkpoint: %d -> %d checkpoints", start, before, after)
					}
				}
			})
		}
	})
}

// TestPublishRefusesForgedEntry: a row a forger inserts (recomputed
// hashes and head) under a running gateway is checked before the next
// checkpoint would cover it; it fails the check, so the log signs
// nothing over it, is not ready and refuses appends.
func TestPublishRefusesForgedEntry(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, v := testKeys(t)
		id := ledgertest.Identity("gw-a")
		st, l := openNode(t, db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour}, id)
		fillTo(t, st, l, 10)
		forger := ledgertest.Identity("gw-a")
		env, err := ledgertest.SignEnvelope(forger, accessEntry(1000), id.SealKey.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		bad := forgeAppend(t, db, env)
		if _, err := l.Append(t.Context(), accessEntry(11)); err != nil {
			t.Fatalf("Append after the forged row: %v", err)
		}
		_, err = st.WaitCheckpoint(t.Context(), bad+2)
		var ve *ledger.VerifyError
		if !errors.Is(err, gormlog.ErrInconsistent) || !errors.As(err, &ve) || ve.Index != bad || !errors.Is(err, ledger.ErrBadEntrySignature) {
			t.Fatalf("WaitCheckpoint = %v, want a refusal naming entry %d (bad signature)", err, bad)
		}
		if err := st.Ready(t.Context()); !errors.Is(err, gormlog.ErrInconsistent) {
			t.Errorf("Ready = %v, want ErrInconsistent", err)
		}
		if _, err := l.Append(t.Context(), accessEntry(12)); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("Append after the refusal = %v, want ErrUnavailable", err)
		}
		raw, err := l.Checkpoint(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if c, err := ledger.OpenCheckpoint(raw, v, testOrigin); err != nil || c.Size > bad {
			t.Errorf("latest checkpoint %+v, %v: it covers the forged entry %d", c, err, bad)
		}
	})
}

// TestReadRefusesSwappedOpening: a sealed opening swapped under an entry
// the last checkpoint covers is not opened at start (the start check
// opens only entries beyond the checkpoint), but the first read of the
// entry refuses it, naming the index.
func TestReadRefusesSwappedOpening(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, v := testKeys(t)
		id := ledgertest.Identity("gw-a")
		newFilledLog(t, db, id, s)
		mustExec(t, db, "UPDATE ledger_entries SET env_sealed = ? WHERE idx = ?", column(t, db, "env_sealed", 21), 20)
		_, n := openNode(t, db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour}, id)
		if _, err := n.Read(t.Context(), 0, 20); err != nil {
			t.Fatalf("Read before the swapped entry: %v", err)
		}
		_, err := n.Read(t.Context(), 0, 64)
		var ve *ledger.VerifyError
		if !errors.As(err, &ve) || ve.Index != 20 || !errors.Is(err, ledger.ErrCommitmentMismatch) {
			t.Fatalf("Read = %v, want a *ledger.VerifyError at 20 (commitment mismatch)", err)
		}
	})
}

// TestOpenRefusesFormatV1: a database holding a ledger in the first
// entry format (bodies in clear in the public tree) is refused, not
// converted or appended to.
func TestOpenRefusesFormatV1(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, _ := testKeys(t)
		dropLedger(t, db)
		blob := "BLOB"
		if db.Dialector.Name() == "postgres" {
			blob = "BYTEA"
		}
		mustExec(t, db, "CREATE TABLE ledger_entries (idx BIGINT PRIMARY KEY, data "+blob+" NOT NULL, hashes "+blob+" NOT NULL)")
		mustExec(t, db, "CREATE TABLE ledger_head (id BIGINT PRIMARY KEY, size BIGINT NOT NULL, origin TEXT NOT NULL DEFAULT '')")
		mustExec(t, db, "INSERT INTO ledger_head (id, size) VALUES (1, 0)")
		_, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s})
		if !errors.Is(err, gormlog.ErrFormatV1) {
			t.Fatalf("Open of a v1 database = %v, want ErrFormatV1", err)
		}
		if !strings.Contains(err.Error(), "format v1") {
			t.Errorf("error does not say why: %v", err)
		}
		if _, err := gormlog.OpenReadOnly(t.Context(), db, gormlog.Options{}); !errors.Is(err, gormlog.ErrFormatV1) {
			t.Errorf("OpenReadOnly of a v1 database = %v, want ErrFormatV1", err)
		}
		var cols int64
		db.Raw("SELECT count(*) FROM ledger_entries").Scan(&cols)
		if db.Migrator().HasColumn("ledger_entries", "env_header") {
			t.Errorf("the refused Open migrated the v1 table")
		}
	})
}

// TestPublishRefusesFork edits a stored hash under a running log: the next
// checkpoint would not be consistent with the previous one, so the log
// signs nothing more, is not ready and refuses appends.
func TestPublishRefusesFork(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, v := testKeys(t)
		st, l := openNode(t, db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour}, ledgertest.Identity("gw-a"))
		fillTo(t, st, l, 17)
		if err := st.Ready(t.Context()); err != nil {
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
		if _, err := st.WaitCheckpoint(ctx, 18); !errors.Is(err, gormlog.ErrInconsistent) {
			t.Fatalf("WaitCheckpoint = %v, want ErrInconsistent", err)
		}
		if err := st.Ready(t.Context()); !errors.Is(err, gormlog.ErrInconsistent) {
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
		st, l := openNode(t, db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour}, ledgertest.Identity("gw-a"))
		fillTo(t, st, l, 16)
		if _, err := ledger.InclusionProof(t.Context(), l, 3, 16); err != nil { // fills the cache
			t.Fatal(err)
		}
		h := bytes.Clone(rowHashes(t, db, 15))
		h[4*32] ^= 1 // level 4: the root of the first 16 entries
		mustExec(t, db, "UPDATE ledger_entries SET hashes = ? WHERE idx = ?", h, 15)
		if _, err := l.Append(t.Context(), accessEntry(16)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.WaitCheckpoint(t.Context(), 17); !errors.Is(err, gormlog.ErrInconsistent) {
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
		st, l := openNode(t, db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour}, ledgertest.Identity("gw-a"))
		fillTo(t, st, l, 16)
		mustExec(t, db, "DELETE FROM ledger_entries WHERE idx >= ?", 8)
		mustExec(t, db, "UPDATE ledger_head SET size = ?", 8)
		if _, err := l.Append(t.Context(), accessEntry(100)); !errors.Is(err, ledger.ErrUnavailable) || !errors.Is(err, gormlog.ErrInconsistent) {
			t.Fatalf("Append after a rollback = %v, want ErrUnavailable and ErrInconsistent", err)
		}
		if err := st.Ready(t.Context()); !errors.Is(err, gormlog.ErrInconsistent) {
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
		id := ledgertest.Identity("gw-a")
		open := func(origin string) (*gormlog.Log, *ledger.Node, error) {
			st, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, Origin: origin})
			if err != nil {
				return nil, nil, err
			}
			n, err := ledger.OpenNode(t.Context(), st, id)
			if err != nil {
				_ = st.Close()
				return nil, nil, err
			}
			return st, n, nil
		}
		st, l, err := open("gw.example/ledger")
		if err != nil {
			t.Fatal(err)
		}
		fillTo(t, st, l, 3)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		st, l, err = open("")
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Origin(); got != "gw.example/ledger" {
			t.Errorf("reopened origin %q", got)
		}
		fillTo(t, st, l, 5)
		raw, _ := l.Checkpoint(t.Context())
		if _, err := ledger.OpenCheckpoint(raw, v, "gw.example/ledger"); err != nil {
			t.Errorf("checkpoint after reopen: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := open("other.example/ledger"); !errors.Is(err, gormlog.ErrOriginMismatch) {
			t.Errorf("Open with another origin = %v, want ErrOriginMismatch", err)
		}
		ro, err := gormlog.OpenReadOnly(t.Context(), db, gormlog.Options{})
		if err != nil || ro.Origin() != "gw.example/ledger" {
			t.Errorf("read-only origin %q, %v", ro.Origin(), err)
		}
	})
}
