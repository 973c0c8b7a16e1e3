package comet

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wireSamples returns canonical transactions: sealed and clear entries
// and hand-made wireTx encodings covering the optional members.
func wireSamples(t testing.TB) [][]byte {
	t.Helper()
	keys, _ := testGateways(t, 1)
	sealed, _ := testTx(t, 0, keys[0], 0)
	clear, _ := signTestTx(t, 0, keys[0], RegistryEnvelope(t, testGW(t, 0, keys[0]), OrgEntry(t, "hosp-a")))
	out := [][]byte{sealed, clear}
	for _, w := range []wireTx{
		{Version: 2, Gateway: "gw-0", Nonce: "00", Header: []byte("h")},
		{Version: 7, Gateway: "gw-0", Nonce: "zz", Header: []byte("hh"), Sealed: []byte("s"), Clear: []byte("c"), Sig: []byte("sig")},
		{Version: 2, Gateway: "a<b", Nonce: "00", Header: []byte("h")},
		{Version: 2, Gateway: "gw", Nonce: "00", Header: []byte{}},
		{Version: -1, Gateway: "gw", Nonce: "00", Header: nil},
	} {
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestWireFastAgrees checks that the fast transaction decoder accepts
// only what the encoding/json path accepts, with the same values, and
// that it accepts the transactions SignTx writes; and that encodeWire
// writes json.Marshal's bytes.
func TestWireFastAgrees(t *testing.T) {
	for i, tx := range wireSamples(t) {
		checkWireAgrees(t, tx)
		var w wireTx
		if err := json.Unmarshal(tx, &w); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(w)
		if got, err := encodeWire(w); err != nil || !bytes.Equal(got, want) {
			t.Errorf("sample %d: encodeWire = %s, %v; want %s", i, got, err, want)
		}
		if i < 2 {
			if _, ok := decodeWireFast(tx); !ok {
				t.Errorf("sample %d: the fast path declined a transaction SignTx wrote", i)
			}
		}
		// Every one-byte change, and every cut.
		for j := range tx {
			for _, c := range []byte{'"', '\\', '=', 'A', '\n', ' ', '}', 0xff} {
				m := bytes.Clone(tx)
				m[j] = c
				checkWireAgrees(t, m)
			}
			checkWireAgrees(t, tx[:j])
		}
	}
}

// checkWireAgrees fails t if decodeWireFast accepts tx where
// decodeWireJSON does not, or with other values.
func checkWireAgrees(t testing.TB, tx []byte) {
	t.Helper()
	fast, ok := decodeWireFast(tx)
	if !ok {
		return
	}
	slow, err := decodeWireJSON(tx)
	if err != nil {
		t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", tx, err)
	}
	if diff := cmp.Diff(slow, fast); diff != "" {
		t.Fatalf("fast path decoded %q differently (-json +fast):\n%s", tx, diff)
	}
}

// FuzzWireTx compares the fast transaction decoder with encoding/json on
// arbitrary bytes.
func FuzzWireTx(f *testing.F) {
	for _, tx := range wireSamples(f) {
		f.Add(tx)
	}
	f.Fuzz(func(t *testing.T, tx []byte) {
		checkWireAgrees(t, tx)
	})
}

// BenchmarkDecodeWireTx measures decoding a transaction SignTx wrote,
// on the fast path and through encoding/json.
func BenchmarkDecodeWireTx(b *testing.B) {
	tx := wireSamples(b)[0]
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(tx)))
		for b.Loop() {
			if _, err := decodeWireTx(tx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.SetBytes(int64(len(tx)))
		for b.Loop() {
			if _, err := decodeWireJSON(tx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
