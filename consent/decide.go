package consent

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/ledger"
)

// Reason says why a decision came out as it did. It is logged on the ledger
// (access.decided) and shown in the patient's access log; it is never sent to
// the requester.
type Reason string

// Reason codes. Permit reasons start with "permit.", deny reasons with
// "deny.".
const (
	// ReasonPermitGrant: an active permit grant matched and no active deny
	// grant did.
	ReasonPermitGrant Reason = "permit.grant"
	// ReasonPermitBreakGlass: emergency access without a grant, under the
	// break-glass policy.
	ReasonPermitBreakGlass Reason = "permit.break-glass"
	// ReasonPermitHolder: the requester holds the record. Decide never
	// returns it; the API logs holders' own reads with it.
	ReasonPermitHolder Reason = "permit.holder"

	// ReasonDenyInvalidRequest: the request lacks a requester, kind, patient
	// or record, or names an unknown purpose or action.
	ReasonDenyInvalidRequest Reason = "deny.invalid-request"
	// ReasonDenyNoGrant: no grant for this requester covers the record.
	ReasonDenyNoGrant Reason = "deny.no-grant"
	// ReasonDenyExplicit: an active deny grant matched (it overrides any
	// permit, and break-glass when the policy honours it).
	ReasonDenyExplicit Reason = "deny.explicit"
	// ReasonDenyRevoked: the only grants that would have permitted were
	// revoked.
	ReasonDenyRevoked Reason = "deny.revoked"
	// ReasonDenyExpired: the only grants that would have permitted have
	// expired (now is at or after NotAfter).
	ReasonDenyExpired Reason = "deny.expired"
	// ReasonDenyNotYetValid: the only grants that would have permitted are
	// not in force yet (now is before NotBefore).
	ReasonDenyNotYetValid Reason = "deny.not-yet-valid"
	// ReasonDenyPurpose: an active permit grant covers the record for this
	// requester, but not for the requested purpose.
	ReasonDenyPurpose Reason = "deny.purpose"
	// ReasonDenyBreakGlassKind: emergency access without a grant, from an
	// organisation kind the break-glass policy does not allow.
	ReasonDenyBreakGlassKind Reason = "deny.break-glass.kind"
	// ReasonDenyBreakGlassJustification: emergency access without a grant,
	// with a missing or too short written justification.
	ReasonDenyBreakGlassJustification Reason = "deny.break-glass.justification"
	// ReasonDenyNotFound: the record asked for does not exist (or is not
	// readable by anyone: pending or shredded). Decide never returns it;
	// the gated read logs it, so that probing for record IDs is visible to
	// regulators. It is ledger.ReasonNotFound.
	ReasonDenyNotFound Reason = ledger.ReasonNotFound
)

// Reasons lists every reason code.
var Reasons = []Reason{
	ReasonPermitGrant, ReasonPermitBreakGlass,
	ReasonDenyInvalidRequest, ReasonDenyNoGrant, ReasonDenyExplicit,
	ReasonDenyRevoked, ReasonDenyExpired, ReasonDenyNotYetValid,
	ReasonDenyPurpose, ReasonDenyBreakGlassKind, ReasonDenyBreakGlassJustification,
}

// Request is one access request to evaluate.
type Request struct {
	// Requester is the calling organisation's ID, RequesterKind its kind.
	Requester     string
	RequesterKind auth.Kind
	// Action is what the requester wants to do; empty means ActionRead.
	Action Action
	// The record asked for: its ID, its patient's pseudonym, its category and
	// its FHIR resource type ("" if the record has none).
	RecordID     string
	Patient      string
	Category     string
	ResourceType string
	// Purpose is the purpose of use the requester declares.
	Purpose Purpose
	// Justification is the written reason for break-glass access (purpose
	// ETREAT without a grant). It may hold PHI: it is never logged, only its
	// hash (see Decision.LedgerBody).
	Justification string
}

// Decision is the outcome of Decide.
type Decision struct {
	// Effect is Permit or Deny.
	Effect Effect
	// Reason is why.
	Reason Reason
	// GrantID is the grant that decided (the permit or deny that matched,
	// or the revoked, expired, not yet valid or wrong-purpose grant that a
	// deny reason refers to); "" when no grant did.
	GrantID string
	// BreakGlass reports that the break-glass rule decided: the purpose was
	// ETREAT and no grant alone permitted the request. It is set on permits
	// (permit.break-glass) and on the denies of the rule (too short a
	// justification, a kind the policy excludes, the patient's honoured
	// deny), so that regulators see every emergency access attempt.
	BreakGlass bool
}

// Permitted reports whether the decision is a permit.
func (d Decision) Permitted() bool { return d.Effect == Permit }

// DefaultMinJustification is the minimum length, in characters after
// trimming white space, of a break-glass justification.
const DefaultMinJustification = 20

// Policy configures the break-glass rule. The zero Policy disables
// break-glass entirely; DefaultPolicy is the documented default.
type Policy struct {
	// BreakGlassKinds are the organisation kinds that may use break-glass.
	// Default: hospital.
	BreakGlassKinds []auth.Kind
	// HonourDenyOnBreakGlass: a patient's active deny grant that covers
	// ETREAT also refuses break-glass access. Default true.
	HonourDenyOnBreakGlass bool
	// MinJustification is the minimum justification length in characters;
	// values below DefaultMinJustification (including 0) mean
	// DefaultMinJustification.
	MinJustification int
}

// DefaultPolicy returns the default break-glass policy: hospitals only,
// patients' explicit denies honoured, justifications of at least 20
// characters.
func DefaultPolicy() Policy {
	return Policy{
		BreakGlassKinds:        []auth.Kind{auth.KindHospital},
		HonourDenyOnBreakGlass: true,
		MinJustification:       DefaultMinJustification,
	}
}

// Validate checks a configured policy.
func (p Policy) Validate() error {
	for _, k := range p.BreakGlassKinds {
		if !k.Valid() {
			return fmt.Errorf("%w: unknown organisation kind %q", ErrInvalidPolicy, k)
		}
	}
	if p.MinJustification < 0 || p.MinJustification > 1000 {
		return fmt.Errorf("%w: minimum justification length must be 0-1000", ErrInvalidPolicy)
	}
	return nil
}

func (p Policy) minJustification() int {
	return max(p.MinJustification, DefaultMinJustification)
}

// Decide evaluates req against grants at instant now. It is pure: it reads
// nothing but its arguments and does not modify grants.
//
// Grants of other patients are ignored, so grants may be any superset of the
// patient's. A grant matches when its grantee names the requester or the
// requester's kind, it covers the action, the record (category, record ID
// and resource type; see Grant) and the purpose, and it is active at now
// (not revoked, NotBefore <= now < NotAfter). For a deny grant, a record
// attribute the request leaves empty counts as covered; for a permit it
// does not.
//
// Rules, in order: a request missing an essential field is denied; a
// matching deny grant denies (deny.explicit); otherwise a matching permit
// permits (permit.grant); otherwise an ETREAT request goes to the
// break-glass rule (see Policy); otherwise the request is denied with the
// most specific reason: revoked, expired, not yet valid, purpose, or no
// grant. A matching deny grant covering ETREAT refuses break-glass too
// unless the policy sets HonourDenyOnBreakGlass to false. When several
// grants qualify, the first in grants is reported (the store returns grants
// in ledger order).
func Decide(req Request, grants []Grant, now time.Time, policy Policy) Decision {
	if req.Action == "" {
		req.Action = ActionRead
	}
	if !req.wellFormed() {
		return Decision{Effect: Deny, Reason: ReasonDenyInvalidRequest}
	}

	var (
		deny, permit                        *Grant
		revoked, expired, pending, wrongUse *Grant
	)
	for i := range grants {
		g := &grants[i]
		if g.Patient != req.Patient || !g.Grantee.Matches(req.Requester, req.RequesterKind) ||
			!g.coversAction(req.Action) || !g.coversRecord(req) {
			continue
		}
		if !g.coversPurpose(req.Purpose) {
			if g.Effect == Permit && wrongUse == nil && g.Status(now) == StatusActive {
				wrongUse = g
			}
			continue
		}
		switch g.Status(now) {
		case StatusActive:
			if g.Effect == Deny && deny == nil {
				deny = g
			} else if g.Effect == Permit && permit == nil {
				permit = g
			}
		case StatusRevoked:
			if g.Effect == Permit && revoked == nil {
				revoked = g
			}
		case StatusExpired:
			if g.Effect == Permit && expired == nil {
				expired = g
			}
		case StatusPending:
			if g.Effect == Permit && pending == nil {
				pending = g
			}
		}
	}

	if deny == nil && permit != nil {
		return Decision{Effect: Permit, Reason: ReasonPermitGrant, GrantID: permit.ID}
	}
	if req.Purpose == PurposeEmergencyTreatment {
		return breakGlass(req, deny, policy)
	}
	if deny != nil {
		return Decision{Effect: Deny, Reason: ReasonDenyExplicit, GrantID: deny.ID}
	}
	for _, miss := range []struct {
		g      *Grant
		reason Reason
	}{
		{revoked, ReasonDenyRevoked},
		{expired, ReasonDenyExpired},
		{pending, ReasonDenyNotYetValid},
		{wrongUse, ReasonDenyPurpose},
	} {
		if miss.g != nil {
			return Decision{Effect: Deny, Reason: miss.reason, GrantID: miss.g.ID}
		}
	}
	return Decision{Effect: Deny, Reason: ReasonDenyNoGrant}
}

// breakGlass applies the break-glass rule to an ETREAT request that no grant
// alone permits. deny is the matching active deny grant, if any.
func breakGlass(req Request, deny *Grant, policy Policy) Decision {
	d := Decision{Effect: Deny, BreakGlass: true}
	switch {
	case deny != nil && policy.HonourDenyOnBreakGlass:
		d.Reason, d.GrantID = ReasonDenyExplicit, deny.ID
	case !slices.Contains(policy.BreakGlassKinds, req.RequesterKind):
		d.Reason = ReasonDenyBreakGlassKind
	case utf8.RuneCountInString(strings.TrimSpace(req.Justification)) < policy.minJustification():
		d.Reason = ReasonDenyBreakGlassJustification
	default:
		d.Effect, d.Reason = Permit, ReasonPermitBreakGlass
	}
	return d
}

func (r Request) wellFormed() bool {
	return r.Requester != "" && r.RequesterKind.Valid() && r.Patient != "" &&
		r.RecordID != "" && r.Purpose.Valid() && r.Action.Valid()
}

func (g *Grant) coversAction(a Action) bool {
	return len(g.Actions) == 0 || slices.Contains(g.Actions, a)
}

func (g *Grant) coversPurpose(p Purpose) bool {
	return len(g.Purposes) == 0 || slices.Contains(g.Purposes, p)
}

func (g *Grant) coversRecord(req Request) bool {
	return covers(g.Categories, req.Category, g.Effect) &&
		covers(g.RecordIDs, req.RecordID, g.Effect) &&
		covers(g.ResourceTypes, req.ResourceType, g.Effect)
}

// covers reports whether a restriction list admits v. An empty list admits
// everything; an unknown value ("") is admitted by deny grants only, so that
// missing metadata never weakens a patient's deny.
func covers(list []string, v string, effect Effect) bool {
	if len(list) == 0 {
		return true
	}
	if v == "" {
		return effect == Deny
	}
	return slices.Contains(list, v)
}
