package witness_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
	"github.com/healthgw/healthgw/ledger/witness"
)

const origin = "gw.test.example/ledger"

type logKeys struct {
	s note.Signer
	v note.Verifier
}

func newLogKeys(t testing.TB) logKeys {
	t.Helper()
	skey, vkey, err := ledger.GenerateCheckpointKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	return logKeys{s, v}
}

// openLog opens a gateway's embedded log in db: a node over gormlog
// (entry 0 registers the gateway).
func openLog(t testing.TB, db *gorm.DB, k logKeys) *ledger.Node {
	t.Helper()
	st, err := gormlog.Open(context.Background(), db, gormlog.Options{Signer: k.s, Verifier: k.v, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.OpenNode(context.Background(), st, ledgertest.Identity("gw-witnessed"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func grow(t testing.TB, l *ledger.Node, first, n int) {
	t.Helper()
	size, _ := l.Size(context.Background())
	growTo(t, l, first, int(size)+n)
}

// growTo appends entries until l holds size and waits for a checkpoint of
// that size.
func growTo(t testing.TB, l *ledger.Node, first, size int) {
	t.Helper()
	n, _ := l.Size(context.Background())
	for i := int(n); i < size; i++ {
		if _, err := l.Append(context.Background(), ledgertest.Entry(first+i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.WaitCheckpoint(context.Background(), uint64(size)); err != nil {
		t.Fatal(err)
	}
}

type testWitness struct {
	w   *witness.Witness
	v   note.Verifier
	srv *httptest.Server
	db  *gorm.DB
	sk  string
}

func newTestWitness(t *testing.T, name string, db *gorm.DB, k logKeys) *testWitness {
	t.Helper()
	skey, vkey, err := witness.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(t.Context(), db, skey, []witness.Log{{Origin: origin, Verifier: k.v}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := witness.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	return &testWitness{w: w, v: v, srv: srv, db: db, sk: skey}
}

// TestThreeParties: a gateway and two witnesses. verify with a threshold
// of 2 passes while both cosign, fails with one down, and a witness
// refuses a split view.
func TestThreeParties(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		k := newLogKeys(t)
		l := openLog(t, db, k)
		w1 := newTestWitness(t, "witness-1.example", databasetest.SQLite(t), k)
		w2 := newTestWitness(t, "witness-2.example", databasetest.SQLite(t), k)
		sub := witness.NewSubmitter(l, []witness.Endpoint{{URL: w1.srv.URL, Verifier: w1.v}, {URL: w2.srv.URL, Verifier: w2.v}}, nil, nil)
		mux := http.NewServeMux()
		mux.Handle("/ledger/", tiles.New(witness.CosignedLog{Log: l, S: sub}, tiles.Options{Prefix: "/ledger"}))
		gw := httptest.NewServer(mux)
		t.Cleanup(gw.Close)
		both := verify.Options{Verifier: k.v, Origin: origin, Witnesses: []note.Verifier{w1.v, w2.v}, WitnessThreshold: 2}

		for _, n := range []int{0, 10, 7} { // the first submission is of the new log (the gateway's registration)
			grow(t, l, 100*n, n)
			got, err := sub.Submit(ctx)
			if err != nil || got != 2 {
				t.Fatalf("Submit at +%d: %d cosignatures, %v; want 2", n, got, err)
			}
			res, err := verify.Remote(ctx, gw.URL+"/ledger/", nil, both)
			if err != nil {
				t.Fatalf("verify with both witnesses: %v", err)
			}
			if res.Cosigned != 2 {
				t.Errorf("Cosigned = %d, want 2", res.Cosigned)
			}
		}

		// Witness 2 goes down: the next checkpoint has one cosignature.
		w2.srv.Close()
		grow(t, l, 5000, 5)
		if got, err := sub.Submit(ctx); err != nil || got != 1 {
			t.Fatalf("Submit with one witness down: %d, %v; want 1", got, err)
		}
		var f *verify.Failure
		if _, err := verify.Remote(ctx, gw.URL+"/ledger/", nil, both); !errors.As(err, &f) || f.Kind != verify.KindWitness {
			t.Errorf("verify with threshold 2 and one witness down = %v, want a witness failure", err)
		}
		one := both
		one.WitnessThreshold = 1
		if _, err := verify.Remote(ctx, gw.URL+"/ledger/", nil, one); err != nil {
			t.Errorf("verify with threshold 1: %v", err)
		}

		// Split view: the same key signs another history of the same
		// size, shown to witness 1. It refuses to cosign.
		forkDB := databasetest.SQLite(t)
		fork := openLog(t, forkDB, k)
		size, _ := l.Size(ctx)
		growTo(t, fork, 90000, int(size))
		forkCP, err := fork.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w1.w.AddCheckpoint(ctx, size, nil, forkCP); !errors.Is(err, witness.ErrInconsistent) {
			t.Errorf("witness cosigned a split view: %v", err)
		}
		forkSub := witness.NewSubmitter(fork, []witness.Endpoint{{URL: w1.srv.URL, Verifier: w1.v}}, nil, nil)
		if got, err := forkSub.Submit(ctx); err != nil || got != 0 {
			t.Errorf("the fork collected %d cosignatures (%v), want 0", got, err)
		}
		// A longer fork does not pass either: its proof does not hold.
		grow(t, fork, 95000, 3)
		if got, err := forkSub.Submit(ctx); err != nil || got != 0 {
			t.Errorf("the longer fork collected %d cosignatures (%v), want 0", got, err)
		}

		// The witness's state survives a restart.
		w1b, err := witness.New(ctx, w1.db, w1.sk, []witness.Log{{Origin: origin, Verifier: k.v}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		old, err := l.CheckpointAt(ctx, 11)
		if err != nil {
			t.Fatal(err)
		}
		var conflict *witness.ConflictError
		if _, err := w1b.AddCheckpoint(ctx, 0, nil, old); !errors.As(err, &conflict) || conflict.Size != size {
			t.Errorf("restarted witness: %v, want a conflict at size %d", err, size)
		}
	})
}

// TestAddCheckpointErrors: the C2SP tlog-witness status of each refusal.
func TestAddCheckpointErrors(t *testing.T) {
	ctx := t.Context()
	k := newLogKeys(t)
	l := openLog(t, databasetest.SQLite(t), k)
	growTo(t, l, 0, 4)
	w := newTestWitness(t, "witness.example", databasetest.SQLite(t), k)
	raw, _ := l.Checkpoint(ctx)
	other := newLogKeys(t)
	forged, _ := ledger.SignCheckpoint(ledger.Checkpoint{Origin: origin, Size: 4}, other.s)
	unknown, _ := ledger.SignCheckpoint(ledger.Checkpoint{Origin: "nobody.example/log", Size: 4}, other.s)
	tests := []struct {
		name string
		body []byte
		want int
	}{
		{"garbage", []byte("hello"), http.StatusBadRequest},
		{"unknown log", witness.FormatAddCheckpoint(0, nil, unknown), http.StatusNotFound},
		{"another key", witness.FormatAddCheckpoint(0, nil, forged), http.StatusForbidden},
		{"wrong old size", witness.FormatAddCheckpoint(2, [][]byte{make([]byte, 32)}, raw), http.StatusConflict},
		{"ok", witness.FormatAddCheckpoint(0, nil, raw), http.StatusOK},
		{"same again", witness.FormatAddCheckpoint(4, nil, raw), http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(w.srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// BenchmarkWitnessRoundTrip measures one checkpoint's submission to one
// witness over loopback HTTP: consistency proof, request, the witness's
// checks, state update (SQLite) and cosignature, and the check of the
// cosignature.
func BenchmarkWitnessRoundTrip(b *testing.B) {
	ctx := context.Background()
	k := newLogKeys(b)
	dir := b.TempDir()
	db := openDB(b, dir+"/log.db")
	l := openLog(b, db, k)
	skey, vkey, _ := witness.GenerateKey("witness.example")
	w, err := witness.New(ctx, openDB(b, dir+"/w.db"), skey, []witness.Log{{Origin: origin, Verifier: k.v}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	v, _ := witness.NewVerifier(vkey)
	sub := witness.NewSubmitter(l, []witness.Endpoint{{URL: srv.URL, Verifier: v}}, nil, nil)
	grow(b, l, 0, 1000)
	if _, err := sub.Submit(ctx); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		grow(b, l, 10000+i, 1)
		b.StartTimer()
		start := time.Now()
		n, err := sub.Submit(ctx)
		total += time.Since(start)
		if err != nil || n != 1 {
			b.Fatalf("submit: %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/checkpoint")
}

func openDB(b *testing.B, path string) *gorm.DB {
	db, err := database.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = database.Close(db) })
	return db
}
