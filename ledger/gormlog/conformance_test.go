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

func TestConformance(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			s, v := testKeys(t)
			var mu sync.Mutex
			dbs := map[ledger.Log]*gorm.DB{}
			open := func(t *testing.T, db *gorm.DB) ledger.Log {
				l, err := gormlog.Open(context.Background(), db, gormlog.Options{
					Signer: s, CheckpointInterval: 20 * time.Millisecond, MaxBatch: 16,
				})
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				mu.Lock()
				dbs[l] = db
				mu.Unlock()
				return l
			}
			ledgertest.RunBackend(t, ledgertest.Backend{
				Open: func(t *testing.T) ledger.Log {
					if name == "sqlite" {
						return open(t, databasetest.SQLite(t))
					}
					return open(t, databasetest.Postgres(t))
				},
				Reopen: func(t *testing.T, old ledger.Log) ledger.Log {
					mu.Lock()
					db := dbs[old]
					mu.Unlock()
					return open(t, db)
				},
				Verifier: v,
				Origin:   testOrigin,
			})
		})
	}
}
