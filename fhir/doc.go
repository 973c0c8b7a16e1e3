// Package fhir renders healthgw's consent data as FHIR R4 JSON: Consent
// resources from consent.Grant, AuditEvent resources from
// consent.AccessEvent, and searchset Bundles of either, for the
// GET /fhir/Consent and GET /fhir/AuditEvent endpoints. Serve them with
// content type ContentType.
//
// The structs are hand-written and minimal: only the elements healthgw
// fills. JSON tags are part of this package's job (FHIR JSON is a wire
// format); the domain types stay tag-free.
//
// Mapping notes:
//
//   - FHIR ids allow only [A-Za-z0-9-.]: a consent ID "cns_…" becomes the
//     id "cns-…"; an access event's id is "ae-<ledger index>". The exact
//     consent ID is in Consent.identifier.
//   - Patients are pseudonyms and appear as logical references (an
//     identifier in SystemPseudonym), never as Patient resources.
//   - Ledger indices are carried in extensions (ExtLedgerIndex,
//     ExtRevocationIndex) as valueIdentifier, since a 64-bit index does not
//     fit FHIR's 32-bit integer.
//   - AuditEvent follows the IHE Basic Audit Log Patterns (BALP) read
//     pattern: type rest, subtype read, action R, recorded = entry time,
//     agent = requesting organisation (with purposeOfUse) and the gateway,
//     entity = patient (pseudonym), the record, the consent that decided and
//     the request ID. Outcome is 0 (success) for a permit and 4 (minor
//     failure) for a consent-authorization deny; outcomeDesc holds the
//     reason code and a break-glass decision carries ExtBreakGlass.
//     meta.profile does not claim BALP conformance.
//   - A revoked or expired grant has status inactive.
package fhir
