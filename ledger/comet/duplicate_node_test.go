package comet_test

import (
	"sync"
	"testing"
	"time"

	"github.com/healthgw/healthgw/ledger/comet"
	"github.com/healthgw/healthgw/ledger/comet/comettest"
)

// TestAppendRepeatedEntry checks the client side of the duplicate
// refusal: appending an envelope that is already committed (a retry
// after an unknown outcome), or twice at once, answers every append with
// the first entry's index and adds one entry to the log.
func TestAppendRepeatedEntry(t *testing.T) {
	net := comettest.NewNetwork(t, 2, comettest.Options{})
	gw := comet.GatewayOfHome(t, net.Node(0).Home)
	l := net.Log(0)
	size := func() uint64 { return l.Status().Size }

	env := comet.ConsentEnvelope(t, gw, "repeated")
	before := size()
	first, err := l.AppendEnvelope(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.AppendEnvelope(t.Context(), env)
	if err != nil || again != first {
		t.Errorf("repeated append = %d, %v; want %d (the first commit), nil", again, err, first)
	}

	// Two at once: one transaction is committed, the other refused as
	// its duplicate, in the same block or a later one; both appends
	// answer the one entry's index.
	env2 := comet.ConsentEnvelope(t, gw, "repeated-concurrently")
	var wg sync.WaitGroup
	idx := make([]uint64, 2)
	errs := make([]error, 2)
	for i := range idx {
		wg.Go(func() { idx[i], errs[i] = l.AppendEnvelope(t.Context(), env2) })
	}
	wg.Wait()
	for i := range idx {
		if errs[i] != nil {
			t.Fatalf("concurrent append %d: %v", i, errs[i])
		}
	}
	if idx[0] != idx[1] {
		t.Errorf("concurrent appends of one entry got indexes %d and %d", idx[0], idx[1])
	}
	// Every node holds each entry once.
	net.WaitSize(before+2, 30*time.Second)
	for i, l := range net.Logs() {
		if got := l.Status().Size; got != before+2 {
			t.Errorf("node %d: size %d after two entries appended three times, want %d", i, got, before+2)
		}
	}
}
