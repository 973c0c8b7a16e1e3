package fhir_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/fhir"
	"github.com/healthgw/healthgw/fhir/fhirtest"
)

// validateR4 validates v (marshalled as JSON) against the R4 schema's
// definition of resourceType (fhirtest, shared with the API's tests).
func validateR4(t *testing.T, resourceType string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	fhirtest.Validate(t, resourceType, b)
}

// events covers every shape of AuditEvent: permit by a grant, by the
// holder, by break-glass; deny by a grant, and by default.
func events() map[string]consent.AccessEvent {
	permitGrant := denyEvent
	permitGrant.Decision, permitGrant.Reason = consent.Permit, consent.ReasonPermitGrant
	holder := breakGlassEvent
	holder.BreakGlass, holder.JustificationHash, holder.Reason, holder.Purpose, holder.RequestID = false, "", consent.ReasonPermitHolder, "", ""
	noGrant := denyEvent
	noGrant.GrantID, noGrant.Reason, noGrant.RequestID = "", consent.ReasonDenyNoGrant, ""
	return map[string]consent.AccessEvent{
		"permit by grant":       permitGrant,
		"permit by the holder":  holder,
		"permit by break-glass": breakGlassEvent,
		"deny by grant":         denyEvent,
		"deny by default":       noGrant,
	}
}

// TestSchemaValid: every resource and Bundle this package builds is valid
// against the official FHIR R4 JSON schema.
func TestSchemaValid(t *testing.T) {
	for name, e := range events() {
		t.Run("AuditEvent "+name, func(t *testing.T) {
			validateR4(t, "AuditEvent", fhir.NewAuditEvent(e, "https://gw.example/fhir"))
		})
	}
	for name, g := range map[string]consent.Grant{"revoked permit": revoked, "deny to a kind": kindDeny} {
		t.Run("Consent "+name, func(t *testing.T) {
			validateR4(t, "Consent", fhir.NewConsent(g, t0))
		})
	}
	total := 2
	var evs []consent.AccessEvent
	for _, e := range events() {
		evs = append(evs, e)
	}
	links := fhir.Links{Base: "https://gw.example/fhir", Self: "https://gw.example/fhir/AuditEvent?patient=x", Next: "https://gw.example/fhir/AuditEvent?patient=x&cursor=c", Total: &total}
	validateR4(t, "Bundle", fhir.AuditEventBundle(evs, links))
	asOf := links
	asOf.AsOf = 1 << 40
	validateR4(t, "Bundle", fhir.AuditEventBundle(evs, asOf))
	validateR4(t, "Bundle", fhir.ConsentBundle([]consent.Grant{revoked, kindDeny}, t0, links))
	validateR4(t, "Bundle", fhir.ConsentBundle(nil, t0, fhir.Links{}))
}

// TestSchemaCatchesInvalid: the schema check fails on invalid resources,
// so TestSchemaValid means something.
func TestSchemaCatchesInvalid(t *testing.T) {
	sch, err := fhirtest.Schema("AuditEvent")
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"unknown element": `{"resourceType":"AuditEvent","type":{"code":"rest"},"recorded":"2026-01-01T00:00:00Z","agent":[{"requestor":true}],"source":{"observer":{"display":"x"}},"colour":"red"}`,
		"bad action code": `{"resourceType":"AuditEvent","type":{"code":"rest"},"action":"X","recorded":"2026-01-01T00:00:00Z","agent":[{"requestor":true}],"source":{"observer":{"display":"x"}}}`,
		"missing agent":   `{"resourceType":"AuditEvent","type":{"code":"rest"},"recorded":"2026-01-01T00:00:00Z","source":{"observer":{"display":"x"}}}`,
		"bad instant":     `{"resourceType":"AuditEvent","type":{"code":"rest"},"recorded":"yesterday","agent":[{"requestor":true}],"source":{"observer":{"display":"x"}}}`,
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if sch.Validate(inst) == nil {
			t.Errorf("%s: the R4 schema accepted %s", name, doc)
		}
	}
}

// decode marshals v and decodes it as generic JSON.
func decode(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func list(m map[string]any, key string) []map[string]any {
	var out []map[string]any
	xs, _ := m[key].([]any)
	for _, x := range xs {
		if o, ok := x.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

func obj(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}

// hasCoding reports whether a CodeableConcept (or Coding) v has system|code.
func hasCoding(v map[string]any, system, code string) bool {
	if v == nil {
		return false
	}
	if v["system"] == system && v["code"] == code {
		return true
	}
	for _, c := range list(v, "coding") {
		if c["system"] == system && c["code"] == code {
			return true
		}
	}
	return false
}

// balp checks an AuditEvent (as JSON) against the rules of the BALP 1.1
// profile it claims in meta.profile (IHE.BasicAudit.PatientRead with its
// parent Read, or IHE.BasicAudit.AuthZconsent) and returns the
// violations. It fails on an event that claims neither.
func balp(ae map[string]any) []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	if _, ok := ae["modifierExtension"]; ok {
		fail("modifierExtension present")
	}
	profiles, _ := obj(ae, "meta")["profile"].([]any)
	if len(profiles) != 1 {
		return append(bad, fmt.Sprintf("claims %d profiles", len(profiles)))
	}
	agents, entities := list(ae, "agent"), list(ae, "entity")
	// slice returns the agents or entities whose type matches.
	slice := func(xs []map[string]any, system, code string) []map[string]any {
		var out []map[string]any
		for _, x := range xs {
			if hasCoding(obj(x, "type"), system, code) {
				out = append(out, x)
			}
		}
		return out
	}
	forbid := func(what string, x map[string]any, fields ...string) {
		for _, f := range fields {
			if _, ok := x[f]; ok {
				fail("%s has %s", what, f)
			}
		}
	}
	one := func(what string, xs []map[string]any) map[string]any {
		if len(xs) != 1 {
			fail("%d %s, want 1", len(xs), what)
			return map[string]any{}
		}
		return xs[0]
	}
	patient := func(p map[string]any) {
		if !hasCoding(obj(p, "role"), fhir.SystemObjectRole, "1") {
			fail("patient entity role is not object-role#1")
		}
		what := obj(p, "what")
		ref, _ := what["reference"].(string)
		if what == nil || (what["type"] != "Patient" && !strings.HasPrefix(ref, "Patient/")) {
			fail("patient entity what is not Reference(Patient): %v", what)
		}
		forbid("patient entity", p, "lifecycle", "securityLabel", "name", "query", "detail")
	}
	switch profiles[0] {
	case fhir.ProfilePatientRead:
		if !hasCoding(obj(ae, "type"), fhir.SystemAuditEventType, "rest") {
			fail("type is not rest")
		}
		sub := list(ae, "subtype")
		if len(sub) == 0 || !hasCoding(sub[0], fhir.SystemRestfulInteraction, "read") {
			fail("subtype is not read")
		}
		if ae["action"] != "R" || ae["outcome"] != "0" || ae["recorded"] == nil {
			fail("action %v outcome %v recorded %v, want R, 0, set", ae["action"], ae["outcome"], ae["recorded"])
		}
		if len(agents) < 2 {
			fail("%d agents, want at least 2", len(agents))
		}
		for _, s := range []struct{ name, code string }{{"client", "110152"}, {"server", "110153"}} {
			a := one(s.name+" agents (DCM#"+s.code+")", slice(agents, fhir.SystemDICOM, s.code))
			if a["who"] == nil {
				fail("%s agent has no who", s.name)
			}
			if n := obj(a, "network"); n == nil || n["address"] == nil || n["type"] == nil {
				fail("%s agent has no network address and type", s.name)
			}
			forbid(s.name+" agent", a, "role", "altId", "name", "location", "policy", "media", "purposeOfUse")
		}
		if len(entities) < 2 {
			fail("%d entities, want at least 2", len(entities))
		}
		data := one("data entities", slice(entities, fhir.SystemAuditEntityType, "2"))
		if data["what"] == nil {
			fail("data entity has no what")
		}
		role := obj(data, "role")
		if !hasCoding(role, fhir.SystemObjectRole, "4") && !hasCoding(role, fhir.SystemObjectRole, "3") && !hasCoding(role, fhir.SystemObjectRole, "20") {
			fail("data entity role %v is not a RESTful object role", role)
		}
		forbid("data entity", data, "lifecycle", "name", "query", "detail")
		tx := slice(entities, fhir.SystemBALPEntityType, "XrequestId")
		if len(tx) > 1 {
			fail("%d transaction entities", len(tx))
		}
		for _, x := range tx {
			if obj(obj(x, "what"), "identifier")["value"] == nil {
				fail("transaction entity has no what.identifier.value")
			}
			forbid("transaction entity", x, "lifecycle", "securityLabel", "name", "query", "detail")
		}
		patient(one("patient entities", slice(entities, fhir.SystemAuditEntityType, "1")))
	case fhir.ProfileAuthZconsent:
		if !hasCoding(obj(ae, "type"), fhir.SystemDICOM, "110113") {
			fail("type is not DCM#110113 Security Alert")
		}
		sub := list(ae, "subtype")
		if len(sub) != 1 || sub[0]["system"] != fhir.SystemBALPAuthZSubType {
			fail("subtype is not from AuthZsubType: %v", sub)
		}
		if ae["action"] != "E" || ae["outcome"] == nil || ae["recorded"] == nil {
			fail("action %v outcome %v recorded %v, want E, set, set", ae["action"], ae["outcome"], ae["recorded"])
		}
		client := one("client agents (DCM#110150)", slice(agents, fhir.SystemDICOM, "110150"))
		if client["who"] == nil || obj(client, "network") == nil {
			fail("client agent lacks who or network")
		}
		forbid("client agent", client, "role", "altId", "name", "location", "media", "purposeOfUse")
		user := one("user agents (IRCP)", slice(agents, fhir.SystemParticipationType, "IRCP"))
		if user["who"] == nil || user["requestor"] != true {
			fail("user agent lacks who or is not the requestor")
		}
		forbid("user agent", user, "altId", "location", "media", "network")
		userorg := one("userorg agents (PROV)", slice(agents, fhir.SystemRoleClass, "PROV"))
		if userorg["who"] == nil || userorg["requestor"] != false {
			fail("userorg agent lacks who or is a requestor")
		}
		forbid("userorg agent", userorg, "role", "altId", "name", "location", "policy", "media", "network")
		authz := one("authorizer agents (authserver)", slice(agents, fhir.SystemSecurityRoleType, "authserver"))
		if authz["requestor"] != false {
			fail("authorizer is a requestor")
		}
		// val-audit-source: the authorizer is the audit source.
		w, _ := json.Marshal(authz["who"])
		o, _ := json.Marshal(obj(ae, "source")["observer"])
		if authz["who"] == nil || string(w) != string(o) {
			fail("authorizer.who %s is not source.observer %s", w, o)
		}
		forbid("authorizer agent", authz, "role", "altId", "name", "location", "policy", "media", "network", "purposeOfUse")
		// Closed entity slicing: patient, consent, token only.
		var patients, consents int
		for _, e := range entities {
			switch {
			case hasCoding(obj(e, "type"), fhir.SystemAuditEntityType, "1"):
				patients++
				patient(e)
			case hasCoding(obj(e, "type"), fhir.SystemResourceTypes, "Consent"):
				consents++
				if e["what"] == nil {
					fail("consent entity has no what")
				}
			default:
				fail("entity %v is outside the closed slicing", e["type"])
			}
		}
		if patients != 1 || consents < 1 {
			fail("%d patient and %d consent entities, want 1 and at least 1", patients, consents)
		}
	default:
		fail("claims %v, not a BALP profile checked here", profiles[0])
	}
	return bad
}

// TestBALP: every AuditEvent that claims a BALP profile satisfies its
// rules; the only one that claims none is the deny without a consent
// (AuthZconsent requires the consent entity).
func TestBALP(t *testing.T) {
	for name, e := range events() {
		t.Run(name, func(t *testing.T) {
			ae := decode(t, fhir.NewAuditEvent(e, "https://gw.example/fhir"))
			if e.Decision == consent.Deny && e.GrantID == "" {
				if ae["meta"] != nil {
					t.Errorf("a deny without consent claims %v", ae["meta"])
				}
				return
			}
			if bad := balp(ae); len(bad) > 0 {
				t.Errorf("BALP violations:\n%s", strings.Join(bad, "\n"))
			}
		})
	}
}

// TestBALPCatchesViolations: the BALP checker refuses events that break
// the profiles' rules, so TestBALP means something.
func TestBALPCatchesViolations(t *testing.T) {
	permit := events()["permit by grant"]
	deny := denyEvent
	tests := []struct {
		name   string
		event  consent.AccessEvent
		mutate func(ae map[string]any)
		want   string
	}{
		{"read: client without network", permit, func(ae map[string]any) { delete(list(ae, "agent")[0], "network") }, "client agent has no network"},
		{"read: purposeOfUse on the client", permit, func(ae map[string]any) {
			list(ae, "agent")[0]["purposeOfUse"] = []any{map[string]any{"text": "TREAT"}}
		}, "client agent has purposeOfUse"},
		{"read: patient as a bare identifier", permit, func(ae map[string]any) {
			delete(obj(list(ae, "entity")[0], "what"), "type")
		}, "not Reference(Patient)"},
		{"read: detail on the data entity", permit, func(ae map[string]any) {
			list(ae, "entity")[1]["detail"] = []any{map[string]any{"type": "x", "valueString": "y"}}
		}, "data entity has detail"},
		{"read: outcome failure", permit, func(ae map[string]any) { ae["outcome"] = "4" }, "outcome 4"},
		{"authz: extra entity", deny, func(ae map[string]any) {
			ae["entity"] = append(ae["entity"].([]any), map[string]any{"type": map[string]any{"system": fhir.SystemAuditEntityType, "code": "2"}})
		}, "outside the closed slicing"},
		{"authz: authorizer not the source", deny, func(ae map[string]any) {
			list(ae, "agent")[3]["who"] = map[string]any{"display": "someone else"}
		}, "is not source.observer"},
		{"authz: no consent entity", deny, func(ae map[string]any) { ae["entity"] = ae["entity"].([]any)[:1] }, "0 consent entities"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae := decode(t, fhir.NewAuditEvent(tt.event, "https://gw.example/fhir"))
			if bad := balp(ae); len(bad) > 0 {
				t.Fatalf("unmutated event already violates: %v", bad)
			}
			tt.mutate(ae)
			bad := strings.Join(balp(ae), "\n")
			if !strings.Contains(bad, tt.want) {
				t.Errorf("violations %q, want one saying %q", bad, tt.want)
			}
		})
	}
}
