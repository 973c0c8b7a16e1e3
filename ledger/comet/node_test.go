package comet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	net2 "net"
	"strings"
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

// testPseudonym is the pseudonym of the test entries' patient.
const testPseudonym = "ps_1111111111111111111111111111111111111111111111111111111111111111"

// entry returns a distinct consent.granted (in the domain view: org
// "patient:<pseudonym>").
func entry(t testing.TB, i int) ledger.Entry {
	t.Helper()
	e, err := ledger.NewEntry(ledger.PatientOrg(testPseudonym), &ledger.ConsentGranted{
		ConsentID: fmt.Sprintf("c-%d", i),
		Patient:   testPseudonym,
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

// decodeAt reads entry idx through gateway ledger l (opened and checked).
func decodeAt(t testing.TB, l *ledger.Node, idx uint64) ledger.Entry {
	t.Helper()
	es, err := l.Read(t.Context(), idx, idx+1)
	if err != nil {
		t.Fatalf("Read(%d): %v", idx, err)
	}
	return es[0]
}

// gateways is the option set of networks with a gateway on every node.
var gateways = comettest.Options{Gateways: true}

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

// TestReplication: four gateways register at start (each its own
// gateway.registered); an entry appended through gateway A is committed
// at every node, with the block time, and gateway B opens it (every
// entry is sealed to every registered gateway); every node reports the
// same root at the same height; each node's checkpoint verifies with its
// own key and names the chain and height.
func TestReplication(t *testing.T) {
	net := comettest.NewNetwork(t, 4, gateways)
	ctx := t.Context()
	const base = 4 // the gateways' registrations
	sts := waitAgree(t, net, base)
	registered := map[string]bool{}
	for i := range uint64(base) {
		e := decodeAt(t, net.Ledger(0), i)
		g, ok := e.Body.(*ledger.GatewayRegistered)
		if !ok || g.ID != e.Author {
			t.Fatalf("entry %d = %+v, want a gateway.registered", i, e)
		}
		registered[g.ID] = true
	}
	if len(registered) != 4 || sts[0].Size != base {
		t.Fatalf("registrations %v, size %d; want the four gateways", registered, sts[0].Size)
	}
	a, b := net.Ledger(0), net.Ledger(1)

	before := time.Now().Add(-time.Minute)
	want := entry(t, 1)
	idx, err := a.Append(ctx, want)
	if err != nil {
		t.Fatalf("Append at gateway A: %v", err)
	}
	if idx != base {
		t.Errorf("first index = %d, want %d", idx, base)
	}
	net.WaitSize(idx+1, time.Minute)
	got := decodeAt(t, b, idx)
	if got.Time.Before(before) || got.Time.After(time.Now().Add(time.Minute)) {
		t.Errorf("entry time %v is not a block time near now", got.Time)
	}
	if got.Commitment.IsZero() {
		t.Error("entry read without its commitment")
	}
	want.Time, want.Author, want.Commitment = got.Time, net.Node(0).Name, got.Commitment
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entry at gateway B (-want +got):\n%s", diff)
	}
	ra, _ := net.Log(0).Entries(ctx, idx, idx+1)
	rb, _ := net.Log(1).Entries(ctx, idx, idx+1)
	if !bytes.Equal(ra[0], rb[0]) {
		t.Errorf("node A and B store different bytes for entry %d", idx)
	}

	// Appends through every gateway, concurrently.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			if _, err := net.Ledger(i%4).Append(ctx, entry(t, 100+i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Append: %v", err)
	}
	sts = waitAgree(t, net, base+9)
	// Every gateway opens every entry.
	for i := range 4 {
		es, err := net.Ledger(i).Read(ctx, 0, sts[0].Size)
		if err != nil {
			t.Fatalf("gateway %d: Read: %v", i, err)
		}
		for j, e := range es {
			if e.Body == nil {
				t.Errorf("gateway %d cannot open entry %d (%s by %s)", i, j, e.Type, e.Author)
			}
		}
	}
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
		// No entries are appended any more, but an empty block may
		// still commit between the status above and the checkpoint: its
		// height lies between that status's and the node's latest.
		now := net.Log(i).Status()
		if chain != comettest.ChainID || height < sts[i].Height || height > now.Height || c.Size != sts[i].Size || !bytes.Equal(c.Hash, sts[i].Root[:]) {
			t.Errorf("node %d checkpoint = %s %d size %d root %x; status %+v, now at height %d", i, chain, height, c.Size, c.Hash, sts[i], now.Height)
		}
	}
}

func TestAppendInvalidEntry(t *testing.T) {
	net := comettest.NewNetwork(t, 1, gateways)
	l := net.Ledger(0)
	before, _ := l.Size(t.Context())
	bad := ledger.Entry{Type: ledger.TypeConsentGranted, Version: ledger.CurrentVersion, Body: &ledger.ConsentRevoked{}}
	if _, err := l.Append(t.Context(), bad); err == nil {
		t.Error("Append(mismatched body) succeeded")
	}
	// A malformed envelope straight to the store.
	if _, err := net.Log(0).AppendEnvelope(t.Context(), ledger.Envelope{Header: []byte("{}"), Clear: []byte("{}")}); err == nil {
		t.Error("AppendEnvelope(malformed) succeeded")
	}
	if n, _ := l.Size(t.Context()); n != before {
		t.Errorf("size after rejected appends = %d, want %d", n, before)
	}
	if err := net.Log(0).Close(); err != nil {
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
	net := comettest.NewNetwork(t, 1, gateways)
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
	net.StartNode(0)
	if _, err := net.Ledger(0).Append(t.Context(), entry(t, 1)); err != nil {
		t.Fatalf("Append after failed opens: %v", err)
	}
}

// TestRemote: a one-shot command registers an organisation through a
// running node's RPC with the node's gateway key: the org's home is that
// gateway, at the base URL it registered; the command gets the committed
// index. A second registration of the org is refused, and sealed entries
// cannot go that way.
func TestRemote(t *testing.T) {
	opts := gateways
	opts.RPC = true
	net := comettest.NewNetwork(t, 4, opts)
	if _, err := net.Ledger(0).Append(t.Context(), entry(t, 0)); err != nil {
		t.Fatal(err)
	}
	r, err := comet.OpenRemote(net.Node(2).Home)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testscale.Timeout(time.Minute))
	defer cancel()
	org := orgEntry(t, "hosp-r")
	idx, err := r.Append(ctx, org)
	if err != nil {
		t.Fatalf("remote Append: %v", err)
	}
	net.WaitSize(idx+1, time.Minute)
	got := decodeAt(t, net.Ledger(0), idx)
	want := orgEntry(t, "hosp-r")
	want.Body.(*ledger.OrgRegistered).Home = ledger.GatewayHome{Gateway: net.Node(2).Name, BaseURL: "http://" + net.Node(2).Name + ".test"}
	want.Time, want.Author, want.Commitment = got.Time, net.Node(2).Name, got.Commitment
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entry %d (-want +got):\n%s", idx, diff)
	}
	if _, err := r.Append(ctx, orgEntry(t, "hosp-r")); !errors.Is(err, comet.ErrRefused) {
		t.Errorf("second registration of hosp-r = %v, want ErrRefused", err)
	}
	if _, err := r.Append(ctx, entry(t, 7)); !errors.Is(err, ledger.ErrBadEnvelope) {
		t.Errorf("remote Append of a consent = %v, want ErrBadEnvelope (sealed entries go through the gateway)", err)
	}
}

// TestRemoteBeforeRegistration: a gateway that has not registered has no
// base URL on the ledger; without one in the member's healthgw.env (or
// SetBaseURL) the command says so and submits nothing.
func TestRemoteBeforeRegistration(t *testing.T) {
	net := comettest.NewNetwork(t, 1, comettest.Options{RPC: true})
	r, err := comet.OpenRemote(net.Node(0).Home)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testscale.Timeout(time.Minute))
	defer cancel()
	if _, err := r.Append(ctx, orgEntry(t, "hosp-r")); err == nil || !strings.Contains(err.Error(), "has not registered yet") {
		t.Errorf("remote Append before the gateway registered = %v, want it to say so", err)
	}
	if n, _ := net.Log(0).Size(ctx); n != 0 {
		t.Errorf("log size %d after a refused command, want 0", n)
	}
	r.SetBaseURL("https://hospital-1.example")
	if _, err := r.Append(ctx, orgEntry(t, "hosp-r")); err != nil {
		t.Errorf("remote Append with a base URL: %v", err)
	}
}

// orgEntry is an org.registered of hospital id (home: the appender).
func orgEntry(t testing.TB, id string) ledger.Entry {
	t.Helper()
	e, err := ledger.NewEntry(id, &ledger.OrgRegistered{
		ID: id, Name: "Hospital " + id, Kind: "hospital", Scopes: []string{"system/records.read"},
		JWKSURL: "https://" + id + ".example/jwks.json",
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestSealWaitsForEveryGateway: three of four gateways have started (each
// registered its sealing key); the fourth has not. Until it has, no node
// is ready (Ready names it) and a gateway seals nothing: its append waits
// and, given up, says which gateway it waited for and that nothing was
// written. Registry entries are not sealed and do not wait. Once the
// fourth registers, the waiting append goes through, sealed to all four:
// the fourth opens it.
func TestSealWaitsForEveryGateway(t *testing.T) {
	net := comettest.NewNetwork(t, 4, comettest.Options{})
	for i := range 3 {
		net.Ledger(i)
	}
	waitAgree(t, net, 3)
	late := net.Node(3).Name
	for i, l := range net.Logs() {
		if err := l.Ready(t.Context()); !errors.Is(err, comet.ErrUnregistered) || !strings.Contains(err.Error(), late) {
			t.Errorf("node %d Ready = %v, want ErrUnregistered naming %s", i, err, late)
		}
	}
	if _, err := net.Ledger(0).Append(t.Context(), orgEntry(t, "hosp-w")); err != nil {
		t.Fatalf("an org registration waited: %v", err)
	}
	size, _ := net.Log(0).Size(t.Context())

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	_, err := net.Ledger(0).Append(ctx, entry(t, 1))
	cancel()
	if !errors.Is(err, comet.ErrUnregistered) || !errors.Is(err, ledger.ErrUnavailable) || !strings.Contains(err.Error(), late) {
		t.Errorf("sealed append before %s registered = %v, want ErrUnregistered and ErrUnavailable naming it", late, err)
	}
	if n, _ := net.Log(0).Size(t.Context()); n != size {
		t.Errorf("size %d after a refused append, want %d", n, size)
	}

	type result struct {
		idx uint64
		err error
	}
	done := make(chan result, 1)
	go func() {
		idx, err := net.Ledger(1).Append(t.Context(), entry(t, 2))
		done <- result{idx, err}
	}()
	net.Ledger(3) // the late gateway starts and registers
	r := <-done
	if r.err != nil {
		t.Fatalf("append once every gateway registered: %v", r.err)
	}
	waitAgree(t, net, r.idx+1)
	for i := range 4 {
		if err := net.Log(i).Ready(t.Context()); err != nil {
			t.Errorf("node %d Ready = %v", i, err)
		}
		if e := decodeAt(t, net.Ledger(i), r.idx); e.Body == nil {
			t.Errorf("gateway %d cannot open entry %d", i, r.idx)
		}
	}
}
