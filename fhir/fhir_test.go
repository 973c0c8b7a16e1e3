package fhir_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/fhir"
)

const patient = "ps_1111111111111111111111111111111111111111111111111111111111111111"

var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	revoked = consent.Grant{
		ID:            "cns_0123456789abcdef0123456789abcdef",
		Patient:       patient,
		Grantee:       consent.Grantee{Org: "hospital-b"},
		Effect:        consent.Permit,
		Actions:       []consent.Action{consent.ActionRead},
		Categories:    []string{"lab"},
		RecordIDs:     []string{"rec-1"},
		ResourceTypes: []string{"Observation"},
		Purposes:      []consent.Purpose{consent.PurposeTreatment, consent.PurposeResearch},
		NotBefore:     t0,
		NotAfter:      t0.AddDate(1, 0, 0),
		GrantedIndex:  41,
		GrantedAt:     t0.Add(-time.Minute),
		Revoked:       true,
		RevokedIndex:  99,
		RevokedAt:     t0.Add(time.Hour),
	}
	kindDeny = consent.Grant{
		ID:           "cns_ffffffffffffffffffffffffffffffff",
		Patient:      patient,
		Grantee:      consent.Grantee{Kind: auth.KindVerifier},
		Effect:       consent.Deny,
		Actions:      []consent.Action{consent.ActionRead},
		NotBefore:    t0,
		NotAfter:     t0.AddDate(0, 1, 0),
		GrantedIndex: 7,
		GrantedAt:    t0,
	}
	breakGlassEvent = consent.AccessEvent{
		Index: 123, Time: t0, Requester: "hospital-b", RecordID: "rec-1", Patient: patient, Category: "lab",
		Purpose: consent.PurposeEmergencyTreatment, Decision: consent.Permit, Reason: consent.ReasonPermitBreakGlass,
		BreakGlass: true, JustificationCommitment: strings.Repeat("ab", 32), RequestID: "req-9",
	}
	denyEvent = consent.AccessEvent{
		Index: 124, Time: t0.Add(time.Second), Requester: "insurer-x", RecordID: "rec-2", Patient: patient, Category: "lab",
		Purpose: consent.PurposePayment, Decision: consent.Deny, Reason: consent.ReasonDenyExplicit,
		GrantID: "cns_ffffffffffffffffffffffffffffffff", RequestID: "req-10",
	}
)

func TestNewConsent(t *testing.T) {
	ident := func(sys, v string) *fhir.Identifier { return &fhir.Identifier{System: sys, Value: v} }
	want := &fhir.Consent{
		ResourceType: "Consent",
		ID:           "cns-0123456789abcdef0123456789abcdef",
		Meta:         &fhir.Meta{LastUpdated: "2026-03-01T13:00:00.000000005Z"},
		Extension: []fhir.Extension{
			{URL: fhir.ExtLedgerIndex, ValueIdentifier: ident(fhir.SystemLedger, "41")},
			{URL: fhir.ExtRevocationIndex, ValueIdentifier: ident(fhir.SystemLedger, "99")},
		},
		Identifier: []fhir.Identifier{{System: fhir.SystemConsent, Value: revoked.ID}},
		Status:     "inactive",
		Scope:      fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemConsentScope, Code: "patient-privacy", Display: "Privacy Consent"}}},
		Category:   []fhir.CodeableConcept{{Coding: []fhir.Coding{{System: fhir.SystemLOINC, Code: "59284-0", Display: "Patient Consent"}}}},
		Patient:    &fhir.Reference{Identifier: ident(fhir.SystemPseudonym, patient)},
		DateTime:   "2026-03-01T11:59:00.000000005Z",
		PolicyRule: &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemActCode, Code: "OPTIN", Display: "opt-in"}}},
		Provision: &fhir.ConsentProvision{
			Type:   "permit",
			Period: &fhir.Period{Start: "2026-03-01T12:00:00.000000005Z", End: "2027-03-01T12:00:00.000000005Z"},
			Actor: []fhir.ConsentActor{{
				Role:      fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemParticipationType, Code: "IRCP", Display: "information recipient"}}},
				Reference: fhir.Reference{Identifier: ident(fhir.SystemOrg, "hospital-b")},
			}},
			Action: []fhir.CodeableConcept{{Coding: []fhir.Coding{{System: fhir.SystemConsentAction, Code: "access", Display: "Access"}}, Text: "read"}},
			Purpose: []fhir.Coding{
				{System: fhir.SystemActReason, Code: "TREAT", Display: "treatment"},
				{System: fhir.SystemActReason, Code: "HRESCH", Display: "healthcare research"},
			},
			Class: []fhir.Coding{{System: fhir.SystemResourceTypes, Code: "Observation"}},
			Code:  []fhir.CodeableConcept{{Coding: []fhir.Coding{{System: fhir.SystemCategory, Code: "lab"}}}},
			Data:  []fhir.ConsentData{{Meaning: "instance", Reference: fhir.Reference{Identifier: ident(fhir.SystemRecord, "rec-1")}}},
		},
	}
	if diff := cmp.Diff(want, fhir.NewConsent(revoked, t0)); diff != "" {
		t.Errorf("NewConsent (-want +got):\n%s", diff)
	}

	tests := []struct {
		name   string
		grant  consent.Grant
		now    time.Time
		status string
		rule   string
		actor  fhir.Reference
	}{
		{"active deny to a kind", kindDeny, t0, "active", "OPTOUT",
			fhir.Reference{Identifier: ident(fhir.SystemOrgKind, "verifier"), Display: "every verifier"}},
		{"expired", kindDeny, kindDeny.NotAfter, "inactive", "OPTOUT",
			fhir.Reference{Identifier: ident(fhir.SystemOrgKind, "verifier"), Display: "every verifier"}},
		{"not yet in force", kindDeny, t0.Add(-time.Hour), "active", "OPTOUT",
			fhir.Reference{Identifier: ident(fhir.SystemOrgKind, "verifier"), Display: "every verifier"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fhir.NewConsent(tt.grant, tt.now)
			if c.Status != tt.status || c.PolicyRule.Coding[0].Code != tt.rule || c.Provision.Type != string(tt.grant.Effect) {
				t.Errorf("status %q rule %q type %q, want %q %q %q", c.Status, c.PolicyRule.Coding[0].Code, c.Provision.Type, tt.status, tt.rule, tt.grant.Effect)
			}
			if diff := cmp.Diff(tt.actor, c.Provision.Actor[0].Reference); diff != "" {
				t.Errorf("actor (-want +got):\n%s", diff)
			}
			if c.Provision.Purpose != nil || c.Provision.Code != nil || c.Provision.Data != nil || c.Provision.Class != nil {
				t.Errorf("unrestricted grant has restrictions: %+v", c.Provision)
			}
		})
	}
}

func TestNewAuditEvent(t *testing.T) {
	const base = "https://gw.example/fhir"
	a := fhir.NewAuditEvent(breakGlassEvent, base)
	if a.ID != "ae-123" || a.Outcome != "0" || a.OutcomeDesc != "permit.break-glass" || a.Action != "R" ||
		a.Type.Code != "rest" || a.Subtype[0].Code != "read" || a.Recorded != "2026-03-01T12:00:00.000000005Z" {
		t.Errorf("permit event header: %+v", a)
	}
	if a.Meta == nil || !cmp.Equal(a.Meta.Profile, []string{fhir.ProfilePatientRead}) {
		t.Errorf("permit meta %+v, want the PatientRead profile", a.Meta)
	}
	wantExt := []fhir.Extension{
		{URL: fhir.ExtLedgerIndex, ValueIdentifier: &fhir.Identifier{System: fhir.SystemLedger, Value: "123"}},
		{URL: fhir.ExtBreakGlass, ValueBoolean: ptr(true)},
		{URL: fhir.ExtJustificationCommitment, ValueString: strings.Repeat("ab", 32)},
	}
	if diff := cmp.Diff(wantExt, a.Extension); diff != "" {
		t.Errorf("extensions (-want +got):\n%s", diff)
	}
	// A regulator's event has the reason opened from the commitment; an
	// event without it (the patient's, the reader's) shows none.
	opened := breakGlassEvent
	opened.Justification = "unconscious in ED, suspected DKA"
	ra := fhir.NewAuditEvent(opened, base)
	if diff := cmp.Diff(append(wantExt, fhir.Extension{URL: fhir.ExtJustification, ValueString: opened.Justification}), ra.Extension); diff != "" {
		t.Errorf("regulator's extensions (-want +got):\n%s", diff)
	}
	if strings.Contains(string(must(json.Marshal(a))), "unconscious") {
		t.Error("an event without the opened reason shows it")
	}
	etreat := []fhir.CodeableConcept{{Coding: []fhir.Coding{{System: fhir.SystemActReason, Code: "ETREAT", Display: "Emergency Treatment"}}}}
	if diff := cmp.Diff(etreat, a.PurposeOfEvent); diff != "" {
		t.Errorf("purposeOfEvent (-want +got):\n%s", diff)
	}
	wantAgents := []fhir.AuditAgent{
		{
			Type:      &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemDICOM, Code: "110152", Display: "Destination Role ID"}}},
			Who:       &fhir.Reference{Identifier: &fhir.Identifier{System: fhir.SystemOrg, Value: "hospital-b"}},
			Requestor: true,
			Network:   &fhir.AuditNetwork{Address: "urn:healthgw:org:hospital-b", Type: "5"},
		},
		{
			Type:      &fhir.CodeableConcept{Coding: []fhir.Coding{{System: fhir.SystemDICOM, Code: "110153", Display: "Source Role ID"}}},
			Who:       &fhir.Reference{Identifier: &fhir.Identifier{System: fhir.SystemGateway, Value: base}, Display: fhir.Observer},
			Requestor: false,
			Network:   &fhir.AuditNetwork{Address: base, Type: "5"},
		},
	}
	if diff := cmp.Diff(wantAgents, a.Agent); diff != "" {
		t.Errorf("permit agents (-want +got):\n%s", diff)
	}
	wantEntities := []fhir.AuditEntity{
		{
			What: &fhir.Reference{Type: "Patient", Identifier: &fhir.Identifier{System: fhir.SystemPseudonym, Value: patient}},
			Type: &fhir.Coding{System: fhir.SystemAuditEntityType, Code: "1", Display: "Person"},
			Role: &fhir.Coding{System: fhir.SystemObjectRole, Code: "1", Display: "Patient"},
		},
		{
			Extension: []fhir.Extension{{URL: fhir.ExtRecordCategory, ValueCode: "lab"}},
			What:      &fhir.Reference{Identifier: &fhir.Identifier{System: fhir.SystemRecord, Value: "rec-1"}},
			Type:      &fhir.Coding{System: fhir.SystemAuditEntityType, Code: "2", Display: "System Object"},
			Role:      &fhir.Coding{System: fhir.SystemObjectRole, Code: "4", Display: "Domain Resource"},
		},
		{
			What: &fhir.Reference{Identifier: &fhir.Identifier{Value: "req-9"}},
			Type: &fhir.Coding{System: fhir.SystemBALPEntityType, Code: "XrequestId", Display: "X-Request-Id"},
		},
	}
	if diff := cmp.Diff(wantEntities, a.Entity); diff != "" {
		t.Errorf("permit entities (-want +got):\n%s", diff)
	}

	d := fhir.NewAuditEvent(denyEvent, base)
	if d.Outcome != "8" || d.OutcomeDesc != "deny.explicit" || d.Action != "E" || d.Type.Code != "110113" ||
		d.Subtype[0].Code != "AuthZ-Consent" || d.Meta == nil || !cmp.Equal(d.Meta.Profile, []string{fhir.ProfileAuthZconsent}) {
		t.Errorf("deny event header: %+v", d)
	}
	var consentRef *fhir.Reference
	for _, e := range d.Entity {
		if e.Type.Code == "Consent" {
			consentRef = e.What
		}
	}
	if consentRef == nil || consentRef.Reference != "Consent/cns-ffffffffffffffffffffffffffffffff" || consentRef.Identifier.Value != denyEvent.GrantID {
		t.Errorf("deny event consent entity: %+v", consentRef)
	}
	// A deny by default has no consent to name: same shape, no claim.
	noGrant := denyEvent
	noGrant.GrantID, noGrant.Reason = "", consent.ReasonDenyNoGrant
	if n := fhir.NewAuditEvent(noGrant, base); n.Meta != nil || len(n.Entity) != 1 {
		t.Errorf("deny without consent: meta %+v, %d entities", n.Meta, len(n.Entity))
	}
}

func ptr[T any](v T) *T { return &v }

var (
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	instantPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$`)
)

// checkJSON walks decoded FHIR JSON and reports what FHIR forbids: empty
// objects, arrays and strings, nulls, and malformed ids and instants.
func checkJSON(t *testing.T, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			t.Errorf("%s: empty object", path)
		}
		for k, x := range v {
			p := path + "." + k
			switch k {
			case "id":
				if s, _ := x.(string); !idPattern.MatchString(s) {
					t.Errorf("%s: %q is not a FHIR id", p, x)
				}
			case "recorded", "dateTime", "start", "end", "lastUpdated":
				if s, _ := x.(string); !instantPattern.MatchString(s) {
					t.Errorf("%s: %q is not a FHIR instant", p, x)
				}
			}
			checkJSON(t, p, x)
		}
	case []any:
		if len(v) == 0 {
			t.Errorf("%s: empty array", path)
		}
		for i, x := range v {
			checkJSON(t, fmt.Sprintf("%s[%d]", path, i), x)
		}
	case string:
		if v == "" {
			t.Errorf("%s: empty string", path)
		}
	case nil:
		t.Errorf("%s: null", path)
	}
}

func TestBundles(t *testing.T) {
	total := 2
	links := fhir.Links{Base: "https://gw.example/fhir/", Self: "https://gw.example/fhir/Consent?patient=x", Next: "https://gw.example/fhir/Consent?patient=x&cursor=abc", Total: &total}
	tests := []struct {
		name      string
		bundle    *fhir.Bundle
		wantType  string
		wantURLs  []string
		wantLinks int
	}{
		{"consents", fhir.ConsentBundle([]consent.Grant{revoked, kindDeny}, t0, links), "Consent",
			[]string{"https://gw.example/fhir/Consent/cns-0123456789abcdef0123456789abcdef", "https://gw.example/fhir/Consent/cns-ffffffffffffffffffffffffffffffff"}, 2},
		{"audit events", fhir.AuditEventBundle([]consent.AccessEvent{breakGlassEvent, denyEvent}, fhir.Links{Base: "https://gw.example/fhir"}), "AuditEvent",
			[]string{"https://gw.example/fhir/AuditEvent/ae-123", "https://gw.example/fhir/AuditEvent/ae-124"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.bundle)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			checkJSON(t, "Bundle", doc)
			if doc["resourceType"] != "Bundle" || doc["type"] != "searchset" {
				t.Errorf("bundle header: %v %v", doc["resourceType"], doc["type"])
			}
			if links, _ := doc["link"].([]any); len(links) != tt.wantLinks {
				t.Errorf("%d links, want %d", len(links), tt.wantLinks)
			}
			entries, _ := doc["entry"].([]any)
			var urls []string
			for _, e := range entries {
				e := e.(map[string]any)
				urls = append(urls, e["fullUrl"].(string))
				res := e["resource"].(map[string]any)
				if res["resourceType"] != tt.wantType {
					t.Errorf("entry resourceType %v, want %s", res["resourceType"], tt.wantType)
				}
				if e["search"].(map[string]any)["mode"] != "match" {
					t.Errorf("entry search mode %v", e["search"])
				}
			}
			if diff := cmp.Diff(tt.wantURLs, urls); diff != "" {
				t.Errorf("fullUrls (-want +got):\n%s", diff)
			}
		})
	}

	// A search's ledger position is in the Bundle's meta.
	b, _ := json.Marshal(fhir.AuditEventBundle(nil, fhir.Links{AsOf: 4097}))
	if want := `{"resourceType":"Bundle","meta":{"extension":[{"url":"` + fhir.ExtAsOf + `","valueIdentifier":{"system":"` + fhir.SystemLedger + `","value":"4097"}}]},"type":"searchset"}`; string(b) != want {
		t.Errorf("bundle with as_of = %s\nwant %s", b, want)
	}

	// An empty result is a valid, empty searchset.
	b, _ = json.Marshal(fhir.ConsentBundle(nil, t0, fhir.Links{}))
	if string(b) != `{"resourceType":"Bundle","type":"searchset"}` {
		t.Errorf("empty bundle = %s", b)
	}
	// The gateway agent's requestor=false must be present (it is 1..1).
	b, _ = json.Marshal(fhir.NewAuditEvent(denyEvent, ""))
	var ae struct {
		Agent []map[string]any `json:"agent"`
	}
	if err := json.Unmarshal(b, &ae); err != nil || len(ae.Agent) != 4 || ae.Agent[3]["requestor"] != false {
		t.Errorf("agents in JSON: %+v, %v", ae.Agent, err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
