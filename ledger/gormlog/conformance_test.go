package gormlog_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// TestConformance runs the conformance suite on gateway nodes over
// gormlog: on SQLite and PostgreSQL with the gateway in a genesis (no
// entry 0), and on SQLite as a gateway's embedded log is (the gateway
// registers itself as entry 0).
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name    string
		db      func(t *testing.T) *gorm.DB
		genesis bool
	}{
		{"sqlite", databasetest.SQLite, true},
		{"sqlite/embedded", databasetest.SQLite, false},
		{"postgres", databasetest.Postgres, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, v := testKeys(t)
			id := ledgertest.Identity("gw-conformance")
			var mu sync.Mutex
			dbs := map[ledger.Log]*gorm.DB{}
			open := func(t *testing.T, db *gorm.DB) ledger.Log {
				opts := gormlog.Options{Signer: s, CheckpointInterval: 20 * time.Millisecond, MaxBatch: 16}
				if tc.genesis {
					opts.Genesis = genesisOf(id)
				}
				st, err := gormlog.Open(context.Background(), db, opts)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				n, err := ledger.OpenNode(context.Background(), st, id)
				if err != nil {
					_ = st.Close()
					t.Fatalf("open node: %v", err)
				}
				mu.Lock()
				dbs[n] = db
				mu.Unlock()
				return n
			}
			ledgertest.RunBackend(t, ledgertest.Backend{
				Open: func(t *testing.T) ledger.Log { return open(t, tc.db(t)) },
				Reopen: func(t *testing.T, old ledger.Log) ledger.Log {
					mu.Lock()
					db := dbs[old]
					mu.Unlock()
					return open(t, db)
				},
				Verifier: v,
				Origin:   testOrigin,
				Identity: id,
			})
		})
	}
}
