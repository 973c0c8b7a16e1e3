package routing_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/healthgw/healthgw/consortium/routing"
	"github.com/healthgw/healthgw/ledger"
)

// A consortium of five gateways: gw-1 the custodian; hosp-a at gw-2,
// hosp-b at gw-3, hosp-c and lab-d at gw-4, verifier ver-v at gw-5, two
// regulators homed at gw-5 and gw-2.
func facts() routing.Facts {
	homes := map[string]string{
		"hosp-a": "gw-2", "hosp-b": "gw-3", "hosp-c": "gw-4", "lab-d": "gw-4",
		"ver-v": "gw-5", "reg-x": "gw-5", "reg-y": "gw-2",
	}
	return routing.Facts{
		Custodian: "gw-1",
		Home: func(org string) (string, bool) {
			g, ok := homes[org]
			return g, ok
		},
		Kinds: map[string]string{
			"hosp-a": "hospital", "hosp-b": "hospital", "hosp-c": "hospital", "lab-d": "lab",
			"ver-v": "verifier", "reg-x": "regulator", "reg-y": "regulator",
		},
	}
}

func entry(t *testing.T, org string, body any) ledger.Entry {
	t.Helper()
	e, err := ledger.NewEntry(org, body)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func check(t *testing.T, e ledger.Entry, f routing.Facts, want ...string) {
	t.Helper()
	got, err := routing.Recipients(e, f)
	if err != nil {
		t.Fatalf("%s: %v", e.Type, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: recipients %v, want %v", e.Type, got, want)
	}
	// Deterministic: the same inputs, the same answer.
	again, _ := routing.Recipients(e, f)
	if !slices.Equal(again, got) {
		t.Errorf("%s: a second call gave %v", e.Type, again)
	}
}

const ps = "ps_patient"

func TestRecordRegistered(t *testing.T) {
	e := entry(t, "hosp-b", &ledger.RecordRegistered{RecordID: "r1", Holder: "hosp-b", Patient: ps, Category: "labs", Commitment: "00"})
	// holder's home gw-3, custodian gw-1, regulators gw-2 and gw-5; not gw-4.
	check(t, e, facts(), "gw-1", "gw-2", "gw-3", "gw-5")
}

func TestRecordShredded(t *testing.T) {
	e := entry(t, "hosp-c", &ledger.RecordShredded{RecordID: "r1", Holder: "hosp-c", Patient: ps})
	check(t, e, facts(), "gw-1", "gw-2", "gw-4", "gw-5")
}

func TestConsentGrantedOrg(t *testing.T) {
	f := facts()
	f.Holders = []string{"hosp-b"}
	e := entry(t, ledger.PatientOrg(ps), &ledger.ConsentGranted{ConsentID: "c1", Patient: ps, Grantee: ledger.Grantee{Org: "hosp-c"}})
	// custodian gw-1, grantee's home gw-4, holder's home gw-3, regulators.
	check(t, e, f, "gw-1", "gw-2", "gw-3", "gw-4", "gw-5")
	// No records held: not the holders'.
	f.Holders = nil
	check(t, e, f, "gw-1", "gw-2", "gw-4", "gw-5")
}

func TestConsentGrantedKind(t *testing.T) {
	f := facts()
	f.Kinds["reg-y"] = "hospital" // only reg-x (gw-5) regulates now
	f.Holders = []string{"hosp-b"}
	e := entry(t, ledger.PatientOrg(ps), &ledger.ConsentGranted{ConsentID: "c1", Patient: ps, Grantee: ledger.Grantee{Kind: "lab"}})
	// every home of a lab (lab-d at gw-4), the holder gw-3, custodian,
	// regulator gw-5: not gw-2.
	check(t, e, f, "gw-1", "gw-3", "gw-4", "gw-5")
}

func TestConsentRevoked(t *testing.T) {
	f := facts()
	f.Holders = []string{"hosp-a", "hosp-b"}
	e := entry(t, ledger.PatientOrg(ps), &ledger.ConsentRevoked{ConsentID: "c1", Patient: ps})
	if _, err := routing.Recipients(e, f); err == nil {
		t.Error("a revocation whose grant is unknown was routed")
	}
	f.Grantee = &ledger.Grantee{Org: "hosp-c"}
	check(t, e, f, "gw-1", "gw-2", "gw-3", "gw-4", "gw-5")
}

func TestAccessDecided(t *testing.T) {
	f := facts()
	f.Kinds = map[string]string{"reg-x": "regulator"}
	e := entry(t, "hosp-b", &ledger.AccessDecided{Requester: "hosp-c", RecordID: "r1", Patient: ps, Decision: "permit", Reason: "permit.grant", RequestID: "q"})
	// holder's home gw-3, requester's home gw-4, custodian gw-1, regulator gw-5.
	check(t, e, f, "gw-1", "gw-3", "gw-4", "gw-5")
	// A read of a missing record: for the requester.
	e = entry(t, "hosp-c", &ledger.AccessDecided{Requester: "hosp-c", RecordID: "r9", Decision: "deny", Reason: "deny.not-found", RequestID: "q"})
	check(t, e, f, "gw-1", "gw-4", "gw-5")
}

func TestProofVerified(t *testing.T) {
	f := facts()
	e := entry(t, "ver-v", &ledger.ProofVerified{Verifier: "ver-v", Statement: "s", Challenge: "c"})
	// the verifier's home gw-5 and the regulators (gw-2, gw-5): not the custodian.
	check(t, e, f, "gw-2", "gw-5")
}

func TestRefusals(t *testing.T) {
	f := facts()
	if _, err := routing.Recipients(entry(t, "hosp-z", &ledger.RecordRegistered{RecordID: "r", Holder: "hosp-z", Patient: ps, Category: "labs", Commitment: "00"}), f); !errors.Is(err, routing.ErrNoHome) {
		t.Errorf("a holder without a home: %v, want ErrNoHome", err)
	}
	if _, err := routing.Recipients(entry(t, "hosp-a", &ledger.OrgRegistered{ID: "hosp-a", Kind: "hospital"}), f); !errors.Is(err, routing.ErrNotRouted) {
		t.Errorf("a registry entry: %v, want ErrNotRouted", err)
	}
	f.Custodian = ""
	if _, err := routing.Recipients(entry(t, "hosp-a", &ledger.RecordShredded{RecordID: "r", Holder: "hosp-a", Patient: ps}), f); err == nil {
		t.Error("routed without a custodian")
	}
}

func TestPasskeyRegistered(t *testing.T) {
	e := entry(t, ledger.PatientOrg(ps), &ledger.PasskeyRegistered{Patient: ps})
	// Every gateway homing an org checks the patient's signatures: all
	// five; gw-1 as the custodian.
	check(t, e, facts(), "gw-1", "gw-2", "gw-3", "gw-4", "gw-5")
}
