package fhir_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/fhir"
)

func ExampleAuditEventBundle() {
	events := []consent.AccessEvent{{
		Index:     42,
		Time:      time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Requester: "hospital-b",
		RecordID:  "rec-1",
		Patient:   "ps_1111111111111111111111111111111111111111111111111111111111111111",
		Category:  "lab",
		Purpose:   consent.PurposeTreatment,
		Decision:  consent.Deny,
		Reason:    consent.ReasonDenyNoGrant,
	}}
	b := fhir.AuditEventBundle(events, fhir.Links{Self: "https://gw.example/fhir/AuditEvent?patient=ps_1111"})
	ae := b.Entry[0].Resource.(*fhir.AuditEvent)
	fmt.Println(b.Type, ae.ID, ae.Action, ae.Outcome, ae.OutcomeDesc, ae.Recorded)
	out, _ := json.Marshal(ae.Extension)
	fmt.Println(string(out))
	// Output:
	// searchset ae-42 E 8 deny.no-grant 2026-03-01T12:00:00Z
	// [{"url":"urn:healthgw:fhir:extension:ledger-index","valueIdentifier":{"system":"urn:healthgw:ledger-index","value":"42"}},{"url":"urn:healthgw:fhir:extension:record","valueIdentifier":{"system":"urn:healthgw:record","value":"rec-1"}},{"url":"urn:healthgw:fhir:extension:record-category","valueCode":"lab"}]
}
