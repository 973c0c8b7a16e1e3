package access_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
)

// mempool makes the world's log behave as a consortium without quorum:
// appends are accepted (held) and fail with ledger.ErrUnavailable; commit
// appends them after all, drop loses them.
type mempool struct {
	w       *world
	mu      sync.Mutex
	holding bool
	held    []ledger.Entry
}

func (w *world) loseQuorum() *mempool {
	m := &mempool{w: w, holding: true}
	w.log.setFail(func(e ledger.Entry) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !m.holding {
			return nil
		}
		m.held = append(m.held, e)
		return fmt.Errorf("append: entry not committed: %w", ledger.ErrUnavailable)
	})
	return m
}

// restore ends the outage; commit decides whether the held entries are
// committed (in order) or were lost.
func (m *mempool) restore(t *testing.T, commit bool) {
	t.Helper()
	m.mu.Lock()
	held := m.held
	m.held, m.holding = nil, false
	m.mu.Unlock()
	if !commit {
		return
	}
	for _, e := range held {
		if _, err := m.w.log.MemLog.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func (m *mempool) heldBodies() []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []any
	for _, e := range m.held {
		out = append(out, e.Body)
	}
	return out
}

// TestGrantOnceCommittedLate: a grant answered "unavailable" is committed
// after all; the retry of the same write finds it and returns it with its
// receipt, appending nothing. A grant that was lost is submitted again,
// identical (same ID, same period) even though the clock moved.
func TestGrantOnceCommittedLate(t *testing.T) {
	for _, committed := range []bool{true, false} {
		t.Run(fmt.Sprintf("committed=%v", committed), func(t *testing.T) {
			w := newWorld(t, consent.Policy{})
			ps := pseudonym("pat-1")
			write := access.Write{ID: consent.NewID(), At: t0}
			m := w.loseQuorum()
			if _, _, err := w.GrantOnce(t.Context(), ps, treatB, write); !errors.Is(err, ledger.ErrUnavailable) {
				t.Fatalf("grant without quorum: %v", err)
			}
			first := m.heldBodies()
			m.restore(t, committed)
			w.setNow(t0.Add(time.Hour)) // the client retries an hour later

			write.Retry = true
			g, rc, err := w.GrantOnce(t.Context(), ps, treatB, write)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			checkReceipt(t, w.log, rc)
			grants := w.log.decoded(t, ledger.TypeConsentGranted)
			if len(grants) != 1 {
				t.Fatalf("%d consent.granted entries, want 1", len(grants))
			}
			if diff := cmp.Diff(first[0], grants[0].Body); diff != "" {
				t.Errorf("the grant in the log is not the first attempt's (-first +log):\n%s", diff)
			}
			if g.ID != write.ID || g.GrantedIndex != rc.Index || !g.NotBefore.Equal(t0) {
				t.Errorf("grant %+v (receipt %d), want %s from %s", g, rc.Index, write.ID, t0)
			}
			again, rc2, err := w.GrantOnce(t.Context(), ps, treatB, write)
			if err != nil || again.GrantedIndex != g.GrantedIndex || rc2.Index != rc.Index {
				t.Errorf("second retry = %+v, %d, %v", again, rc2.Index, err)
			}
			if n := len(w.log.decoded(t, ledger.TypeConsentGranted)); n != 1 {
				t.Errorf("%d consent.granted entries after the second retry, want 1", n)
			}
		})
	}
}

// TestGrantOnceBothCommitted: a retry while the quorum is still lost is
// still "unavailable"; both submissions then commit. The log holds the
// identical grant twice, the projection one grant, and the next retry
// returns it at the first index.
func TestGrantOnceBothCommitted(t *testing.T) {
	w := newWorld(t, consent.Policy{})
	ps := pseudonym("pat-1")
	write := access.Write{ID: consent.NewID(), At: t0}
	m := w.loseQuorum()
	for attempt := range 2 {
		write.Retry = attempt > 0
		if _, _, err := w.GrantOnce(t.Context(), ps, treatB, write); !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	m.restore(t, true)
	entries := w.log.decoded(t, ledger.TypeConsentGranted)
	if len(entries) != 2 || !cmp.Equal(entries[0].Body, entries[1].Body) {
		t.Fatalf("entries %+v, want the same grant twice", entries)
	}
	g, rc, err := w.GrantOnce(t.Context(), ps, treatB, write)
	if err != nil {
		t.Fatal(err)
	}
	if first := w.log.base; g.GrantedIndex != first || rc.Index != first {
		t.Errorf("grant at %d, receipt at %d; want the first entry (%d)", g.GrantedIndex, rc.Index, first)
	}
	if gs, _ := w.proj.GrantsFor(t.Context(), ps, "hosp-b", ""); len(gs) != 1 {
		t.Errorf("%d grants projected, want 1", len(gs))
	}
}

// TestGrantOnceFreshAppend: a first attempt under a fixed ID appends at
// once (nothing to look for); the grant has the ID and the period starts
// at the write's first attempt.
func TestGrantOnceFreshAppend(t *testing.T) {
	w := newWorld(t, consent.Policy{})
	w.setNow(t0.Add(time.Minute))
	write := access.Write{ID: consent.NewID(), At: t0}
	g, _, err := w.GrantOnce(t.Context(), pseudonym("pat-1"), treatB, write)
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != write.ID || !g.NotBefore.Equal(t0) {
		t.Errorf("grant %+v", g)
	}
	if _, _, err := w.GrantOnce(t.Context(), pseudonym("pat-1"), treatB, access.Write{ID: "cns_nope"}); err == nil {
		t.Error("a malformed consent ID was accepted")
	}
	// The ID is another patient's: a retry does not hand it over.
	write.Retry = true
	if _, _, err := w.GrantOnce(t.Context(), pseudonym("pat-2"), treatB, write); err == nil {
		t.Error("a retry returned another patient's grant")
	}
}

// TestRevokeOnceCommittedLate: a revocation answered "unavailable" and
// committed later; its retry succeeds with the receipt of that revocation
// and appends nothing, while a fresh revocation of the same consent is
// still a conflict. A lost revocation is appended by the retry.
func TestRevokeOnceCommittedLate(t *testing.T) {
	for _, committed := range []bool{true, false} {
		t.Run(fmt.Sprintf("committed=%v", committed), func(t *testing.T) {
			w := newWorld(t, consent.Policy{})
			ps := pseudonym("pat-1")
			g := w.grant(t, "pat-1", treatB)
			m := w.loseQuorum()
			if _, _, err := w.RevokeOnce(t.Context(), ps, g.ID, access.Write{}); !errors.Is(err, ledger.ErrUnavailable) {
				t.Fatalf("revoke without quorum: %v", err)
			}
			m.restore(t, committed)
			got, rc, err := w.RevokeOnce(t.Context(), ps, g.ID, access.Write{Retry: true})
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			checkReceipt(t, w.log, rc)
			revs := w.log.decoded(t, ledger.TypeConsentRevoked)
			if len(revs) != 1 || !got.Revoked || got.RevokedIndex != rc.Index {
				t.Errorf("%d revocations in the log; grant %+v, receipt %d", len(revs), got, rc.Index)
			}
			if again, rc2, err := w.RevokeOnce(t.Context(), ps, g.ID, access.Write{Retry: true}); err != nil || rc2.Index != rc.Index || !again.Revoked {
				t.Errorf("second retry: %d, %v", rc2.Index, err)
			}
			if n := len(w.log.decoded(t, ledger.TypeConsentRevoked)); n != 1 {
				t.Errorf("%d revocations after the second retry, want 1", n)
			}
			if _, _, err := w.Revoke(t.Context(), ps, g.ID); !errors.Is(err, consent.ErrAlreadyRevoked) {
				t.Errorf("a fresh revocation of a revoked consent: %v, want ErrAlreadyRevoked", err)
			}
			if _, _, err := w.RevokeOnce(t.Context(), pseudonym("pat-2"), g.ID, access.Write{Retry: true}); !errors.Is(err, consent.ErrNotFound) {
				t.Errorf("another patient's retry: %v, want ErrNotFound", err)
			}
		})
	}
}
