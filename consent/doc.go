// Package consent is healthgw's consent model and its policy evaluation.
//
// A Grant is one patient's consent provision, shaped after the FHIR R4
// Consent resource: who it is for (one organisation, or every organisation
// of a kind), which actions, what it covers (categories, record IDs, FHIR
// resource types; an empty list covers everything), for which purposes of
// use (HL7 v3 ActReason codes), for which period, and whether it permits or
// denies.
//
// Decide is a pure function: it reads no clock and no store. Its rules are
//
//   - deny by default: no matching, active permit means deny;
//   - a matching, active deny grant overrides every permit;
//   - a grant is active from NotBefore (inclusive) until NotAfter
//     (exclusive), unless it was revoked;
//   - break-glass: purpose ETREAT with a written justification is permitted
//     without a grant when the Policy allows it for the caller's kind; the
//     patient's explicit deny of emergency access is honoured when the
//     Policy says so (the default).
//
// Every Decision carries a Reason code, which goes to the ledger's
// access.decided entry and to the patient's access log, and never to the
// caller (a denied read looks exactly like a record that does not exist).
//
// Consent state is a projection of the ledger: consent.granted and
// consent.revoked entries (see the consentstore subpackage). FromLedger and
// Grant.LedgerBody convert between a Grant and its ledger body;
// Decision.LedgerBody builds the access.decided body for a decision.
package consent
