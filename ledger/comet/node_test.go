package comet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	net2 "net"
	"sync"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/internal/testscale"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
	"github.com/healthgw/healthgw/ledger/comet/comettest"
)

func entry(t testing.TB, i int) ledger.Entry {
	t.Helper()
	e, err := ledger.NewEntry("org-1", &ledger.ConsentGranted{
		ConsentID: fmt.Sprintf("c-%d", i),
		Patient:   "ps_1111111111111111111111111111111111111111111111111111111111111111",
		Grantee:   ledger.Grantee{Org: "hospital-2"},
		Decision:  "permit",
		Actions:   []string{"read"},
		Purposes:  []string{"TREAT"},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:  time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// decodeAt reads entry idx from l and decodes it.
func decodeAt(t testing.TB, l *comet.Log, idx uint64) ledger.Entry {
	t.Helper()
	raw, err := l.Entries(t.Context(), idx, idx+1)
	if err != nil {
		t.Fatalf("Entries(%d): %v", idx, err)
	}
	e, err := ledger.Decode(raw[0])
	if err != nil {
		t.Fatalf("Decode(%d): %v", idx, err)
	}
	return e
}

// waitAgree waits until every running node reports the same committed
// height, and returns their statuses.
func waitAgree(t testing.TB, net *comettest.Network, minSize uint64) []comet.Status {
	t.Helper()
	net.WaitSize(minSize, time.Minute)
	timeout := time.NewTimer(testscale.Timeout(time.Minute))
	defer timeout.Stop()
	for {
		var (
			sts    []comet.Status
			lowest <-chan struct{} // the next commit of the node furthest behind
			low    int64
		)
		same := true
		for _, l := range net.Logs() {
			if l == nil {
				continue
			}
			next := l.NextCommit() // taken before the status, so no commit is missed
			s := l.Status()
			if len(sts) > 0 && s.Height != sts[0].Height {
				same = false
			}
			if lowest == nil || s.Height < low {
				lowest, low = next, s.Height
			}
			sts = append(sts, s)
		}
		if same {
			return sts
		}
		select {
		case <-lowest:
		case <-timeout.C:
			t.Fatalf("nodes did not settle on one height: %+v", sts)
		}
	}
}

// checkAgree fails unless all statuses have the same size and root.
func checkAgree(t testing.TB, sts []comet.Status) {
	t.Helper()
	for i, s := range sts[1:] {
		if s.Height != sts[0].Height || s.Size != sts[0].Size || s.Root != sts[0].Root {
			t.Errorf("node %d at height %d size %d root %x; node 0 at height %d size %d root %x",
				i+1, s.Height, s.Size, s.Root, sts[0].Height, sts[0].Size, sts[0].Root)
		}
	}
}

// TestReplication: an entry appended through node A is readable at node B
// once committed, with the block time, and every node reports the same
// root at the same height; each node's checkpoint verifies with its own
// key and names the chain and height.
func TestReplication(t *testing.T) {
	net := comettest.NewNetwork(t, 4, comettest.Options{})
	ctx := t.Context()
	a, b := net.Log(0), net.Log(1)

	before := time.Now().Add(-time.Minute)
	want := entry(t, 1)
	idx, err := a.Append(ctx, want)
	if err != nil {
		t.Fatalf("Append at node A: %v", err)
	}
	if idx != 0 {
		t.Errorf("first index = %d, want 0", idx)
	}
	net.WaitSize(idx+1, time.Minute)
	got := decodeAt(t, b, idx)
	if got.Time.Before(before) || got.Time.After(time.Now().Add(time.Minute)) {
		t.Errorf("entry time %v is not a block time near now", got.Time)
	}
	want.Time = got.Time
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entry at node B (-want +got):\n%s", diff)
	}
	ra, _ := a.Entries(ctx, idx, idx+1)
	rb, _ := b.Entries(ctx, idx, idx+1)
	if !bytes.Equal(ra[0], rb[0]) {
		t.Errorf("node A and B store different bytes for entry %d", idx)
	}

	// Appends through every node, concurrently.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			if _, err := net.Log(i%4).Append(ctx, entry(t, 100+i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Append: %v", err)
	}
	sts := waitAgree(t, net, 9)
	checkAgree(t, sts)

	for i := range 4 {
		n := net.Node(i)
		cp, err := net.Log(i).Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, rest, _, err := log.ParseCheckpoint(cp, n.Signer.Name(), n.Verifier)
		if err != nil {
			t.Fatalf("node %d checkpoint: %v", i, err)
		}
		chain, height, err := comet.ParseCheckpointHeight(rest)
		if err != nil {
			t.Fatalf("node %d checkpoint height: %v", i, err)
		}
		if chain != comettest.ChainID || height != sts[i].Height || c.Size != sts[i].Size || !bytes.Equal(c.Hash, sts[i].Root[:]) {
			t.Errorf("node %d checkpoint = %s %d size %d root %x; status %+v", i, chain, height, c.Size, c.Hash, sts[i])
		}
	}
}

func TestAppendInvalidEntry(t *testing.T) {
	net := comettest.NewNetwork(t, 1, comettest.Options{})
	l := net.Log(0)
	bad := ledger.Entry{Type: ledger.TypeConsentGranted, Version: ledger.CurrentVersion, Body: &ledger.ConsentRevoked{}}
	if _, err := l.Append(t.Context(), bad); !errors.Is(err, ledger.ErrUnknownType) {
		t.Errorf("Append(mismatched body) = %v, want ErrUnknownType", err)
	}
	if n, _ := l.Size(t.Context()); n != 0 {
		t.Errorf("size after rejected append = %d, want 0", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), entry(t, 1)); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
}

// mustRoot computes the tree hash of l's committed size from its stored
// hashes.
func mustRoot(t testing.TB, l *comet.Log) []byte {
	t.Helper()
	n, err := l.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h, err := tlog.TreeHash(int64(n), l)
	if err != nil {
		t.Fatal(err)
	}
	return h[:]
}

// TestOpenErrors: configuration mistakes are reported, not panics, and a
// failed start leaves the home usable.
func TestOpenErrors(t *testing.T) {
	net := comettest.NewNetwork(t, 1, comettest.Options{})
	n := net.Node(0)
	net.StopNode(0)

	t.Run("no home", func(t *testing.T) {
		if _, err := comet.Open(t.Context(), comet.Config{Signer: n.Signer}); err == nil {
			t.Error("Open without a home succeeded")
		}
	})
	t.Run("no signer", func(t *testing.T) {
		if _, err := comet.Open(t.Context(), comet.Config{Home: n.Home}); err == nil {
			t.Error("Open without a signer succeeded")
		}
	})
	t.Run("gateway not in genesis", func(t *testing.T) {
		gk, err := comet.NewGatewayKey("intruder")
		if err != nil {
			t.Fatal(err)
		}
		_, err = comet.Open(t.Context(), comet.Config{Home: n.Home, Signer: n.Signer, GatewayKey: gk})
		if !errors.Is(err, comet.ErrUnknownGateway) {
			t.Errorf("Open with a foreign gateway key = %v, want ErrUnknownGateway", err)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		busy, err := net2.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		_, err = comet.Open(t.Context(), comet.Config{Home: n.Home, Signer: n.Signer, Tune: func(c *cfg.Config) {
			c.RPC.ListenAddress = "tcp://" + busy.Addr().String()
		}})
		if err == nil {
			t.Fatal("Open on a busy RPC port succeeded")
		}
	})
	// After all that, the node still starts from its home.
	l := net.StartNode(0)
	if _, err := l.Append(t.Context(), entry(t, 1)); err != nil {
		t.Fatalf("Append after failed opens: %v", err)
	}
}

// TestRemote: a one-shot command appends through a running node's RPC with
// the node's gateway key, and gets the committed index.
func TestRemote(t *testing.T) {
	net := comettest.NewNetwork(t, 4, comettest.Options{RPC: true})
	if _, err := net.Log(0).Append(t.Context(), entry(t, 0)); err != nil {
		t.Fatal(err)
	}
	r, err := comet.OpenRemote(net.Node(2).Home)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testscale.Timeout(time.Minute))
	defer cancel()
	want := entry(t, 7)
	idx, err := r.Append(ctx, want)
	if err != nil {
		t.Fatalf("remote Append: %v", err)
	}
	net.WaitSize(idx+1, time.Minute)
	got := decodeAt(t, net.Log(0), idx)
	want.Time = got.Time
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entry %d (-want +got):\n%s", idx, diff)
	}
	bad := ledger.Entry{Type: ledger.TypeConsentGranted, Version: ledger.CurrentVersion}
	if _, err := r.Append(ctx, bad); err == nil {
		t.Error("remote Append of an invalid entry succeeded")
	}
}
