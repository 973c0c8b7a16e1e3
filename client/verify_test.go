package client_test

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// TestVerifyEntry: a receipt from a gateway's node verifies and gives the
// statement; any changed byte of leaf, header or opening, a wrong key, a
// wrong leaf hash fail; without a body the inclusion is checked and
// ErrNoBody returned.
func TestVerifyEntry(t *testing.T) {
	skey, vkey, err := ledger.GenerateCheckpointKey("client.test/log")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ledger.ParseVerifierKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	log := &ledgertest.MemLog{Signer: s}
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e, err := ledger.NewEntry("patient:ps_p", &ledger.ConsentGranted{ConsentID: "cns_1", Patient: "ps_p", Grantee: ledger.Grantee{Org: "hosp-b"},
		Decision: "permit", Actions: []string{"read"}, Purposes: []string{"TREAT"}, NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := log.Append(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	log.Publish()
	r, err := ledger.MakeReceipt(t.Context(), log, idx)
	if err != nil {
		t.Fatal(err)
	}
	root, err := ledger.TreeHash(t.Context(), log, r.TreeSize)
	if err != nil {
		t.Fatal(err)
	}
	good := client.EntryProof{Index: r.Index, TreeSize: r.TreeSize, Entry: r.Entry, Header: r.Header, Opening: r.Opening,
		LeafHash: tlog.RecordHash(r.Entry), Proof: r.Proof, RootHash: root, Checkpoint: string(r.Checkpoint)}
	st, err := client.VerifyEntry(good, v, "client.test/log")
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := st.Body.(*ledger.ConsentGrantedV2); !ok || g.ConsentID != "cns_1" || g.Grantee.Org != "hosp-b" {
		t.Errorf("statement %+v", st.Body)
	}
	flip := func(b []byte, i int) []byte {
		out := append([]byte(nil), b...)
		out[i] ^= 1
		return out
	}
	otherKey, _, _ := ledger.GenerateCheckpointKey("client.test/log")
	otherSigner, _ := note.NewSigner(otherKey)
	forged, _ := ledger.SignCheckpoint(ledger.Checkpoint{Origin: "client.test/log", Size: r.TreeSize, Hash: root}, otherSigner)
	for name, tamper := range map[string]func(p *client.EntryProof){
		"leaf": func(p *client.EntryProof) {
			p.Entry = flip(p.Entry, len(p.Entry)-4)
			p.LeafHash = tlog.RecordHash(p.Entry)
		},
		"leaf hash":  func(p *client.EntryProof) { p.LeafHash[0] ^= 1 },
		"header":     func(p *client.EntryProof) { p.Header = flip(p.Header, len(p.Header)-4) },
		"opening":    func(p *client.EntryProof) { p.Opening = flip(p.Opening, 30) },
		"no opening": func(p *client.EntryProof) { p.Opening = nil },
		"checkpoint": func(p *client.EntryProof) { p.Checkpoint = string(forged) },
		"origin":     func(p *client.EntryProof) {},
	} {
		p := good
		tamper(&p)
		origin := "client.test/log"
		if name == "origin" {
			origin = "another/log"
		}
		if _, err := client.VerifyEntry(p, v, origin); err == nil || errors.Is(err, client.ErrNoBody) {
			t.Errorf("%s changed: VerifyEntry = %v, want a failure", name, err)
		}
	}
	bare := good
	bare.Header, bare.Opening = nil, nil
	if _, err := client.VerifyEntry(bare, v, ""); !errors.Is(err, client.ErrNoBody) {
		t.Errorf("without a body: %v, want ErrNoBody", err)
	}
	bare.Entry = flip(bare.Entry, 5)
	bare.LeafHash = tlog.RecordHash(bare.Entry)
	if _, err := client.VerifyEntry(bare, v, ""); err == nil || errors.Is(err, client.ErrNoBody) {
		t.Errorf("without a body, leaf changed: %v, want a failure", err)
	}
}
