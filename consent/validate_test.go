package consent_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

var testCategories = []string{"lab", "imaging", "mental-health"}

func validCategory(c string) bool { return slices.Contains(testCategories, c) }

func validGrant(mods ...func(*consent.Grant)) consent.Grant {
	g := permitGrant("cns_0123456789abcdef0123456789abcdef", mods...)
	return g
}

func TestGrantValidate(t *testing.T) {
	rules := consent.Rules{ValidCategory: validCategory, Now: t0}
	tests := []struct {
		name      string
		grant     consent.Grant
		rules     *consent.Rules // nil: rules
		wantField string         // "" = valid
	}{
		{"valid permit", validGrant(), nil, ""},
		{"valid deny without purposes", validGrant(func(g *consent.Grant) { g.Effect, g.Purposes = consent.Deny, nil }), nil, ""},
		{"valid grant to a kind", validGrant(func(g *consent.Grant) { g.Grantee = consent.Grantee{Kind: auth.KindHospital} }), nil, ""},
		{"valid with records and types", validGrant(func(g *consent.Grant) {
			g.RecordIDs, g.ResourceTypes = []string{"rec-1", "01J8Z.x:y_z"}, []string{"Observation", "DiagnosticReport"}
		}), nil, ""},
		{"valid period of exactly the maximum", validGrant(func(g *consent.Grant) { g.NotAfter = g.NotBefore.Add(consent.DefaultMaxPeriod) }), nil, ""},
		{"fresh NewID", validGrant(func(g *consent.Grant) { g.ID = consent.NewID() }), nil, ""},

		{"bad id", validGrant(func(g *consent.Grant) { g.ID = "g1" }), nil, "id"},
		{"upper-case id", validGrant(func(g *consent.Grant) { g.ID = "cns_0123456789ABCDEF0123456789abcdef" }), nil, "id"},
		{"raw patient id", validGrant(func(g *consent.Grant) { g.Patient = "MRN-12345" }), nil, "patient"},
		{"no grantee", validGrant(func(g *consent.Grant) { g.Grantee = consent.Grantee{} }), nil, "grantee"},
		{"two grantees", validGrant(func(g *consent.Grant) { g.Grantee.Kind = auth.KindHospital }), nil, "grantee"},
		{"bad grantee org", validGrant(func(g *consent.Grant) { g.Grantee.Org = "Hospital B" }), nil, "grantee.org"},
		{"bad grantee kind", validGrant(func(g *consent.Grant) { g.Grantee = consent.Grantee{Kind: "insurer"} }), nil, "grantee.kind"},
		{"bad effect", validGrant(func(g *consent.Grant) { g.Effect = "allow" }), nil, "decision"},
		{"no actions", validGrant(func(g *consent.Grant) { g.Actions = nil }), nil, "actions"},
		{"unknown action", validGrant(func(g *consent.Grant) { g.Actions = []consent.Action{"write"} }), nil, "actions"},
		{"repeated action", validGrant(func(g *consent.Grant) { g.Actions = []consent.Action{"read", "read"} }), nil, "actions"},
		{"unknown category", validGrant(func(g *consent.Grant) { g.Categories = []string{"lab", "genomics"} }), nil, "categories"},
		{"repeated category", validGrant(func(g *consent.Grant) { g.Categories = []string{"lab", "imaging", "lab"} }), nil, "categories"},
		{"categories without a vocabulary", validGrant(), &consent.Rules{Now: t0}, "categories"},
		{"no categories without a vocabulary", validGrant(func(g *consent.Grant) { g.Categories = nil }), &consent.Rules{Now: t0}, ""},
		{"too many records", validGrant(func(g *consent.Grant) {
			for i := range consent.MaxListItems + 1 {
				g.RecordIDs = append(g.RecordIDs, fmt.Sprintf("rec-%d", i))
			}
		}), nil, "record_ids"},
		{"bad record id", validGrant(func(g *consent.Grant) { g.RecordIDs = []string{"../etc/passwd"} }), nil, "record_ids"},
		{"long record id", validGrant(func(g *consent.Grant) { g.RecordIDs = []string{strings.Repeat("r", 129)} }), nil, "record_ids"},
		{"bad resource type", validGrant(func(g *consent.Grant) { g.ResourceTypes = []string{"observation"} }), nil, "resource_types"},
		{"permit without purposes", validGrant(func(g *consent.Grant) { g.Purposes = nil }), nil, "purposes"},
		{"unknown purpose", validGrant(func(g *consent.Grant) { g.Purposes = []consent.Purpose{"MARKETING"} }), nil, "purposes"},
		{"lower-case purpose", validGrant(func(g *consent.Grant) { g.Purposes = []consent.Purpose{"treat"} }), nil, "purposes"},
		{"no not_before", validGrant(func(g *consent.Grant) { g.NotBefore = time.Time{} }), nil, "not_before"},
		{"no not_after", validGrant(func(g *consent.Grant) { g.NotAfter = time.Time{} }), nil, "not_after"},
		{"empty period", validGrant(func(g *consent.Grant) { g.NotAfter = g.NotBefore }), nil, "not_after"},
		{"inverted period", validGrant(func(g *consent.Grant) { g.NotAfter = g.NotBefore.Add(-time.Second) }), nil, "not_after"},
		{"period too long", validGrant(func(g *consent.Grant) { g.NotAfter = g.NotBefore.Add(consent.DefaultMaxPeriod + 1) }), nil, "not_after"},
		{"period longer than the configured maximum", validGrant(),
			&consent.Rules{ValidCategory: validCategory, MaxPeriod: time.Hour}, "not_after"},
		{"already expired", validGrant(func(g *consent.Grant) { g.NotAfter = t0 }), nil, "not_after"},
		{"expired but no clock given", validGrant(func(g *consent.Grant) { g.NotAfter = t0 }), &consent.Rules{ValidCategory: validCategory}, ""},
		{"year 1900", validGrant(func(g *consent.Grant) { g.NotBefore = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC) }), nil, "not_before"},
		{"year 9999", validGrant(func(g *consent.Grant) { g.NotAfter = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }), nil, "not_after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rules
			if tt.rules != nil {
				r = *tt.rules
			}
			err := tt.grant.Validate(r)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, consent.ErrInvalidGrant) {
				t.Fatalf("Validate() = %v, want ErrInvalidGrant", err)
			}
			var ve *consent.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %T, want *ValidationError", err)
			}
			if ve.Field != tt.wantField || ve.Message == "" {
				t.Errorf("Validate() field %q message %q, want field %q", ve.Field, ve.Message, tt.wantField)
			}
		})
	}
}

// TestLedgerRoundTrip appends LedgerBody to a gateway's log (the v2
// node: the body is translated, signed, sealed, opened and translated
// back) and reads it back: FromLedger gives the grant again, a deny
// without purposes included.
func TestLedgerRoundTrip(t *testing.T) {
	at := t0.Add(123 * time.Nanosecond)
	log := &ledgertest.MemLog{Clock: func() time.Time { return at }}
	for _, g := range []consent.Grant{
		validGrant(func(g *consent.Grant) {
			g.RecordIDs = []string{"rec-1"}
			g.ResourceTypes = []string{"Observation"}
			g.NotBefore = g.NotBefore.In(time.FixedZone("CET", 3600))
		}),
		validGrant(func(g *consent.Grant) { g.Effect, g.Purposes = consent.Deny, nil }),
	} {
		e, err := ledger.NewEntry("patient:"+g.Patient, g.LedgerBody())
		if err != nil {
			t.Fatal(err)
		}
		idx, err := log.Append(t.Context(), e)
		if err != nil {
			t.Fatalf("Append(%s grant): %v", g.Effect, err)
		}
		es, err := log.Read(t.Context(), idx, idx+1)
		if err != nil {
			t.Fatal(err)
		}
		back := es[0]
		if back.Org != "patient:"+g.Patient {
			t.Errorf("read back org %q, want %q", back.Org, "patient:"+g.Patient)
		}
		got := consent.FromLedger(42, back.Time, back.Body.(*ledger.ConsentGranted))
		want := g
		want.NotBefore = g.NotBefore.UTC()
		want.GrantedIndex, want.GrantedAt = 42, at
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("FromLedger(Read(Append(LedgerBody()))) mismatch (-want +got):\n%s", diff)
		}
		if err := got.Validate(consent.Rules{ValidCategory: validCategory, Now: t0}); err != nil {
			t.Errorf("round-tripped grant no longer validates: %v", err)
		}
	}
	g := validGrant()
	if diff := cmp.Diff(&ledger.ConsentRevoked{ConsentID: g.ID, Patient: g.Patient}, g.RevocationBody()); diff != "" {
		t.Errorf("RevocationBody() mismatch (-want +got):\n%s", diff)
	}
}

func TestDecisionLedgerBody(t *testing.T) {
	req := readLab(emergency(goodJustification))
	d := consent.Decide(req, nil, t0, consent.DefaultPolicy())
	got := d.LedgerBody(req, "req-7")
	want := &ledger.AccessDecided{
		Requester: "hospital-b", RecordID: "rec-1", Patient: patient, Category: "lab",
		Purpose: "ETREAT", Decision: "permit", Reason: "permit.break-glass", BreakGlass: true,
		RequestID: "req-7",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LedgerBody() mismatch (-want +got):\n%s", diff)
	}
	if strings.Contains(fmt.Sprint(*got), goodJustification) {
		t.Errorf("LedgerBody() carries the justification text")
	}
	// The caller commits to the justification (access.Service).
	got.JustificationCommitment = strings.Repeat("ab", 32)
	ev := consent.AccessEventFromLedger(9, t0, got)
	wantEv := consent.AccessEvent{
		Index: 9, Time: t0, Requester: "hospital-b", RecordID: "rec-1", Patient: patient, Category: "lab",
		Purpose: consent.PurposeEmergencyTreatment, Decision: consent.Permit, Reason: consent.ReasonPermitBreakGlass,
		BreakGlass: true, JustificationCommitment: got.JustificationCommitment, RequestID: "req-7",
	}
	if diff := cmp.Diff(wantEv, ev); diff != "" {
		t.Errorf("AccessEventFromLedger() mismatch (-want +got):\n%s", diff)
	}
	if plain := (consent.Decision{Effect: consent.Deny, Reason: consent.ReasonDenyNoGrant}).LedgerBody(readLab(), "r"); plain.JustificationHash != "" || plain.JustificationCommitment != "" {
		t.Errorf("justification fields %+v for a request without justification", plain)
	}
}

func TestCheckRevoke(t *testing.T) {
	g := validGrant()
	r := g
	r.Revoked = true
	tests := []struct {
		name    string
		grant   consent.Grant
		patient string
		want    error
	}{
		{"own grant", g, patient, nil},
		{"another patient's grant", g, other, consent.ErrNotFound},
		{"no patient", g, "", consent.ErrNotFound},
		{"revoked already", r, patient, consent.ErrAlreadyRevoked},
		{"another patient's revoked grant", r, other, consent.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.grant.CheckRevoke(tt.patient); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("CheckRevoke() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCursor(t *testing.T) {
	for _, i := range []uint64{0, 1, 41, 1<<63 - 1, 1<<64 - 1} {
		got, err := consent.DecodeCursor(consent.EncodeCursor(i))
		if err != nil || got != i {
			t.Errorf("DecodeCursor(EncodeCursor(%d)) = %d, %v", i, got, err)
		}
	}
	for _, bad := range []string{"x", "AAAAAAAAAAAA", "AgAAAAAAAAAA", "AQAAAAAAAAAA==", strings.Repeat("A", 100)} {
		if _, err := consent.DecodeCursor(bad); !errors.Is(err, consent.ErrInvalidCursor) {
			t.Errorf("DecodeCursor(%q) = %v, want ErrInvalidCursor", bad, err)
		}
	}
	if p := (consent.Page{Limit: 10000}); p.Size() != consent.MaxPageSize {
		t.Errorf("Size() = %d, want %d", p.Size(), consent.MaxPageSize)
	}
	if p := (consent.Page{}); p.Size() != consent.DefaultPageSize {
		t.Errorf("Size() = %d, want %d", p.Size(), consent.DefaultPageSize)
	}
}

// FuzzDecodeCursor: cursors come from clients; decoding never panics and
// whatever decodes re-encodes to the same string.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(consent.EncodeCursor(7))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		i, err := consent.DecodeCursor(s)
		if err != nil {
			return
		}
		if again := consent.EncodeCursor(i); again != s {
			t.Errorf("DecodeCursor(%q) = %d, which encodes as %q", s, i, again)
		}
	})
}
