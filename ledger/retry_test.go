package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// lossyStore acts like a consortium that lost its quorum: while lost is
// set, an append submits its envelope (to a mempool) and fails with
// lost, its outcome unknown; restore commits what the mempool holds.
// Like the comet application it answers an envelope whose entry is in
// the log with the first index (RepeatAnswerer) and never commits one
// entry twice. refuse, when set, refuses an append before submitting it.
type lossyStore struct {
	*ledgertest.MemStore
	mu        sync.Mutex
	lost      error
	refuse    error
	submitted []ledger.Envelope
	mempool   []ledger.Envelope
	index     map[ledger.Digest]uint64
	// onLost, if set, is called (without s.mu) by an append while lost,
	// after its envelope reached the mempool and before it answers.
	onLost func(ledger.Envelope)
}

func newLossyStore() *lossyStore {
	return &lossyStore{MemStore: &ledgertest.MemStore{}, index: map[ledger.Digest]uint64{}}
}

func (*lossyStore) AnswersRepeats() {}

var _ ledger.RepeatAnswerer = (*lossyStore)(nil)

func (s *lossyStore) AppendEnvelope(ctx context.Context, env ledger.Envelope) (uint64, error) {
	s.mu.Lock()
	if s.refuse != nil {
		defer s.mu.Unlock()
		return 0, s.refuse
	}
	s.submitted = append(s.submitted, env)
	seal := ledger.Seal(env.Header)
	if idx, ok := s.index[seal]; ok {
		s.mu.Unlock()
		return idx, nil
	}
	if lost := s.lost; lost != nil {
		s.mempool = append(s.mempool, env)
		hook := s.onLost
		s.mu.Unlock()
		if hook != nil {
			hook(env)
		}
		return 0, fmt.Errorf("append: %w", lost)
	}
	defer s.mu.Unlock()
	return s.commitLocked(ctx, env)
}

// FindEntry implements ledger.EntryFinder: committed entries only.
func (s *lossyStore) FindEntry(_ context.Context, seal ledger.Digest) (uint64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, ok := s.index[seal]
	return idx, ok, nil
}

var _ ledger.EntryFinder = (*lossyStore)(nil)

// submissions returns how many appends reached the store.
func (s *lossyStore) submissions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.submitted)
}

func (s *lossyStore) commitLocked(ctx context.Context, env ledger.Envelope) (uint64, error) {
	seal := ledger.Seal(env.Header)
	if idx, ok := s.index[seal]; ok {
		return idx, nil // a duplicate entry: refused, the first stands
	}
	idx, err := s.MemStore.AppendEnvelope(ctx, env)
	if err != nil {
		return 0, err
	}
	s.index[seal] = idx
	return idx, nil
}

func (s *lossyStore) setLost(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost = err
}

func (s *lossyStore) setRefuse(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = err
}

// restore regains the quorum: the mempool is committed.
func (s *lossyStore) restore(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost = nil
	for _, env := range s.mempool {
		if _, err := s.commitLocked(t.Context(), env); err != nil {
			t.Fatal(err)
		}
	}
	s.mempool = nil
}

// last returns the envelope of the latest submission.
func (s *lossyStore) last(t *testing.T) ledger.Envelope {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.submitted) == 0 {
		t.Fatal("nothing submitted")
	}
	return s.submitted[len(s.submitted)-1]
}

func sameEnvelope(a, b ledger.Envelope) bool {
	return bytes.Equal(a.Header, b.Header) && bytes.Equal(a.Sealed, b.Sealed) && bytes.Equal(a.Clear, b.Clear)
}

func openLossy(t *testing.T) (*ledger.Node, *lossyStore) {
	t.Helper()
	s := newLossyStore()
	n, err := ledger.OpenNode(t.Context(), s, ledgertest.Identity("gw-a"))
	if err != nil {
		t.Fatal(err)
	}
	return n, s
}

// registrations counts the record.registered entries of record id in
// the log, as the node reads them.
func registrations(t *testing.T, n *ledger.Node, id string) int {
	t.Helper()
	size, err := n.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	es, err := n.Read(t.Context(), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, e := range es {
		if b, ok := e.Body.(*ledger.RecordRegistered); ok && b.RecordID == id {
			count++
		}
	}
	return count
}

// A retry of an append whose outcome is unknown (the store may have
// submitted it) submits the first envelope again, byte for byte: the
// log ends with one entry, and the retry answers with its index, whether
// the quorum came back before the retry or after it.
func TestRetryOfUnknownOutcomeResubmitsTheEnvelope(t *testing.T) {
	e := ledgertest.Entry(2) // record.registered rec-2
	id := e.Body.(*ledger.RecordRegistered).RecordID
	for name, lost := range map[string]error{
		"unavailable":   ledger.ErrUnavailable,
		"context ended": fmt.Errorf("entry not committed: %w", context.DeadlineExceeded),
	} {
		for _, retryWhileLost := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/retry while lost %v", name, retryWhileLost), func(t *testing.T) {
				n, s := openLossy(t)
				s.setLost(lost)
				if _, err := n.Append(t.Context(), e); !ledger.OutcomeUnknown(err) {
					t.Fatalf("first append: err = %v, want an unknown outcome", err)
				}
				first := s.last(t)
				if got := n.Unsettled(); got != 1 {
					t.Fatalf("Unsettled() = %d after an unknown outcome, want 1", got)
				}
				if retryWhileLost {
					if _, err := n.Append(t.Context(), e); !ledger.OutcomeUnknown(err) {
						t.Fatalf("retry while lost: err = %v, want an unknown outcome", err)
					}
					if !sameEnvelope(s.last(t), first) {
						t.Fatal("the retry while lost sealed a new envelope")
					}
				}
				s.restore(t)
				idx, err := n.Append(t.Context(), e)
				if err != nil {
					t.Fatalf("retry after restore: %v", err)
				}
				if !sameEnvelope(s.last(t), first) {
					t.Fatal("the retry sealed a new envelope")
				}
				if got := registrations(t, n, id); got != 1 {
					t.Fatalf("%d registrations of %s in the log, want 1", got, id)
				}
				if got := n.Unsettled(); got != 0 {
					t.Errorf("Unsettled() = %d once committed, want 0", got)
				}
				got, err := n.Read(t.Context(), idx, idx+1)
				if err != nil {
					t.Fatal(err)
				}
				if b, ok := got[0].Body.(*ledger.RecordRegistered); !ok || b.RecordID != id {
					t.Fatalf("entry %d is %s %#v, want the registration of %s", idx, got[0].Type, got[0].Body, id)
				}
				// Settled: a later append of the same entry is a new write.
				if _, err := n.Append(t.Context(), e); err != nil {
					t.Fatal(err)
				}
				if sameEnvelope(s.last(t), first) {
					t.Error("an append after the outcome was known reused the envelope")
				}
			})
		}
	}
}

// Another entry is another write: it is sealed afresh even while an
// earlier one is unsettled.
func TestRetryOtherContentSealsAnew(t *testing.T) {
	n, s := openLossy(t)
	s.setLost(ledger.ErrUnavailable)
	a := ledgertest.Entry(2)
	b := ledgertest.Entry(6) // record.registered rec-6
	if _, err := n.Append(t.Context(), a); !ledger.OutcomeUnknown(err) {
		t.Fatalf("append a: %v", err)
	}
	ea := s.last(t)
	if _, err := n.Append(t.Context(), b); !ledger.OutcomeUnknown(err) {
		t.Fatalf("append b: %v", err)
	}
	eb := s.last(t)
	if bytes.Equal(ea.Header, eb.Header) {
		t.Fatal("two entries share an envelope")
	}
	if got := n.Unsettled(); got != 2 {
		t.Fatalf("Unsettled() = %d, want 2", got)
	}
}

// An append refused before it was submitted has a known outcome: its
// envelope is not kept, and the next append seals a new one.
func TestRetryForgetsRefused(t *testing.T) {
	n, s := openLossy(t)
	e := ledgertest.Entry(2)
	s.setLost(ledger.ErrUnavailable)
	if _, err := n.Append(t.Context(), e); !ledger.OutcomeUnknown(err) {
		t.Fatalf("first append: %v", err)
	}
	first := s.last(t)
	refused := errors.New("refused by the ledger application")
	s.setRefuse(refused)
	if _, err := n.Append(t.Context(), e); !errors.Is(err, refused) || ledger.OutcomeUnknown(err) {
		t.Fatalf("refused append: err = %v", err)
	}
	if got := n.Unsettled(); got != 0 {
		t.Fatalf("Unsettled() = %d after a refusal, want 0", got)
	}
	s.setRefuse(nil)
	if _, err := n.Append(t.Context(), e); !ledger.OutcomeUnknown(err) {
		t.Fatalf("append after the refusal: %v", err)
	}
	if sameEnvelope(s.last(t), first) {
		t.Error("a refused envelope was submitted again")
	}
}

// The node keeps at most its cap of unsettled envelopes, least recently
// used out; an entry pushed out is sealed afresh on its retry.
func TestRetryUnsettledCap(t *testing.T) {
	n, s := openLossy(t)
	n.SetUnsettledCap(2)
	s.setLost(ledger.ErrUnavailable)
	envs := map[int]ledger.Envelope{}
	for _, i := range []int{10, 14, 18} { // record registrations
		if _, err := n.Append(t.Context(), ledgertest.Entry(i)); !ledger.OutcomeUnknown(err) {
			t.Fatalf("append %d: %v", i, err)
		}
		envs[i] = s.last(t)
	}
	if got := n.Unsettled(); got != 2 {
		t.Fatalf("Unsettled() = %d, want the cap 2", got)
	}
	for _, c := range []struct {
		n    int
		same bool
	}{{18, true}, {14, true}, {10, false}} {
		if _, err := n.Append(t.Context(), ledgertest.Entry(c.n)); !ledger.OutcomeUnknown(err) {
			t.Fatalf("retry %d: %v", c.n, err)
		}
		if got := sameEnvelope(s.last(t), envs[c.n]); got != c.same {
			t.Errorf("retry of %d reused its envelope: %v, want %v", c.n, got, c.same)
		}
	}
	if got := n.Unsettled(); got != 2 {
		t.Errorf("Unsettled() = %d, want the cap 2", got)
	}
}

func attestation(sig string) ledger.Attestation {
	return ledger.Attestation{Kind: ledger.AttestationWebAuthn, CredentialID: "Y3JlZC0x",
		AuthenticatorData: "YXV0aA", ClientDataJSON: "Y2xpZW50", Signature: sig}
}

// A prepared entry (a patient-signed change): preparing the same entry
// again while its append is unsettled gives the same statement (the same
// challenge), and the same statement with the same attestations is
// submitted as the same envelope; other attestations make another.
func TestRetryPreparedWithAttestations(t *testing.T) {
	n, s := openLossy(t)
	e := ledgertest.Entry(1) // consent.granted, a patient's
	s.setLost(ledger.ErrUnavailable)
	p, err := n.Prepare(e)
	if err != nil {
		t.Fatal(err)
	}
	att := []ledger.Attestation{attestation("c2lnLTE")}
	if _, err := n.AppendPrepared(t.Context(), p, att); !ledger.OutcomeUnknown(err) {
		t.Fatalf("first append: %v", err)
	}
	first := s.last(t)
	again, err := n.Prepare(e)
	if err != nil {
		t.Fatal(err)
	}
	if again.Commitment() != p.Commitment() {
		t.Fatal("preparing an unsettled entry again gave another statement")
	}
	if _, err := n.AppendPrepared(t.Context(), again, att); !ledger.OutcomeUnknown(err) {
		t.Fatalf("retry: %v", err)
	}
	if !sameEnvelope(s.last(t), first) {
		t.Fatal("the retry with the same attestations sealed a new envelope")
	}
	s.restore(t)
	idx, err := n.AppendPrepared(t.Context(), p, att)
	if err != nil {
		t.Fatal(err)
	}
	if !sameEnvelope(s.last(t), first) {
		t.Fatal("the retry after restore sealed a new envelope")
	}
	o, err := n.Open(t.Context(), idx)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Opening.Attestations) != 1 || o.Opening.Attestations[0] != att[0] {
		t.Errorf("entry %d has attestations %v, want %v", idx, o.Opening.Attestations, att)
	}

	// Other attestations over a fresh unsettled statement: another header.
	s.setLost(ledger.ErrUnavailable)
	e2 := ledgertest.Entry(5)
	p2, err := n.Prepare(e2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.AppendPrepared(t.Context(), p2, att); !ledger.OutcomeUnknown(err) {
		t.Fatalf("append: %v", err)
	}
	one := s.last(t)
	if _, err := n.AppendPrepared(t.Context(), p2, []ledger.Attestation{attestation("c2lnLTI")}); !ledger.OutcomeUnknown(err) {
		t.Fatalf("append with other attestations: %v", err)
	}
	if bytes.Equal(s.last(t).Header, one.Header) {
		t.Error("other attestations were submitted under the first header")
	}
}

// hidden hides the store's RepeatAnswerer (only ledger.Store's methods
// are promoted).
type hidden struct{ ledger.Store }

// Over a store that does not answer repeats (the embedded gormlog), the
// node keeps nothing: resubmitting there would append the entry twice.
func TestRetryNeedsRepeatAnswerer(t *testing.T) {
	s := newLossyStore()
	n, err := ledger.OpenNode(t.Context(), hidden{s}, ledgertest.Identity("gw-a"))
	if err != nil {
		t.Fatal(err)
	}
	s.setLost(ledger.ErrUnavailable)
	e := ledgertest.Entry(2)
	if _, err := n.Append(t.Context(), e); !ledger.OutcomeUnknown(err) {
		t.Fatalf("append: %v", err)
	}
	first := s.last(t)
	if got := n.Unsettled(); got != 0 {
		t.Fatalf("Unsettled() = %d, want 0", got)
	}
	if _, err := n.Append(t.Context(), e); !ledger.OutcomeUnknown(err) {
		t.Fatalf("retry: %v", err)
	}
	if sameEnvelope(s.last(t), first) {
		t.Error("resubmitted to a store that does not answer repeats")
	}
}

// TestRetryKeyOnlyOverRepeatAnswerers: Prepare computes an entry's retry
// key (a v1 encoding and a hash) only over a store that answers repeats,
// the only kind over which a node keeps unsettled entries; the embedded
// log's node skips it.
func TestRetryKeyOnlyOverRepeatAnswerers(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		store ledger.Store
		want  bool
	}{
		"repeat answerer": {newLossyStore(), true},
		"embedded":        {&ledgertest.MemStore{}, false},
	} {
		n, err := ledger.OpenNode(ctx, tc.store, ledgertest.Identity("gw-a"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := n.Prepare(ledgertest.Entry(0))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.RetryKeyed(); got != tc.want {
			t.Errorf("%s: retry key computed = %v, want %v", name, got, tc.want)
		}
		if _, err := n.AppendPrepared(ctx, p, nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		n.Close()
	}
}
