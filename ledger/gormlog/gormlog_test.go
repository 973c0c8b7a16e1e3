package gormlog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
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
