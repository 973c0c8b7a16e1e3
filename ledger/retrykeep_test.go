package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/internal/testscale"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/ledger/unsettledstore"
)

// gateway is one run of a gateway: its node over the shared lossy store
// (the consortium, whose mempools outlive the gateway) with its keeper
// over the gateway's own database, opened from dsn.
type gateway struct {
	node  *ledger.Node
	keep  *unsettledstore.Store
	stats ledger.KeepStats
}

// start opens a gateway run of identity id (the same keys every run)
// over s with the database at dsn (closed when the test ends; a crash
// is the run simply dropped).
func start(t *testing.T, s ledger.Store, id ledger.Identity, dsn string, limit int) *gateway {
	t.Helper()
	db, err := database.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	keep, err := unsettledstore.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ledger.OpenNode(t.Context(), s, id)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := n.KeepDurably(t.Context(), keep, limit)
	if err != nil {
		t.Fatalf("keep durably: %v", err)
	}
	return &gateway{node: n, keep: keep, stats: stats}
}

// settled deletes the rows of settled envelopes (SettleCommitted) and
// returns how many the table still holds.
func (g *gateway) settled(t *testing.T) int {
	t.Helper()
	if _, err := g.node.SettleCommitted(t.Context()); err != nil {
		t.Fatal(err)
	}
	return g.kept(t)
}

// kept is how many envelopes the gateway's table holds.
func (g *gateway) kept(t *testing.T) int {
	t.Helper()
	k, err := g.keep.Kept(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(k)
}

// A gateway restarts between an append whose outcome is unknown and its
// retry: the retry submits the first envelope, byte for byte, whether
// the quorum came back before it or not, and the log ends with one
// entry. The kept row is gone once the outcome is known.
func TestKeptEnvelopeSurvivesRestart(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		e := ledgertest.Entry(2) // record.registered rec-2
		recID := e.Body.(*ledger.RecordRegistered).RecordID
		s, id := newLossyStore(), ledgertest.Identity("gw-a")
		g1 := start(t, s, id, dsn, 0)
		s.setLost(ledger.ErrUnavailable)
		if _, err := g1.node.Append(t.Context(), e); !ledger.OutcomeUnknown(err) {
			t.Fatalf("first append: err = %v, want an unknown outcome", err)
		}
		first := s.last(t)
		if got := g1.kept(t); got != 1 {
			t.Fatalf("%d rows kept after an unknown outcome, want 1", got)
		}

		// Restart (the first run is dropped): the envelope is loaded.
		g2 := start(t, s, id, dsn, 0)
		if g2.stats != (ledger.KeepStats{Kept: 1}) || g2.node.Unsettled() != 1 || g2.node.Kept() != 1 {
			t.Fatalf("after restart: %+v, Unsettled() = %d, Kept() = %d; want one kept", g2.stats, g2.node.Unsettled(), g2.node.Kept())
		}
		// A retry while the quorum is still lost resubmits it.
		if _, err := g2.node.Append(t.Context(), e); !ledger.OutcomeUnknown(err) {
			t.Fatalf("retry while lost: %v", err)
		}
		if !sameEnvelope(s.last(t), first) {
			t.Fatal("the retry after a restart sealed a new envelope")
		}
		// Quorum back: the mempool commits; the retry answers its index.
		s.restore(t)
		idx, err := g2.node.Append(t.Context(), e)
		if err != nil {
			t.Fatalf("retry after restore: %v", err)
		}
		if !sameEnvelope(s.last(t), first) {
			t.Fatal("the retry after restore sealed a new envelope")
		}
		if got := registrations(t, g2.node, recID); got != 1 {
			t.Fatalf("%d registrations of %s, want 1", got, recID)
		}
		got, err := g2.node.Read(t.Context(), idx, idx+1)
		if err != nil {
			t.Fatal(err)
		}
		if b, ok := got[0].Body.(*ledger.RecordRegistered); !ok || b.RecordID != recID {
			t.Fatalf("entry %d is %s, want the registration of %s", idx, got[0].Type, recID)
		}
		if g2.node.Kept() != 0 || g2.node.Unsettled() != 0 {
			t.Errorf("settled, yet kept: Kept() %d, Unsettled() %d", g2.node.Kept(), g2.node.Unsettled())
		}
		// Its row goes with the next batch; a crash before that leaves
		// it, and the next start finds its entry committed.
		g3 := start(t, s, id, dsn, 0)
		if g3.stats != (ledger.KeepStats{Committed: 1}) || g3.kept(t) != 0 || g3.node.Unsettled() != 0 {
			t.Errorf("restart after the commit: %+v, %d rows, Unsettled() %d; want it settled", g3.stats, g3.kept(t), g3.node.Unsettled())
		}
	})
}

// A gateway crashes after it submitted an envelope and before any answer
// came: the envelope was kept before it left the node, so the next run
// has it and the retry resubmits it.
func TestKeptBeforeSubmission(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		e := ledgertest.Entry(1) // consent.granted c-1
		s, id := newLossyStore(), ledgertest.Identity("gw-a")
		g1 := start(t, s, id, dsn, 0)
		s.setLost(ledger.ErrUnavailable)
		inMempool, crash := make(chan struct{}), make(chan struct{})
		s.mu.Lock()
		s.onLost = func(ledger.Envelope) {
			close(inMempool)
			<-crash // the first run never hears back
		}
		s.mu.Unlock()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = g1.node.Append(ctx, e)
		}()
		t.Cleanup(func() { close(crash); cancel(); <-done })
		select {
		case <-inMempool:
		case <-time.After(testscale.Timeout(30 * time.Second)):
			t.Fatal("the append did not reach the store")
		}
		s.mu.Lock()
		s.onLost = nil
		s.mu.Unlock()
		first := s.last(t)

		g2 := start(t, s, id, dsn, 0) // the first run is still stuck: crashed
		if g2.stats.Kept != 1 {
			t.Fatalf("after the crash: %+v, want the submitted envelope kept", g2.stats)
		}
		s.restore(t)
		if _, err := g2.node.Append(t.Context(), e); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if !sameEnvelope(s.last(t), first) {
			t.Fatal("the retry after the crash sealed a new envelope")
		}
		if size, _ := s.Size(t.Context()); size != 2 { // gateway.registered, the grant
			t.Errorf("log size %d, want 2 (one grant)", size)
		}
	})
}

// An envelope whose entry was committed while the gateway was down is
// settled at start; without a store that finds entries by seal it is
// kept, and its retry is answered with the first index.
func TestKeptEnvelopeCommittedWhileDown(t *testing.T) {
	for name, finds := range map[string]bool{"finder": true, "no finder": false} {
		t.Run(name, func(t *testing.T) {
			dsn := databasetest.SQLiteDSN(t)
			e := ledgertest.Entry(6)
			recID := e.Body.(*ledger.RecordRegistered).RecordID
			s, id := newLossyStore(), ledgertest.Identity("gw-a")
			var store ledger.Store = s
			if !finds {
				store = repeatOnly{s}
			}
			g1 := start(t, store, id, dsn, 0)
			s.setLost(ledger.ErrUnavailable)
			if _, err := g1.node.Append(t.Context(), e); !ledger.OutcomeUnknown(err) {
				t.Fatalf("append: %v", err)
			}
			first := s.last(t)
			s.restore(t) // committed while no gateway runs

			g2 := start(t, store, id, dsn, 0)
			if !finds {
				if g2.stats != (ledger.KeepStats{Kept: 1}) {
					t.Fatalf("start: %+v, want it kept", g2.stats)
				}
				if _, err := g2.node.Append(t.Context(), e); err != nil {
					t.Fatal(err)
				}
				if !sameEnvelope(s.last(t), first) {
					t.Fatal("the retry sealed a new envelope")
				}
			} else if g2.stats != (ledger.KeepStats{Committed: 1}) || g2.node.Unsettled() != 0 {
				t.Fatalf("start: %+v, Unsettled() = %d, want it settled", g2.stats, g2.node.Unsettled())
			}
			if got := g2.settled(t); got != 0 {
				t.Errorf("%d rows kept, want 0", got)
			}
			if got := registrations(t, g2.node, recID); got != 1 {
				t.Errorf("%d registrations, want 1", got)
			}
		})
	}
}

// repeatOnly answers repeats but finds no entry by seal.
type repeatOnly struct{ ledger.Store }

func (repeatOnly) AnswersRepeats() {}

// At its limit the node refuses a new write before submitting it
// (ErrUnsettledFull, a 503) rather than submit one it could not keep;
// retries of kept envelopes still go through, and once one settles a new
// write is accepted. A restart over more kept envelopes than the limit
// keeps them all.
func TestKeptLimit(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		s, id := newLossyStore(), ledgertest.Identity("gw-a")
		g := start(t, s, id, dsn, 2)
		s.setLost(ledger.ErrUnavailable)
		envs := map[int]ledger.Envelope{}
		for _, i := range []int{10, 14} {
			if _, err := g.node.Append(t.Context(), ledgertest.Entry(i)); !ledger.OutcomeUnknown(err) {
				t.Fatalf("append %d: %v", i, err)
			}
			envs[i] = s.last(t)
		}
		before := s.submissions()
		_, err := g.node.Append(t.Context(), ledgertest.Entry(18))
		if !errors.Is(err, ledger.ErrUnsettledFull) || !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("append beyond the limit: %v, want ErrUnsettledFull", err)
		}
		if s.submissions() != before {
			t.Fatal("the refused write was submitted")
		}
		if _, err := g.node.Append(t.Context(), ledgertest.Entry(10)); !ledger.OutcomeUnknown(err) {
			t.Fatalf("retry at the limit: %v", err)
		}
		if !sameEnvelope(s.last(t), envs[10]) {
			t.Fatal("the retry at the limit sealed a new envelope")
		}
		// A restart with a lower limit keeps both, and refuses a new
		// write while neither is known.
		g1 := start(t, s, id, dsn, 1)
		if g1.stats.Kept != 2 || g1.node.Unsettled() != 2 {
			t.Fatalf("restart over the limit: %+v, Unsettled() = %d, want both kept", g1.stats, g1.node.Unsettled())
		}
		if _, err := g1.node.Append(t.Context(), ledgertest.Entry(18)); !errors.Is(err, ledger.ErrUnsettledFull) {
			t.Fatalf("new write over the limit after the restart: %v, want ErrUnsettledFull", err)
		}
		s.restore(t)
		if _, err := g1.node.Append(t.Context(), ledgertest.Entry(14)); err != nil {
			t.Fatal(err)
		}
		if !sameEnvelope(s.last(t), envs[14]) {
			t.Fatal("the retry after the restart sealed a new envelope")
		}
		// 10 is committed too (no retry came): the new write settles it
		// and goes through.
		if _, err := g1.node.Append(t.Context(), ledgertest.Entry(18)); err != nil {
			t.Fatalf("new write once the kept ones committed: %v", err)
		}
		if got := g1.settled(t); got != 0 {
			t.Errorf("%d rows kept, want 0", got)
		}
		if got := registrations(t, g1.node, "rec-10"); got != 1 {
			t.Errorf("%d registrations of rec-10, want 1", got)
		}
	})
}

// A refused envelope is no longer kept; access decisions, which no retry
// repeats (each has its own request ID), are not kept at all.
func TestKeptRefusedAndAccessDecisions(t *testing.T) {
	dsn := databasetest.SQLiteDSN(t)
	s, id := newLossyStore(), ledgertest.Identity("gw-a")
	g := start(t, s, id, dsn, 0)
	s.setLost(ledger.ErrUnavailable)
	if _, err := g.node.Append(t.Context(), ledgertest.Entry(2)); !ledger.OutcomeUnknown(err) {
		t.Fatal(err)
	}
	refused := errors.New("refused by the ledger application")
	s.setRefuse(refused)
	if _, err := g.node.Append(t.Context(), ledgertest.Entry(2)); !errors.Is(err, refused) {
		t.Fatalf("refused append: %v", err)
	}
	if got := g.kept(t); got != 0 || g.node.Kept() != 0 {
		t.Fatalf("%d rows (Kept() %d) after the refusal, want 0", got, g.node.Kept())
	}
	s.setRefuse(nil)
	if _, err := g.node.Append(t.Context(), ledgertest.Entry(4)); !ledger.OutcomeUnknown(err) { // access.decided
		t.Fatal(err)
	}
	if got := g.kept(t); got != 0 || g.node.Unsettled() != 0 {
		t.Errorf("an access decision: %d rows kept, Unsettled() = %d; want none", got, g.node.Unsettled())
	}
}

// A write whose retry found it on the ledger appended nothing, so its
// envelope stays kept until SettleCommitted finds its entry in the log;
// at the limit, a new write settles those first instead of being refused.
func TestSettleCommitted(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		s, id := newLossyStore(), ledgertest.Identity("gw-a")
		g := start(t, s, id, dsn, 2)
		s.setLost(ledger.ErrUnavailable)
		for _, i := range []int{10, 14} {
			if _, err := g.node.Append(t.Context(), ledgertest.Entry(i)); !ledger.OutcomeUnknown(err) {
				t.Fatalf("append %d: %v", i, err)
			}
		}
		if n, err := g.node.SettleCommitted(t.Context()); err != nil || n != 0 {
			t.Fatalf("SettleCommitted before any commit = %d, %v; want 0", n, err)
		}
		s.restore(t) // both commit; no retry comes
		if n, err := g.node.SettleCommitted(t.Context()); err != nil || n != 2 {
			t.Fatalf("SettleCommitted = %d, %v; want 2", n, err)
		}
		if g.kept(t) != 0 || g.node.Kept() != 0 || g.node.Unsettled() != 0 {
			t.Fatalf("settled, yet kept: table %d, Kept() %d, Unsettled() %d", g.kept(t), g.node.Kept(), g.node.Unsettled())
		}

		// At the limit with committed ones kept, a new write goes through.
		s.setLost(ledger.ErrUnavailable)
		for _, i := range []int{18, 22} {
			if _, err := g.node.Append(t.Context(), ledgertest.Entry(i)); !ledger.OutcomeUnknown(err) {
				t.Fatalf("append %d: %v", i, err)
			}
		}
		s.restore(t)
		if _, err := g.node.Append(t.Context(), ledgertest.Entry(26)); err != nil {
			t.Fatalf("a new write at the limit, the kept ones committed: %v", err)
		}
		if got := g.settled(t); got != 0 {
			t.Errorf("%d rows kept, want 0", got)
		}
	})
}

// BenchmarkAppendKept is the cost of keeping: appends of record
// registrations to a store that commits at once, with and without a
// keeper on SQLite (one insert before the submission, one delete after
// the answer).
func BenchmarkAppendKept(b *testing.B) {
	for _, keep := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory", true: "sqlite"}[keep], func(b *testing.B) {
			s := newLossyStore()
			n, err := ledger.OpenNode(b.Context(), s, ledgertest.Identity("gw-a"))
			if err != nil {
				b.Fatal(err)
			}
			if keep {
				db, err := database.Open(b.Context(), b.TempDir()+"/bench.db")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = database.Close(db) })
				k, err := unsettledstore.Open(b.Context(), db)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := n.KeepDurably(b.Context(), k, 0); err != nil {
					b.Fatal(err)
				}
			}
			i := 0
			for b.Loop() {
				i++
				if _, err := n.Append(b.Context(), ledgertest.Entry(4*i+2)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Rows of committed entries are deleted in batches, not one by one; a
// batch never takes a row whose outcome is unknown.
func TestKeptReleasedInBatches(t *testing.T) {
	s, id := newLossyStore(), ledgertest.Identity("gw-a")
	g := start(t, s, id, databasetest.SQLiteDSN(t), 0)
	s.setLost(ledger.ErrUnavailable)
	if _, err := g.node.Append(t.Context(), ledgertest.Entry(2)); !ledger.OutcomeUnknown(err) {
		t.Fatal(err)
	}
	s.setLost(nil)
	const n = 70
	for i := range n {
		if _, err := g.node.Append(t.Context(), ledgertest.Entry(4*i+6)); err != nil {
			t.Fatal(err)
		}
	}
	if got := g.kept(t); got < 2 || got > n+1-ledger.ReleaseBatch {
		t.Errorf("%d rows after %d commits and one unknown outcome, want the unknown one and at most %d more", got, n, n-ledger.ReleaseBatch)
	}
	if got := g.settled(t); got != 1 || g.node.Kept() != 1 {
		t.Errorf("after SettleCommitted: %d rows, Kept() %d; want the unknown one", got, g.node.Kept())
	}
}

// The store closing while an append waits (the gateway stops) leaves its
// outcome unknown: the envelope stays kept for the next run.
func TestKeptWhenClosedWhileWaiting(t *testing.T) {
	dsn := databasetest.SQLiteDSN(t)
	s, id := newLossyStore(), ledgertest.Identity("gw-a")
	g := start(t, s, id, dsn, 0)
	s.setLost(fmt.Errorf("%w (entry not acknowledged)", ledger.ErrClosed))
	if _, err := g.node.Append(t.Context(), ledgertest.Entry(2)); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("append: %v, want ErrClosed", err)
	}
	first := s.last(t)
	if got := g.kept(t); got != 1 {
		t.Fatalf("%d rows kept after the store closed, want 1", got)
	}
	s.setLost(nil)
	g2 := start(t, s, id, dsn, 0)
	if _, err := g2.node.Append(t.Context(), ledgertest.Entry(2)); err != nil {
		t.Fatal(err)
	}
	if !sameEnvelope(s.last(t), first) {
		t.Error("the retry after the stop sealed a new envelope")
	}
}
