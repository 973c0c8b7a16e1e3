package gormlog_test

import (
	"context"
	"crypto/ed25519"
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
	"github.com/healthgw/healthgw/ledger/ledgertest"
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

// genesisOf returns the genesis of a store whose gateways are ids.
func genesisOf(ids ...ledger.Identity) map[string]ledger.GatewayKeys {
	g := map[string]ledger.GatewayKeys{}
	for _, id := range ids {
		g[id.Gateway] = ledger.GatewayKeys{
			Public: id.NodeKey.Public().(ed25519.PublicKey), Seal: id.SealKey.PublicKey(), BaseURL: id.BaseURL,
		}
	}
	return g
}

// openNode opens the store in db with opts and the gateway node of id
// over it (a gateway's embedded log: without opts.Genesis the gateway
// registers itself as entry 0). The cleanup closes both.
func openNode(t testing.TB, db *gorm.DB, opts gormlog.Options, id ledger.Identity) (*gormlog.Log, *ledger.Node) {
	t.Helper()
	st, err := gormlog.Open(context.Background(), db, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	n, err := ledger.OpenNode(context.Background(), st, id)
	if err != nil {
		_ = st.Close()
		t.Fatalf("open node: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return st, n
}

func openLog(t testing.TB, db *gorm.DB, s note.Signer, id ledger.Identity) (*gormlog.Log, *ledger.Node) {
	t.Helper()
	return openNode(t, db, gormlog.Options{Signer: s, CheckpointInterval: 50 * time.Millisecond}, id)
}

// accessEntry is a distinct access decision of org-a (homed at the
// embedded log's one gateway).
func accessEntry(i int) ledger.Entry {
	e, err := ledger.NewEntry("org-a", &ledger.AccessDecided{
		Requester: "org-b", RecordID: fmt.Sprintf("rec-%d", i), Patient: ledgertest.Pseudonym(0), Category: "lab",
		Purpose: "TREAT", Decision: ledger.DecisionPermit, Reason: "permit.grant", RequestID: fmt.Sprintf("req-%d", i),
	})
	if err != nil {
		panic(err)
	}
	return e
}

func TestAppendReadProve(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, v := testKeys(t)
		st, l := openLog(t, db, s, ledgertest.Identity("gw-a"))
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
		if err != nil || size != n+1 {
			t.Fatalf("Size = %d, %v; want %d (the gateway's registration and %d entries)", size, err, n+1, n)
		}
		raw, err := st.WaitCheckpoint(ctx, n+1)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ledger.OpenCheckpoint(raw, v, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		ents, err := l.Entries(ctx, 0, n+1)
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

// TestTwoWriters appends through two gateway nodes (one gateway, two
// processes: two stores on two connection pools) to the same database, as
// the server and a CLI command do: the writers must re-read the head in
// every transaction, and each node must read the other's entries.
func TestTwoWriters(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		s, v := testKeys(t)
		id := ledgertest.Identity("gw-a")
		var logs [2]*ledger.Node
		for i := range logs {
			db, err := database.Open(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = database.Close(db) })
			_, logs[i] = openLog(t, db, s, id)
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
					rid := fmt.Sprintf("w%d-%d", w, i)
					e.Body.(*ledger.AccessDecided).RequestID = rid
					idx, err := l.Append(t.Context(), e)
					if err != nil {
						t.Errorf("append: %v", err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if prev, ok := seen[idx]; ok {
						t.Errorf("index %d given to %s and %s", idx, prev, rid)
					}
					seen[idx] = rid
				}()
			}
		}
		wg.Wait()
		ctx := t.Context()
		n, err := logs[0].Size(ctx)
		if err != nil || n != 2*per+1 {
			t.Fatalf("Size = %d, %v; want %d", n, err, 2*per+1)
		}
		for k, l := range logs {
			got, err := l.Read(ctx, 0, n)
			if err != nil {
				t.Fatalf("node %d: Read: %v", k, err)
			}
			for idx, rid := range seen {
				if b, ok := got[idx].Body.(*ledger.AccessDecided); !ok || b.RequestID != rid {
					t.Errorf("node %d: entry %d is %+v, want %s", k, idx, got[idx].Body, rid)
				}
			}
		}
		var st [2]ledger.Store
		for i, l := range logs {
			st[i] = l.Store()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
		res, err := verify.Local(ctx, st[0].(*gormlog.Log), verify.Options{Verifier: v, Origin: testOrigin})
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if res.Checkpoint.Size != n {
			t.Errorf("final checkpoint size %d, want %d", res.Checkpoint.Size, n)
		}
	})
}
