package ledgertest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/ledger"
)

// Projection is one fresh, empty instance of a projection under the
// ApplierSuite.
type Projection struct {
	ledger.Applier
	// Reset empties the projection and rewinds it to 0.
	Reset func(ctx context.Context) error
	// State returns the projection's whole queryable state, compared with
	// cmp.Diff (and CmpOptions).
	State func(ctx context.Context) (any, error)
	// FailWrites makes the projection's storage fail its n-th write from
	// now on (counting from 1) and every later one, until restore is
	// called. Nil skips the atomicity test.
	FailWrites func(n int) (restore func())
}

// ApplierSuite is the conformance suite for ledger.Applier projections:
// entries before the cursor are skipped, a gap is an error, a failed
// Apply changes nothing, and a rebuild equals the live projection. Every
// projection runs it, on SQLite and PostgreSQL:
//
//	ledgertest.ApplierSuite{New: ..., Entries: ...}.Run(t)
type ApplierSuite struct {
	// New returns a fresh, empty projection.
	New func(t *testing.T) Projection
	// Entries feed the projection (Entries[i] at index i). Give at least
	// four, most of them of types the projection applies.
	Entries []ledger.Entry
	// CmpOptions compare states.
	CmpOptions []cmp.Option
}

// Run runs the suite.
func (s ApplierSuite) Run(t *testing.T) {
	t.Helper()
	if len(s.Entries) < 4 {
		t.Fatalf("ApplierSuite needs at least 4 entries, has %d", len(s.Entries))
	}
	t.Run("Empty", s.testEmpty)
	t.Run("SkipBeforeCursor", s.testSkipBeforeCursor)
	t.Run("Gap", s.testGap)
	t.Run("Atomic", s.testAtomic)
	t.Run("RebuildEqualsLive", s.testRebuild)
}

func (s ApplierSuite) apply(t *testing.T, p Projection, first uint64, es []ledger.Entry) {
	t.Helper()
	if err := p.Apply(t.Context(), first, es); err != nil {
		t.Fatalf("Apply(%d, %d entries): %v", first, len(es), err)
	}
}

func (s ApplierSuite) next(t *testing.T, p Projection) uint64 {
	t.Helper()
	n, err := p.Next(t.Context())
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return n
}

func (s ApplierSuite) state(t *testing.T, p Projection) any {
	t.Helper()
	st, err := p.State(t.Context())
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	return st
}

// reference is the state of a fresh projection fed es[:n] in one Apply.
func (s ApplierSuite) reference(t *testing.T, n int) any {
	t.Helper()
	p := s.New(t)
	s.apply(t, p, 0, s.Entries[:n])
	return s.state(t, p)
}

func (s ApplierSuite) same(t *testing.T, what string, want, got any) {
	t.Helper()
	if diff := cmp.Diff(want, got, s.CmpOptions...); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func (s ApplierSuite) testEmpty(t *testing.T) {
	p := s.New(t)
	if n := s.next(t, p); n != 0 {
		t.Errorf("a fresh projection's Next = %d, want 0", n)
	}
	empty := s.state(t, p)
	s.apply(t, p, 0, nil)
	if n := s.next(t, p); n != 0 {
		t.Errorf("Next after applying nothing = %d, want 0", n)
	}
	s.same(t, "state after applying nothing", empty, s.state(t, p))
}

func (s ApplierSuite) testSkipBeforeCursor(t *testing.T) {
	es := s.Entries
	p := s.New(t)
	s.apply(t, p, 0, es[:2])
	s.apply(t, p, 0, es) // overlaps what is applied
	s.apply(t, p, 1, es[1:3])
	s.apply(t, p, uint64(len(es)-1), es[len(es)-1:])
	if n := s.next(t, p); n != uint64(len(es)) {
		t.Errorf("Next = %d, want %d", n, len(es))
	}
	s.same(t, "state after overlapping applies", s.reference(t, len(es)), s.state(t, p))
}

func (s ApplierSuite) testGap(t *testing.T) {
	es := s.Entries
	p := s.New(t)
	s.apply(t, p, 0, es[:1])
	if err := p.Apply(t.Context(), 2, es[2:]); err == nil {
		t.Error("Apply beyond the cursor succeeded")
	}
	if n := s.next(t, p); n != 1 {
		t.Errorf("Next after a refused gap = %d, want 1", n)
	}
	s.same(t, "state after a refused gap", s.reference(t, 1), s.state(t, p))
}

func (s ApplierSuite) testAtomic(t *testing.T) {
	es := s.Entries
	failed := 0
	for _, n := range []int{1, 2, 3} {
		p := s.New(t)
		if p.FailWrites == nil {
			t.Skip("no FailWrites")
		}
		s.apply(t, p, 0, es[:1])
		before := s.state(t, p)
		restore := p.FailWrites(n)
		err := p.Apply(t.Context(), 1, es[1:])
		restore()
		if err == nil {
			// The batch needed fewer writes than n: nothing to test.
			continue
		}
		failed++
		if got := s.next(t, p); got != 1 {
			t.Errorf("Next after a failed Apply (write %d failed) = %d, want 1", n, got)
		}
		s.same(t, "state after a failed Apply", before, s.state(t, p))
		s.apply(t, p, 1, es[1:])
		s.same(t, "state after the retry", s.reference(t, len(es)), s.state(t, p))
	}
	if failed == 0 {
		t.Error("FailWrites never made Apply fail")
	}
}

func (s ApplierSuite) testRebuild(t *testing.T) {
	es := s.Entries
	p := s.New(t)
	for i := range es { // live: one entry at a time
		s.apply(t, p, uint64(i), es[i:i+1])
	}
	live := s.state(t, p)
	if err := p.Reset(t.Context()); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if n := s.next(t, p); n != 0 {
		t.Errorf("Next after Reset = %d, want 0", n)
	}
	s.same(t, "state after Reset", s.reference(t, 0), s.state(t, p))
	for i := 0; i < len(es); i += 3 { // rebuilt: in batches
		s.apply(t, p, uint64(i), es[i:min(i+3, len(es))])
	}
	s.same(t, "rebuilt state (-live +rebuilt)", live, s.state(t, p))
}
