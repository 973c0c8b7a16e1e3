package consent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
)

const (
	patient = "ps_1111111111111111111111111111111111111111111111111111111111111111"
	other   = "ps_2222222222222222222222222222222222222222222222222222222222222222"
)

var (
	t0        = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	notBefore = t0.Add(-24 * time.Hour)
	notAfter  = t0.Add(24 * time.Hour)
)

// permitGrant is a permit for hospital-b to read lab records for TREAT.
func permitGrant(id string, mods ...func(*consent.Grant)) consent.Grant {
	g := consent.Grant{
		ID:         id,
		Patient:    patient,
		Grantee:    consent.Grantee{Org: "hospital-b"},
		Effect:     consent.Permit,
		Actions:    []consent.Action{consent.ActionRead},
		Categories: []string{"lab"},
		Purposes:   []consent.Purpose{consent.PurposeTreatment},
		NotBefore:  notBefore,
		NotAfter:   notAfter,
	}
	for _, m := range mods {
		m(&g)
	}
	return g
}

// denyGrant is a deny of everything to hospital-b.
func denyGrant(id string, mods ...func(*consent.Grant)) consent.Grant {
	g := permitGrant(id, mods...)
	g.Effect = consent.Deny
	if len(mods) == 0 {
		g.Categories, g.Purposes = nil, nil
	}
	return g
}

// readLab is hospital-b reading lab record rec-1 (an Observation) for TREAT.
func readLab(mods ...func(*consent.Request)) consent.Request {
	r := consent.Request{
		Requester:     "hospital-b",
		RequesterKind: auth.KindHospital,
		RecordID:      "rec-1",
		Patient:       patient,
		Category:      "lab",
		ResourceType:  "Observation",
		Purpose:       consent.PurposeTreatment,
	}
	for _, m := range mods {
		m(&r)
	}
	return r
}

func emergency(justification string) func(*consent.Request) {
	return func(r *consent.Request) {
		r.Purpose = consent.PurposeEmergencyTreatment
		r.Justification = justification
	}
}

const goodJustification = "unconscious patient in ED, allergy check" // > 20 characters

func permit(id string) consent.Decision {
	return consent.Decision{Effect: consent.Permit, Reason: consent.ReasonPermitGrant, GrantID: id}
}

func deny(reason consent.Reason, id string) consent.Decision {
	return consent.Decision{Effect: consent.Deny, Reason: reason, GrantID: id}
}

func breakGlass(effect consent.Effect, reason consent.Reason, id string) consent.Decision {
	return consent.Decision{Effect: effect, Reason: reason, GrantID: id, BreakGlass: true}
}

func TestDecide(t *testing.T) {
	revoked := func(g *consent.Grant) { g.Revoked, g.RevokedIndex = true, 7 }
	tests := []struct {
		name   string
		req    consent.Request
		grants []consent.Grant
		now    time.Time
		policy *consent.Policy // nil: DefaultPolicy
		want   consent.Decision
	}{
		// Grantee.
		{"grantee org matches", readLab(), []consent.Grant{permitGrant("g1")}, t0, nil, permit("g1")},
		{"grantee org differs", readLab(func(r *consent.Request) { r.Requester = "hospital-c" }),
			[]consent.Grant{permitGrant("g1")}, t0, nil, deny(consent.ReasonDenyNoGrant, "")},
		{"grantee kind matches", readLab(func(r *consent.Request) { r.Requester = "hospital-c" }),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.Grantee = consent.Grantee{Kind: auth.KindHospital} })},
			t0, nil, permit("g1")},
		{"grantee kind differs", readLab(),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.Grantee = consent.Grantee{Kind: auth.KindVerifier} })},
			t0, nil, deny(consent.ReasonDenyNoGrant, "")},
		{"org grant does not match an org of the same name's kind", readLab(func(r *consent.Request) { r.Requester = "hospital" }),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.Grantee = consent.Grantee{Org: "hospital-b"} })},
			t0, nil, deny(consent.ReasonDenyNoGrant, "")},
		{"another patient's grant", readLab(),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.Patient = other })},
			t0, nil, deny(consent.ReasonDenyNoGrant, "")},

		// Coverage: category, record, resource type.
		{"category differs", readLab(func(r *consent.Request) { r.Category = "imaging" }),
			[]consent.Grant{permitGrant("g1")}, t0, nil, deny(consent.ReasonDenyNoGrant, "")},
		{"empty categories cover every category", readLab(func(r *consent.Request) { r.Category = "imaging" }),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.Categories = nil })}, t0, nil, permit("g1")},
		{"record listed", readLab(),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.RecordIDs = []string{"rec-0", "rec-1"} })}, t0, nil, permit("g1")},
		{"record not listed", readLab(func(r *consent.Request) { r.RecordID = "rec-2" }),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.RecordIDs = []string{"rec-0", "rec-1"} })},
			t0, nil, deny(consent.ReasonDenyNoGrant, "")},
		{"record listed but category differs", readLab(func(r *consent.Request) { r.Category = "imaging" }),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.RecordIDs = []string{"rec-1"} })},
			t0, nil, deny(consent.ReasonDenyNoGrant, "")},
		{"resource type listed", readLab(),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.ResourceTypes = []string{"Observation"} })}, t0, nil, permit("g1")},
		{"resource type not listed", readLab(func(r *consent.Request) { r.ResourceType = "DiagnosticReport" }),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.ResourceTypes = []string{"Observation"} })},
			t0, nil, deny(consent.ReasonDenyNoGrant, "")},
		{"permit restricted to a type does not cover a record without one", readLab(func(r *consent.Request) { r.ResourceType = "" }),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.ResourceTypes = []string{"Observation"} })},
			t0, nil, deny(consent.ReasonDenyNoGrant, "")},
		{"deny restricted to a type covers a record without one", readLab(func(r *consent.Request) { r.ResourceType = "" }),
			[]consent.Grant{
				permitGrant("g1"),
				denyGrant("d1", func(g *consent.Grant) { g.ResourceTypes = []string{"Observation"}; g.Categories = nil }),
			}, t0, nil, deny(consent.ReasonDenyExplicit, "d1")},

		// Action.
		{"empty action means read", readLab(func(r *consent.Request) { r.Action = "" }), []consent.Grant{permitGrant("g1")}, t0, nil, permit("g1")},
		{"unknown action", readLab(func(r *consent.Request) { r.Action = "write" }),
			[]consent.Grant{permitGrant("g1")}, t0, nil, deny(consent.ReasonDenyInvalidRequest, "")},
		{"grant without actions covers every action", readLab(),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.Actions = nil })}, t0, nil, permit("g1")},

		// Purpose.
		{"purpose not granted", readLab(func(r *consent.Request) { r.Purpose = consent.PurposeResearch }),
			[]consent.Grant{permitGrant("g1")}, t0, nil, deny(consent.ReasonDenyPurpose, "g1")},
		{"one of several purposes", readLab(func(r *consent.Request) { r.Purpose = consent.PurposeResearch }),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) {
				g.Purposes = []consent.Purpose{consent.PurposeTreatment, consent.PurposeResearch}
			})}, t0, nil, permit("g1")},
		{"unknown purpose", readLab(func(r *consent.Request) { r.Purpose = "MARKETING" }),
			[]consent.Grant{permitGrant("g1")}, t0, nil, deny(consent.ReasonDenyInvalidRequest, "")},
		{"wrong purpose of an expired grant is no grant", readLab(func(r *consent.Request) { r.Purpose = consent.PurposeResearch }),
			[]consent.Grant{permitGrant("g1")}, notAfter, nil, deny(consent.ReasonDenyNoGrant, "")},

		// Period boundaries: NotBefore inclusive, NotAfter exclusive.
		{"exactly at not_before", readLab(), []consent.Grant{permitGrant("g1")}, notBefore, nil, permit("g1")},
		{"just before not_before", readLab(), []consent.Grant{permitGrant("g1")}, notBefore.Add(-time.Nanosecond), nil,
			deny(consent.ReasonDenyNotYetValid, "g1")},
		{"just before not_after", readLab(), []consent.Grant{permitGrant("g1")}, notAfter.Add(-time.Nanosecond), nil, permit("g1")},
		{"exactly at not_after", readLab(), []consent.Grant{permitGrant("g1")}, notAfter, nil, deny(consent.ReasonDenyExpired, "g1")},
		{"open-ended grant", readLab(), []consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.NotBefore, g.NotAfter = time.Time{}, time.Time{} })},
			t0.AddDate(100, 0, 0), nil, permit("g1")},
		{"expired deny does not apply", readLab(),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.NotAfter = notAfter.Add(time.Hour) }), denyGrant("d1")},
			notAfter, nil, permit("g1")},

		// Deny over permit.
		{"deny overrides permit", readLab(), []consent.Grant{permitGrant("g1"), denyGrant("d1")}, t0, nil, deny(consent.ReasonDenyExplicit, "d1")},
		{"deny overrides permit in any order", readLab(), []consent.Grant{denyGrant("d1"), permitGrant("g1")}, t0, nil, deny(consent.ReasonDenyExplicit, "d1")},
		{"deny by kind overrides permit by org", readLab(), []consent.Grant{
			permitGrant("g1"), denyGrant("d1", func(g *consent.Grant) { g.Grantee = consent.Grantee{Kind: auth.KindHospital}; g.Effect = consent.Deny }),
		}, t0, nil, deny(consent.ReasonDenyExplicit, "d1")},
		{"deny of another category does not apply", readLab(), []consent.Grant{
			permitGrant("g1"), denyGrant("d1", func(g *consent.Grant) { g.Categories = []string{"mental-health"}; g.Purposes = nil }),
		}, t0, nil, permit("g1")},
		{"deny for another grantee does not apply", readLab(), []consent.Grant{
			permitGrant("g1"), denyGrant("d1", func(g *consent.Grant) {
				g.Grantee = consent.Grantee{Org: "hospital-c"}
				g.Categories = nil
				g.Purposes = nil
			}),
		}, t0, nil, permit("g1")},
		{"deny of another purpose does not apply", readLab(), []consent.Grant{
			permitGrant("g1"), denyGrant("d1", func(g *consent.Grant) { g.Purposes = []consent.Purpose{consent.PurposeResearch} }),
		}, t0, nil, permit("g1")},
		{"deny alone", readLab(), []consent.Grant{denyGrant("d1")}, t0, nil, deny(consent.ReasonDenyExplicit, "d1")},
		{"first of two permits is reported", readLab(), []consent.Grant{permitGrant("g2"), permitGrant("g1")}, t0, nil, permit("g2")},

		// Revocation.
		{"revoked only", readLab(), []consent.Grant{permitGrant("g1", revoked)}, t0, nil, deny(consent.ReasonDenyRevoked, "g1")},
		{"revoked and another active", readLab(), []consent.Grant{permitGrant("g1", revoked), permitGrant("g2")}, t0, nil, permit("g2")},
		{"revoked reported before expired", readLab(),
			[]consent.Grant{permitGrant("g2", func(g *consent.Grant) { g.NotAfter = t0 }), permitGrant("g1", revoked)},
			t0, nil, deny(consent.ReasonDenyRevoked, "g1")},
		{"revoked deny does not apply", readLab(), []consent.Grant{permitGrant("g1"), denyGrant("d1", revoked)}, t0, nil, permit("g1")},
		{"revoked grant of another category", readLab(),
			[]consent.Grant{permitGrant("g1", revoked, func(g *consent.Grant) { g.Categories = []string{"imaging"} })},
			t0, nil, deny(consent.ReasonDenyNoGrant, "")},

		// No grant; malformed requests.
		{"no grants", readLab(), nil, t0, nil, deny(consent.ReasonDenyNoGrant, "")},
		{"no patient", readLab(func(r *consent.Request) { r.Patient = "" }),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.Patient = "" })}, t0, nil, deny(consent.ReasonDenyInvalidRequest, "")},
		{"no requester", readLab(func(r *consent.Request) { r.Requester = "" }), []consent.Grant{permitGrant("g1")}, t0, nil,
			deny(consent.ReasonDenyInvalidRequest, "")},
		{"unknown kind", readLab(func(r *consent.Request) { r.RequesterKind = "insurer" }), []consent.Grant{permitGrant("g1")}, t0, nil,
			deny(consent.ReasonDenyInvalidRequest, "")},
		{"no record", readLab(func(r *consent.Request) { r.RecordID = "" }), []consent.Grant{permitGrant("g1")}, t0, nil,
			deny(consent.ReasonDenyInvalidRequest, "")},

		// Break-glass.
		{"break-glass allowed", readLab(emergency(goodJustification)), nil, t0, nil,
			breakGlass(consent.Permit, consent.ReasonPermitBreakGlass, "")},
		{"break-glass justification of exactly 20 characters", readLab(emergency(strings.Repeat("x", 20))), nil, t0, nil,
			breakGlass(consent.Permit, consent.ReasonPermitBreakGlass, "")},
		{"break-glass justification of 19 characters", readLab(emergency(strings.Repeat("x", 19))), nil, t0, nil,
			breakGlass(consent.Deny, consent.ReasonDenyBreakGlassJustification, "")},
		{"break-glass justification padded with spaces", readLab(emergency("   " + strings.Repeat("x", 19) + "\t\n ")), nil, t0, nil,
			breakGlass(consent.Deny, consent.ReasonDenyBreakGlassJustification, "")},
		{"break-glass justification counted in characters, not bytes", readLab(emergency(strings.Repeat("é", 19))), nil, t0, nil,
			breakGlass(consent.Deny, consent.ReasonDenyBreakGlassJustification, "")},
		{"break-glass without justification", readLab(emergency("")), nil, t0, nil,
			breakGlass(consent.Deny, consent.ReasonDenyBreakGlassJustification, "")},
		{"break-glass from a disallowed kind", readLab(emergency(goodJustification), func(r *consent.Request) {
			r.Requester, r.RequesterKind = "insurer-x", auth.KindVerifier
		}), nil, t0, nil, breakGlass(consent.Deny, consent.ReasonDenyBreakGlassKind, "")},
		{"break-glass from a kind the policy adds", readLab(emergency(goodJustification), func(r *consent.Request) {
			r.Requester, r.RequesterKind = "insurer-x", auth.KindVerifier
		}), nil, t0, &consent.Policy{BreakGlassKinds: []auth.Kind{auth.KindHospital, auth.KindVerifier}, HonourDenyOnBreakGlass: true},
			breakGlass(consent.Permit, consent.ReasonPermitBreakGlass, "")},
		{"break-glass under the zero policy", readLab(emergency(goodJustification)), nil, t0, &consent.Policy{},
			breakGlass(consent.Deny, consent.ReasonDenyBreakGlassKind, "")},
		{"break-glass with a longer minimum", readLab(emergency(strings.Repeat("x", 25))), nil, t0,
			&consent.Policy{BreakGlassKinds: []auth.Kind{auth.KindHospital}, MinJustification: 30},
			breakGlass(consent.Deny, consent.ReasonDenyBreakGlassJustification, "")},
		{"break-glass minimum cannot go below 20", readLab(emergency(strings.Repeat("x", 10))), nil, t0,
			&consent.Policy{BreakGlassKinds: []auth.Kind{auth.KindHospital}, MinJustification: 5},
			breakGlass(consent.Deny, consent.ReasonDenyBreakGlassJustification, "")},
		{"break-glass: explicit deny honoured", readLab(emergency(goodJustification)), []consent.Grant{denyGrant("d1")}, t0, nil,
			breakGlass(consent.Deny, consent.ReasonDenyExplicit, "d1")},
		{"break-glass: explicit deny of ETREAT only honoured", readLab(emergency(goodJustification)),
			[]consent.Grant{denyGrant("d1", func(g *consent.Grant) {
				g.Categories, g.Purposes = nil, []consent.Purpose{consent.PurposeEmergencyTreatment}
			})}, t0, nil, breakGlass(consent.Deny, consent.ReasonDenyExplicit, "d1")},
		{"break-glass: explicit deny not honoured", readLab(emergency(goodJustification)), []consent.Grant{denyGrant("d1")}, t0,
			&consent.Policy{BreakGlassKinds: []auth.Kind{auth.KindHospital}, HonourDenyOnBreakGlass: false},
			breakGlass(consent.Permit, consent.ReasonPermitBreakGlass, "")},
		{"break-glass: deny of TREAT only does not refuse ETREAT", readLab(emergency(goodJustification)),
			[]consent.Grant{denyGrant("d1", func(g *consent.Grant) { g.Categories = nil })}, t0, nil,
			breakGlass(consent.Permit, consent.ReasonPermitBreakGlass, "")},
		{"break-glass: revoked deny does not refuse", readLab(emergency(goodJustification)),
			[]consent.Grant{denyGrant("d1", revoked, func(g *consent.Grant) { g.Purposes = nil })}, t0, nil,
			breakGlass(consent.Permit, consent.ReasonPermitBreakGlass, "")},
		{"ETREAT under a grant is not break-glass", readLab(emergency("")),
			[]consent.Grant{permitGrant("g1", func(g *consent.Grant) { g.Purposes = []consent.Purpose{consent.PurposeEmergencyTreatment} })},
			t0, nil, permit("g1")},
		{"ETREAT with only a TREAT grant is break-glass", readLab(emergency(goodJustification)), []consent.Grant{permitGrant("g1")}, t0, nil,
			breakGlass(consent.Permit, consent.ReasonPermitBreakGlass, "")},
		{"ETREAT under a grant with an honoured deny", readLab(emergency(goodJustification)), []consent.Grant{
			permitGrant("g1", func(g *consent.Grant) { g.Purposes = nil }), denyGrant("d1"),
		}, t0, nil, breakGlass(consent.Deny, consent.ReasonDenyExplicit, "d1")},
		{"break-glass checks the kind before the justification", readLab(emergency("short"), func(r *consent.Request) {
			r.RequesterKind = auth.KindRegulator
		}), nil, t0, nil, breakGlass(consent.Deny, consent.ReasonDenyBreakGlassKind, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy := consent.DefaultPolicy()
			if tt.policy != nil {
				policy = *tt.policy
			}
			got := consent.Decide(tt.req, tt.grants, tt.now, policy)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
			if got.Permitted() != (tt.want.Effect == consent.Permit) {
				t.Errorf("Permitted() = %v, want %v", got.Permitted(), tt.want.Effect == consent.Permit)
			}
		})
	}
}

func TestDecideDoesNotModifyGrants(t *testing.T) {
	grants := []consent.Grant{permitGrant("g1"), denyGrant("d1"), permitGrant("g2", func(g *consent.Grant) { g.Revoked = true })}
	before := make([]consent.Grant, len(grants))
	for i, g := range grants {
		before[i] = g
		before[i].Categories = append([]string(nil), g.Categories...)
	}
	consent.Decide(readLab(), grants, t0, consent.DefaultPolicy())
	if diff := cmp.Diff(before, grants); diff != "" {
		t.Errorf("Decide modified grants (-before +after):\n%s", diff)
	}
}

func TestGrantStatus(t *testing.T) {
	g := permitGrant("g1")
	tests := []struct {
		name  string
		grant consent.Grant
		now   time.Time
		want  consent.Status
	}{
		{"active", g, t0, consent.StatusActive},
		{"at not_before", g, notBefore, consent.StatusActive},
		{"before not_before", g, notBefore.Add(-1), consent.StatusPending},
		{"at not_after", g, notAfter, consent.StatusExpired},
		{"revoked wins over expiry", permitGrant("g1", func(g *consent.Grant) { g.Revoked = true }), notAfter, consent.StatusRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.grant.Status(tt.now); got != tt.want {
				t.Errorf("Status() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		policy  consent.Policy
		wantErr bool
	}{
		{"default", consent.DefaultPolicy(), false},
		{"zero", consent.Policy{}, false},
		{"unknown kind", consent.Policy{BreakGlassKinds: []auth.Kind{"insurer"}}, true},
		{"negative minimum", consent.Policy{MinJustification: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
