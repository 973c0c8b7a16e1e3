package ledger_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// routedNodes opens three gateways' nodes over one store with a genesis,
// sharing the pseudonym secret; gw-1 seals to what route returns.
func routedNodes(t *testing.T, route func(context.Context, ledger.Entry, *ledger.Authority) ([]string, error)) (*ledgertest.MemStore, []*ledger.Node) {
	t.Helper()
	ids := []ledger.Identity{ledgertest.Identity("gw-1"), ledgertest.Identity("gw-2"), ledgertest.Identity("gw-3")}
	genesis := map[string]ledger.GatewayKeys{}
	for i := range ids {
		ids[i].Pseudonyms = ids[0].Pseudonyms
		genesis[ids[i].Gateway] = ledger.GatewayKeys{Public: ids[i].NodeKey.Public().(ed25519.PublicKey)}
	}
	ids[0].Recipients = route
	store := &ledgertest.MemStore{Genesis: genesis}
	var nodes []*ledger.Node
	for _, id := range ids {
		n, err := ledger.OpenNode(t.Context(), store, id)
		if err != nil {
			t.Fatalf("open %s: %v", id.Gateway, err)
		}
		nodes = append(nodes, n)
	}
	return store, nodes
}

func sealedSlots(t *testing.T, env ledger.Envelope) int {
	t.Helper()
	var w struct {
		Recipients []json.RawMessage `json:"recipients"`
	}
	if err := json.Unmarshal(env.Sealed, &w); err != nil {
		t.Fatal(err)
	}
	return len(w.Recipients)
}

// TestRecipientsHook: a routed entry is sealed to the gateways the hook
// names and its author, padded to the bucket; the others cannot open it.
func TestRecipientsHook(t *testing.T) {
	var seen ledger.Entry
	store, nodes := routedNodes(t, func(_ context.Context, e ledger.Entry, a *ledger.Authority) ([]string, error) {
		seen = e
		if _, ok := a.Gateway("gw-2"); !ok {
			t.Error("the hook's registry does not hold gw-2")
		}
		return []string{"gw-2", "gw-2"}, nil
	})
	e := ledgertest.Entry(1)
	idx, err := nodes[0].Append(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	if seen.Type != e.Type || seen.Body.(*ledger.ConsentGranted).ConsentID != e.Body.(*ledger.ConsentGranted).ConsentID {
		t.Errorf("the hook saw %+v, want the appended entry", seen)
	}
	for i, n := range nodes {
		_, err := n.Open(t.Context(), idx)
		if want := i < 2; (err == nil) != want {
			t.Errorf("%s opens the entry: %v, want %v", n.Gateway(), err, want)
		}
		if i == 2 && !errors.Is(err, ledger.ErrNotRecipient) {
			t.Errorf("%s: %v, want ErrNotRecipient", n.Gateway(), err)
		}
	}
	envs, err := store.Envelopes(t.Context(), idx, idx+1)
	if err != nil {
		t.Fatal(err)
	}
	if got := sealedSlots(t, envs[0]); got != ledger.RecipientSlots {
		t.Errorf("%d slots, want the bucket %d", got, ledger.RecipientSlots)
	}
}

// TestRecipientsHookUnknownGateway: a recipient without a registered
// sealing key is refused and nothing is appended; a failing hook too.
func TestRecipientsHookUnknownGateway(t *testing.T) {
	fail := errors.New("no route")
	var out []string
	var hookErr error
	store, nodes := routedNodes(t, func(context.Context, ledger.Entry, *ledger.Authority) ([]string, error) {
		return out, hookErr
	})
	size, _ := store.Size(t.Context())
	out = []string{"gw-9"}
	if _, err := nodes[0].Append(t.Context(), ledgertest.Entry(1)); !errors.Is(err, ledger.ErrNoSealKey) {
		t.Errorf("append routed to gw-9: %v, want ErrNoSealKey", err)
	}
	out, hookErr = nil, fail
	if _, err := nodes[0].Append(t.Context(), ledgertest.Entry(1)); !errors.Is(err, fail) {
		t.Errorf("append with a failing hook: %v", err)
	}
	if got, _ := store.Size(t.Context()); got != size {
		t.Errorf("size %d after refused appends, want %d", got, size)
	}
	// nil: the author alone.
	hookErr = nil
	idx, err := nodes[0].Append(t.Context(), ledgertest.Entry(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[1].Open(t.Context(), idx); !errors.Is(err, ledger.ErrNotRecipient) {
		t.Errorf("gw-2 opens an entry routed to its author only: %v", err)
	}
	if _, err := nodes[0].Open(t.Context(), idx); err != nil {
		t.Errorf("the author cannot open its entry: %v", err)
	}
}

func TestRecipientBucket(t *testing.T) {
	for n, want := range map[int]int{0: 8, 1: 8, 8: 8, 9: 16, 17: 24, 32: 32, 40: 32} {
		if got := ledger.RecipientBucket(n); got != want {
			t.Errorf("RecipientBucket(%d) = %d, want %d", n, got, want)
		}
	}
}

// BenchmarkRoutedSeal: the cost of the padding, sealing an opening to 4
// parties alone and padded to the bucket (figures in the design note).
func BenchmarkRoutedSeal(b *testing.B) {
	id := ledgertest.Identity("gw-1")
	signer, err := ledger.NewSigner(id.Gateway, id.NodeKey)
	if err != nil {
		b.Fatal(err)
	}
	salt, err := ledger.NewSalt()
	if err != nil {
		b.Fatal(err)
	}
	key, err := ledger.PatientKey(make([]byte, ledger.PseudonymKeySize), "patient-1")
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := signer.Statement("patient", salt, &ledger.ConsentRevokedV2{ConsentID: "cns_1", Patient: ledger.PatientRef(key, salt)})
	if err != nil {
		b.Fatal(err)
	}
	h, _, err := signer.Sign(stmt, nil)
	if err != nil {
		b.Fatal(err)
	}
	var pubs []*ecdh.PublicKey
	for range 4 {
		k, err := ledger.NewSealKey()
		if err != nil {
			b.Fatal(err)
		}
		pubs = append(pubs, k.PublicKey())
	}
	for _, pad := range []int{0, ledger.RecipientBucket(len(pubs))} {
		b.Run(fmt.Sprintf("parties=4/slots=%d", max(pad, len(pubs))), func(b *testing.B) {
			var size int
			cpu0 := cpuTime()
			for b.Loop() {
				sealed, err := ledger.SealOpening(ledger.Opening{Statement: stmt}, h, pubs, ledger.WithMinRecipients(pad))
				if err != nil {
					b.Fatal(err)
				}
				size = len(sealed)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(size), "bytes")
		})
	}
}
