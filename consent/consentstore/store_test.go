package consentstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/consent/consentstore"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

var patients = []string{
	"ps_1111111111111111111111111111111111111111111111111111111111111111",
	"ps_2222222222222222222222222222222222222222222222222222222222222222",
	"ps_3333333333333333333333333333333333333333333333333333333333333333",
}

func newStore(t *testing.T, db *gorm.DB) *consentstore.Store {
	t.Helper()
	s, err := consentstore.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// model is an independent reference for the projection rules (see the
// package documentation): the expected state after a sequence of entries.
type model struct {
	grants map[string]*consent.Grant
	events []consent.AccessEvent // ascending index
}

func newModel() *model { return &model{grants: map[string]*consent.Grant{}} }

func (m *model) apply(index uint64, at time.Time, body any) {
	switch b := body.(type) {
	case *ledger.ConsentGranted:
		if _, dup := m.grants[b.ConsentID]; !dup {
			g := consent.FromLedger(index, at, b)
			m.grants[b.ConsentID] = &g
		}
	case *ledger.ConsentRevoked:
		if g, ok := m.grants[b.ConsentID]; ok && g.Patient == b.Patient && !g.Revoked {
			g.Revoked, g.RevokedIndex, g.RevokedAt = true, index, at.UTC()
		}
	case *ledger.AccessDecided:
		m.events = append(m.events, consent.AccessEventFromLedger(index, at, b))
	}
}

// scenario appends n random entries to log (and to m), calling after each
// append.
func scenario(t *testing.T, rng *rand.Rand, log *memLog, m *model, n int, after func()) {
	t.Helper()
	var ids []string
	for i := range n {
		var body any
		org := "hospital-a" // access decisions: the holder decides
		switch k := rng.IntN(10); {
		case k < 4: // grant, sometimes reusing an ID
			id := fmt.Sprintf("cns_%032x", i)
			if len(ids) > 0 && rng.IntN(8) == 0 {
				id = ids[rng.IntN(len(ids))]
			}
			ids = append(ids, id)
			g := ledger.ConsentGranted{
				ConsentID: id,
				Patient:   patients[rng.IntN(len(patients))],
				Decision:  []string{"permit", "deny"}[rng.IntN(2)],
				Actions:   []string{"read"},
				Purposes:  [][]string{{"HPAYMT"}, {"TREAT"}, {"TREAT", "HRESCH"}}[rng.IntN(3)],
				NotBefore: log.clock.Add(-time.Hour),
				NotAfter:  log.clock.Add(time.Duration(rng.IntN(1000)) * time.Hour),
			}
			switch rng.IntN(3) {
			case 0:
				g.Grantee.Org = []string{"hospital-b", "hospital-c"}[rng.IntN(2)]
			default:
				g.Grantee.Kind = string(auth.Kinds[rng.IntN(len(auth.Kinds))])
			}
			if rng.IntN(2) == 0 {
				g.Categories = []string{"lab"}
			}
			if rng.IntN(4) == 0 {
				g.RecordIDs, g.ResourceTypes = []string{"rec-1", "rec-2"}, []string{"Observation"}
			}
			if g.Decision == "deny" && rng.IntN(3) == 0 {
				g.Purposes = nil // a deny of every purpose
			}
			body, org = &g, "patient:"+g.Patient
		case k < 6: // revoke: existing (maybe twice), wrong patient, unknown
			r := ledger.ConsentRevoked{ConsentID: "cns_unknown", Patient: patients[rng.IntN(len(patients))]}
			if len(ids) > 0 && rng.IntN(6) != 0 {
				r.ConsentID = ids[rng.IntN(len(ids))]
				if g, ok := m.grants[r.ConsentID]; ok && rng.IntN(5) != 0 {
					r.Patient = g.Patient
				}
			}
			body, org = &r, "patient:"+r.Patient
		case k < 9:
			d := &ledger.AccessDecided{
				Requester:  []string{"hospital-b", "hospital-c", "insurer-x"}[rng.IntN(3)],
				RecordID:   fmt.Sprintf("rec-%d", rng.IntN(5)),
				Patient:    patients[rng.IntN(len(patients))],
				Category:   "lab",
				Purpose:    "TREAT",
				Decision:   []string{"permit", "deny"}[rng.IntN(2)],
				Reason:     "deny.no-grant",
				GrantID:    []string{"", "cns_x"}[rng.IntN(2)],
				BreakGlass: rng.IntN(4) == 0,
				RequestID:  fmt.Sprintf("req-%d", i),
			}
			if d.Decision == "permit" {
				d.Reason = "permit.grant"
			}
			body = d
		default: // an entry type the projection skips
			body = &ledger.RecordRegistered{RecordID: "rec-1", Holder: "hospital-a", Patient: patients[0], Category: "lab", Commitment: strings.Repeat("0", 64)}
		}
		index := log.append(t, org, body)
		m.apply(index, log.timeOf(t, index), body)
		after()
	}
}

// state is everything the projection holds, read through its queries.
type state struct {
	Next   uint64
	Grants map[string][]consent.Grant // by patient, oldest first
	Events []consent.AccessEvent      // newest first
}

func dump(t *testing.T, s *consentstore.Store) state {
	t.Helper()
	ctx := t.Context()
	var st state
	var err error
	if st.Next, err = s.Next(ctx); err != nil {
		t.Fatal(err)
	}
	st.Grants = map[string][]consent.Grant{}
	for _, p := range patients {
		if st.Grants[p], err = s.GrantsForPatient(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	st.Events = allEvents(t, s, consent.AuditFilter{}, 7)
	return st
}

// allEvents walks every page of a query.
func allEvents(t *testing.T, s *consentstore.Store, f consent.AuditFilter, limit int) []consent.AccessEvent {
	t.Helper()
	var out []consent.AccessEvent
	page := consent.Page{Limit: limit}
	for range 10000 {
		evs, next, err := s.AuditEvents(t.Context(), f, page)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > limit {
			t.Fatalf("page of %d events, limit %d", len(evs), limit)
		}
		out = append(out, evs...)
		if next == "" {
			return out
		}
		page.Cursor = next
	}
	t.Fatal("pagination does not end")
	return nil
}

func (m *model) state(next uint64) state {
	st := state{Next: next, Grants: map[string][]consent.Grant{}}
	for _, p := range patients {
		var gs []consent.Grant
		for _, g := range m.grants {
			if g.Patient == p {
				gs = append(gs, *g)
			}
		}
		slices.SortFunc(gs, func(a, b consent.Grant) int { return int(a.GrantedIndex) - int(b.GrantedIndex) })
		st.Grants[p] = gs
	}
	st.Events = slices.Clone(m.events)
	slices.Reverse(st.Events)
	return st
}

var cmpState = cmpopts.EquateEmpty()

// TestRebuildEqualsLive feeds a random log through a Follower entry by entry
// (the live projection), checks it against the reference model, then
// resets the projection and rebuilds it from the log in one go: the result
// must be identical.
func TestRebuildEqualsLive(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := newStore(t, db)
		log := newMemLog(t)
		f := ledger.NewFollower(log, s)
		m := newModel()
		rng := rand.New(rand.NewPCG(5, 6))
		n := 400
		if testing.Short() {
			n = 100
		}
		scenario(t, rng, log, m, n, func() {
			if rng.IntN(3) != 0 { // sometimes let entries pile up
				if err := f.SyncAll(ctx); err != nil {
					t.Fatal(err)
				}
			}
		})
		if err := f.SyncAll(ctx); err != nil {
			t.Fatal(err)
		}
		live := dump(t, s)
		if diff := cmp.Diff(m.state(uint64(n)+1), live, cmpState); diff != "" { // +1: the org registration
			t.Fatalf("live projection differs from the model (-model +live):\n%s", diff)
		}
		var revoked, events int
		for _, gs := range live.Grants {
			for _, g := range gs {
				if g.Revoked {
					revoked++
				}
			}
		}
		events = len(live.Events)
		if revoked == 0 || events == 0 {
			t.Fatalf("scenario too thin: %d revoked grants, %d events", revoked, events)
		}

		// GrantsFor is GrantsForPatient narrowed to the grants the
		// requester can see (which are all Decide looks at).
		for _, p := range patients {
			for _, who := range []struct {
				org  string
				kind auth.Kind
			}{{"hospital-b", auth.KindHospital}, {"hospital-c", auth.KindHospital}, {"insurer-x", auth.KindVerifier}, {"hospital-b", ""}, {"", auth.KindRegulator}, {"", ""}} {
				var want []consent.Grant
				for _, g := range live.Grants[p] {
					if g.VisibleTo(who.org, who.kind) {
						want = append(want, g)
					}
				}
				got, err := s.GrantsFor(ctx, p, who.org, who.kind)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got, cmpState); diff != "" {
					t.Errorf("GrantsFor(%s, %q, %q) (-want +got):\n%s", p[:6], who.org, who.kind, diff)
				}
			}
		}

		if err := s.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if empty := dump(t, s); empty.Next != 0 || len(empty.Events) != 0 || len(slices.Concat(slices.Collect(mapValues(empty.Grants))...)) != 0 {
			t.Fatalf("after Reset: %+v", empty)
		}
		if err := f.SyncAll(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(live, dump(t, s), cmpState); diff != "" {
			t.Errorf("rebuilt projection differs from the live one (-live +rebuilt):\n%s", diff)
		}

		// A second store on the same tables sees the same state and has
		// nothing left to apply.
		s2 := newStore(t, db)
		if diff := cmp.Diff(live, dump(t, s2), cmpState); diff != "" {
			t.Errorf("reopened projection differs (-live +reopened):\n%s", diff)
		}
	})
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// TestConcurrentAppliers runs two stores (as two gateway processes would)
// over the same tables, syncing concurrently while entries arrive.
func TestConcurrentAppliers(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		log := newMemLog(t)
		m := newModel()
		rng := rand.New(rand.NewPCG(7, 8))
		followers := []*ledger.Follower{ledger.NewFollower(log, newStore(t, db)), ledger.NewFollower(log, newStore(t, db))}
		const n = 120
		scenario(t, rng, log, m, n, func() {
			if rng.IntN(4) != 0 {
				return
			}
			var wg sync.WaitGroup
			errs := make([]error, len(followers))
			for i, f := range followers {
				wg.Go(func() { errs[i] = f.SyncAll(ctx) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
		})
		for _, f := range followers {
			if err := f.SyncAll(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(m.state(n+1), dump(t, newStore(t, db)), cmpState); diff != "" { // +1: the org registration
			t.Errorf("projection differs from the model (-model +got):\n%s", diff)
		}
	})
}

func TestApply(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		p := patients[0]
		grant := func(id string) ledger.Entry {
			e, _ := ledger.NewEntry("patient:"+p, &ledger.ConsentGranted{
				ConsentID: id, Patient: p, Grantee: ledger.Grantee{Org: "hospital-b"}, Decision: "permit",
				Actions: []string{"read"}, Purposes: []string{"TREAT"},
				NotBefore: time.Unix(100, 0), NotAfter: time.Unix(200, 0),
			})
			e.Time = time.Unix(50, 1)
			return e
		}
		ids := func(s *consentstore.Store) []string {
			gs, err := s.GrantsForPatient(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, g := range gs {
				out = append(out, g.ID)
			}
			return out
		}
		s := newStore(t, db)
		if err := s.Apply(ctx, 1, []ledger.Entry{grant("cns_b")}); !errors.Is(err, consentstore.ErrGap) {
			t.Errorf("Apply beyond the cursor = %v, want ErrGap", err)
		}
		if err := s.Apply(ctx, 0, []ledger.Entry{grant("cns_a"), grant("cns_b")}); err != nil {
			t.Fatal(err)
		}
		// Overlapping batch: the applied prefix is skipped.
		if err := s.Apply(ctx, 1, []ledger.Entry{grant("cns_b"), grant("cns_c")}); err != nil {
			t.Fatal(err)
		}
		// Fully applied batch: nothing happens.
		if err := s.Apply(ctx, 0, []ledger.Entry{grant("cns_x")}); err != nil {
			t.Fatal(err)
		}
		if next, err := s.Next(ctx); err != nil || next != 3 {
			t.Errorf("Next() = %d, %v, want 3", next, err)
		}
		if diff := cmp.Diff([]string{"cns_a", "cns_b", "cns_c"}, ids(s)); diff != "" {
			t.Errorf("grants (-want +got):\n%s", diff)
		}

		// Atomicity: make the cursor update fail; none of the batch may
		// survive.
		var fail atomic.Bool
		errBoom := errors.New("boom")
		err := db.Callback().Update().Before("gorm:update").Register("test:fail-cursor", func(tx *gorm.DB) {
			if fail.Load() && tx.Statement.Table == "consent_projection_cursors" {
				_ = tx.AddError(errBoom)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		fail.Store(true)
		revoke, _ := ledger.NewEntry("patient:"+p, &ledger.ConsentRevoked{ConsentID: "cns_a", Patient: p})
		access, _ := ledger.NewEntry("hospital-a", &ledger.AccessDecided{Requester: "hospital-b", RecordID: "r", Patient: p, Decision: "deny"})
		if err := s.Apply(ctx, 3, []ledger.Entry{grant("cns_d"), revoke, access}); !errors.Is(err, errBoom) {
			t.Fatalf("Apply with a failing cursor update = %v, want %v", err, errBoom)
		}
		if diff := cmp.Diff([]string{"cns_a", "cns_b", "cns_c"}, ids(s)); diff != "" {
			t.Errorf("after a failed Apply, grants (-want +got):\n%s", diff)
		}
		if g, err := s.Grant(ctx, "cns_a"); err != nil || g.Revoked {
			t.Errorf("after a failed Apply, cns_a revoked=%v err=%v", g.Revoked, err)
		}
		if evs, _, err := s.AccessLog(ctx, p, consent.Page{}); err != nil || len(evs) != 0 {
			t.Errorf("after a failed Apply, access log %v, %v", evs, err)
		}
		if next, err := s.Next(ctx); err != nil || next != 3 {
			t.Errorf("after a failed Apply, Next() = %d, %v, want 3", next, err)
		}
		fail.Store(false)
		if err := s.Apply(ctx, 3, []ledger.Entry{grant("cns_d"), revoke, access}); err != nil {
			t.Fatal(err)
		}
		g, err := s.Grant(ctx, "cns_a")
		if err != nil {
			t.Fatal(err)
		}
		if !g.Revoked || g.RevokedIndex != 4 {
			t.Errorf("cns_a: revoked %v at %d, want revoked at 4", g.Revoked, g.RevokedIndex)
		}
		if evs, _, err := s.AccessLog(ctx, p, consent.Page{}); err != nil || len(evs) != 1 || evs[0].Index != 5 {
			t.Errorf("access log %+v, %v, want one event at index 5", evs, err)
		}
	})
}

func TestApplierConformance(t *testing.T) {
	log := newMemLog(t)
	scenario(t, rand.New(rand.NewPCG(7, 8)), log, newModel(), 40, func() {})
	entries, err := log.Decoded()
	if err != nil {
		t.Fatal(err)
	}
	// Entries sealed to other gateways read without a body: skipped.
	for _, at := range []int{3, 17} {
		entries = slices.Insert(entries, at, ledger.Entry{
			Type: []ledger.Type{ledger.TypeConsentGranted, ledger.TypeAccessDecided}[at%2], Version: ledger.CurrentVersion,
			Org: "hospital-z", Author: "gw-elsewhere", Time: entries[at].Time,
		})
	}
	databasetest.EachOpener(t, func(t *testing.T, open func(*testing.T) *gorm.DB) {
		ledgertest.ApplierSuite{
			Entries:    entries,
			CmpOptions: []cmp.Option{cmpState},
			New: func(t *testing.T) ledgertest.Projection {
				db := open(t)
				s := newStore(t, db)
				return ledgertest.Projection{
					Applier:    s,
					Reset:      s.Reset,
					State:      func(context.Context) (any, error) { return dump(t, s), nil },
					FailWrites: func(n int) func() { return databasetest.FailWrites(db, n) },
				}
			},
		}.Run(t)
	})
}
