package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

func filledLog(t *testing.T, n int) (*ledgertest.MemLog, note.Verifier) {
	t.Helper()
	s, v := ledger.TestSigner(t, ledger.TestOrigin)
	m := &ledgertest.MemLog{Signer: s, Clock: func() time.Time { return ledger.TestTime }}
	for i := range n {
		e, err := ledger.NewEntry("org-a", &ledger.ConsentRevoked{ConsentID: fmt.Sprintf("c%d", i), Patient: "ps_ab"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	m.Publish()
	return m, v
}

func TestProofs(t *testing.T) {
	const n = 50
	m, _ := filledLog(t, n)
	ctx := t.Context()
	cps := map[uint64]ledger.Checkpoint{}
	for size := uint64(0); size <= n; size++ {
		h, err := ledger.TreeHash(ctx, m, size)
		if err != nil {
			t.Fatal(err)
		}
		cps[size] = ledger.Checkpoint{Origin: ledger.TestOrigin, Size: size, Hash: h}
	}
	for size := uint64(1); size <= n; size++ {
		for i := uint64(0); i < size; i++ {
			p, err := ledger.InclusionProof(ctx, m, i, size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, size, err)
			}
			if err := ledger.VerifyInclusion(cps[size], i, entryAt(t, m, i), p); err != nil {
				t.Errorf("VerifyInclusion(%d, %d): %v", i, size, err)
			}
			if i+1 < size {
				if err := ledger.VerifyInclusion(cps[size], i, entryAt(t, m, i+1), p); err == nil {
					t.Errorf("VerifyInclusion(%d, %d) accepted another entry", i, size)
				}
			}
		}
		for from := uint64(1); from <= size; from++ {
			p, err := ledger.ConsistencyProof(ctx, m, from, size)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", from, size, err)
			}
			if err := ledger.VerifyConsistency(cps[from], cps[size], p); err != nil {
				t.Errorf("VerifyConsistency(%d, %d): %v", from, size, err)
			}
			if from < size {
				fork := cps[from]
				fork.Hash[0] ^= 1
				if err := ledger.VerifyConsistency(fork, cps[size], p); err == nil {
					t.Errorf("VerifyConsistency(%d, %d) accepted a fork", from, size)
				}
			}
		}
	}
	bad := []struct {
		name string
		err  error
	}{
		{"inclusion index == size", func() error { _, err := ledger.InclusionProof(ctx, m, 5, 5); return err }()},
		{"inclusion size 0", func() error { _, err := ledger.InclusionProof(ctx, m, 0, 0); return err }()},
		{"consistency from 0", func() error { _, err := ledger.ConsistencyProof(ctx, m, 0, 5); return err }()},
		{"consistency from > to", func() error { _, err := ledger.ConsistencyProof(ctx, m, 6, 5); return err }()},
		{"verify index beyond", ledger.VerifyInclusion(cps[3], 3, entryAt(t, m, 3), nil)},
		{"verify shrink", ledger.VerifyConsistency(cps[4], cps[3], nil)},
	}
	for _, tc := range bad {
		if !errors.Is(tc.err, ledger.ErrInvalidRange) {
			t.Errorf("%s: err = %v, want ledger.ErrInvalidRange", tc.name, tc.err)
		}
	}
	if _, err := ledger.InclusionProof(ctx, m, 3, n+10); err == nil {
		t.Errorf("InclusionProof beyond the stored tree succeeded")
	}
	same := cps[7]
	same.Hash[3] ^= 1
	if err := ledger.VerifyConsistency(cps[7], same, nil); err == nil {
		t.Errorf("VerifyConsistency of two different roots of the same size succeeded")
	}
}

func TestReceipt(t *testing.T) {
	m, vkey := filledLog(t, 10)
	_, v := ledger.TestSigner(t, ledger.TestOrigin)
	r, err := ledger.MakeReceipt(t.Context(), m, 4)
	if err != nil {
		t.Fatalf("MakeReceipt: %v", err)
	}
	if r.TreeSize != 10 || r.Index != 4 {
		t.Errorf("receipt size %d index %d", r.TreeSize, r.Index)
	}
	// v is another key: the receipt must not verify with it.
	if _, err := ledger.VerifyReceipt(r, v, ledger.TestOrigin); !errors.Is(err, ledger.ErrBadSignature) {
		t.Errorf("VerifyReceipt with a wrong key: err = %v, want ledger.ErrBadSignature", err)
	}
	e, err := ledger.VerifyReceipt(r, vkey, ledger.TestOrigin)
	if err != nil {
		t.Fatalf("VerifyReceipt: %v", err)
	}
	if got := e.Body.(*ledger.ConsentRevokedV2).ConsentID; got != "c4" {
		t.Errorf("receipt entry %q, want c4", got)
	}
	tampered := r
	tampered.Entry = entryAt(t, m, 5)
	if _, err := ledger.VerifyReceipt(tampered, vkey, ledger.TestOrigin); err == nil {
		t.Errorf("VerifyReceipt accepted another entry")
	}

	// An entry not yet covered by a checkpoint: ledger.MakeReceipt waits for one.
	// The test publishes only after ledger.MakeReceipt has been served a
	// checkpoint that does not cover the entry, so the wait is exercised.
	appendOne(t, m, "c10")
	served := make(chan uint64, 1)
	m.OnCheckpoint = func(size uint64) {
		select {
		case served <- size:
		default:
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := ledger.MakeReceipt(t.Context(), m, 10)
		done <- err
	}()
	select {
	case size := <-served:
		if size > 10 {
			t.Fatalf("MakeReceipt was served a checkpoint of size %d before the publish", size)
		}
	case err := <-done:
		t.Fatalf("MakeReceipt returned before a checkpoint covered the entry: %v", err)
	}
	m.Publish()
	if err := <-done; err != nil {
		t.Errorf("MakeReceipt after publish: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	appendOne(t, m, "c11")
	if _, err := ledger.MakeReceipt(ctx, m, 11); !errors.Is(err, context.Canceled) {
		t.Errorf("MakeReceipt with a cancelled context: err = %v", err)
	}
}

func TestProveEntryAndConsistency(t *testing.T) {
	m, v := filledLog(t, 20)
	ctx := t.Context()
	mustAdd(t, m, entryAt(t, m, 0)) // entry 20: durable, not yet in a checkpoint
	tests := []struct {
		name        string
		index, size uint64
		wantSize    uint64
		wantErr     error
	}{
		{"latest", 5, 0, 20, nil},
		{"explicit size", 5, 9, 9, nil},
		{"last entry", 19, 20, 20, nil},
		{"index not in tree", 9, 9, 0, ledger.ErrInvalidRange},
		{"size beyond checkpoint", 3, 21, 0, ledger.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ledger.ProveEntry(ctx, m, tc.index, tc.size)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ProveEntry: err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ProveEntry: %v", err)
			}
			if r.TreeSize != tc.wantSize {
				t.Errorf("tree size %d, want %d", r.TreeSize, tc.wantSize)
			}
			root, err := ledger.TreeHash(ctx, m, r.TreeSize)
			if err != nil {
				t.Fatal(err)
			}
			if err := ledger.VerifyInclusion(ledger.Checkpoint{Size: r.TreeSize, Hash: root}, tc.index, r.Entry, r.Proof); err != nil {
				t.Errorf("proof does not verify: %v", err)
			}
			if tc.size == 0 {
				if _, err := ledger.VerifyReceipt(r, v, ledger.TestOrigin); err != nil {
					t.Errorf("VerifyReceipt: %v", err)
				}
			}
		})
	}
	p, to, err := ledger.ProveConsistency(ctx, m, 7, 0)
	if err != nil || to != 20 {
		t.Fatalf("ProveConsistency(7, latest) = %d, %v", to, err)
	}
	old, _ := ledger.TreeHash(ctx, m, 7)
	now, _ := ledger.TreeHash(ctx, m, 20)
	if err := ledger.VerifyConsistency(ledger.Checkpoint{Size: 7, Hash: old}, ledger.Checkpoint{Size: 20, Hash: now}, p); err != nil {
		t.Errorf("consistency proof does not verify: %v", err)
	}
	if _, _, err := ledger.ProveConsistency(ctx, m, 7, 21); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("ProveConsistency beyond the checkpoint: err = %v, want ledger.ErrNotFound", err)
	}
	if _, _, err := ledger.ProveConsistency(ctx, m, 0, 20); !errors.Is(err, ledger.ErrInvalidRange) {
		t.Errorf("ProveConsistency from 0: err = %v, want ledger.ErrInvalidRange", err)
	}
}

// mustAdd appends data to m as the next entry.
func mustAdd(t *testing.T, m *ledgertest.MemLog, data []byte) {
	t.Helper()
	if _, err := m.MemStore().AppendRaw(data, ledger.Envelope{}); err != nil {
		t.Fatal(err)
	}
}

// entryAt is entry i of m, as stored.
func entryAt(t *testing.T, m *ledgertest.MemLog, i uint64) []byte {
	t.Helper()
	es, err := m.Entries(t.Context(), i, i+1)
	if err != nil {
		t.Fatal(err)
	}
	return es[0]
}

// appendOne appends a revocation of consent id to m.
func appendOne(t *testing.T, m *ledgertest.MemLog, id string) {
	t.Helper()
	e, err := ledger.NewEntry("org-a", &ledger.ConsentRevoked{ConsentID: id, Patient: "ps_ab"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(t.Context(), e); err != nil {
		t.Fatal(err)
	}
}
