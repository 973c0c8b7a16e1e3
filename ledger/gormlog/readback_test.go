package gormlog_test

import (
	"context"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// readCounting is a gormlog store that counts what its node reads back.
type readCounting struct {
	*gormlog.Log
	leaves, envelopes atomic.Int64
}

func (r *readCounting) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	r.leaves.Add(int64(end - start))
	return r.Log.Entries(ctx, start, end)
}

func (r *readCounting) Envelopes(ctx context.Context, start, end uint64) ([]ledger.Envelope, error) {
	r.envelopes.Add(int64(end - start))
	return r.Log.Envelopes(ctx, start, end)
}

// TestOwnAppendsServedFromCache: a gateway appends (concurrently) and
// syncs its projections after each append, as its handlers do; the node
// serves the projections its own entries, with the times the store gave
// their leaves, without reading leaves or envelopes back; the checkpoint
// the store signs meanwhile does not make the node re-check them either.
// A node opened later over the same database reads the same entries.
func TestOwnAppendsServedFromCache(t *testing.T) {
	ctx := context.Background()
	s, _ := testKeys(t)
	db, err := database.Open(ctx, filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	st, err := gormlog.Open(ctx, db, gormlog.Options{Signer: s, CheckpointInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	store := &readCounting{Log: st}
	id := ledgertest.Identity("gw-a")
	n, err := ledger.OpenNode(ctx, store, id)
	if err != nil {
		t.Fatal(err)
	}
	store.leaves.Store(0)
	store.envelopes.Store(0)
	p1, p2 := &cursorApplier{}, &cursorApplier{}
	f := ledger.NewFollower(n, p1, p2)
	const appenders, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, appenders)
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				idx, err := n.Append(ctx, ledgertest.Entry(a*each+i))
				if err == nil {
					err = f.Sync(ctx, idx+1)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	size, err := n.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitCheckpoint(ctx, size); err != nil {
		t.Fatal(err)
	}
	got, err := n.Read(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	if l, e := store.leaves.Load(), store.envelopes.Load(); l != 0 || e != 0 {
		t.Errorf("serving its own %d entries the node read %d leaves and %d envelopes back", size, l, e)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := gormlog.OpenReadOnly(ctx, db, gormlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id.ReadOnly = true
	again, err := ledger.OpenNode(ctx, ro, id)
	if err != nil {
		t.Fatal(err)
	}
	want, err := again.Read(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != int(size) || !reflect.DeepEqual(got, want) {
		for i := range min(len(got), len(want)) {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("entry %d: from the cache %+v, from the database %+v", i, got[i], want[i])
			}
		}
		t.Fatalf("%d entries from the cache, %d from the database", len(got), len(want))
	}
}
