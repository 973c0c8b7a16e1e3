package comet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/ledger"
)

// misbehaviour is one transaction a consortium member may submit (or a
// Byzantine proposer put in a block) that the registry must refuse.
type misbehaviour struct {
	name string
	tx   []byte
	// want is the code FinalizeBlock and CheckTx answer.
	want uint32
}

// registryFixture: gw-0 is the home of hosp-a and registered its issuer
// key; gw-1 is the home of hosp-b. It returns the transactions of that
// setup and the misbehaviour of gw-1 that every node must refuse.
func registryFixture(t *testing.T, keys []ed25519.PrivateKey) (setup [][]byte, bad []misbehaviour) {
	t.Helper()
	a, b := testGW(t, 0, keys[0]), testGW(t, 1, keys[1])
	sign := func(gw TestGateway, env ledger.Envelope) []byte {
		t.Helper()
		tx, _, err := SignTx(testChain, gw.ID, gw.Key, env)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	issuerKey := RandomKey32(t)
	setup = [][]byte{
		sign(a, RegistryEnvelope(t, a, OrgEntry(t, "hosp-a"))),
		sign(b, RegistryEnvelope(t, b, OrgEntry(t, "hosp-b"))),
		sign(a, RegistryEnvelope(t, a, IssuerEntry(t, "hosp-a", issuerKey, ""))),
	}
	issuerID, err := ledger.IssuerKeyID(fmt.Sprintf("%x", issuerKey))
	if err != nil {
		t.Fatal(err)
	}
	// A genuine entry of gw-0's, not submitted by gw-0.
	aConsent := ConsentEnvelope(t, a, "c-of-a")
	bad = []misbehaviour{
		{"entry for an org of another gateway", sign(b, SealedEnvelope(t, b, "hosp-a", RecordBody(t, "hosp-a", "rec-forged"))), CodeRefused},
		{"access decision for an org of another gateway", sign(b, SealedEnvelope(t, b, "hosp-a", func(ledger.Salt) any {
			return &ledger.AccessDecidedV2{Requester: "hosp-b", RecordID: "rec-1", Purpose: "TREAT", Decision: "deny",
				Reason: ledger.ReasonNotFound, RequestID: "req-1"}
		})), CodeRefused},
		{"re-registering another gateway's org", sign(b, RegistryEnvelope(t, b, OrgEntry(t, "hosp-a"))), CodeRefused},
		{"re-registering its own org", sign(b, RegistryEnvelope(t, b, OrgEntry(t, "hosp-b"))), CodeRefused},
		{"issuer key ID of another issuer", sign(b, RegistryEnvelope(t, b, IssuerEntry(t, "hosp-b", issuerKey, ""))), CodeRefused},
		{"issuer key ID that is not its key's", sign(b, RegistryEnvelope(t, b, IssuerEntry(t, "hosp-b", RandomKey32(t), issuerID))), CodeRefused},
		{"issuer for an org of another gateway", sign(b, RegistryEnvelope(t, b, IssuerEntry(t, "hosp-a", RandomKey32(t), ""))), CodeRefused},
		{"header author is not the submitting gateway", RawTx(t, testChain, b.ID, b.Key, aConsent), CodeRefused},
	}
	return setup, bad
}

// TestRegistryRefusedByEveryNode: what a member may not do is refused by
// every node alike, both when it is submitted (CheckTx: the member's own
// node and any node it gossips to) and when a Byzantine proposer puts it
// in a block (FinalizeBlock: it appends nothing, and every node computes
// the same application hash; the registry is rebuilt the same at
// restart).
func TestRegistryRefusedByEveryNode(t *testing.T) {
	keys, appState := testGateways(t, 4)
	const nodes = 4
	dbs := make([]dbm.DB, nodes)
	apps := make([]*App, nodes)
	for i := range apps {
		dbs[i] = dbm.NewMemDB()
		apps[i] = newTestApp(t, dbs[i], appState)
	}
	setup, bad := registryFixture(t, keys)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i, a := range apps {
		_, res := runBlock(t, a, 1, at, setup)
		for j, r := range res {
			if r.Code != CodeOK {
				t.Fatalf("node %d: setup tx %d: code %d %s", i, j, r.Code, r.Log)
			}
		}
	}

	// Submitted: refused at once by every node's CheckTx.
	for _, m := range bad {
		for i, a := range apps {
			res, err := a.CheckTx(t.Context(), &abci.RequestCheckTx{Tx: m.tx})
			if err != nil {
				t.Fatal(err)
			}
			if res.Code != m.want {
				t.Errorf("%s: node %d CheckTx code %d (%s), want %d", m.name, i, res.Code, res.Log, m.want)
			}
		}
	}

	// In a block: every node refuses each, appends only the valid entry,
	// and agrees on the hash. (ProcessProposal rejects a block holding a
	// transaction whose author is not its submitter; FinalizeBlock must
	// refuse it all the same, should such a block be decided.)
	good, _ := testTx(t, 1, keys[1], 100)
	block := [][]byte{good}
	for _, m := range bad {
		block = append(block, m.tx)
	}
	var hashes [][]byte
	for i, a := range apps {
		hash, res := runBlock(t, a, 2, at.Add(time.Second), block)
		hashes = append(hashes, hash)
		if res[0].Code != CodeOK {
			t.Fatalf("node %d: the valid entry: code %d %s", i, res[0].Code, res[0].Log)
		}
		for j, m := range bad {
			r := res[j+1]
			if i == 0 {
				t.Logf("%s: code %d: %s", m.name, r.Code, r.Log)
			}
			if r.Code != m.want {
				t.Errorf("%s: node %d FinalizeBlock code %d (%s), want %d", m.name, i, r.Code, r.Log, m.want)
			}
			if len(r.Data) != 0 {
				t.Errorf("%s: node %d appended it (data %x)", m.name, i, r.Data)
			}
		}
		if got := a.Committed().Size; got != uint64(len(setup))+1 {
			t.Errorf("node %d: log size %d, want %d", i, got, len(setup)+1)
		}
		if !bytes.Equal(hashes[i], hashes[0]) {
			t.Errorf("node %d app hash %x, node 0 %x", i, hashes[i], hashes[0])
		}
	}
	// The registry's refusals are reported to the appenders waiting on
	// the node, by transaction ID (the last one never gets as far as the
	// registry: ParseTx refuses it).
	for _, m := range bad[:len(bad)-1] {
		if reason, ok := apps[0].refusal(sha256.Sum256(m.tx)); !ok || reason == "" {
			t.Errorf("%s: no refusal reported", m.name)
		}
	}

	// Restarted, every node rebuilds the same registry from its log and
	// refuses the same.
	for i := range apps {
		b, err := NewApp(dbs[i], AppOptions{})
		if err != nil {
			t.Fatalf("restart node %d: %v", i, err)
		}
		if got, want := b.auth, apps[i].auth; !cmp.Equal(got.Gateways(), want.Gateways()) || got.Next() != want.Next() {
			t.Errorf("node %d: rebuilt registry at %d with %v, live one at %d with %v", i, got.Next(), got.Gateways(), want.Next(), want.Gateways())
		}
		for _, org := range []string{"hosp-a", "hosp-b"} {
			h1, _ := b.auth.Home(org)
			h2, _ := apps[i].auth.Home(org)
			if h1 != h2 || h1 == "" {
				t.Errorf("node %d: home of %s after restart %q, before %q", i, org, h1, h2)
			}
		}
		for _, m := range bad {
			res, err := b.CheckTx(t.Context(), &abci.RequestCheckTx{Tx: m.tx})
			if err != nil {
				t.Fatal(err)
			}
			if res.Code != m.want {
				t.Errorf("%s: node %d after restart: CheckTx code %d (%s), want %d", m.name, i, res.Code, res.Log, m.want)
			}
		}
	}
}

// TestCompetingRegistrations: two gateways register the same org in one
// block (both pass CheckTx against the committed state): the first in
// the block wins at every node, the second is refused and reported.
func TestCompetingRegistrations(t *testing.T) {
	keys, appState := testGateways(t, 2)
	a, b := testGW(t, 0, keys[0]), testGW(t, 1, keys[1])
	txA, _, err := SignTx(testChain, a.ID, a.Key, RegistryEnvelope(t, a, OrgEntry(t, "hosp-x")))
	if err != nil {
		t.Fatal(err)
	}
	txB, idB, err := SignTx(testChain, b.ID, b.Key, RegistryEnvelope(t, b, OrgEntry(t, "hosp-x")))
	if err != nil {
		t.Fatal(err)
	}
	app := newTestApp(t, dbm.NewMemDB(), appState)
	for _, tx := range [][]byte{txA, txB} {
		if res, _ := app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: tx}); res.Code != CodeOK {
			t.Fatalf("CheckTx: %d %s", res.Code, res.Log)
		}
	}
	prep, err := app.PrepareProposal(context.Background(), &abci.RequestPrepareProposal{MaxTxBytes: 1 << 20, Txs: [][]byte{txB, txA}})
	if err != nil || len(prep.Txs) != 2 {
		t.Fatalf("PrepareProposal kept %d of 2: %v", len(prep.Txs), err)
	}
	_, res := runBlock(t, app, 1, time.Now(), prep.Txs)
	if res[0].Code != CodeOK || res[1].Code != CodeRefused {
		t.Fatalf("codes %d, %d; want OK then refused", res[0].Code, res[1].Code)
	}
	if home, _ := app.auth.Home("hosp-x"); home != b.ID {
		t.Errorf("home of hosp-x = %q, want the first in the block, %q", home, b.ID)
	}
	if _, ok := app.refusal(idB); ok {
		t.Error("the admitted registration is reported refused")
	}
	if reason, ok := app.refusal(sha256.Sum256(txA)); !ok || !strings.Contains(reason, "already registered") {
		t.Errorf("refusal of the second registration = %q, %v", reason, ok)
	}
}
