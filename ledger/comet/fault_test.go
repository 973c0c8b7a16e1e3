package comet_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/internal/testscale"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
	"github.com/healthgw/healthgw/ledger/comet/comettest"
)

// acked records acknowledged appends: index → the entry's request ID.
type acked map[uint64]string

// append appends entry i through gateway ledger l and records it.
func (a acked) append(t *testing.T, l *ledger.Node, i int) {
	t.Helper()
	idx, err := l.Append(t.Context(), entry(t, i))
	if err != nil {
		t.Fatalf("Append(%d): %v", i, err)
	}
	if prev, dup := a[idx]; dup {
		t.Fatalf("index %d acknowledged twice (%s and c-%d)", idx, prev, i)
	}
	a[idx] = entryID(t, entry(t, i))
}

func entryID(t testing.TB, e ledger.Entry) string {
	t.Helper()
	return e.Body.(*ledger.ConsentGranted).ConsentID
}

// check verifies that l holds every acknowledged entry at its index.
func (a acked) check(t *testing.T, name string, l *ledger.Node) {
	t.Helper()
	for idx, want := range a {
		if got := entryID(t, decodeAt(t, l, idx)); got != want {
			t.Errorf("%s: entry %d is %s, acknowledged as %s", name, idx, got, want)
		}
	}
}

// sameEntries fails unless every node holds byte-identical logs.
func sameEntries(t *testing.T, net *comettest.Network, size uint64) {
	t.Helper()
	ref, err := net.Log(0).Entries(t.Context(), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < net.Len(); i++ {
		l := net.Log(i)
		if l == nil {
			continue
		}
		got, err := l.Entries(t.Context(), 0, size)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if diff := cmp.Diff(ref, got); diff != "" {
			t.Errorf("node %d entries differ from node 0 (-0 +%d):\n%s", i, i, diff)
		}
	}
}

// TestOneValidatorDown: with one of four validators stopped the others
// keep committing; restarted, it catches up with nothing lost.
func TestOneValidatorDown(t *testing.T) {
	net := comettest.NewNetwork(t, 4, gateways)
	acks := acked{}
	for i := range 3 {
		acks.append(t, net.Ledger(i), i)
	}

	net.StopNode(3)
	for i := range 6 {
		acks.append(t, net.Ledger(i%3), 10+i)
	}

	net.StartNode(3)
	sts := waitAgree(t, net, base4+uint64(len(acks)))
	checkAgree(t, sts)
	for i := range 4 {
		acks.check(t, net.Node(i).Name, net.Ledger(i))
	}
	sameEntries(t, net, sts[0].Size)

	// The restarted node appends again.
	acks.append(t, net.Ledger(3), 20)
	checkAgree(t, waitAgree(t, net, base4+uint64(len(acks))))
}

// base4 is the size of a four-gateway network's log once every gateway
// registered.
const base4 = 4

// TestTwoValidatorsDown: with two of four validators stopped there is no
// quorum; Append fails with ErrUnavailable and acknowledges nothing. When
// one returns, progress resumes and nothing acknowledged is lost.
func TestTwoValidatorsDown(t *testing.T) {
	net := comettest.NewNetwork(t, 4, comettest.Options{Gateways: true, AppendTimeout: 3 * time.Second})
	acks := acked{}
	acks.append(t, net.Ledger(0), 0)
	acks.append(t, net.Ledger(1), 1)
	net.WaitSize(base4+2, time.Minute)

	net.StopNode(2)
	net.StopNode(3)
	stalled := entry(t, 99)
	_, err := net.Ledger(0).Append(t.Context(), stalled)
	if !errors.Is(err, ledger.ErrUnavailable) {
		t.Fatalf("Append without quorum = %v, want ErrUnavailable", err)
	}
	t.Logf("append without quorum: %v", err)
	for i := range 2 {
		if n, _ := net.Log(i).Size(t.Context()); n != base4+2 {
			t.Errorf("node %d size without quorum = %d, want %d", i, n, base4+2)
		}
	}

	net.StartNode(2)
	// Progress resumes once the returning node has reconnected; until
	// then appends may still time out, and must say so.
	deadline := time.Now().Add(testscale.Timeout(2 * time.Minute))
	for {
		idx, err := net.Ledger(1).Append(t.Context(), entry(t, 2))
		if err == nil {
			acks[idx] = "c-2"
			break
		}
		if !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("Append after one validator returned: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress after a validator returned: %v", err)
		}
	}
	acks.append(t, net.Ledger(2), 3)

	net.StartNode(3)
	sts := waitAgree(t, net, base4+uint64(len(acks)))
	checkAgree(t, sts)
	for i := range 4 {
		acks.check(t, net.Node(i).Name, net.Ledger(i))
	}
	sameEntries(t, net, sts[0].Size)

	// The unacknowledged entry was gossiped before quorum was lost, so it
	// may have been committed since; but never twice, and never in place
	// of an acknowledged one.
	all, err := net.Ledger(0).Read(t.Context(), 0, sts[0].Size)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range all {
		if c, ok := e.Body.(*ledger.ConsentGranted); ok && c.ConsentID == "c-99" {
			seen++
		}
	}
	if seen > 1 {
		t.Errorf("the stalled entry was committed %d times", seen)
	}
}

// TestWipedNodeRejoins: a validator that lost its data directory rebuilds
// the whole log from its peers by block sync.
func TestWipedNodeRejoins(t *testing.T) {
	net := comettest.NewNetwork(t, 4, gateways)
	acks := acked{}
	for i := range 5 {
		acks.append(t, net.Ledger(i%4), i)
	}
	net.WaitSize(base4+5, time.Minute)
	net.StopNode(3)
	net.WipeNode(3)
	acks.append(t, net.Ledger(0), 10)
	net.StartNode(3)
	sts := waitAgree(t, net, base4+uint64(len(acks)))
	checkAgree(t, sts)
	// Caught up, its gateway finds itself registered and opens every
	// entry again.
	acks.check(t, "wiped node", net.Ledger(3))
	sameEntries(t, net, sts[0].Size)
	acks.append(t, net.Ledger(3), 11)
}

// TestObserverJoins: a new non-validator node without a gateway key joins
// from the others, serves the same log, and cannot append.
func TestObserverJoins(t *testing.T) {
	net := comettest.NewNetwork(t, 4, gateways)
	acks := acked{}
	for i := range 4 {
		acks.append(t, net.Ledger(i), i)
	}
	obs := net.AddObserver()
	acks.append(t, net.Ledger(1), 10)
	sts := waitAgree(t, net, base4+uint64(len(acks)))
	checkAgree(t, sts)
	sameEntries(t, net, sts[0].Size)
	// It checks every entry, and opens none of the sealed ones: it has
	// no sealing key.
	es, err := net.Ledger(obs).Read(t.Context(), 0, sts[0].Size)
	if err != nil {
		t.Fatalf("observer Read: %v", err)
	}
	for idx := range acks {
		if es[idx].Body != nil || es[idx].Type != ledger.TypeConsentGranted {
			t.Errorf("observer reads entry %d as %+v, want a consent it cannot open", idx, es[idx])
		}
	}

	_, err = net.Log(obs).AppendEnvelope(t.Context(), ledger.Envelope{})
	if !errors.Is(err, comet.ErrReadOnly) || !errors.Is(err, ledger.ErrUnavailable) {
		t.Errorf("AppendEnvelope on an observer = %v, want ErrReadOnly and ErrUnavailable", err)
	}
	if _, err := net.Ledger(obs).Append(t.Context(), entry(t, 11)); !errors.Is(err, ledger.ErrReadOnlyNode) {
		t.Errorf("Append on an observer's ledger = %v, want ErrReadOnlyNode", err)
	}
}

// TestPruning: with RetainBlocks set, old blocks are pruned from the block
// store while the log keeps every entry.
func TestPruning(t *testing.T) {
	net := comettest.NewNetwork(t, 1, comettest.Options{Gateways: true, RetainBlocks: 2})
	l := net.Log(0)
	acks := acked{}
	for i := range 6 {
		acks.append(t, net.Ledger(0), i)
	}
	s := l.Status()
	if s.BlockBase <= 1 {
		t.Errorf("block store base = %d at height %d; want pruning above 1", s.BlockBase, s.Height)
	}
	if s.Height-s.BlockBase+1 > 3 {
		t.Errorf("block store holds heights %d..%d; want at most 3", s.BlockBase, s.Height)
	}
	acks.check(t, "pruned node", net.Ledger(0))
	all, err := l.Entries(t.Context(), 0, s.Size)
	if err != nil || len(all) != 7 {
		t.Fatalf("Entries = %d, %v; want 7 entries (the registration and 6)", len(all), err)
	}
	if !bytes.Equal(s.Root[:], mustRoot(t, l)) {
		t.Error("status root differs from the tree over the stored hashes")
	}
}
