package gormlog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/verify"
)

const testOrigin = "healthgw.test/ledger"

func testKeys(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := ledger.GenerateCheckpointKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func openLog(t testing.TB, db *gorm.DB, s note.Signer) *gormlog.Log {
	t.Helper()
	l, err := gormlog.Open(context.Background(), db, gormlog.Options{Signer: s, CheckpointInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func accessEntry(i int) ledger.Entry {
	e, err := ledger.NewEntry("org-a", &ledger.AccessDecided{
		Requester: "org-b", RecordID: fmt.Sprintf("rec-%d", i), Patient: "ps_00", Category: "lab",
		Purpose: "TREAT", Decision: "permit", Reason: "consent", RequestID: fmt.Sprintf("req-%d", i),
	})
	if err != nil {
		panic(err)
	}
	return e
}

func TestAppendReadProve(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, v := testKeys(t)
		l := openLog(t, db, s)
		ctx := t.Context()
		const n = 300
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := l.Append(ctx, accessEntry(i)); err != nil {
					t.Errorf("append %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		size, err := l.Size(ctx)
		if err != nil || size != n {
			t.Fatalf("Size = %d, %v; want %d", size, err, n)
		}
		raw, err := l.WaitCheckpoint(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ledger.OpenCheckpoint(raw, v, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		ents, err := l.Entries(ctx, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(0); i < c.Size; i += 7 {
			p, err := ledger.InclusionProof(ctx, l, i, c.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := ledger.VerifyInclusion(c, i, ents[i], p); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestTwoWriters appends through two Logs on two connection pools to the
// same database, as the server and a CLI command do: the writers must
// re-read the head in every transaction.
func TestTwoWriters(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		s, v := testKeys(t)
		var logs [2]*gormlog.Log
		for i := range logs {
			db, err := database.Open(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = database.Close(db) })
			logs[i] = openLog(t, db, s)
		}
		const per = 150
		var mu sync.Mutex
		seen := map[uint64]string{}
		var wg sync.WaitGroup
		for w, l := range logs {
			for i := range per {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e := accessEntry(i)
					id := fmt.Sprintf("w%d-%d", w, i)
					e.Body.(*ledger.AccessDecided).RequestID = id
					idx, err := l.Append(t.Context(), e)
					if err != nil {
						t.Errorf("append: %v", err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if prev, ok := seen[idx]; ok {
						t.Errorf("index %d given to %s and %s", idx, prev, id)
					}
					seen[idx] = id
				}()
			}
		}
		wg.Wait()
		for _, l := range logs {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
		ctx := t.Context()
		n, err := logs[0].Size(ctx)
		if err != nil || n != 2*per {
			t.Fatalf("Size = %d, %v; want %d", n, err, 2*per)
		}
		raws, err := logs[1].Entries(ctx, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		for idx, id := range seen {
			e, err := ledger.Decode(raws[idx])
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Body.(*ledger.AccessDecided).RequestID; got != id {
				t.Errorf("entry %d is %s, want %s", idx, got, id)
			}
		}
		res, err := verify.Local(ctx, logs[0], verify.Options{Verifier: v, Origin: testOrigin})
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if res.Checkpoint.Size != n {
			t.Errorf("final checkpoint size %d, want %d", res.Checkpoint.Size, n)
		}
	})
}
