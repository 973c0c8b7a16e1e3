package verify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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
	"github.com/healthgw/healthgw/ledger/tiles"
	"github.com/healthgw/healthgw/ledger/verify"
)

const origin = "healthgw.test/ledger"

type fixture struct {
	log    *gormlog.Log
	signer note.Signer
	v      note.Verifier
	url    string
}

func newFixture(tb testing.TB, db *gorm.DB, n int) *fixture {
	tb.Helper()
	skey, vkey, err := ledger.GenerateCheckpointKey(origin)
	if err != nil {
		tb.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	l, err := gormlog.Open(context.Background(), db, gormlog.Options{Signer: s, CheckpointInterval: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	appendN(tb, l, n)
	mux := http.NewServeMux()
	mux.Handle("/ledger/", tiles.New(l, tiles.Options{Prefix: "/ledger"}))
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return &fixture{log: l, signer: s, v: v, url: srv.URL + "/ledger/"}
}

func appendN(tb testing.TB, l *gormlog.Log, n int) {
	tb.Helper()
	size, err := l.Size(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := l.Append(context.Background(), ledgertest.Entry(i)); err != nil {
				tb.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, err := l.WaitCheckpoint(context.Background(), size+uint64(n)); err != nil {
		tb.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, 0)
		ctx := t.Context()
		empty, err := f.log.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 255, 3} {
			if n > 0 {
				appendN(t, f.log, n)
			}
			size, _ := f.log.Size(ctx)
			var calls int
			var last uint64
			o := verify.Options{Verifier: f.v, Origin: origin, Trusted: empty, Progress: func(done, total uint64) {
				calls++
				if done < last || done > total {
					t.Errorf("progress %d/%d after %d", done, total, last)
				}
				last = done
			}}
			res, err := verify.Remote(ctx, f.url, nil, o)
			if err != nil {
				t.Fatalf("Remote at size %d: %v", size, err)
			}
			if res.Entries != size || res.Checkpoint.Size != size || !res.Signed {
				t.Errorf("Remote: %+v, want %d entries", res, size)
			}
			if size > 0 && (calls == 0 || last != size) {
				t.Errorf("progress reported %d calls ending at %d", calls, last)
			}
			last = 0
			res, err = verify.Local(ctx, f.log, o)
			if err != nil {
				t.Fatalf("Local at size %d: %v", size, err)
			}
			if res.Entries != size || res.Checkpoints == 0 {
				t.Errorf("Local: %+v, want %d entries", res, size)
			}
		}
		var total uint64
		res, _ := verify.Local(ctx, f.log, verify.Options{})
		for _, c := range res.Types {
			total += c
		}
		if total != res.Entries || res.Signed {
			t.Errorf("Local without a key: types sum to %d of %d, signed %v", total, res.Entries, res.Signed)
		}
	})
}

func TestVerifyErrors(t *testing.T) {
	f := newFixture(t, databasetest.SQLite(t), 10)
	ctx := t.Context()
	if _, err := verify.Remote(ctx, f.url, nil, verify.Options{}); err == nil {
		t.Errorf("Remote without a verifier succeeded")
	}
	_, otherV := func() (note.Signer, note.Verifier) {
		skey, vkey, _ := ledger.GenerateCheckpointKey(origin)
		s, _ := note.NewSigner(skey)
		v, _ := note.NewVerifier(vkey)
		return s, v
	}()
	var fl *verify.Failure
	_, err := verify.Remote(ctx, f.url, nil, verify.Options{Verifier: otherV})
	if !errors.As(err, &fl) || fl.Kind != verify.KindSignature {
		t.Errorf("Remote with another key: %v, want a signature failure", err)
	}
	_, err = verify.Local(ctx, f.log, verify.Options{Verifier: f.v, Origin: "other.example"})
	if !errors.As(err, &fl) || fl.Kind != verify.KindSignature || !errors.Is(err, ledger.ErrWrongOrigin) {
		t.Errorf("Local with another origin: %v, want a signature failure", err)
	}
	// A server that is down is an error, not a verification failure.
	_, err = verify.Remote(ctx, "http://127.0.0.1:1/ledger/", nil, verify.Options{Verifier: f.v})
	if err == nil || errors.As(err, &fl) {
		t.Errorf("Remote against nothing: %v, want a plain error", err)
	}
}

// BenchmarkVerify measures audit throughput over a 65536-entry log on
// SQLite: Local reads the database, Remote goes through the tiles API.
func BenchmarkVerify(b *testing.B) {
	const n = 1 << 16
	db, err := database.Open(context.Background(), filepath.Join(b.TempDir(), "verify.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { database.Close(db) })
	f := newFixture(b, db, n)
	for _, mode := range []string{"local", "remote"} {
		b.Run(mode, func(b *testing.B) {
			o := verify.Options{Verifier: f.v}
			for b.Loop() {
				var err error
				if mode == "local" {
					_, err = verify.Local(context.Background(), f.log, o)
				} else {
					_, err = verify.Remote(context.Background(), f.url, nil, o)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
