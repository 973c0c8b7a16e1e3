package consent_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
)

// gen derives test values from fuzz bytes: each pick consumes one byte
// (zero once the bytes run out), so every input is a valid scenario and
// small inputs are small scenarios.
type gen struct{ b []byte }

func (g *gen) n(k int) int {
	if len(g.b) == 0 {
		return 0
	}
	v := int(g.b[0]) % k
	g.b = g.b[1:]
	return v
}

func pick[T any](g *gen, vs ...T) T { return vs[g.n(len(vs))] }

func (g *gen) timeAround() time.Time {
	return pick(g, time.Time{}, t0.Add(-time.Hour), t0, t0.Add(time.Hour), t0.Add(-2*time.Hour), t0.Add(2*time.Hour))
}

func (g *gen) grant(id string) consent.Grant {
	return consent.Grant{
		ID:      id,
		Patient: pick(g, patient, patient, other),
		Grantee: pick(g,
			consent.Grantee{Org: "hospital-b"}, consent.Grantee{Org: "hospital-c"},
			consent.Grantee{Kind: auth.KindHospital}, consent.Grantee{Kind: auth.KindVerifier}),
		Effect:        pick(g, consent.Permit, consent.Deny),
		Actions:       pick(g, []consent.Action{consent.ActionRead}, nil),
		Categories:    pick(g, nil, []string{"lab"}, []string{"imaging"}, []string{"lab", "imaging"}),
		RecordIDs:     pick(g, nil, nil, []string{"rec-1"}, []string{"rec-2"}),
		ResourceTypes: pick(g, nil, nil, []string{"Observation"}, []string{"DiagnosticReport"}),
		Purposes: pick(g, nil,
			[]consent.Purpose{consent.PurposeTreatment},
			[]consent.Purpose{consent.PurposeEmergencyTreatment},
			[]consent.Purpose{consent.PurposeResearch, consent.PurposeTreatment},
			[]consent.Purpose{pick(g, consent.Purposes...)}),
		NotBefore: g.timeAround(),
		NotAfter:  g.timeAround(),
		Revoked:   g.n(4) == 0,
	}
}

func (g *gen) request() consent.Request {
	who := pick(g,
		struct {
			org  string
			kind auth.Kind
		}{"hospital-b", auth.KindHospital},
		struct {
			org  string
			kind auth.Kind
		}{"hospital-c", auth.KindHospital},
		struct {
			org  string
			kind auth.Kind
		}{"insurer-x", auth.KindVerifier})
	return consent.Request{
		Requester:     who.org,
		RequesterKind: who.kind,
		RecordID:      pick(g, "rec-1", "rec-2"),
		Patient:       pick(g, patient, patient, other),
		Category:      pick(g, "lab", "imaging", ""),
		ResourceType:  pick(g, "Observation", "DiagnosticReport", ""),
		Purpose:       pick(g, consent.Purposes...),
		Justification: pick(g, "", "hurry", goodJustification),
	}
}

func (g *gen) policy() consent.Policy {
	return consent.Policy{
		BreakGlassKinds:        pick(g, []auth.Kind{auth.KindHospital}, nil, []auth.Kind{auth.KindHospital, auth.KindVerifier}),
		HonourDenyOnBreakGlass: g.n(3) != 0,
		MinJustification:       pick(g, 0, 20, 30),
	}
}

// checkDecideProperties checks Decide's invariants on the scenario data
// describes.
func checkDecideProperties(t *testing.T, data []byte) {
	g := &gen{b: data}
	req, policy := g.request(), g.policy()
	now := t0.Add(time.Duration(g.n(3)-1) * time.Hour)
	grants := make([]consent.Grant, g.n(6))
	for i := range grants {
		grants[i] = g.grant("g" + string(rune('a'+i)))
	}
	extra := g.grant("x")

	decide := func(gs []consent.Grant) consent.Decision { return consent.Decide(req, gs, now, policy) }
	got := decide(grants)

	// Pure: same answer twice, grants untouched.
	snapshot := slices.Clone(grants)
	if again := decide(grants); again != got {
		t.Fatalf("Decide is not deterministic: %+v then %+v", got, again)
	}
	if diff := cmp.Diff(snapshot, grants); diff != "" {
		t.Fatalf("Decide modified grants:\n%s", diff)
	}

	// Well-formed decision.
	if !slices.Contains(consent.Reasons, got.Reason) {
		t.Fatalf("unknown reason %q", got.Reason)
	}
	if !strings.HasPrefix(string(got.Reason), string(got.Effect)+".") {
		t.Fatalf("effect %q with reason %q", got.Effect, got.Reason)
	}
	if got.BreakGlass && req.Purpose != consent.PurposeEmergencyTreatment {
		t.Fatalf("break-glass flag on purpose %s", req.Purpose)
	}
	if got.Reason == consent.ReasonPermitBreakGlass &&
		(!slices.Contains(policy.BreakGlassKinds, req.RequesterKind) || len(strings.TrimSpace(req.Justification)) < 20) {
		t.Fatalf("break-glass permitted for kind %s with justification %q under %+v", req.RequesterKind, req.Justification, policy)
	}
	if got.Reason == consent.ReasonPermitGrant {
		i := slices.IndexFunc(grants, func(gr consent.Grant) bool { return gr.ID == got.GrantID })
		if i < 0 {
			t.Fatalf("permit.grant names grant %q, which is not in the list", got.GrantID)
		}
		if gr := grants[i]; gr.Effect != consent.Permit || gr.Patient != req.Patient || gr.Status(now) != consent.StatusActive ||
			!gr.Grantee.Matches(req.Requester, req.RequesterKind) {
			t.Fatalf("permit.grant by grant %+v", gr)
		}
	}

	// The effect and reason do not depend on the grants' order.
	rev := slices.Clone(grants)
	slices.Reverse(rev)
	if r := decide(rev); r.Effect != got.Effect || r.Reason != got.Reason || r.BreakGlass != got.BreakGlass {
		t.Fatalf("reversed grants: %+v, in order: %+v", r, got)
	}

	// Another patient's grants change nothing.
	foreign := extra
	foreign.Patient = "ps_3333333333333333333333333333333333333333333333333333333333333333"
	if r := decide(append(slices.Clone(grants), foreign)); r != got {
		t.Fatalf("another patient's grant changed %+v to %+v", got, r)
	}

	// Adding a deny grant never turns a deny into a permit.
	denyExtra := extra
	denyExtra.Effect = consent.Deny
	if got.Effect == consent.Deny {
		for _, gs := range [][]consent.Grant{append(slices.Clone(grants), denyExtra), append([]consent.Grant{denyExtra}, grants...)} {
			if r := decide(gs); r.Effect != consent.Deny {
				t.Fatalf("adding deny grant %+v turned %+v into %+v", denyExtra, got, r)
			}
		}
	}
	// A blanket, active deny for the requester always denies, unless
	// break-glass is configured to override it.
	blanket := consent.Grant{ID: "blanket", Patient: req.Patient, Grantee: consent.Grantee{Org: req.Requester}, Effect: consent.Deny}
	for _, gs := range [][]consent.Grant{append(slices.Clone(grants), blanket), append([]consent.Grant{blanket}, grants...)} {
		r := decide(gs)
		overridable := req.Purpose == consent.PurposeEmergencyTreatment && !policy.HonourDenyOnBreakGlass
		if r.Effect != consent.Deny && !(overridable && r.Reason == consent.ReasonPermitBreakGlass) {
			t.Fatalf("blanket deny gave %+v", r)
		}
		if req.Requester != "" && !overridable && r.Reason != consent.ReasonDenyExplicit {
			t.Fatalf("blanket deny gave reason %q, want %q", r.Reason, consent.ReasonDenyExplicit)
		}
	}
	// Adding a permit grant never turns a permit into a deny.
	permitExtra := extra
	permitExtra.Effect = consent.Permit
	if got.Effect == consent.Permit {
		if r := decide(append(slices.Clone(grants), permitExtra)); r.Effect != consent.Permit {
			t.Fatalf("adding permit grant %+v turned %+v into %+v", permitExtra, got, r)
		}
	}
	// Revoking a permit grant never turns a deny into a permit.
	if got.Effect == consent.Deny {
		for i := range grants {
			if grants[i].Effect != consent.Permit {
				continue
			}
			gs := slices.Clone(grants)
			gs[i].Revoked = true
			if r := decide(gs); r.Effect != consent.Deny {
				t.Fatalf("revoking %s turned %+v into %+v", gs[i].ID, got, r)
			}
		}
	}
	// A revoked or expired grant decides nothing more than no grant at all,
	// apart from the reason.
	if got.Effect == consent.Permit && got.Reason == consent.ReasonPermitGrant {
		var live []consent.Grant
		for _, gr := range grants {
			if gr.Status(now) == consent.StatusActive {
				live = append(live, gr)
			}
		}
		if r := decide(live); r != got {
			t.Fatalf("dropping inactive grants changed %+v to %+v", got, r)
		}
	}
}

// FuzzDecide checks Decide's invariants on generated scenarios.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1, 0, 0})
	f.Add([]byte("break-glass ETREAT hospital honoured deny"))
	f.Fuzz(checkDecideProperties)
}

// TestDecideProperties runs the fuzz invariants on many pseudo-random
// scenarios (fixed seed), so that plain go test covers them.
func TestDecideProperties(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 128)
	defer func() {
		if t.Failed() {
			t.Logf("scenario bytes (add to a FuzzDecide corpus to replay): %x", buf)
		}
	}()
	for range n {
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		checkDecideProperties(t, buf)
	}
}
