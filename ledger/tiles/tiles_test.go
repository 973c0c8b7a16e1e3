package tiles_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
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
	log   *ledger.Node
	store *gormlog.Log
	id    ledger.Identity
	v     note.Verifier
	srv   *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	skey, vkey, err := ledger.GenerateCheckpointKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	st, err := gormlog.Open(t.Context(), databasetest.SQLite(t), gormlog.Options{Signer: s, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id := ledgertest.Identity("gw-tiles")
	l, err := ledger.OpenNode(t.Context(), st, id) // entry 0 registers the gateway
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	mux := http.NewServeMux()
	mux.Handle("/ledger/", tiles.New(l, tiles.Options{Prefix: "/ledger"}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{log: l, store: st, id: id, v: v, srv: srv}
}

// fill appends ledgertest entries until the log holds size entries and
// waits for a checkpoint of that size.
func (f *fixture) fill(t *testing.T, size int) []byte {
	t.Helper()
	n, err := f.log.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := int(n); i < size; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.log.Append(context.Background(), ledgertest.Entry(i)); err != nil {
				t.Errorf("append: %v", err)
			}
		}()
	}
	wg.Wait()
	raw, err := f.store.WaitCheckpoint(t.Context(), uint64(size))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestInteropTessera reads our tiles with transparency-dev's tlog-tiles
// client and checks its proofs with transparency-dev/merkle.
func TestInteropTessera(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	raw1 := f.fill(t, 300)
	f.fill(t, 645)

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
	f.fill(t, 300)
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

// TestServesOnlyLeaves: the tiles are public, so they carry the public
// leaves only (kind, time, seal). Over a log with records in a sensitive
// category, consents to them and reads of them for several patients,
// nothing served names the category, a record, a consent, an org or a
// patient (pseudonym or ID), and every entry bundle holds v2 leaves.
func TestServesOnlyLeaves(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	var secrets []string
	add := func(e ledger.Entry) {
		t.Helper()
		if _, err := f.log.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	add(ledgertest.OrgEntry("hosp-psych"))
	for p := range 3 {
		patient := fmt.Sprintf("patient-%d", p)
		ps := f.id.Pseudonyms.Pseudonym(patient)
		rec := fmt.Sprintf("rec-mh-%d", p)
		consent := fmt.Sprintf("consent-mh-%d", p)
		secrets = append(secrets, patient, ps, rec, consent)
		e, err := ledger.NewEntry("hosp-psych", &ledger.RecordRegistered{
			RecordID: rec, Holder: "hosp-psych", Patient: ps, Category: "mental-health", Commitment: strings.Repeat("ab", 32),
		})
		if err != nil {
			t.Fatal(err)
		}
		add(e)
		e, err = ledger.NewEntry(ledger.PatientOrg(ps), &ledger.ConsentGranted{
			ConsentID: consent, Patient: ps, Grantee: ledger.Grantee{Org: "hosp-reader"}, Decision: ledger.DecisionPermit,
			Actions: []string{"read"}, Categories: []string{"mental-health"}, Purposes: []string{"TREAT"},
			NotBefore: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		})
		if err != nil {
			t.Fatal(err)
		}
		add(e)
		e, err = ledger.NewEntry("hosp-psych", &ledger.AccessDecided{
			Requester: "hosp-reader", RecordID: rec, Patient: ps, Category: "mental-health", Purpose: "TREAT",
			Decision: ledger.DecisionPermit, Reason: "permit.grant", GrantID: consent, RequestID: "req-" + rec,
		})
		if err != nil {
			t.Fatal(err)
		}
		add(e)
	}
	secrets = append(secrets, "mental-health", "hosp-psych", "hosp-reader", "ps_", "TREAT", "req-")
	size, err := f.log.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.WaitCheckpoint(ctx, size); err != nil {
		t.Fatal(err)
	}
	// The log itself holds the facts (the gateway reads them back) …
	got, err := f.log.Read(ctx, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := got[0].Body.(*ledger.RecordRegistered); !ok || b.Category != "mental-health" {
		t.Fatalf("entry 2 reads as %+v, want the mental-health record", got[0].Body)
	}
	// … the public tiles do not.
	var served []byte
	paths := []string{"/ledger/checkpoint", fmt.Sprintf("/ledger/tile/entries/000.p/%d", size), fmt.Sprintf("/ledger/tile/0/000.p/%d", size)}
	for _, p := range paths {
		resp, err := f.srv.Client().Get(f.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, b)
		}
		served = append(served, b...)
	}
	for _, s := range secrets {
		if bytes.Contains(served, []byte(s)) {
			t.Errorf("the tiles serve %q", s)
		}
	}
	bundle, err := client.GetEntryBundle(ctx, func(ctx context.Context, i uint64, p uint8) ([]byte, error) {
		resp, err := f.srv.Client().Get(f.srv.URL + "/ledger/" + layout.EntriesPath(i, p))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(bundle.Entries)) != size {
		t.Fatalf("bundle holds %d entries, want %d", len(bundle.Entries), size)
	}
	for i, e := range bundle.Entries {
		l, err := ledger.DecodeLeaf(e)
		if err != nil {
			t.Errorf("served entry %d is not a v2 leaf: %v", i, err)
			continue
		}
		if again, _ := ledger.EncodeLeaf(ledger.Leaf{Version: l.Version, Type: l.Type, Time: l.Time, Seal: l.Seal}); !bytes.Equal(again, e) {
			t.Errorf("served entry %d carries more than kind, time and seal: %s", i, e)
		}
	}
}
