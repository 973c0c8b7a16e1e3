package access_test

import (
	"testing"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/ledger"
)

// TestEntitled: one row per kind of party, and the viewers next to them
// who are not.
func TestEntitled(t *testing.T) {
	ps := pseudonym("pat-1")
	opened := func(org string, body any, subject string) ledger.Opened {
		return ledger.Opened{Entry: ledger.Entry{Org: org, Body: body}, Opening: ledger.Opening{Subject: subject}}
	}
	org := func(id string, scopes ...auth.Scope) auth.Principal {
		return auth.Principal{Org: id, Kind: auth.KindHospital, Scopes: scopes}
	}
	reg := auth.Principal{Org: "reg-r", Kind: auth.KindRegulator, Scopes: []auth.Scope{auth.ScopeAuditRead}}
	fakeReg := auth.Principal{Org: "hosp-c", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeAuditRead}}
	patient := auth.Principal{Patient: "pat-1"}
	grantToKind := &ledger.ConsentGranted{ConsentID: "c", Patient: ps, Grantee: ledger.Grantee{Kind: "hospital"}}
	for _, tt := range []struct {
		name      string
		v         auth.Principal
		pseudonym string
		o         ledger.Opened
		want      bool
	}{
		{"holder of a record", org("hosp-a"), "", opened("hosp-a", &ledger.RecordRegistered{Holder: "hosp-a", Patient: ps}, ps), true},
		{"another hospital", org("hosp-b"), "", opened("hosp-a", &ledger.RecordRegistered{Holder: "hosp-a", Patient: ps}, ps), false},
		{"the patient", patient, ps, opened("hosp-a", &ledger.RecordRegistered{Holder: "hosp-a", Patient: ps}, ps), true},
		{"another patient", auth.Principal{Patient: "pat-2"}, pseudonym("pat-2"), opened("hosp-a", &ledger.RecordRegistered{Holder: "hosp-a", Patient: ps}, ps), false},
		{"a patient, entry about nobody", patient, ps, opened("hosp-a", &ledger.AccessDecided{Requester: "hosp-b"}, ""), false},
		{"a patient without a pseudonym", patient, "", opened("hosp-a", &ledger.RecordRegistered{Holder: "hosp-a"}, ""), false},
		{"grantee org", org("hosp-b"), "", opened(ledger.PatientOrg(ps), &ledger.ConsentGranted{Grantee: ledger.Grantee{Org: "hosp-b"}, Patient: ps}, ps), true},
		{"a hospital, grant to its kind", org("hosp-b"), "", opened(ledger.PatientOrg(ps), grantToKind, ps), false},
		{"requester", org("hosp-b"), "", opened("hosp-a", &ledger.AccessDecided{Requester: "hosp-b"}, ps), true},
		{"decider", org("hosp-a"), "", opened("hosp-a", &ledger.AccessDecided{Requester: "hosp-b"}, ps), true},
		{"issuer", org("hosp-a"), "", opened("hosp-a", &ledger.IssuerRegistered{Issuer: "hosp-a"}, ""), true},
		{"verifier", org("ins-v"), "", opened("ins-v", &ledger.ProofVerified{Verifier: "ins-v"}, ""), true},
		{"the org registered", org("hosp-b"), "", opened("hosp-b", &ledger.OrgRegistered{ID: "hosp-b"}, ""), true},
		{"gateway's own entry", org("hosp-a"), "", opened(ledger.OrgGateway, &ledger.CircuitRegistered{}, ""), false},
		{"regulator", reg, "", opened(ledger.PatientOrg(ps), grantToKind, ps), true},
		{"audit scope without the regulator kind", fakeReg, "", opened(ledger.PatientOrg(ps), grantToKind, ps), false},
		{"anonymous", auth.Principal{}, "", opened("hosp-a", &ledger.RecordRegistered{Holder: "hosp-a"}, ""), false},
	} {
		if got := access.Entitled(tt.v, tt.pseudonym, tt.o); got != tt.want {
			t.Errorf("%s: Entitled = %v, want %v", tt.name, got, tt.want)
		}
	}
}
