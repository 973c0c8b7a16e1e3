package comet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"github.com/healthgw/healthgw/ledger"
)

// FuzzParseTx feeds arbitrary bytes to the transaction parser that every
// node runs on untrusted input (CheckTx, ProcessProposal, FinalizeBlock).
// Whatever it accepts must re-encode to exactly the same bytes and carry a
// verifying signature.
func FuzzParseTx(f *testing.F) {
	keys, appState := testGateways(f, 2)
	gs, err := ParseAppState(appState)
	if err != nil {
		f.Fatal(err)
	}
	gateways, err := gs.gatewayMap()
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		tx, _ := testTx(f, i%2, keys[i%2], i)
		f.Add(tx)
	}
	f.Add([]byte(`{"v":2,"gateway":"gw-0","nonce":"00","header":"","sig":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, tx []byte) {
		got, err := ParseTx(testChain, gateways, tx)
		if err != nil {
			return
		}
		var w wireTx
		if err := json.Unmarshal(tx, &w); err != nil {
			t.Fatalf("accepted tx does not unmarshal: %v", err)
		}
		again, err := json.Marshal(w)
		if err != nil || !bytes.Equal(again, tx) {
			t.Fatalf("accepted a non-canonical tx")
		}
		msg, err := signedMessage(testChain, w)
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(gateways[got.Gateway], msg, w.Sig) {
			t.Fatalf("accepted a tx whose signature does not verify")
		}
		if got.Header.Author != got.Gateway {
			t.Fatalf("accepted an entry authored by %q from %q", got.Header.Author, got.Gateway)
		}
		if _, err := ledger.CheckEnvelope(got.Envelope); err != nil {
			t.Fatalf("accepted a malformed envelope: %v", err)
		}
	})
}

// FuzzParseAppState: genesis app_state is operator input; the parser must
// not panic and must only accept states it can marshal back.
func FuzzParseAppState(f *testing.F) {
	_, appState := testGateways(f, 3)
	f.Add(appState)
	f.Add([]byte(`{"gateways":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseAppState(b)
		if err != nil {
			return
		}
		again, err := g.MarshalAppState()
		if err != nil {
			t.Fatalf("accepted state does not marshal: %v", err)
		}
		g2, err := ParseAppState(again)
		if err != nil {
			t.Fatalf("marshalled state does not parse: %v", err)
		}
		if len(g2.Gateways) != len(g.Gateways) {
			t.Fatalf("round trip changed the gateway count")
		}
	})
}

// FuzzParseCheckpointHeight: checkpoint extension lines come from other
// nodes.
func FuzzParseCheckpointHeight(f *testing.F) {
	f.Add([]byte("cometbft healthgw-test 12\n"))
	f.Add([]byte("other line\ncometbft c -1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		chain, h, err := ParseCheckpointHeight(b)
		if err != nil {
			return
		}
		if h < 0 || chain == "" {
			t.Fatalf("accepted chain %q height %d", chain, h)
		}
	})
}
