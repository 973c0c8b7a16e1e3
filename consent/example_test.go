package consent_test

import (
	"fmt"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
)

func ExampleDecide() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	grants := []consent.Grant{{
		ID:         "cns_0123456789abcdef0123456789abcdef",
		Patient:    patient,
		Grantee:    consent.Grantee{Kind: auth.KindHospital},
		Effect:     consent.Permit,
		Actions:    []consent.Action{consent.ActionRead},
		Categories: []string{"lab"},
		Purposes:   []consent.Purpose{consent.PurposeTreatment},
		NotBefore:  now.AddDate(0, -1, 0),
		NotAfter:   now.AddDate(1, 0, 0),
	}}
	req := consent.Request{
		Requester:     "hospital-b",
		RequesterKind: auth.KindHospital,
		RecordID:      "rec-1",
		Patient:       patient,
		Category:      "lab",
		Purpose:       consent.PurposeTreatment,
	}
	policy := consent.DefaultPolicy()

	fmt.Println(consent.Decide(req, grants, now, policy))

	req.Purpose = consent.PurposeResearch
	fmt.Println(consent.Decide(req, grants, now, policy))

	req.Category = "mental-health"
	req.Purpose = consent.PurposeEmergencyTreatment
	req.Justification = "unconscious on arrival, checking medication history"
	fmt.Println(consent.Decide(req, grants, now, policy))
	// Output:
	// {permit permit.grant cns_0123456789abcdef0123456789abcdef false}
	// {deny deny.purpose cns_0123456789abcdef0123456789abcdef false}
	// {permit permit.break-glass  true}
}

func ExampleGrant_Validate() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	g := consent.Grant{
		ID:        consent.NewID(),
		Patient:   patient,
		Grantee:   consent.Grantee{Org: "hospital-b"},
		Effect:    consent.Permit,
		Actions:   []consent.Action{consent.ActionRead},
		Purposes:  []consent.Purpose{"MARKETING"},
		NotBefore: now,
		NotAfter:  now.AddDate(0, 6, 0),
	}
	validCategory := func(c string) bool { return c == "lab" || c == "imaging" }
	err := g.Validate(consent.Rules{ValidCategory: validCategory, Now: now})
	fmt.Println(err)
	// Output:
	// consent: invalid grant: purposes: item 0 must be one of TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH
}
