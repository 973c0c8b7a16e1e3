package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/ledger"
)

// TestLedgerAPI checks the authenticated ledger routes: every entry's
// inclusion proof and a consistency proof verify against signed
// checkpoints; bad parameters get 400, sizes beyond the log 404.
func TestLedgerAPI(t *testing.T) {
	g := newTestGateway(t)
	a := g.register("hosp-a", auth.KindHospital)
	tok := g.token(a, "")
	for i := range 5 {
		g.putRecord(tok, fmt.Sprintf("pat-%d", i), "labs", "application/fhir+json", json.RawMessage(labFHIR))
	}
	v, err := ledger.ParseVerifierKey(g.vkey)
	if err != nil {
		t.Fatal(err)
	}
	n := g.size()
	type entryProof struct {
		Index      uint64           `json:"index"`
		TreeSize   uint64           `json:"tree_size"`
		Entry      json.RawMessage  `json:"entry"`
		Proof      tlog.RecordProof `json:"inclusion_proof"`
		RootHash   tlog.Hash        `json:"root_hash"`
		Checkpoint string           `json:"checkpoint"`
	}
	// last is the checkpoint the last entry's proof came with: it covers
	// every entry (a proof of entry i needs a tree of more than i), where
	// the checkpoint served with entry 0 may be older than the appends
	// (checkpoints are signed after the appends they cover).
	var last ledger.Checkpoint
	for i := range n {
		status, body := g.do("GET", fmt.Sprintf("/v1/ledger/entries/%d", i), tok, nil)
		if status != http.StatusOK {
			t.Fatalf("entry %d: %d %s", i, status, body)
		}
		p := decode[entryProof](t, body)
		cp, err := ledger.OpenCheckpoint([]byte(p.Checkpoint), v, "")
		if err != nil {
			t.Fatalf("entry %d checkpoint: %v", i, err)
		}
		if cp.Size != p.TreeSize || cp.Hash != p.RootHash {
			t.Errorf("entry %d: proof for size %d, checkpoint of size %d", i, p.TreeSize, cp.Size)
		}
		if err := ledger.VerifyInclusion(cp, i, p.Entry, p.Proof); err != nil {
			t.Errorf("entry %d: inclusion proof: %v", i, err)
		}
		if _, err := ledger.DecodeLeaf(p.Entry); err != nil {
			t.Errorf("entry %d is not a canonical v2 leaf: %v", i, err)
		}
		if i == n-1 {
			last = cp
		}
	}
	// The entry at an older tree size, and a consistency proof from it.
	status, body := g.do("GET", "/v1/ledger/entries/0?tree_size=2", tok, nil)
	if p := decode[entryProof](t, body); status != http.StatusOK || p.TreeSize != 2 {
		t.Errorf("entry 0 at size 2: %d %s", status, body)
	}
	status, body = g.do("GET", fmt.Sprintf("/v1/ledger/proofs/consistency?from=2&to=%d", last.Size), tok, nil)
	if status != http.StatusOK {
		t.Fatalf("consistency: %d %s", status, body)
	}
	cons := decode[struct {
		FromRoot tlog.Hash      `json:"from_root"`
		ToRoot   tlog.Hash      `json:"to_root"`
		Proof    tlog.TreeProof `json:"consistency_proof"`
	}](t, body)
	if cons.ToRoot != last.Hash {
		t.Errorf("consistency to-root %v, checkpoint root %v", cons.ToRoot, last.Hash)
	}
	if err := tlog.CheckTree(cons.Proof, int64(last.Size), last.Hash, 2, cons.FromRoot); err != nil {
		t.Errorf("consistency proof: %v", err)
	}
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/v1/ledger/entries/x", 400},
		{"/v1/ledger/entries/-1", 400},
		{"/v1/ledger/entries/999999", 404},
		{"/v1/ledger/entries/3?tree_size=2", 400},
		{"/v1/ledger/entries/0?tree_size=999999", 404},
		{"/v1/ledger/proofs/consistency?from=0&to=2", 400},
		{"/v1/ledger/proofs/consistency?from=3&to=2", 400},
		{"/v1/ledger/proofs/consistency?from=1&to=999999", 404},
		{"/v1/ledger/proofs/consistency?from=a", 400},
	} {
		if status, body := g.do("GET", tt.path, tok, nil); status != tt.want {
			t.Errorf("GET %s: %d %s, want %d", tt.path, status, body, tt.want)
		}
	}
	if status, _ := g.do("GET", "/v1/ledger/checkpoint", "", nil); status != http.StatusUnauthorized {
		t.Errorf("checkpoint without a token: %d, want 401", status)
	}
}
