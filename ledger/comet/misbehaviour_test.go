package comet_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
	"github.com/healthgw/healthgw/ledger/comet/comettest"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// TestMemberMisbehaviourRefusedByEveryNode (issue 11 #3, issue 14 #4), on
// four real nodes: hospital-1's gateway is the home of hosp-a and
// registered hosp-a's issuer key; hospital-2's is the home of hosp-b.
// Hospital-2 then tries, with its own genuine keys, what a member may not
// do; and hospital-1's gateway, hosp-k's home, rotates hosp-k's keys
// without hosp-k's current key. Its own gateway ledger refuses to write each of them; built by hand
// and submitted, each is refused by its node's store (ErrRefused) and by
// every node's CheckTx (CodeRefused), so no node gossips it or proposes
// it; nothing is appended. (That each is refused at FinalizeBlock too,
// identically on every node, should a Byzantine proposer put it in a
// block, is TestRegistryRefusedByEveryNode, on the application.)
func TestMemberMisbehaviourRefusedByEveryNode(t *testing.T) {
	net := comettest.NewNetwork(t, 4, gateways)
	ctx := t.Context()
	a, b := net.Ledger(0), net.Ledger(1)
	issuerKey := comet.RandomKey32(t)
	for _, step := range []struct {
		l *ledger.Node
		e ledger.Entry
	}{
		{a, comet.OrgEntry(t, "hosp-a")},
		{a, comet.IssuerEntry(t, "hosp-a", issuerKey, "")},
		{b, comet.OrgEntry(t, "hosp-b")},
	} {
		if _, err := step.l.Append(ctx, step.e); err != nil {
			t.Fatalf("setup %s: %v", step.e.Type, err)
		}
	}
	issuerID, err := ledger.IssuerKeyID(fmt.Sprintf("%x", issuerKey))
	if err != nil {
		t.Fatal(err)
	}
	// hosp-k, homed at hospital-1, rotates its keys once, signed by its
	// key k1.
	k1, set1 := ledgertest.OrgKey("k1")
	_, set2 := ledgertest.OrgKey("k2")
	other, _ := ledgertest.OrgKey("other")
	regK, err := a.Append(ctx, ledgertest.KeyedOrgEntry("hosp-k", set1))
	if err != nil {
		t.Fatal(err)
	}
	rotation := ledgertest.RotationEntry("hosp-k", set2, regK, k1)
	if _, err := a.Append(ctx, rotation); err != nil {
		t.Fatalf("hosp-k's signed rotation: %v", err)
	}
	sts := waitAgree(t, net, base4+5)
	size := sts[0].Size

	gwA := comet.GatewayOfHome(t, net.Node(0).Home)
	gwB := comet.GatewayOfHome(t, net.Node(1).Home)
	keys := b.Authority().SealKeys() // every registered gateway's
	if len(keys) != 4 {
		t.Fatalf("%d sealing keys registered, want 4", len(keys))
	}
	record := func(i int) ledger.Entry {
		e, err := ledger.NewEntry("hosp-a", &ledger.RecordRegistered{
			RecordID: fmt.Sprintf("rec-forged-%d", i), Holder: "hosp-a", Patient: testPseudonym,
			Category: "labs", Commitment: fmt.Sprintf("%064d", i),
		})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	cases := []struct {
		name  string
		home  bool            // by hospital-1 (hosp-k's home), not hospital-2
		entry ledger.Entry    // what hospital-2's gateway is asked to write (nil: none)
		env   ledger.Envelope // the same, built by hand, authored by hospital-2
		tx    []byte          // a transaction by hospital-2 whose header author is another gateway
	}{
		{name: "an entry for an org whose home is another gateway", entry: record(1),
			env: comet.SealedEnvelope(t, gwB, "hosp-a", comet.RecordBody(t, "hosp-a", "rec-forged-1"), keys...)},
		{name: "re-registering another gateway's org", entry: comet.OrgEntry(t, "hosp-a"),
			env: comet.RegistryEnvelope(t, gwB, comet.OrgEntry(t, "hosp-a"))},
		{name: "an issuer key ID of another issuer", entry: comet.IssuerEntry(t, "hosp-b", issuerKey, ""),
			env: comet.RegistryEnvelope(t, gwB, comet.IssuerEntry(t, "hosp-b", issuerKey, ""))},
		{name: "an issuer key ID that is not its key's", entry: comet.IssuerEntry(t, "hosp-b", comet.RandomKey32(t), issuerID),
			env: comet.RegistryEnvelope(t, gwB, comet.IssuerEntry(t, "hosp-b", comet.RandomKey32(t), issuerID))},
		{name: "a key rotation by the org's home gateway without the org's signature", home: true,
			entry: ledgertest.RotationEntry("hosp-k", set1, regK+1, nil),
			env:   comet.RegistryEnvelope(t, gwA, ledgertest.RotationEntry("hosp-k", set1, regK+1, nil))},
		{name: "a key rotation signed by another org's key", home: true,
			entry: ledgertest.RotationEntry("hosp-k", set1, regK+1, other),
			env:   comet.RegistryEnvelope(t, gwA, ledgertest.RotationEntry("hosp-k", set1, regK+1, other))},
		{name: "a replayed key rotation", home: true, entry: rotation,
			env: comet.RegistryEnvelope(t, gwA, rotation)},
		{name: "a transaction whose header author is another gateway",
			tx: comet.RawTx(t, comettest.ChainID, gwB.ID, gwB.Key, comet.ConsentEnvelope(t, gwA, "c-of-a", keys...))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			by, l, gw := 1, b, gwB
			if tc.home {
				by, l, gw = 0, a, gwA
			}
			if tc.entry.Body != nil {
				if _, err := l.Append(ctx, tc.entry); !errors.Is(err, ledger.ErrAuthorship) {
					t.Errorf("hospital-%d's gateway wrote it: %v", by+1, err)
				}
			}
			tx := tc.tx
			if tx == nil {
				if _, err := net.Log(by).AppendEnvelope(ctx, tc.env); !errors.Is(err, comet.ErrRefused) {
					t.Errorf("hospital-%d's node accepted it: %v, want ErrRefused", by+1, err)
				}
				var err error
				if tx, _, err = comet.SignTx(comettest.ChainID, gw.ID, gw.Key, tc.env); err != nil {
					t.Fatal(err)
				}
			}
			for i, l := range net.Logs() {
				code, log, err := l.CheckRaw(ctx, tx)
				if err != nil {
					t.Fatal(err)
				}
				if code != comet.CodeRefused {
					t.Errorf("node %d: CheckTx code %d (%s), want CodeRefused", i, code, log)
				} else if i == 0 {
					t.Logf("refused: %s", log)
				}
			}
		})
	}
	// Nothing was appended: one more genuine entry lands right after the
	// setup at every node.
	idx, err := b.Append(ctx, comet.OrgEntry(t, "hosp-b2"))
	if err != nil {
		t.Fatal(err)
	}
	if idx != size {
		t.Errorf("next entry at %d, want %d (something refused was appended)", idx, size)
	}
	checkAgree(t, waitAgree(t, net, size+1))
}
