package tiles_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/ledger/tiles"
)

const origin = "healthgw.test/ledger"

type fixture struct {
	log *gormlog.Log
	v   note.Verifier
	srv *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	skey, vkey, err := ledger.GenerateCheckpointKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	l, err := gormlog.Open(t.Context(), databasetest.SQLite(t), gormlog.Options{Signer: s, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	mux := http.NewServeMux()
	mux.Handle("/ledger/", tiles.New(l, tiles.Options{Prefix: "/ledger"}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{log: l, v: v, srv: srv}
}

func (f *fixture) appendN(t *testing.T, first, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.log.Append(context.Background(), ledgertest.Entry(first+i)); err != nil {
				t.Errorf("append: %v", err)
			}
		}()
	}
	wg.Wait()
}

// TestInteropTessera reads our tiles with transparency-dev's tlog-tiles
// client and checks its proofs with transparency-dev/merkle.
func TestInteropTessera(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.appendN(t, 0, 300)
	raw1, err := f.log.WaitCheckpoint(ctx, 300)
	if err != nil {
		t.Fatal(err)
	}
	f.appendN(t, 300, 345)
	if _, err := f.log.WaitCheckpoint(ctx, 645); err != nil {
		t.Fatal(err)
	}

	root, _ := url.Parse(f.srv.URL + "/ledger/")
	fetcher, err := client.NewHTTPFetcher(root, f.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	cp, _, _, err := client.FetchCheckpoint(ctx, fetcher.ReadCheckpoint, f.v, origin)
	if err != nil {
		t.Fatalf("FetchCheckpoint: %v", err)
	}
	if cp.Size != 645 {
		t.Fatalf("checkpoint size %d, want 645", cp.Size)
	}
	want, err := f.log.Entries(ctx, 0, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for i := uint64(0); i*256 < cp.Size; i++ {
		b, err := client.GetEntryBundle(ctx, fetcher.ReadEntryBundle, i, cp.Size)
		if err != nil {
			t.Fatalf("GetEntryBundle(%d): %v", i, err)
		}
		got = append(got, b.Entries...)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("entries through bundles differ (-want +got):\n%s", diff)
	}

	h := rfc6962.DefaultHasher
	pb, err := client.NewProofBuilder(ctx, cp.Size, fetcher.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := client.FetchLeafHashes(ctx, fetcher.ReadTile, 0, cp.Size, cp.Size)
	if err != nil {
		t.Fatalf("FetchLeafHashes: %v", err)
	}
	for i, e := range got {
		if !bytes.Equal(leaves[i], h.HashLeaf(e)) {
			t.Fatalf("leaf hash %d from tiles does not match the entry", i)
		}
	}
	for _, i := range []uint64{0, 1, 255, 256, 257, 511, 512, 600, 644} {
		p, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatalf("InclusionProof(%d): %v", i, err)
		}
		if err := proof.VerifyInclusion(h, i, cp.Size, h.HashLeaf(got[i]), p, cp.Hash); err != nil {
			t.Errorf("inclusion proof %d from tiles does not verify: %v", i, err)
		}
		ours, err := ledger.InclusionProof(ctx, f.log, i, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, hashesOf(ours)); diff != "" {
			t.Errorf("our inclusion proof %d differs from tessera's (-tessera +ours):\n%s", i, diff)
		}
	}

	cp1, err := ledger.OpenCheckpoint(raw1, f.v, origin)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pb.ConsistencyProof(ctx, cp1.Size, cp.Size)
	if err != nil {
		t.Fatalf("ConsistencyProof: %v", err)
	}
	if err := proof.VerifyConsistency(h, cp1.Size, cp.Size, p, cp1.Hash[:], cp.Hash); err != nil {
		t.Errorf("consistency proof %d -> %d from tiles does not verify: %v", cp1.Size, cp.Size, err)
	}
	ours, err := ledger.ConsistencyProof(ctx, f.log, cp1.Size, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, hashesOf(ours)); diff != "" {
		t.Errorf("our consistency proof differs from tessera's (-tessera +ours):\n%s", diff)
	}

	// A tracker starting from the old checkpoint accepts the new one.
	tracker, err := client.NewLogStateTracker(ctx, fetcher.ReadTile, raw1, f.v, origin, client.UnilateralConsensus(fetcher.ReadCheckpoint))
	if err != nil {
		t.Fatalf("NewLogStateTracker: %v", err)
	}
	if _, _, _, err := tracker.Update(ctx); err != nil {
		t.Fatalf("tracker.Update: %v", err)
	}
	if got := tracker.Latest().Size; got != cp.Size {
		t.Errorf("tracker at size %d, want %d", got, cp.Size)
	}
}

func hashesOf[T ~[]tlog.Hash](p T) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

func TestHTTP(t *testing.T) {
	f := newFixture(t)
	f.appendN(t, 0, 300)
	if _, err := f.log.WaitCheckpoint(t.Context(), 300); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		status       int
		cache        string
		length       int // -1: do not check
	}{
		{"GET", "/ledger/checkpoint", 200, tiles.CacheNone, -1},
		{"GET", "/ledger/tile/0/000", 200, tiles.CacheImmutable, 256 * 32},
		{"HEAD", "/ledger/tile/0/000", 200, tiles.CacheImmutable, 0},
		{"GET", "/ledger/tile/0/001.p/44", 200, tiles.CachePartial, 44 * 32},
		{"GET", "/ledger/tile/0/001.p/10", 200, tiles.CachePartial, 10 * 32},
		{"GET", "/ledger/tile/0/001.p/45", 404, "", -1},
		{"GET", "/ledger/tile/0/001", 404, "", -1},
		{"GET", "/ledger/tile/1/000.p/1", 200, tiles.CachePartial, 32},
		{"GET", "/ledger/tile/1/000", 404, "", -1},
		{"GET", "/ledger/tile/entries/000", 200, tiles.CacheImmutable, -1},
		{"GET", "/ledger/tile/entries/001.p/44", 200, tiles.CachePartial, -1},
		{"GET", "/ledger/tile/entries/001.p/45", 404, "", -1},
		{"GET", "/ledger/tile/entries/x001/000", 404, "", -1},
		{"GET", "/ledger/tile/0/1", 404, "", -1},
		{"GET", "/ledger/tile/0/000.p/0", 404, "", -1},
		{"GET", "/ledger/tile/0/000.p/256", 404, "", -1},
		{"GET", "/ledger/tile/99/000", 404, "", -1},
		{"GET", "/ledger/tile/-1/000", 404, "", -1},
		{"GET", "/ledger/tile/0/x000/000", 404, "", -1},
		{"GET", "/ledger/tile/entries/x000/000", 404, "", -1},
		{"GET", "/ledger/tile/00/000", 404, "", -1},
		{"GET", "/ledger/nope", 404, "", -1},
		{"POST", "/ledger/checkpoint", 405, "", -1},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tc.method, f.srv.URL+tc.path, nil)
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if tc.cache != "" {
				if got := resp.Header.Get("Cache-Control"); got != tc.cache {
					t.Errorf("Cache-Control %q, want %q", got, tc.cache)
				}
			}
			if tc.length >= 0 && len(body) != tc.length {
				t.Errorf("body length %d, want %d", len(body), tc.length)
			}
		})
	}
}
