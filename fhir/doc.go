// Package fhir renders healthgw's data as FHIR R4 JSON for the /fhir
// endpoint (docs/fhir.md): Consent resources from consent.Grant,
// AuditEvent resources from consent.AccessEvent, searchset Bundles, the
// CapabilityStatement (NewCapabilityStatement), the OperationOutcome of an
// error (NewOperationOutcome), and the date search parameter (ParseDate,
// with its comparator prefixes). Serve them with content type
// ContentType. Package fhirtest validates FHIR JSON in tests against the
// official R4 JSON schema.
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
//   - AuditEvents follow the IHE Basic Audit Log Patterns (BALP 1.1) and
//     claim them in meta.profile. A permitted read is
//     IHE.BasicAudit.PatientRead: type rest, subtype read, action R,
//     outcome 0; the client agent (the requesting organisation, the
//     requestor) has DICOM role 110152 Destination Role ID and the
//     gateway agent 110153 Source Role ID, as BALP fixes them for a
//     read (the data flows from server to client), each with its
//     network address (type 5, URI: the gateway's FHIR base URL; the
//     organisation's URI urn:healthgw:org:<id>, since the ledger keeps
//     no IP addresses); entities are the patient (a Reference of type
//     Patient to the pseudonym), the record (role Domain Resource, its
//     category in ExtRecordCategory), the consent that permitted it and
//     the X-Request-Id.
//   - A denied read is an authorization decision on consent,
//     IHE.BasicAudit.AuthZconsent: type DCM 110113 Security Alert,
//     subtype AuthZ-Consent, action E, outcome 8, outcomeDesc the reason
//     code; agents client (110150 Application), user (IRCP, the
//     requestor, with purposeOfUse), user organisation (PROV) and the
//     gateway as authorizer and audit source; entities the patient and
//     the consent (the profile's entity slicing is closed, so the record
//     and request ID go into ExtRecord and ExtRequestID). A deny by
//     default has no consent to name and does not claim the profile.
//   - Break-glass decisions carry ExtBreakGlass and the salted
//     commitment to the justification in ExtJustificationCommitment; a
//     regulator's view also carries the justification itself, opened from
//     the commitment, in ExtJustification (the event has it only when the
//     viewer may see it). Entries of the first format had an unsalted hash
//     instead (ExtJustificationHash).
//   - A revoked or expired grant has status inactive.
package fhir
