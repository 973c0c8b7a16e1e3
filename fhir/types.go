package fhir

// ContentType is the media type of FHIR JSON.
const ContentType = "application/fhir+json"

// Code systems used by this package.
const (
	SystemActReason          = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SystemActCode            = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	SystemConsentScope       = "http://terminology.hl7.org/CodeSystem/consentscope"
	SystemConsentAction      = "http://terminology.hl7.org/CodeSystem/consentaction"
	SystemParticipationType  = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	SystemLOINC              = "http://loinc.org"
	SystemResourceTypes      = "http://hl7.org/fhir/resource-types"
	SystemAuditEventType     = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	SystemRestfulInteraction = "http://hl7.org/fhir/restful-interaction"
	SystemDICOM              = "http://dicom.nema.org/resources/ontology/DCM"
	SystemAuditEntityType    = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	SystemObjectRole         = "http://terminology.hl7.org/CodeSystem/object-role"
	SystemSecuritySourceType = "http://terminology.hl7.org/CodeSystem/security-source-type"
	SystemBALPEntityType     = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
	SystemBALPAuthZSubType   = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
	SystemRoleClass          = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
	SystemSecurityRoleType   = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
	SystemNetworkType        = "http://hl7.org/fhir/network-type"
)

// healthgw's own identifier systems and extensions.
const (
	SystemPseudonym = "urn:healthgw:patient-pseudonym"
	SystemOrg       = "urn:healthgw:org"
	SystemOrgKind   = "urn:healthgw:org-kind"
	SystemConsent   = "urn:healthgw:consent"
	SystemRecord    = "urn:healthgw:record"
	SystemCategory  = "urn:healthgw:record-category"
	SystemLedger    = "urn:healthgw:ledger-index"
	// SystemGateway identifies a gateway by its FHIR base URL.
	SystemGateway = "urn:healthgw:gateway"

	// ExtLedgerIndex: the ledger index of the entry a resource comes from
	// (consent.granted, access.decided), as valueIdentifier in
	// SystemLedger.
	ExtLedgerIndex = "urn:healthgw:fhir:extension:ledger-index"
	// ExtRevocationIndex: the ledger index of a grant's consent.revoked
	// entry.
	ExtRevocationIndex = "urn:healthgw:fhir:extension:revocation-ledger-index"
	// ExtBreakGlass: valueBoolean true on an AuditEvent decided by the
	// break-glass rule.
	ExtBreakGlass = "urn:healthgw:fhir:extension:break-glass"
	// ExtJustificationHash: valueString, the hex SHA-256 of a break-glass
	// justification (entries of the first format only).
	ExtJustificationHash = "urn:healthgw:fhir:extension:break-glass-justification-sha256"
	// ExtJustificationCommitment: valueString, the salted commitment (hex)
	// to a break-glass justification the access.decided entry carries
	// (ledger.JustificationCommitment).
	ExtJustificationCommitment = "urn:healthgw:fhir:extension:break-glass-justification-commitment"
	// ExtJustification: valueString, the break-glass justification itself,
	// opened from its commitment: in regulators' views only.
	ExtJustification = "urn:healthgw:fhir:extension:break-glass-justification"
	// ExtRecordCategory: valueCode, the record's category.
	ExtRecordCategory = "urn:healthgw:fhir:extension:record-category"
	// ExtRecord: valueIdentifier, the record a denied read asked for (the
	// AuthZconsent pattern has no entity for it).
	ExtRecord = "urn:healthgw:fhir:extension:record"
	// ExtRequestID: valueString, the X-Request-ID of a denied read.
	ExtRequestID = "urn:healthgw:fhir:extension:request-id"
	// ExtAsOf: on a searchset Bundle's meta, the ledger size the search
	// is complete for (the API's as_of), as valueIdentifier in
	// SystemLedger: every entry at an index below it that the search
	// selects is in the Bundle or, below its cursor, on a later page.
	ExtAsOf = "urn:healthgw:fhir:extension:ledger-as-of"
)

// Coding is a FHIR Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is a FHIR CodeableConcept.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Identifier is a FHIR Identifier.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Reference is a FHIR Reference: literal (Reference), logical
// (Identifier), or both.
type Reference struct {
	Reference string `json:"reference,omitempty"`
	// Type is the target's resource type (Patient, Consent).
	Type       string      `json:"type,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Period is a FHIR Period (dateTime strings).
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Extension is a FHIR Extension with the value types this package uses.
type Extension struct {
	URL             string      `json:"url"`
	ValueIdentifier *Identifier `json:"valueIdentifier,omitempty"`
	ValueBoolean    *bool       `json:"valueBoolean,omitempty"`
	ValueCode       string      `json:"valueCode,omitempty"`
	ValueString     string      `json:"valueString,omitempty"`
}

// Meta is FHIR resource metadata.
type Meta struct {
	Extension   []Extension `json:"extension,omitempty"`
	LastUpdated string      `json:"lastUpdated,omitempty"`
	Profile     []string    `json:"profile,omitempty"`
}

// Consent is a FHIR R4 Consent resource.
type Consent struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Meta         *Meta             `json:"meta,omitempty"`
	Extension    []Extension       `json:"extension,omitempty"`
	Identifier   []Identifier      `json:"identifier,omitempty"`
	Status       string            `json:"status"`
	Scope        CodeableConcept   `json:"scope"`
	Category     []CodeableConcept `json:"category"`
	Patient      *Reference        `json:"patient,omitempty"`
	DateTime     string            `json:"dateTime,omitempty"`
	PolicyRule   *CodeableConcept  `json:"policyRule,omitempty"`
	Provision    *ConsentProvision `json:"provision,omitempty"`
}

// ConsentProvision is Consent.provision.
type ConsentProvision struct {
	Type    string            `json:"type,omitempty"`
	Period  *Period           `json:"period,omitempty"`
	Actor   []ConsentActor    `json:"actor,omitempty"`
	Action  []CodeableConcept `json:"action,omitempty"`
	Purpose []Coding          `json:"purpose,omitempty"`
	Class   []Coding          `json:"class,omitempty"`
	Code    []CodeableConcept `json:"code,omitempty"`
	Data    []ConsentData     `json:"data,omitempty"`
}

// ConsentActor is Consent.provision.actor.
type ConsentActor struct {
	Role      CodeableConcept `json:"role"`
	Reference Reference       `json:"reference"`
}

// ConsentData is Consent.provision.data.
type ConsentData struct {
	Meaning   string    `json:"meaning"`
	Reference Reference `json:"reference"`
}

// AuditEvent is a FHIR R4 AuditEvent resource.
type AuditEvent struct {
	ResourceType   string            `json:"resourceType"`
	ID             string            `json:"id"`
	Meta           *Meta             `json:"meta,omitempty"`
	Extension      []Extension       `json:"extension,omitempty"`
	Type           Coding            `json:"type"`
	Subtype        []Coding          `json:"subtype,omitempty"`
	Action         string            `json:"action,omitempty"`
	Recorded       string            `json:"recorded"`
	Outcome        string            `json:"outcome,omitempty"`
	OutcomeDesc    string            `json:"outcomeDesc,omitempty"`
	PurposeOfEvent []CodeableConcept `json:"purposeOfEvent,omitempty"`
	Agent          []AuditAgent      `json:"agent"`
	Source         AuditSource       `json:"source"`
	Entity         []AuditEntity     `json:"entity,omitempty"`
}

// AuditAgent is AuditEvent.agent.
type AuditAgent struct {
	Type         *CodeableConcept  `json:"type,omitempty"`
	Who          *Reference        `json:"who,omitempty"`
	Requestor    bool              `json:"requestor"`
	Network      *AuditNetwork     `json:"network,omitempty"`
	PurposeOfUse []CodeableConcept `json:"purposeOfUse,omitempty"`
}

// AuditNetwork is AuditEvent.agent.network; Type is a code of
// SystemNetworkType (1 machine name, 2 IP address, 5 URI).
type AuditNetwork struct {
	Address string `json:"address,omitempty"`
	Type    string `json:"type,omitempty"`
}

// AuditSource is AuditEvent.source.
type AuditSource struct {
	Observer Reference `json:"observer"`
	Type     []Coding  `json:"type,omitempty"`
}

// AuditEntity is AuditEvent.entity.
type AuditEntity struct {
	Extension []Extension `json:"extension,omitempty"`
	What      *Reference  `json:"what,omitempty"`
	Type      *Coding     `json:"type,omitempty"`
	Role      *Coding     `json:"role,omitempty"`
}

// Bundle is a FHIR R4 Bundle.
type Bundle struct {
	ResourceType string        `json:"resourceType"`
	Meta         *Meta         `json:"meta,omitempty"`
	Type         string        `json:"type"`
	Total        *int          `json:"total,omitempty"`
	Link         []BundleLink  `json:"link,omitempty"`
	Entry        []BundleEntry `json:"entry,omitempty"`
}

// BundleLink is Bundle.link.
type BundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// BundleEntry is Bundle.entry. Resource is a *Consent or an *AuditEvent.
type BundleEntry struct {
	FullURL  string        `json:"fullUrl,omitempty"`
	Resource any           `json:"resource"`
	Search   *BundleSearch `json:"search,omitempty"`
}

// BundleSearch is Bundle.entry.search.
type BundleSearch struct {
	Mode string `json:"mode"`
}
