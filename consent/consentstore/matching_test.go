package consentstore_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
)

// randomGrants projects n grants (and revocations of some) with random
// grantees, effects, scopes, purposes and periods around t0.
func randomGrants(t *testing.T, rng *rand.Rand, f *fixture, n int, t0 time.Time) {
	t.Helper()
	pickS := func(vs ...[]string) []string { return vs[rng.IntN(len(vs))] }
	var granted []consent.Grant
	for i := range n {
		g := consent.Grant{
			ID:      fmt.Sprintf("cns_%032x", 1000+i),
			Patient: patients[rng.IntN(2)],
			Effect:  []consent.Effect{consent.Permit, consent.Permit, consent.Deny}[rng.IntN(3)],
			Actions: []consent.Action{consent.ActionRead},
			Purposes: [][]consent.Purpose{consent.Purposes, {consent.PurposeTreatment}, {consent.PurposeEmergencyTreatment},
				{consent.PurposeResearch, consent.PurposeTreatment}}[rng.IntN(4)],
			Categories:    pickS(nil, nil, []string{"lab"}, []string{"imaging"}, []string{"lab", "imaging"}),
			RecordIDs:     pickS(nil, nil, nil, []string{"rec-1"}, []string{"rec-2", "rec-3"}),
			ResourceTypes: pickS(nil, nil, []string{"Observation"}, []string{"DiagnosticReport"}),
			NotBefore:     t0.Add(time.Duration(rng.IntN(5)-3) * time.Hour),
		}
		g.NotAfter = g.NotBefore.Add(time.Duration(1+rng.IntN(5)) * time.Hour)
		switch rng.IntN(4) {
		case 0:
			g.Grantee.Kind = []auth.Kind{auth.KindHospital, auth.KindVerifier}[rng.IntN(2)]
		default:
			g.Grantee.Org = []string{"hospital-b", "hospital-c"}[rng.IntN(2)]
		}
		f.log.append(t, "patient:"+g.Patient, g.LedgerBody())
		granted = append(granted, g)
		if rng.IntN(5) == 0 {
			r := granted[rng.IntN(len(granted))]
			f.log.append(t, "patient:"+r.Patient, r.RevocationBody())
		}
	}
	if err := f.follow.SyncAll(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// checkMatching compares, over random requests and instants, the decision
// on GrantsMatching with the decision on GrantsForPatient.
func checkMatching(t *testing.T, rng *rand.Rand, f *fixture, t0 time.Time, rounds int) {
	t.Helper()
	ctx := t.Context()
	who := []struct {
		org  string
		kind auth.Kind
	}{{"hospital-b", auth.KindHospital}, {"hospital-c", auth.KindHospital}, {"insurer-x", auth.KindVerifier}, {"hospital-d", auth.KindHospital}}
	policies := []consent.Policy{consent.DefaultPolicy(), {}, {BreakGlassKinds: []auth.Kind{auth.KindHospital}}}
	found, total := 0, 0
	for range rounds {
		w := who[rng.IntN(len(who))]
		req := consent.Request{
			Requester: w.org, RequesterKind: w.kind, Action: consent.ActionRead,
			Patient:       patients[rng.IntN(3)], // the third has no grants
			RecordID:      []string{"rec-1", "rec-2", "rec-3", "rec-4"}[rng.IntN(4)],
			Category:      []string{"lab", "imaging", "", "vitals"}[rng.IntN(4)],
			ResourceType:  []string{"Observation", "DiagnosticReport", ""}[rng.IntN(3)],
			Purpose:       consent.Purposes[rng.IntN(len(consent.Purposes))],
			Justification: []string{"", "an unconscious patient in the emergency room"}[rng.IntN(2)],
		}
		now := t0.Add(time.Duration(rng.IntN(12)-6) * 30 * time.Minute)
		policy := policies[rng.IntN(len(policies))]
		all, err := f.store.GrantsForPatient(ctx, req.Patient)
		if err != nil {
			t.Fatal(err)
		}
		some, err := f.store.GrantsMatching(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		found, total = found+len(some), total+len(all)
		want := consent.Decide(req, all, now, policy)
		if got := consent.Decide(req, some, now, policy); got != want {
			t.Fatalf("request %+v at %v: decision on GrantsMatching (%d grants) %+v, on GrantsForPatient (%d grants) %+v",
				req, now, len(some), got, len(all), want)
		}
		for i := 1; i < len(some); i++ {
			if some[i-1].GrantedIndex >= some[i].GrantedIndex {
				t.Fatalf("GrantsMatching not in ledger order without repeats: %d then %d", some[i-1].GrantedIndex, some[i].GrantedIndex)
			}
		}
	}
	if total == 0 || found == 0 || found >= total {
		t.Fatalf("scenario too thin or index not selective: %d grants matched of %d", found, total)
	}
}

// TestGrantsMatchingDecidesAsAll is the property of the read path's index:
// over randomized grant sets (scopes, effects, grantees, periods,
// revocations), Decide on GrantsMatching equals Decide on
// GrantsForPatient; and so after a Reset and rebuild, and after the index
// is built by the migration of a database that had none.
func TestGrantsMatchingDecidesAsAll(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		rng := rand.New(rand.NewPCG(7, 8))
		f := newFixture(t, db)
		t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		n, rounds := 120, 240
		if testing.Short() {
			n, rounds = 60, 150
		}
		randomGrants(t, rng, f, n, t0)
		checkMatching(t, rng, f, t0, rounds)

		// Reset empties the index with the grants; the rebuild refills it.
		if err := f.store.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if got, err := f.store.GrantsMatching(ctx, consent.Request{Requester: "hospital-b", RequesterKind: auth.KindHospital,
			Patient: patients[0], RecordID: "rec-1", Category: "lab", Purpose: consent.PurposeTreatment}); err != nil || len(got) != 0 {
			t.Fatalf("after Reset: %d grants, %v", len(got), err)
		}
		if err := ledger.NewFollower(f.log, f.store).SyncAll(ctx); err != nil {
			t.Fatal(err)
		}
		checkMatching(t, rng, f, t0, rounds/3)

		// A database from before the index: the migration files every
		// stored grant.
		if err := db.Migrator().DropTable("consent_grant_scopes"); err != nil {
			t.Fatal(err)
		}
		f.store = newStore(t, db)
		checkMatching(t, rng, f, t0, rounds/3)
	})
}
