package comet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/ledger"
)

func decodeWire(tx []byte) (wireTx, error) {
	var w wireTx
	err := json.Unmarshal(tx, &w)
	return w, err
}

func resultCodes(res []*abci.ExecTxResult) []uint32 {
	var c []uint32
	for _, r := range res {
		c = append(c, r.Code)
	}
	return c
}

// TestDuplicateEntryRefused checks that a second transaction carrying an
// entry already in the log (the same envelope under another nonce: a
// client repeating a write whose outcome was unknown) is refused with
// CodeDuplicateEntry, naming the first entry's index: in the same block,
// in a later block and in CheckTx, without changing the log.
func TestDuplicateEntryRefused(t *testing.T) {
	keys, appState := testGateways(t, 2)
	a := newTestApp(t, dbm.NewMemDB(), appState)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

	other, _ := testTx(t, 1, keys[1], 0)
	env := testEnvelope(t, 0, keys[0], 1)
	first, firstID := signTestTx(t, 0, keys[0], env)
	again, againID := signTestTx(t, 0, keys[0], env)
	third, _ := signTestTx(t, 0, keys[0], env)
	if firstID == againID {
		t.Fatal("two signings of one envelope have the same transaction ID")
	}

	// The same block: the first is appended (entry 1), the repeat refused.
	_, res := runBlock(t, a, 1, at, [][]byte{other, first, again})
	if diff := cmp.Diff([]uint32{CodeOK, CodeOK, CodeDuplicateEntry}, resultCodes(res)); diff != "" {
		t.Fatalf("block 1 codes (-want +got):\n%s", diff)
	}
	if !strings.Contains(res[2].Log, "already committed") || !strings.Contains(res[2].Log, "entry 1") {
		t.Errorf("refusal log %q does not say the entry is entry 1, already committed", res[2].Log)
	}
	st := a.Committed()
	if st.Size != 2 {
		t.Fatalf("size after block 1 = %d, want 2", st.Size)
	}

	// CheckTx refuses the repeat at once.
	ct, err := a.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: third, Type: abci.CheckTxType_New})
	if err != nil {
		t.Fatal(err)
	}
	if ct.Code != CodeDuplicateEntry || !strings.Contains(ct.Log, "entry 1") {
		t.Errorf("CheckTx(repeat) = %d %q, want CodeDuplicateEntry naming entry 1", ct.Code, ct.Log)
	}
	if !errors.Is(errOfCode(ct.Code), ErrDuplicate) || !errors.Is(errOfCode(ct.Code), ErrDuplicateEntry) {
		t.Errorf("errOfCode(%d) = %v, want ErrDuplicateEntry (an ErrDuplicate)", ct.Code, errOfCode(ct.Code))
	}

	// A later block (a proposer that had the repeat in its mempool):
	// refused deterministically, the log and its root unchanged.
	hash, res := runBlock(t, a, 2, at.Add(time.Second), [][]byte{third})
	if diff := cmp.Diff([]uint32{CodeDuplicateEntry}, resultCodes(res)); diff != "" {
		t.Errorf("block 2 codes (-want +got):\n%s", diff)
	}
	if got := a.Committed(); got.Size != 2 || !bytes.Equal(hash, st.Root[:]) {
		t.Errorf("after block 2: size %d, root %x; want 2, %x", got.Size, hash, st.Root[:])
	}
	// A new entry is still appended.
	fresh, _ := testTx(t, 0, keys[0], 2)
	_, res = runBlock(t, a, 3, at.Add(2*time.Second), [][]byte{fresh})
	if res[0].Code != CodeOK {
		t.Errorf("fresh entry after a refused repeat: code %d %s", res[0].Code, res[0].Log)
	}
}

// TestDuplicateEntryIndexPersisted checks that the entry index survives a
// restart, is rebuilt from the verified log when it is missing, and that
// a record no entry accounts for keeps the node from starting.
func TestDuplicateEntryIndexPersisted(t *testing.T) {
	keys, appState := testGateways(t, 1)
	dir := t.TempDir()
	open := func() dbm.DB {
		db, err := dbm.NewGoLevelDB("app", dir)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	a := newTestApp(t, db, appState)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	env := testEnvelope(t, 0, keys[0], 0)
	first, _ := signTestTx(t, 0, keys[0], env)
	runBlock(t, a, 1, at, [][]byte{first})
	for i := 1; i <= 3; i++ {
		tx, _ := testTx(t, 0, keys[0], i)
		runBlock(t, a, int64(i+1), at, [][]byte{tx})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	repeatRefused := func(name string, a *App, height int64) {
		t.Helper()
		again, _ := signTestTx(t, 0, keys[0], env)
		_, res := runBlock(t, a, height, at, [][]byte{again})
		if res[0].Code != CodeDuplicateEntry || !strings.Contains(res[0].Log, "entry 0") {
			t.Errorf("%s: repeat of entry 0: code %d %q, want CodeDuplicateEntry naming entry 0", name, res[0].Code, res[0].Log)
		}
	}

	db = open()
	repeatRefused("after a restart", newTestApp(t, db, nil), 5)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Without the index (as written before it existed): rebuilt at start.
	db = open()
	it, err := db.Iterator([]byte{sealPrefix}, []byte{sealPrefix + 1})
	if err != nil {
		t.Fatal(err)
	}
	var keysToDrop [][]byte
	for ; it.Valid(); it.Next() {
		keysToDrop = append(keysToDrop, bytes.Clone(it.Key()))
	}
	it.Close()
	if len(keysToDrop) != 4 {
		t.Fatalf("entry index holds %d records, want 4", len(keysToDrop))
	}
	for _, k := range keysToDrop {
		if err := db.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	repeatRefused("after rebuilding the index", newTestApp(t, db, nil), 6)

	// A record for an entry that is not in the log.
	if err := db.Set(sealKey(ledger.Digest{1}), []byte{0, 0, 0, 0, 0, 0, 0, 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewApp(db, AppOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("NewApp with a stray entry index record: %v, want ErrCorrupt", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSignedMessageOf checks that the signed message parseTx derives from
// a canonical transaction's bytes is the one SignTx signed.
func TestSignedMessageOf(t *testing.T) {
	keys, _ := testGateways(t, 1)
	for i, env := range []ledger.Envelope{testEnvelope(t, 0, keys[0], 0), testEnvelope(t, 0, keys[0], 1)} {
		tx, _ := signTestTx(t, 0, keys[0], env)
		w, err := decodeWire(tx)
		if err != nil {
			t.Fatal(err)
		}
		want, err := signedMessage(testChain, w)
		if err != nil {
			t.Fatal(err)
		}
		if got := signedMessageOf(testChain, tx); !bytes.Equal(got, want) {
			t.Errorf("tx %d: signedMessageOf =\n%s\nwant\n%s", i, got, want)
		}
	}
}
