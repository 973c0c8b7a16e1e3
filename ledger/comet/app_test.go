package comet

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/healthgw/healthgw/ledger"
)

const testChain = "healthgw-test"

// testGateways returns n gateway keys and the genesis app_state naming
// them gw-0 … gw-(n-1).
func testGateways(t testing.TB, n int) ([]ed25519.PrivateKey, []byte) {
	t.Helper()
	var g GenesisState
	keys := make([]ed25519.PrivateKey, n)
	for i := range keys {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = priv
		g.Gateways = append(g.Gateways, Gateway{ID: fmt.Sprintf("gw-%d", i), PublicKey: pub})
	}
	raw, err := g.MarshalAppState()
	if err != nil {
		t.Fatal(err)
	}
	return keys, raw
}

// testGW returns test gateway gw-i.
func testGW(t testing.TB, i int, key ed25519.PrivateKey) TestGateway {
	return NewTestGateway(t, fmt.Sprintf("gw-%d", i), key)
}

// testEnvelope returns a distinct consent.granted envelope authored by
// gw-i (any genesis gateway may write consents).
func testEnvelope(t testing.TB, gw int, key ed25519.PrivateKey, i int) ledger.Envelope {
	t.Helper()
	return ConsentEnvelope(t, testGW(t, gw, key), fmt.Sprintf("c-%d", i))
}

// signTestTx signs a transaction of gw-i carrying env (authored by gw-i).
func signTestTx(t testing.TB, gw int, key ed25519.PrivateKey, env ledger.Envelope) ([]byte, TxID) {
	t.Helper()
	tx, id, err := SignTx(testChain, fmt.Sprintf("gw-%d", gw), key, env)
	if err != nil {
		t.Fatal(err)
	}
	return tx, id
}

// testTx signs a transaction of gw-i carrying a fresh consent envelope.
func testTx(t testing.TB, gw int, key ed25519.PrivateKey, i int) ([]byte, TxID) {
	t.Helper()
	return signTestTx(t, gw, key, testEnvelope(t, gw, key, i))
}

func newTestApp(t testing.TB, db dbm.DB, appState []byte) *App {
	t.Helper()
	a, err := NewApp(db, AppOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if appState != nil {
		if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: appState}); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// runBlock drives FinalizeBlock and Commit and returns the app hash and tx
// results.
func runBlock(t testing.TB, a *App, height int64, at time.Time, txs [][]byte) ([]byte, []*abci.ExecTxResult) {
	t.Helper()
	ctx := context.Background()
	res, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: height, Time: at, Txs: txs})
	if err != nil {
		t.Fatalf("FinalizeBlock(%d): %v", height, err)
	}
	if _, err := a.Commit(ctx, &abci.RequestCommit{}); err != nil {
		t.Fatalf("Commit(%d): %v", height, err)
	}
	return res.AppHash, res.TxResults
}

// referenceRoot computes the RFC 6962 root of leaves with
// transparency-dev/merkle, independently of tlog.
func referenceRoot(t testing.TB, leaves [][]byte) []byte {
	t.Helper()
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(l), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaves) == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	return root
}

// TestDeterminism applies the same blocks to two fresh applications and
// checks that they report identical application hashes at every height,
// equal to an independently computed RFC 6962 root of the leaves the
// applications stored.
func TestDeterminism(t *testing.T) {
	keys, appState := testGateways(t, 3)
	a := newTestApp(t, dbm.NewMemDB(), appState)
	b := newTestApp(t, dbm.NewMemDB(), appState)

	start := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	var blocks [][][]byte
	var replay []byte
	n := 0
	for h := range 40 {
		var txs [][]byte
		for range h % 7 { // blocks of 0 to 6 transactions, some empty
			tx, _ := testTx(t, n%3, keys[n%3], n)
			txs = append(txs, tx)
			n++
		}
		if h == 5 {
			replay = txs[0]
		}
		if h == 9 { // a replay of a committed transaction, and garbage
			txs = append(txs, replay, []byte("not a tx"))
		}
		blocks = append(blocks, txs)
	}

	var leaves [][]byte
	for i, txs := range blocks {
		height := int64(i + 1)
		at := start.Add(time.Duration(i) * 1500 * time.Millisecond)
		hashA, resA := runBlock(t, a, height, at, txs)
		hashB, resB := runBlock(t, b, height, at, txs)
		if !bytes.Equal(hashA, hashB) {
			t.Fatalf("height %d: app hashes differ: %x vs %x", height, hashA, hashB)
		}
		if diff := cmp.Diff(resA, resB, cmp.Comparer(func(x, y *abci.ExecTxResult) bool {
			return x.Code == y.Code && bytes.Equal(x.Data, y.Data)
		})); diff != "" {
			t.Fatalf("height %d: results differ (-a +b):\n%s", height, diff)
		}
		st := a.Committed()
		if st.Height != height {
			t.Fatalf("height %d: committed height %d", height, st.Height)
		}
		got, err := a.store.entries(uint64(len(leaves)), st.Size)
		if err != nil {
			t.Fatal(err)
		}
		envs, err := a.store.envelopes(uint64(len(leaves)), st.Size)
		if err != nil {
			t.Fatal(err)
		}
		for k, raw := range got {
			l, err := ledger.DecodeLeaf(raw)
			if err != nil {
				t.Fatalf("stored leaf does not decode: %v", err)
			}
			if want, err := ledger.NewLeafFor(envs[k].Header, at); err != nil || !bytes.Equal(raw, want) {
				t.Errorf("height %d: leaf %s, want ledger.NewLeafFor's %s (%v)", height, raw, want, err)
			}
			if !l.Time.Equal(at) {
				t.Errorf("height %d: entry time %v, want block time %v", height, l.Time, at)
			}
		}
		leaves = append(leaves, got...)
		if want := referenceRoot(t, leaves); !bytes.Equal(hashA, want) {
			t.Fatalf("height %d: app hash %x, want RFC 6962 root %x", height, hashA, want)
		}
	}
	if got, want := len(leaves), n; got != want {
		t.Errorf("log size %d, want %d (the replay and the garbage must not be appended)", got, want)
	}
}

func TestFinalizeBlockResults(t *testing.T) {
	keys, appState := testGateways(t, 2)
	a := newTestApp(t, dbm.NewMemDB(), appState)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

	tx0, id0 := testTx(t, 0, keys[0], 0)
	tx1, _ := testTx(t, 1, keys[1], 1)
	_, res := runBlock(t, a, 1, at, [][]byte{tx0, tx1, tx0})
	codes := func(res []*abci.ExecTxResult) []uint32 {
		var c []uint32
		for _, r := range res {
			c = append(c, r.Code)
		}
		return c
	}
	if diff := cmp.Diff([]uint32{CodeOK, CodeOK, CodeDuplicate}, codes(res)); diff != "" {
		t.Errorf("block 1 codes (-want +got):\n%s", diff)
	}
	_, res = runBlock(t, a, 2, at.Add(time.Second), [][]byte{tx0})
	if diff := cmp.Diff([]uint32{CodeDuplicate}, codes(res)); diff != "" {
		t.Errorf("block 2 codes (-want +got):\n%s", diff)
	}
	idx, ok, err := a.store.txIndex(id0)
	if err != nil || !ok || idx != 0 {
		t.Errorf("txIndex(tx0) = %d, %v, %v; want 0, true, nil", idx, ok, err)
	}
	if _, err := a.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: 5, Time: at}); err == nil {
		t.Error("FinalizeBlock skipping heights succeeded")
	}
}

// TestRestart checks that a reopened application reports the last
// committed height and hash, and that a block finalized but not committed
// before the restart leaves no trace.
func TestRestart(t *testing.T) {
	keys, appState := testGateways(t, 1)
	dir := t.TempDir()
	db, err := dbm.NewGoLevelDB("app", dir)
	if err != nil {
		t.Fatal(err)
	}
	a := newTestApp(t, db, appState)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var hash []byte
	var blocks [][]byte
	for h := int64(1); h <= 3; h++ {
		tx, _ := testTx(t, 0, keys[0], int(h))
		blocks = append(blocks, tx)
		hash, _ = runBlock(t, a, h, at, [][]byte{tx})
	}
	// Block 4 is finalized, never committed: a crash before Commit.
	tx, _ := testTx(t, 0, keys[0], 4)
	if _, err := a.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: 4, Time: at, Txs: [][]byte{tx}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = dbm.NewGoLevelDB("app", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := newTestApp(t, db, nil)
	info, err := b.Info(context.Background(), &abci.RequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if info.LastBlockHeight != 3 || !bytes.Equal(info.LastBlockAppHash, hash) {
		t.Errorf("Info = height %d hash %x; want 3, %x", info.LastBlockHeight, info.LastBlockAppHash, hash)
	}
	if got := b.Committed().Size; got != 3 {
		t.Errorf("size after restart = %d, want 3", got)
	}
	// Replaying block 4 gives the same hash as on a node that never
	// stopped, and the gateway set survived the restart.
	replayed, res := runBlock(t, b, 4, at, [][]byte{tx})
	if res[0].Code != CodeOK {
		t.Fatalf("replayed tx code %d: %s", res[0].Code, res[0].Log)
	}
	ref := newTestApp(t, dbm.NewMemDB(), appState)
	var want []byte
	for h, tx := range append(blocks, tx) {
		want, _ = runBlock(t, ref, int64(h+1), at, [][]byte{tx})
	}
	if !bytes.Equal(replayed, want) {
		t.Errorf("app hash after restart and replay %x, want %x (as without restart)", replayed, want)
	}
	if st := b.Committed(); st.Height != 4 || st.Size != 4 || !bytes.Equal(st.Root[:], replayed) {
		t.Errorf("after replay: %+v, app hash %x", st, replayed)
	}
}

func TestCheckTx(t *testing.T) {
	keys, appState := testGateways(t, 2)
	a := newTestApp(t, dbm.NewMemDB(), appState)
	committed, _ := testTx(t, 0, keys[0], 0)
	runBlock(t, a, 1, time.Now(), [][]byte{committed})

	env := testEnvelope(t, 0, keys[0], 1)
	good, _ := signTestTx(t, 0, keys[0], env)
	wrongChain, _, err := SignTx("other-chain", "gw-0", keys[0], env)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, _ := signTestTx(t, 0, keys[1], env)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	strangerEnv := ConsentEnvelope(t, NewTestGateway(t, "gw-9", otherKey), "c-9")
	unknown, _, err := SignTx(testChain, "gw-9", otherKey, strangerEnv)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(good, []byte(`"v":2`), []byte(`"v":3`), 1)
	spaced := append([]byte(" "), good...)
	// gw-1 submits gw-0's genuine envelope as its own transaction.
	otherAuthor := RawTx(t, testChain, "gw-1", keys[1], env)
	// A header signed by another key than its author's (the transaction
	// signature is the author's).
	forgedHeader := env
	{
		fake := NewTestGateway(t, "gw-0", otherKey)
		forgedHeader = ConsentEnvelope(t, fake, "c-forged")
	}
	forged, _ := signTestTx(t, 0, keys[0], forgedHeader)
	// A registry entry sealed instead of in clear.
	sealedOrg := SealedEnvelope(t, testGW(t, 0, keys[0]), "hosp-a", func(ledger.Salt) any {
		return &ledger.OrgRegisteredV2{ID: "hosp-a", Name: "A", Kind: "hospital", JWKSURL: "https://a.example/jwks.json",
			Home: ledger.GatewayHome{Gateway: "gw-0", BaseURL: "http://gw-0.test"}}
	})
	sealedOrgTx := RawTx(t, testChain, "gw-0", keys[0], sealedOrg)
	// A record for an org nobody registered.
	record := SealedEnvelope(t, testGW(t, 0, keys[0]), "hosp-a", RecordBody(t, "hosp-a", "rec-1"))
	unregistered, _ := signTestTx(t, 0, keys[0], record)

	tests := []struct {
		name string
		tx   []byte
		want uint32
	}{
		{"valid", good, CodeOK},
		{"committed", committed, CodeDuplicate},
		{"other chain", wrongChain, CodeBadSignature},
		{"wrong key", wrongKey, CodeBadSignature},
		{"unknown gateway", unknown, CodeUnknownGateway},
		{"tampered", tampered, CodeBadTx},
		{"non-canonical", spaced, CodeBadTx},
		{"author is not the submitter", otherAuthor, CodeRefused},
		{"header not signed by its author", forged, CodeRefused},
		{"registry entry sealed", sealedOrgTx, CodeBadTx},
		{"record of an unregistered org", unregistered, CodeRefused},
		{"empty", nil, CodeBadTx},
		{"garbage", []byte("{}"), CodeBadTx},
		{"too large", make([]byte, MaxTxSize+1), CodeBadTx},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := a.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: tt.tx})
			if err != nil {
				t.Fatal(err)
			}
			if res.Code != tt.want {
				t.Errorf("code = %d (%s), want %d", res.Code, res.Log, tt.want)
			}
		})
	}

	// A recheck only drops what is committed: the registry's rules are
	// FinalizeBlock's, at the entry's own index.
	for _, tc := range []struct {
		name string
		tx   []byte
		want uint32
	}{{"committed", committed, CodeDuplicate}, {"refused later", unregistered, CodeOK}} {
		res, err := a.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: tc.tx, Type: abci.CheckTxType_Recheck})
		if err != nil || res.Code != tc.want {
			t.Errorf("recheck %s = %v, %v; want code %d", tc.name, res, err, tc.want)
		}
	}

	fresh := newTestApp(t, dbm.NewMemDB(), nil)
	res, err := fresh.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: good})
	if err != nil || res.Code != CodeNotReady {
		t.Errorf("CheckTx before InitChain = %v, %v; want code %d", res, err, CodeNotReady)
	}
}

func TestProcessProposal(t *testing.T) {
	keys, appState := testGateways(t, 2)
	a := newTestApp(t, dbm.NewMemDB(), appState)
	good, _ := testTx(t, 0, keys[0], 0)
	env := testEnvelope(t, 0, keys[0], 1)
	otherAuthor := RawTx(t, testChain, "gw-1", keys[1], env)
	record := SealedEnvelope(t, testGW(t, 1, keys[1]), "hosp-a", RecordBody(t, "hosp-a", "rec-1"))
	refused, _ := signTestTx(t, 1, keys[1], record)
	tests := []struct {
		name string
		txs  [][]byte
		want abci.ResponseProcessProposal_ProposalStatus
	}{
		{"empty", nil, abci.ResponseProcessProposal_ACCEPT},
		{"valid", [][]byte{good}, abci.ResponseProcessProposal_ACCEPT},
		{"duplicate left to finalize", [][]byte{good, good}, abci.ResponseProcessProposal_ACCEPT},
		{"registry refusal left to finalize", [][]byte{good, refused}, abci.ResponseProcessProposal_ACCEPT},
		{"garbage", [][]byte{good, []byte("x")}, abci.ResponseProcessProposal_REJECT},
		{"author is not the submitter", [][]byte{good, otherAuthor}, abci.ResponseProcessProposal_REJECT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := a.ProcessProposal(context.Background(), &abci.RequestProcessProposal{Height: 1, Txs: tt.txs})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.want {
				t.Errorf("status = %v, want %v", res.Status, tt.want)
			}
		})
	}
}

func TestPrepareProposal(t *testing.T) {
	keys, appState := testGateways(t, 1)
	a := newTestApp(t, dbm.NewMemDB(), appState)
	tx0, _ := testTx(t, 0, keys[0], 0)
	tx1, _ := testTx(t, 0, keys[0], 1)
	tx2, _ := testTx(t, 0, keys[0], 2)
	res, err := a.PrepareProposal(context.Background(), &abci.RequestPrepareProposal{
		MaxTxBytes: int64(len(tx0) + len(tx1)),
		Txs:        [][]byte{tx0, []byte("junk"), tx0, tx1, tx2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]byte{tx0, tx1}, res.Txs); diff != "" {
		t.Errorf("txs (-want +got):\n%s", diff)
	}
}

func TestInitChainRejectsBadGenesis(t *testing.T) {
	tests := []struct {
		name  string
		state string
	}{
		{"empty", ``},
		{"no gateways", `{"gateways":[]}`},
		{"short key", `{"gateways":[{"id":"a","public_key":"AAAA"}]}`},
		{"bad id", `{"gateways":[{"id":"A B","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`},
		{"unknown field", `{"gateways":[],"x":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestApp(t, dbm.NewMemDB(), nil)
			_, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: []byte(tt.state)})
			if !errors.Is(err, ErrBadGenesis) {
				t.Errorf("InitChain error = %v, want ErrBadGenesis", err)
			}
		})
	}
}

func TestRetainHeight(t *testing.T) {
	_, appState := testGateways(t, 1)
	a, err := NewApp(dbm.NewMemDB(), AppOptions{RetainBlocks: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: appState}); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for h := int64(1); h <= 5; h++ {
		if _, err := a.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: h, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
		res, err := a.Commit(context.Background(), &abci.RequestCommit{})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res.RetainHeight)
	}
	if diff := cmp.Diff([]int64{0, 0, 0, 2, 3}, got); diff != "" {
		t.Errorf("retain heights (-want +got):\n%s", diff)
	}
}

func TestQuery(t *testing.T) {
	keys, appState := testGateways(t, 1)
	a := newTestApp(t, dbm.NewMemDB(), appState)
	tx, id := testTx(t, 0, keys[0], 0)
	_, pending := testTx(t, 0, keys[0], 1)
	hash, _ := runBlock(t, a, 1, time.Now(), [][]byte{tx})

	query := func(path string) *abci.ResponseQuery {
		t.Helper()
		res, err := a.Query(context.Background(), &abci.RequestQuery{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := query("/state")
	var st struct {
		Height int64  `json:"height"`
		Size   uint64 `json:"size"`
		Root   []byte `json:"root"`
	}
	if err := json.Unmarshal(res.Value, &st); err != nil {
		t.Fatal(err)
	}
	if st.Height != 1 || st.Size != 1 || !bytes.Equal(st.Root, hash) {
		t.Errorf("/state = %+v, want height 1 size 1 root %x", st, hash)
	}
	if res := query(txQueryPath(id)); res.Code != CodeOK || !bytes.Equal(res.Value, make([]byte, 8)) {
		t.Errorf("/tx/<committed> = code %d value %x, want index 0", res.Code, res.Value)
	}
	if res := query(txQueryPath(pending)); res.Code != CodeNotFound {
		t.Errorf("/tx/<not committed> = code %d, want CodeNotFound", res.Code)
	}
	if res := query("/tx/zz"); res.Code == CodeOK {
		t.Error("/tx/<malformed> answered OK")
	}
	if res := query("/nope"); res.Code == CodeOK {
		t.Error("unknown path answered OK")
	}
	if res := query("/p2p/filter/id/abcd"); res.Code != CodeOK {
		t.Errorf("peer filter while running: code %d", res.Code)
	}
	a.closing.Store(true)
	if res := query("/p2p/filter/addr/127.0.0.1:1"); res.Code == CodeOK {
		t.Error("peer filter admits peers while the node stops")
	}
}

// TestLargestTransactionsFit: a sealed entry whose statement is as large
// as the format allows, sealed to the most recipients, and a registry
// entry with the largest clear opening, fit in MaxTxSize (which the
// mempool is configured to take) and are admitted.
func TestLargestTransactionsFit(t *testing.T) {
	keys, appState := testGateways(t, 1)
	a := newTestApp(t, dbm.NewMemDB(), appState)
	gw := testGW(t, 0, keys[0])
	var to []*ecdh.PublicKey
	for range ledger.MaxRecipients {
		k, err := ledger.NewSealKey()
		if err != nil {
			t.Fatal(err)
		}
		to = append(to, k.PublicKey())
	}
	// A consent naming as many 256-byte record IDs as a statement holds.
	var ids []string
	body := func(n int) func(ledger.Salt) any {
		return func(salt ledger.Salt) any {
			b := ConsentBody(t, "c-large")(salt).(*ledger.ConsentGrantedV2)
			b.RecordIDs = ids[:n]
			return b
		}
	}
	for i := 0; ; i++ {
		ids = append(ids, fmt.Sprintf("%0256d", i))
		st, err := gw.Signer.Statement(ledger.OrgPatient, ledger.Salt{1}, body(len(ids))(ledger.Salt{1}))
		if err != nil || len(st) > ledger.MaxStatementSize {
			ids = ids[:len(ids)-1]
			break
		}
	}
	sealed := SealedEnvelope(t, gw, ledger.OrgPatient, body(len(ids)), to...)
	// An org registration whose JWKS fills the statement.
	org := func(pad int) ledger.Entry {
		e := OrgEntry(t, "hosp-big")
		b := e.Body.(*ledger.OrgRegistered)
		b.JWKSURL, b.JWKS = "", `{"keys":[],"pad":"`+strings.Repeat("x", pad)+`"}`
		return e
	}
	home := ledger.GatewayHome{Gateway: gw.ID, BaseURL: "http://gw-0.test"}
	pad := ledger.MaxStatementSize - 1024
	for {
		if _, err := ledger.ClearEnvelope(gw.Signer, org(pad+16), home); err != nil {
			break
		}
		pad += 16
	}
	clear := RegistryEnvelope(t, gw, org(pad))
	for name, env := range map[string]ledger.Envelope{"sealed": sealed, "clear": clear} {
		tx, _ := signTestTx(t, 0, keys[0], env)
		t.Logf("largest %s transaction: %d bytes (MaxTxSize %d)", name, len(tx), MaxTxSize)
		if len(tx) > MaxTxSize {
			t.Errorf("%s: %d bytes, over MaxTxSize %d", name, len(tx), MaxTxSize)
		}
		res, err := a.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: tx})
		if err != nil || res.Code != CodeOK {
			t.Errorf("%s: CheckTx = %v, %v", name, res, err)
		}
	}
}
