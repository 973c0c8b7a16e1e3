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

// NewAuditEvent returns the FHIR AuditEvent for an access decision.
func NewAuditEvent(e consent.AccessEvent) *AuditEvent {
	a := &AuditEvent{
		ResourceType: "AuditEvent",
		ID:           AuditEventID(e.Index),
		Extension:    []Extension{ledgerIndex(ExtLedgerIndex, e.Index)},
		Type:         Coding{System: SystemAuditEventType, Code: "rest", Display: "Restful Operation"},
		Subtype:      []Coding{{System: SystemRestfulInteraction, Code: "read", Display: "read"}},
		Action:       "R",
		Recorded:     instant(e.Time),
		Outcome:      "4", // minor failure: the consent authorization denied
		OutcomeDesc:  string(e.Reason),
		Agent: []AuditAgent{
			{ // the requesting organisation
				Type:      &CodeableConcept{Coding: []Coding{{System: SystemDICOM, Code: "110153", Display: "Source Role ID"}}},
				Who:       &Reference{Identifier: &Identifier{System: SystemOrg, Value: e.Requester}},
				Requestor: true,
			},
			// the gateway
			{
				Type:      &CodeableConcept{Coding: []Coding{{System: SystemDICOM, Code: "110152", Display: "Destination Role ID"}}},
				Who:       &Reference{Display: Observer},
				Requestor: false,
			},
		},
		Source: AuditSource{
			Observer: Reference{Display: Observer},
			Type:     []Coding{{System: SystemSecuritySourceType, Code: "4", Display: "Application Server"}},
		},
		Entity: []AuditEntity{
			{
				What: pseudonymRef(e.Patient),
				Type: &Coding{System: SystemAuditEntityType, Code: "1", Display: "Person"},
				Role: &Coding{System: SystemObjectRole, Code: "1", Display: "Patient"},
			},
			{
				What:   &Reference{Identifier: &Identifier{System: SystemRecord, Value: e.RecordID}},
				Type:   &Coding{System: SystemAuditEntityType, Code: "2", Display: "System Object"},
				Role:   &Coding{System: SystemObjectRole, Code: "4", Display: "Domain Resource"},
				Detail: detail("category", e.Category),
			},
		},
	}
	if e.Decision == consent.Permit {
		a.Outcome = "0"
	}
	if e.Purpose != "" {
		pou := CodeableConcept{Coding: []Coding{purposeCoding(e.Purpose)}}
		a.PurposeOfEvent = []CodeableConcept{pou}
		a.Agent[0].PurposeOfUse = []CodeableConcept{pou}
	}
	if e.BreakGlass {
		t := true
		a.Extension = append(a.Extension, Extension{URL: ExtBreakGlass, ValueBoolean: &t})
	}
	if e.GrantID != "" {
		a.Entity = append(a.Entity, AuditEntity{
			What: &Reference{
				Reference:  "Consent/" + ConsentID(e.GrantID),
				Identifier: &Identifier{System: SystemConsent, Value: e.GrantID},
			},
			Type: &Coding{System: SystemAuditEntityType, Code: "2", Display: "System Object"},
			Role: &Coding{System: SystemObjectRole, Code: "13", Display: "Security Resource"},
		})
	}
	if e.RequestID != "" || e.JustificationHash != "" {
		tx := AuditEntity{
			Type:   &Coding{System: SystemBALPEntityType, Code: "XrequestId", Display: "X-Request-Id"},
			Detail: detail("justification-sha256", e.JustificationHash),
		}
		if e.RequestID != "" {
			tx.What = &Reference{Identifier: &Identifier{Value: e.RequestID}}
		}
		a.Entity = append(a.Entity, tx)
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
		a := NewAuditEvent(e)
		b.Entry = append(b.Entry, entry(l, "AuditEvent", a.ID, a))
	}
	return b
}

func newBundle(l Links) *Bundle {
	b := &Bundle{ResourceType: "Bundle", Type: "searchset", Total: l.Total}
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

func detail(typ, value string) []AuditEntityDetail {
	if value == "" {
		return nil
	}
	return []AuditEntityDetail{{Type: typ, ValueString: value}}
}

// instant formats t as a FHIR instant in UTC (nanosecond precision kept),
// or "" for the zero time.
func instant(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
