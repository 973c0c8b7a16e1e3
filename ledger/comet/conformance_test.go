package comet_test

import (
	"errors"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/internal/testscale"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet/comettest"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// TestConformance runs the ledger.Log conformance suite against a
// gateway's ledger (ledger.Node) over a single-validator in-process node
// (comet.Log, the store); Reopen restarts the node from its home. The
// log starts with the gateway's registration (entry 0).
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	nets := map[ledger.Log]*comettest.Network{}
	const origin = "comet.healthgw.test/conformance"
	skey, vkey, err := ledger.GenerateCheckpointKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	// The gateway's identity is fixed, so that the suite can sign
	// envelopes as it and append them to the store directly.
	id := ledgertest.Identity("hospital-1")
	open := func(t *testing.T) ledger.Log {
		net := comettest.NewNetwork(t, 1, comettest.Options{CheckpointKeys: []string{skey}, Gateways: true, Identities: []ledger.Identity{id}})
		l := net.Ledger(0)
		mu.Lock()
		nets[l] = net
		mu.Unlock()
		return l
	}
	ledgertest.RunBackend(t, ledgertest.Backend{
		Verifier: verifier,
		Origin:   origin,
		Timeout:  testscale.Timeout(ledgertest.DefaultTimeout),
		// An append that timed out waiting for a block (ErrUnavailable)
		// may still be committed: the suite waits for it rather than
		// appending it twice. A closed log is not pending.
		Pending: func(err error) bool {
			return errors.Is(err, ledger.ErrUnavailable) && !errors.Is(err, ledger.ErrClosed)
		},
		Open:     open,
		Identity: id,
		Reopen: func(t *testing.T, old ledger.Log) ledger.Log {
			mu.Lock()
			net := nets[old]
			mu.Unlock()
			net.StopNode(0)
			net.StartNode(0)
			l := net.Ledger(0)
			mu.Lock()
			nets[l] = net
			mu.Unlock()
			return l
		},
	})
}
