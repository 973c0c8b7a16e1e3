package registrystore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/registry"
	"github.com/healthgw/healthgw/registry/registrystore"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func openStore(t *testing.T, db *gorm.DB) *registrystore.Store {
	t.Helper()
	s, err := registrystore.Open(t.Context(), db, registrystore.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// orgs returns a hospital (ES384), the same hospital ID again with new
// keys and fewer scopes (a registration the ledger refuses), a regulator
// with a JWKS URL, and a verifier.
func orgs(t *testing.T) []auth.Org {
	a := authtest.NewOrg(t, "hosp-a", auth.KindHospital, "ES384").Org
	a2 := authtest.NewOrg(t, "hosp-a", auth.KindHospital, "ES256").Org
	a2.Name = "Hospital A (renamed)"
	a2.Scopes = []auth.Scope{auth.ScopeRecordsWrite, auth.ScopeRecordsRead, auth.ScopeRecordsRead}
	reg := auth.Org{ID: "reg-1", Name: "Regulator", Kind: auth.KindRegulator, JWKSURL: "https://reg.example/jwks.json"}
	v := authtest.NewOrg(t, "verif-1", auth.KindVerifier, "EdDSA").Org
	return []auth.Org{a, reg, a2, v}
}

// sealedElsewhere is an entry as a gateway reads one it cannot open: no
// body.
func sealedElsewhere(at time.Time) ledger.Entry {
	return ledger.Entry{Type: ledger.TypeConsentGranted, Version: ledger.CurrentVersion, Org: ledger.OrgPatient, Author: "gw-elsewhere", Time: at}
}

func TestRegisterAndRebuild(t *testing.T) {
	in := orgs(t)
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		log := &ledgertest.MemLog{Clock: ledgertest.StepClock(t0, time.Second)}
		s := openStore(t, db)
		f := ledger.NewFollower(log, s)
		// An unrelated entry first: the projection skips it.
		e, _ := ledger.NewEntry("patient:p", &ledger.ConsentRevoked{ConsentID: "c1", Patient: "p"})
		if _, err := log.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		want := uint64(1)
		for _, o := range in {
			before, _ := log.Size(ctx)
			idx, err := registry.Register(ctx, log, f, auth.CheckOrgJWKS, o)
			if o.Name == "Hospital A (renamed)" {
				// An org is registered once: its home is fixed.
				if !errors.Is(err, registry.ErrExists) || !errors.Is(err, ledger.ErrAuthorship) {
					t.Errorf("Register(%s) again = %d, %v; want ErrExists", o.ID, idx, err)
				}
				if after, _ := log.Size(ctx); after != before {
					t.Errorf("a refused re-registration appended: size %d -> %d", before, after)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Register(%s): %v", o.ID, err)
			}
			if idx != want {
				t.Errorf("Register(%s) index = %d, want %d", o.ID, idx, want)
			}
			want++
		}
		// Visible at once: Register synced the projection.
		got, err := s.Org(ctx, "hosp-a")
		if err != nil {
			t.Fatal(err)
		}
		wantA := in[0]
		wantA.Scopes = auth.KindScopes[auth.KindHospital]
		if diff := cmp.Diff(wantA, got); diff != "" {
			t.Errorf("Org(hosp-a) after a refused re-registration (-want +got):\n%s", diff)
		}
		wantReg := in[1]
		wantReg.Scopes = auth.KindScopes[auth.KindRegulator]
		if got, err := s.Org(ctx, "reg-1"); err != nil || !cmp.Equal(wantReg, got) {
			t.Errorf("Org(reg-1) = %+v, %v; want %+v", got, err, wantReg)
		}
		if _, err := s.Org(ctx, "nobody"); !errors.Is(err, auth.ErrUnknownOrg) {
			t.Errorf("Org(nobody) error = %v, want ErrUnknownOrg", err)
		}
		before, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(before) != 3 || before[0].Org.ID != "hosp-a" || before[0].Index != 1 || !before[0].Time.Equal(t0.Add(2*time.Second)) {
			t.Fatalf("List = %+v", before)
		}

		// Drop the projection's tables entirely, open again, rebuild.
		if err := db.Migrator().DropTable("registry_orgs", "registry_cursor"); err != nil {
			t.Fatal(err)
		}
		s2 := openStore(t, db)
		if err := ledger.NewFollower(log, s2).SyncAll(ctx); err != nil {
			t.Fatalf("rebuild: %v", err)
		}
		after, err := s2.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("rebuilt registry differs (-before +after):\n%s", diff)
		}
		// Reset and rebuild in batches of one entry: same result.
		if err := s2.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		size, _ := log.Size(ctx)
		for i := uint64(1); i <= size; i++ {
			if err := ledger.NewFollower(log, s2).Sync(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		again, err := s2.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, again); diff != "" {
			t.Errorf("registry rebuilt one by one differs (-before +after):\n%s", diff)
		}
	})
}

func TestRegisterRejectsInvalid(t *testing.T) {
	good := authtest.NewOrg(t, "hosp-a", auth.KindHospital, "ES256")
	privateSet := `{"keys":[` + mustJSON(t, good.Key) + `]}`
	tests := []struct {
		name   string
		mutate func(o *auth.Org)
	}{
		{"private key material", func(o *auth.Org) { o.JWKS = privateSet }},
		{"symmetric key", func(o *auth.Org) { o.JWKS = `{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0"}]}` }},
		{"key without kid", func(o *auth.Org) {
			o.JWKS = `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`
		}},
		{"alg contradicting the key", func(o *auth.Org) {
			o.JWKS = `{"keys":[{"kty":"EC","kid":"k","alg":"HS256","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`
		}},
		{"not a JWK Set", func(o *auth.Org) { o.JWKS = `{"kty":"EC"}` }},
		{"both JWKS and URL", func(o *auth.Org) { o.JWKSURL = "https://x.example/jwks" }},
		{"neither JWKS nor URL", func(o *auth.Org) { o.JWKS = "" }},
		{"URL with credentials", func(o *auth.Org) { o.JWKS, o.JWKSURL = "", "https://u:p@x.example/jwks" }},
		{"scope of another kind", func(o *auth.Org) { o.Scopes = []auth.Scope{auth.ScopeAuditRead} }},
		{"unknown scope", func(o *auth.Org) { o.Scopes = []auth.Scope{"system/*.*"} }},
		{"unknown kind", func(o *auth.Org) { o.Kind = "insurer" }},
		{"bad id", func(o *auth.Org) { o.ID = "Hosp A" }},
		{"empty name", func(o *auth.Org) { o.Name = " " }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &ledgertest.MemLog{Clock: ledgertest.StepClock(t0, time.Second)}
			o := good.Org
			tt.mutate(&o)
			_, err := registry.Register(t.Context(), log, nopSyncer{}, auth.CheckOrgJWKS, o)
			if !errors.Is(err, auth.ErrInvalidOrg) {
				t.Errorf("Register = %v, want ErrInvalidOrg", err)
			}
			if n, _ := log.Size(t.Context()); n != 0 {
				t.Errorf("log has %d entries after a refused registration, want 0", n)
			}
		})
	}
}

type nopSyncer struct{}

func (nopSyncer) Sync(context.Context, uint64) error { return nil }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestApplySkipsInvalidAndOverlaps feeds Apply directly: an invalid
// org.registered entry (appended behind Register's back) is skipped, an
// entry without a body (sealed to other gateways) is skipped, a batch
// overlapping applied entries is not applied twice, a second
// registration of an ID does not replace the first, a gap fails.
func TestApplySkipsInvalidAndOverlaps(t *testing.T) {
	good := authtest.NewOrg(t, "hosp-a", auth.KindHospital, "ES256").Org
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s := openStore(t, db)
		mk := func(o auth.Org) ledger.Entry {
			b := &ledger.OrgRegistered{ID: o.ID, Name: o.Name, Kind: string(o.Kind), JWKS: o.JWKS, JWKSURL: o.JWKSURL}
			for _, sc := range o.Scopes {
				b.Scopes = append(b.Scopes, string(sc))
			}
			e, err := ledger.NewEntry(registry.Submitter, b)
			if err != nil {
				t.Fatal(err)
			}
			e.Time = t0
			return e
		}
		bad := good
		bad.ID, bad.Kind = "bad-1", "insurer"
		if err := s.Apply(ctx, 0, []ledger.Entry{mk(bad), mk(good)}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		renamed := good
		renamed.Name = "Renamed"
		// Overlap: entry 1 again (renamed, but already applied) and a new 2.
		other := good
		other.ID = "hosp-b"
		if err := s.Apply(ctx, 1, []ledger.Entry{mk(renamed), mk(other), sealedElsewhere(t0), mk(renamed)}); err != nil {
			t.Fatalf("Apply overlapping: %v", err)
		}
		if err := s.Apply(ctx, 7, []ledger.Entry{mk(good)}); err == nil {
			t.Error("Apply with a gap succeeded")
		}
		next, err := s.Next(ctx)
		if err != nil || next != 5 {
			t.Errorf("Next = %d, %v; want 5", next, err)
		}
		list, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range list {
			got = append(got, r.Org.ID+"/"+r.Org.Name)
		}
		want := []string{"hosp-a/" + good.Name, "hosp-b/" + good.Name}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("registry (-want +got):\n%s", diff)
		}
	})
}

// TestApplierConformance runs the suite over entries as the gateway's
// node reads them back (appended to ledgertest.MemLog): registrations, an
// invalid one (skipped, deterministically), an unrelated entry and one
// sealed to other gateways (no body).
func TestApplierConformance(t *testing.T) {
	in := orgs(t)
	bad := in[0]
	bad.ID, bad.Kind = "bad-1", "insurer" // skipped, deterministically
	log := &ledgertest.MemLog{Clock: ledgertest.StepClock(t0, time.Second)}
	for i, o := range []auth.Org{in[0], bad, in[1], in[3]} {
		if i == 2 {
			e, err := ledger.NewEntry("patient:p", &ledger.ConsentRevoked{ConsentID: "c1", Patient: "p"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := log.Append(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
		b := &ledger.OrgRegistered{ID: o.ID, Name: o.Name, Kind: string(o.Kind), JWKS: o.JWKS, JWKSURL: o.JWKSURL}
		for _, sc := range o.Scopes {
			b.Scopes = append(b.Scopes, string(sc))
		}
		e, err := ledger.NewEntry(registry.Submitter, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := log.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := log.Decoded()
	if err != nil {
		t.Fatal(err)
	}
	entries = append(entries[:3], append([]ledger.Entry{sealedElsewhere(t0.Add(time.Hour))}, entries[3:]...)...)
	databasetest.EachOpener(t, func(t *testing.T, open func(*testing.T) *gorm.DB) {
		ledgertest.ApplierSuite{
			Entries: entries,
			New: func(t *testing.T) ledgertest.Projection {
				db := open(t)
				s := openStore(t, db)
				return ledgertest.Projection{
					Applier:    s,
					Reset:      s.Reset,
					State:      func(ctx context.Context) (any, error) { return s.List(ctx) },
					FailWrites: func(n int) func() { return databasetest.FailWrites(db, n) },
				}
			},
		}.Run(t)
	})
}
