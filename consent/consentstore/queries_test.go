package consentstore_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/consent/consentstore"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
)

// fixture is a store synced with a log, plus what was appended.
type fixture struct {
	store  *consentstore.Store
	log    *memLog
	follow *ledger.Follower
}

func newFixture(t *testing.T, db *gorm.DB) *fixture {
	t.Helper()
	s := newStore(t, db)
	log := newMemLog(t)
	return &fixture{store: s, log: log, follow: ledger.NewFollower(log, s)}
}

// add appends body and syncs, as a handler does after Append.
func (f *fixture) add(t *testing.T, org string, body any) uint64 {
	t.Helper()
	i := f.log.append(t, org, body)
	if err := f.follow.Sync(t.Context(), i+1); err != nil {
		t.Fatal(err)
	}
	return i
}

func (f *fixture) grant(t *testing.T, g consent.Grant) consent.Grant {
	t.Helper()
	i := f.add(t, "patient:"+g.Patient, g.LedgerBody())
	g.GrantedIndex, g.GrantedAt = i, f.log.timeOf(t, i)
	g.NotBefore, g.NotAfter = g.NotBefore.UTC(), g.NotAfter.UTC()
	return g
}

func testGrant(n int, p string, grantee consent.Grantee) consent.Grant {
	start := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
	return consent.Grant{
		ID:        fmt.Sprintf("cns_%032x", n),
		Patient:   p,
		Grantee:   grantee,
		Effect:    consent.Permit,
		Actions:   []consent.Action{consent.ActionRead},
		Purposes:  []consent.Purpose{consent.PurposeTreatment},
		NotBefore: start,
		NotAfter:  start.AddDate(1, 0, 0),
	}
}

func ids(gs []consent.Grant) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.ID
	}
	return out
}

func TestGrantQueries(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		f := newFixture(t, db)
		p0, p1 := patients[0], patients[1]
		var all []consent.Grant
		grantees := []consent.Grantee{
			{Org: "hospital-b"}, {Kind: auth.KindHospital}, {Kind: auth.KindVerifier}, {Org: "hospital-c"},
		}
		for i := range 9 {
			p := p0
			if i%3 == 2 {
				p = p1
			}
			g := testGrant(i, p, grantees[i%4])
			if i == 4 {
				g.Categories, g.RecordIDs, g.ResourceTypes = []string{"lab", "imaging"}, []string{"rec-1"}, []string{"Observation"}
				g.Effect, g.Purposes = consent.Deny, nil
			}
			all = append(all, f.grant(t, g))
		}
		revokedAt := f.add(t, "patient:"+p0, all[0].RevocationBody())
		all[0].Revoked, all[0].RevokedIndex, all[0].RevokedAt = true, revokedAt, f.log.timeOf(t, revokedAt)

		// Grant by ID, every field round-tripped.
		for _, want := range []consent.Grant{all[0], all[4]} {
			got, err := f.store.Grant(ctx, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Grant(%s) (-want +got):\n%s", want.ID, diff)
			}
		}
		if _, err := f.store.Grant(ctx, "cns_ffffffffffffffffffffffffffffffff"); !errors.Is(err, consent.ErrNotFound) {
			t.Errorf("Grant(unknown) = %v, want ErrNotFound", err)
		}

		// GrantsForPatient: all of them, revoked included, oldest first.
		var wantP0 []consent.Grant
		for _, g := range all {
			if g.Patient == p0 {
				wantP0 = append(wantP0, g)
			}
		}
		got, err := f.store.GrantsForPatient(ctx, p0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantP0, got); diff != "" {
			t.Errorf("GrantsForPatient (-want +got):\n%s", diff)
		}
		if got, err := f.store.GrantsForPatient(ctx, patients[2]); err != nil || len(got) != 0 {
			t.Errorf("GrantsForPatient(no grants) = %v, %v", got, err)
		}

		// ListByPatient: newest first, in pages.
		newestP0 := slices.Clone(ids(wantP0))
		slices.Reverse(newestP0)
		if diff := cmp.Diff(newestP0, walkGrants(t, func(p consent.Page) ([]consent.Grant, string, error) {
			return f.store.ListByPatient(ctx, p0, p)
		}, 2)); diff != "" {
			t.Errorf("ListByPatient (-want +got):\n%s", diff)
		}

		// ListForGrantee: grants naming the org or its kind.
		tests := []struct {
			org  string
			kind auth.Kind
			want []int
		}{
			{"hospital-b", auth.KindHospital, []int{8, 5, 4, 1, 0}},
			{"hospital-c", auth.KindHospital, []int{7, 5, 3, 1}},
			{"insurer-x", auth.KindVerifier, []int{6, 2}},
			{"hospital-b", "", []int{8, 4, 0}},
			{"", auth.KindVerifier, []int{6, 2}},
			{"", "", nil},
			{"regulator-z", auth.KindRegulator, nil},
		}
		for _, tt := range tests {
			var want []string
			for _, i := range tt.want {
				want = append(want, all[i].ID)
			}
			got := walkGrants(t, func(p consent.Page) ([]consent.Grant, string, error) {
				return f.store.ListForGrantee(ctx, tt.org, tt.kind, p)
			}, 3)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ListForGrantee(%q, %q) (-want +got):\n%s", tt.org, tt.kind, diff)
			}
			for _, id := range got {
				g, _ := f.store.Grant(ctx, id)
				if !g.VisibleTo(tt.org, tt.kind) {
					t.Errorf("ListForGrantee(%q, %q) lists %s, which is not visible to it", tt.org, tt.kind, id)
				}
			}
		}

		if _, _, err := f.store.ListByPatient(ctx, p0, consent.Page{Cursor: "not a cursor"}); !errors.Is(err, consent.ErrInvalidCursor) {
			t.Errorf("ListByPatient(bad cursor) = %v, want ErrInvalidCursor", err)
		}
	})
}

func walkGrants(t *testing.T, list func(consent.Page) ([]consent.Grant, string, error), limit int) []string {
	t.Helper()
	var out []string
	page := consent.Page{Limit: limit}
	for range 1000 {
		gs, next, err := list(page)
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) > limit || (next != "" && len(gs) != limit) {
			t.Fatalf("page of %d with next %q, limit %d", len(gs), next, limit)
		}
		out = append(out, ids(gs)...)
		if next == "" {
			return out
		}
		page.Cursor = next
	}
	t.Fatal("pagination does not end")
	return nil
}

func TestAuditEvents(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		f := newFixture(t, db)
		var all []consent.AccessEvent // ascending
		orgs := []string{"hospital-b", "hospital-c", "insurer-x"}
		for i := range 30 {
			if i%5 == 4 { // interleave other entries: indices are not dense
				f.add(t, "patient:"+patients[0], testGrant(1000+i, patients[0], consent.Grantee{Org: "hospital-b"}).LedgerBody())
			}
			b := &ledger.AccessDecided{
				Requester:  orgs[i%3],
				RecordID:   fmt.Sprintf("rec-%d", i),
				Patient:    patients[i%2],
				Category:   "lab",
				Purpose:    "TREAT",
				Decision:   []string{"permit", "deny"}[i%4/3],
				Reason:     "permit.grant",
				BreakGlass: i%7 == 0,
				RequestID:  fmt.Sprintf("req-%d", i),
			}
			if b.Decision == "deny" {
				b.Reason = "deny.no-grant"
			}
			idx := f.add(t, "hospital-a", b)
			all = append(all, consent.AccessEventFromLedger(idx, f.log.timeOf(t, idx), b))
		}
		yes, no := true, false
		since, until := all[10].Time, all[20].Time
		tests := []struct {
			name   string
			filter consent.AuditFilter
			keep   func(consent.AccessEvent) bool
		}{
			{"everything", consent.AuditFilter{}, func(consent.AccessEvent) bool { return true }},
			{"patient", consent.AuditFilter{Patient: patients[1]}, func(e consent.AccessEvent) bool { return e.Patient == patients[1] }},
			{"org", consent.AuditFilter{Org: "hospital-c"}, func(e consent.AccessEvent) bool { return e.Requester == "hospital-c" }},
			{"deny", consent.AuditFilter{Decision: consent.Deny}, func(e consent.AccessEvent) bool { return e.Decision == consent.Deny }},
			{"break-glass", consent.AuditFilter{BreakGlass: &yes}, func(e consent.AccessEvent) bool { return e.BreakGlass }},
			{"not break-glass", consent.AuditFilter{BreakGlass: &no}, func(e consent.AccessEvent) bool { return !e.BreakGlass }},
			{"since (inclusive)", consent.AuditFilter{Since: since}, func(e consent.AccessEvent) bool { return !e.Time.Before(since) }},
			{"until (exclusive)", consent.AuditFilter{Until: until}, func(e consent.AccessEvent) bool { return e.Time.Before(until) }},
			{"combined", consent.AuditFilter{Patient: patients[0], Org: "hospital-b", Decision: consent.Permit, Since: since, Until: until},
				func(e consent.AccessEvent) bool {
					return e.Patient == patients[0] && e.Requester == "hospital-b" && e.Decision == consent.Permit &&
						!e.Time.Before(since) && e.Time.Before(until)
				}},
			{"no match", consent.AuditFilter{Org: "nobody"}, func(consent.AccessEvent) bool { return false }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var want []consent.AccessEvent
				for _, e := range slices.Backward(all) {
					if tt.keep(e) {
						want = append(want, e)
					}
				}
				for _, limit := range []int{1, 4, 100} {
					got := allEvents(t, f.store, tt.filter, limit)
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("limit %d (-want +got):\n%s", limit, diff)
					}
				}
			})
		}

		// The patient's access log is the patient filter.
		log, next, err := f.store.AccessLog(ctx, patients[0], consent.Page{Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 3 || next == "" || log[0].Index != all[28].Index || log[0].Patient != patients[0] {
			t.Errorf("AccessLog first page = %+v, next %q", log, next)
		}

		// Page size defaults and caps.
		if got, _, err := f.store.AuditEvents(ctx, consent.AuditFilter{}, consent.Page{Limit: 0}); err != nil || len(got) != min(len(all), consent.DefaultPageSize) {
			t.Errorf("default page: %d events, %v", len(got), err)
		}

		// Bad input.
		if _, _, err := f.store.AuditEvents(ctx, consent.AuditFilter{}, consent.Page{Cursor: "AAAA"}); !errors.Is(err, consent.ErrInvalidCursor) {
			t.Errorf("bad cursor: %v, want ErrInvalidCursor", err)
		}
		if _, _, err := f.store.AuditEvents(ctx, consent.AuditFilter{Decision: "maybe"}, consent.Page{}); !errors.Is(err, consent.ErrInvalidFilter) {
			t.Errorf("bad decision: %v, want ErrInvalidFilter", err)
		}
		if _, _, err := f.store.AuditEvents(ctx, consent.AuditFilter{Since: until, Until: since}, consent.Page{}); !errors.Is(err, consent.ErrInvalidFilter) {
			t.Errorf("inverted range: %v, want ErrInvalidFilter", err)
		}
		// A forged cursor beyond int64 lists from the newest.
		got, _, err := f.store.AuditEvents(ctx, consent.AuditFilter{}, consent.Page{Cursor: consent.EncodeCursor(1<<64 - 1), Limit: 1})
		if err != nil || len(got) != 1 || got[0].Index != all[len(all)-1].Index {
			t.Errorf("huge cursor: %+v, %v", got, err)
		}
	})
}

// TestDecideFromStore is the read path: grants from the projection into
// consent.Decide, before and after a revocation.
func TestDecideFromStore(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		f := newFixture(t, db)
		p := patients[0]
		g := f.grant(t, testGrant(1, p, consent.Grantee{Org: "hospital-b"}))
		f.grant(t, testGrant(2, patients[1], consent.Grantee{Org: "hospital-b"}))
		req := consent.Request{
			Requester: "hospital-b", RequesterKind: auth.KindHospital, RecordID: "rec-1", Patient: p,
			Category: "lab", Purpose: consent.PurposeTreatment,
		}
		now := g.NotBefore.Add(time.Hour)
		decide := func() consent.Decision {
			grants, err := f.store.GrantsForPatient(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			return consent.Decide(req, grants, now, consent.DefaultPolicy())
		}
		if got, want := decide(), (consent.Decision{Effect: consent.Permit, Reason: consent.ReasonPermitGrant, GrantID: g.ID}); got != want {
			t.Errorf("before revocation: %+v, want %+v", got, want)
		}
		f.add(t, "patient:"+p, g.RevocationBody())
		if got, want := decide(), (consent.Decision{Effect: consent.Deny, Reason: consent.ReasonDenyRevoked, GrantID: g.ID}); got != want {
			t.Errorf("after revocation: %+v, want %+v", got, want)
		}
		// At exactly not_after, with nanosecond precision kept by the store.
		f.grant(t, testGrant(3, p, consent.Grantee{Kind: auth.KindHospital}))
		now = g.NotAfter
		if got := decide(); got.Reason != consent.ReasonDenyRevoked {
			t.Errorf("at not_after: %+v, want deny.revoked (revoked wins over expired)", got)
		}
		now = g.NotAfter.Add(-time.Nanosecond)
		if got := decide(); got.Reason != consent.ReasonPermitGrant || got.GrantID != fmt.Sprintf("cns_%032x", 3) {
			t.Errorf("1ns before not_after: %+v, want permit by the kind grant", got)
		}
	})
}
