package fhir

import (
	"strconv"
	"strings"
	"time"

	"github.com/healthgw/healthgw/consent"
)

// Links are the URLs of a searchset Bundle. All are optional.
type Links struct {
	// Base is the FHIR base URL (e.g. "https://gw.example/fhir"); when set,
	// entries get fullUrl Base/Type/id.
	Base string
	// Self is the URL of this page, Next the URL of the next one.
	Self, Next string
	// Total is the number of matches across all pages, if known.
	Total *int
	// AsOf, when not 0, is the ledger size the search is complete for:
	// the Bundle's meta carries it (ExtAsOf).
	AsOf uint64
}

// Observer is how the gateway names itself in AuditEvent.source and as the
// server agent.
const Observer = "healthgw"

// ConsentID returns the FHIR id of a consent: the consent ID with '_'
// replaced by '-'.
func ConsentID(consentID string) string { return strings.ReplaceAll(consentID, "_", "-") }

// AuditEventID returns the FHIR id of the access event at a ledger index.
func AuditEventID(index uint64) string { return "ae-" + strconv.FormatUint(index, 10) }

// NewConsent returns the FHIR Consent for g; now decides the status (a
// revoked or expired grant is inactive).
func NewConsent(g consent.Grant, now time.Time) *Consent {
	c := &Consent{
		ResourceType: "Consent",
		ID:           ConsentID(g.ID),
		Extension:    []Extension{ledgerIndex(ExtLedgerIndex, g.GrantedIndex)},
		Identifier:   []Identifier{{System: SystemConsent, Value: g.ID}},
		Status:       "active",
		Scope: CodeableConcept{Coding: []Coding{{
			System: SystemConsentScope, Code: "patient-privacy", Display: "Privacy Consent",
		}}},
		Category: []CodeableConcept{{Coding: []Coding{{
			System: SystemLOINC, Code: "59284-0", Display: "Patient Consent",
		}}}},
		Patient:  pseudonymRef(g.Patient),
		DateTime: instant(g.GrantedAt),
		Provision: &ConsentProvision{
			Type:  string(g.Effect),
			Actor: []ConsentActor{grantee(g.Grantee)},
		},
	}
	switch g.Effect {
	case consent.Permit:
		c.PolicyRule = &CodeableConcept{Coding: []Coding{{System: SystemActCode, Code: "OPTIN", Display: "opt-in"}}}
	case consent.Deny:
		c.PolicyRule = &CodeableConcept{Coding: []Coding{{System: SystemActCode, Code: "OPTOUT", Display: "opt-out"}}}
	}
	updated := g.GrantedAt
	if g.Revoked {
		c.Extension = append(c.Extension, ledgerIndex(ExtRevocationIndex, g.RevokedIndex))
		updated = g.RevokedAt
	}
	if !updated.IsZero() {
		c.Meta = &Meta{LastUpdated: instant(updated)}
	}
	if s := g.Status(now); s == consent.StatusRevoked || s == consent.StatusExpired {
		c.Status = "inactive"
	}
	p := c.Provision
	if !g.NotBefore.IsZero() || !g.NotAfter.IsZero() {
		p.Period = &Period{Start: instant(g.NotBefore), End: instant(g.NotAfter)}
	}
	for _, a := range g.Actions {
		p.Action = append(p.Action, CodeableConcept{
			Coding: []Coding{{System: SystemConsentAction, Code: "access", Display: "Access"}},
			Text:   string(a),
		})
	}
	for _, pu := range g.Purposes {
		p.Purpose = append(p.Purpose, purposeCoding(pu))
	}
	for _, t := range g.ResourceTypes {
		p.Class = append(p.Class, Coding{System: SystemResourceTypes, Code: t})
	}
	for _, cat := range g.Categories {
		p.Code = append(p.Code, CodeableConcept{Coding: []Coding{{System: SystemCategory, Code: cat}}})
	}
	for _, id := range g.RecordIDs {
		p.Data = append(p.Data, ConsentData{
			Meaning:   "instance",
			Reference: Reference{Identifier: &Identifier{System: SystemRecord, Value: id}},
		})
	}
	return c
}

// IHE Basic Audit Log Patterns (BALP 1.1) profiles claimed in meta.profile.
const (
	// ProfilePatientRead: a successful RESTful read of a resource with a
	// patient subject (a permitted record read).
	ProfilePatientRead = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
	// ProfileAuthZconsent: an authorization decision made on a patient's
	// consent (a denied record read, with the consent that decided it).
	ProfileAuthZconsent = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.AuthZconsent"
)

// NewAuditEvent returns the FHIR AuditEvent for an access decision, as
// IHE BALP records it (see the package documentation). server is the
// gateway's FHIR base URL, its network address; "" for unknown.
//
// A permit is a successful read: IHE.BasicAudit.PatientRead. A deny is a
// consent authorization decision that failed: IHE.BasicAudit.AuthZconsent,
// claimed when a consent decided it (the profile requires the consent
// entity); a deny by default, with no consent on file, has the same shape
// without the claim.
func NewAuditEvent(e consent.AccessEvent, server string) *AuditEvent {
	if server == "" {
		server = "urn:healthgw:gateway"
	}
	gateway := &Reference{Identifier: &Identifier{System: SystemGateway, Value: server}, Display: Observer}
	serverNet := &AuditNetwork{Address: server, Type: "5"} // URI
	// The ledger keeps no IP addresses: the client is known on the network
	// by its registered organisation URI (its OAuth client_id).
	clientNet := &AuditNetwork{Address: "urn:healthgw:org:" + e.Requester, Type: "5"}
	org := func() *Reference { return &Reference{Identifier: &Identifier{System: SystemOrg, Value: e.Requester}} }
	a := &AuditEvent{
		ResourceType: "AuditEvent",
		ID:           AuditEventID(e.Index),
		Extension:    []Extension{ledgerIndex(ExtLedgerIndex, e.Index)},
		Recorded:     instant(e.Time),
		OutcomeDesc:  string(e.Reason),
		Source: AuditSource{
			Observer: *gateway,
			Type:     []Coding{{System: SystemSecuritySourceType, Code: "4", Display: "Application Server"}},
		},
	}
	patientEntity := AuditEntity{
		What: &Reference{Type: "Patient", Identifier: &Identifier{System: SystemPseudonym, Value: e.Patient}},
		Type: &Coding{System: SystemAuditEntityType, Code: "1", Display: "Person"},
		Role: &Coding{System: SystemObjectRole, Code: "1", Display: "Patient"},
	}
	var consentEntity *AuditEntity
	if e.GrantID != "" {
		consentEntity = &AuditEntity{
			What: &Reference{
				Reference:  "Consent/" + ConsentID(e.GrantID),
				Type:       "Consent",
				Identifier: &Identifier{System: SystemConsent, Value: e.GrantID},
			},
			Type: &Coding{System: SystemResourceTypes, Code: "Consent", Display: "Consent"},
		}
	}
	var pou []CodeableConcept
	if e.Purpose != "" {
		pou = []CodeableConcept{{Coding: []Coding{purposeCoding(e.Purpose)}}}
		a.PurposeOfEvent = pou
	}
	if e.Decision == consent.Permit {
		// IHE.BasicAudit.PatientRead: the client (the requesting
		// organisation's system) is the Destination of the data, the
		// gateway its Source.
		a.Meta = &Meta{Profile: []string{ProfilePatientRead}}
		a.Type = Coding{System: SystemAuditEventType, Code: "rest", Display: "Restful Operation"}
		a.Subtype = []Coding{{System: SystemRestfulInteraction, Code: "read", Display: "read"}}
		a.Action = "R"
		a.Outcome = "0"
		a.Agent = []AuditAgent{
			{
				Type:      &CodeableConcept{Coding: []Coding{{System: SystemDICOM, Code: "110152", Display: "Destination Role ID"}}},
				Who:       org(),
				Requestor: true,
				Network:   clientNet,
			},
			{
				Type:      &CodeableConcept{Coding: []Coding{{System: SystemDICOM, Code: "110153", Display: "Source Role ID"}}},
				Who:       gateway,
				Requestor: false,
				Network:   serverNet,
			},
		}
		data := AuditEntity{
			What: &Reference{Identifier: &Identifier{System: SystemRecord, Value: e.RecordID}},
			Type: &Coding{System: SystemAuditEntityType, Code: "2", Display: "System Object"},
			Role: &Coding{System: SystemObjectRole, Code: "4", Display: "Domain Resource"},
		}
		if e.Category != "" {
			data.Extension = []Extension{{URL: ExtRecordCategory, ValueCode: e.Category}}
		}
		a.Entity = []AuditEntity{patientEntity, data}
		if consentEntity != nil {
			a.Entity = append(a.Entity, *consentEntity)
		}
		if e.RequestID != "" {
			a.Entity = append(a.Entity, AuditEntity{
				What: &Reference{Identifier: &Identifier{Value: e.RequestID}},
				Type: &Coding{System: SystemBALPEntityType, Code: "XrequestId", Display: "X-Request-Id"},
			})
		}
	} else {
		// IHE.BasicAudit.AuthZconsent: the gateway, deciding on the
		// patient's consent, is the authorizer and the audit source; the
		// requesting organisation is client application, user (the
		// recipient it asked for) and user organisation at once.
		if consentEntity != nil {
			a.Meta = &Meta{Profile: []string{ProfileAuthZconsent}}
		}
		a.Type = Coding{System: SystemDICOM, Code: "110113", Display: "Security Alert"}
		a.Subtype = []Coding{{System: SystemBALPAuthZSubType, Code: "AuthZ-Consent", Display: "Authorization Decision using Roles and Consent"}}
		a.Action = "E"
		a.Outcome = "8" // serious failure: access refused
		a.Source.Type = []Coding{{System: SystemSecuritySourceType, Code: "6", Display: "Security Server"}}
		a.Agent = []AuditAgent{
			{
				Type:      &CodeableConcept{Coding: []Coding{{System: SystemDICOM, Code: "110150", Display: "Application"}}},
				Who:       org(),
				Requestor: false,
				Network:   clientNet,
			},
			{
				Type:         &CodeableConcept{Coding: []Coding{{System: SystemParticipationType, Code: "IRCP", Display: "information recipient"}}},
				Who:          org(),
				Requestor:    true,
				PurposeOfUse: pou,
			},
			{
				Type:      &CodeableConcept{Coding: []Coding{{System: SystemRoleClass, Code: "PROV", Display: "healthcare provider"}}},
				Who:       org(),
				Requestor: false,
			},
			{
				Type:      &CodeableConcept{Coding: []Coding{{System: SystemSecurityRoleType, Code: "authserver", Display: "authorization server"}}},
				Who:       gateway,
				Requestor: false,
			},
		}
		// The profile's entity slicing is closed (patient, consent, token):
		// the record and the request ID go into extensions.
		a.Entity = []AuditEntity{patientEntity}
		if consentEntity != nil {
			a.Entity = append(a.Entity, *consentEntity)
		}
		a.Extension = append(a.Extension, Extension{URL: ExtRecord, ValueIdentifier: &Identifier{System: SystemRecord, Value: e.RecordID}})
		if e.Category != "" {
			a.Extension = append(a.Extension, Extension{URL: ExtRecordCategory, ValueCode: e.Category})
		}
		if e.RequestID != "" {
			a.Extension = append(a.Extension, Extension{URL: ExtRequestID, ValueString: e.RequestID})
		}
	}
	if e.BreakGlass {
		t := true
		a.Extension = append(a.Extension, Extension{URL: ExtBreakGlass, ValueBoolean: &t})
	}
	if e.JustificationHash != "" {
		a.Extension = append(a.Extension, Extension{URL: ExtJustificationHash, ValueString: e.JustificationHash})
	}
	if e.JustificationCommitment != "" {
		a.Extension = append(a.Extension, Extension{URL: ExtJustificationCommitment, ValueString: e.JustificationCommitment})
	}
	if e.Justification != "" {
		// Set by the queries for regulators only (access.Queries).
		a.Extension = append(a.Extension, Extension{URL: ExtJustification, ValueString: e.Justification})
	}
	return a
}

// ConsentBundle returns a searchset Bundle of the grants' Consents.
func ConsentBundle(grants []consent.Grant, now time.Time, l Links) *Bundle {
	b := newBundle(l)
	for _, g := range grants {
		c := NewConsent(g, now)
		b.Entry = append(b.Entry, entry(l, "Consent", c.ID, c))
	}
	return b
}

// AuditEventBundle returns a searchset Bundle of the events' AuditEvents.
func AuditEventBundle(events []consent.AccessEvent, l Links) *Bundle {
	b := newBundle(l)
	for _, e := range events {
		a := NewAuditEvent(e, l.Base)
		b.Entry = append(b.Entry, entry(l, "AuditEvent", a.ID, a))
	}
	return b
}

func newBundle(l Links) *Bundle {
	b := &Bundle{ResourceType: "Bundle", Type: "searchset", Total: l.Total}
	if l.AsOf != 0 {
		b.Meta = &Meta{Extension: []Extension{ledgerIndex(ExtAsOf, l.AsOf)}}
	}
	if l.Self != "" {
		b.Link = append(b.Link, BundleLink{Relation: "self", URL: l.Self})
	}
	if l.Next != "" {
		b.Link = append(b.Link, BundleLink{Relation: "next", URL: l.Next})
	}
	return b
}

func entry(l Links, resourceType, id string, resource any) BundleEntry {
	e := BundleEntry{Resource: resource, Search: &BundleSearch{Mode: "match"}}
	if l.Base != "" {
		e.FullURL = strings.TrimSuffix(l.Base, "/") + "/" + resourceType + "/" + id
	}
	return e
}

func grantee(g consent.Grantee) ConsentActor {
	a := ConsentActor{Role: CodeableConcept{Coding: []Coding{{
		System: SystemParticipationType, Code: "IRCP", Display: "information recipient",
	}}}}
	if g.Org != "" {
		a.Reference = Reference{Identifier: &Identifier{System: SystemOrg, Value: g.Org}}
	} else {
		a.Reference = Reference{
			Identifier: &Identifier{System: SystemOrgKind, Value: string(g.Kind)},
			Display:    "every " + string(g.Kind),
		}
	}
	return a
}

func purposeCoding(p consent.Purpose) Coding {
	return Coding{System: SystemActReason, Code: string(p), Display: p.Display()}
}

func pseudonymRef(p string) *Reference {
	return &Reference{Identifier: &Identifier{System: SystemPseudonym, Value: p}}
}

func ledgerIndex(url string, index uint64) Extension {
	return Extension{URL: url, ValueIdentifier: &Identifier{System: SystemLedger, Value: strconv.FormatUint(index, 10)}}
}

// instant formats t as a FHIR instant in UTC (nanosecond precision kept),
// or "" for the zero time.
func instant(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
