package consent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"github.com/healthgw/healthgw/auth"
)

// Effect is what a grant does when it matches, and what a decision is:
// permit or deny.
type Effect string

// Effects.
const (
	Permit Effect = "permit"
	Deny   Effect = "deny"
)

// Valid reports whether e is Permit or Deny.
func (e Effect) Valid() bool { return e == Permit || e == Deny }

// Action is what a grantee may do with covered data. The vocabulary is
// closed.
type Action string

// Actions.
const (
	// ActionRead: read a record.
	ActionRead Action = "read"
)

// Actions lists every action.
var Actions = []Action{ActionRead}

// Valid reports whether a is a known action.
func (a Action) Valid() bool { return slices.Contains(Actions, a) }

// Purpose is a purpose of use, an HL7 v3 ActReason code
// (http://terminology.hl7.org/CodeSystem/v3-ActReason). The vocabulary is
// closed.
type Purpose string

// Purposes of use.
const (
	PurposeTreatment          Purpose = "TREAT"   // treatment
	PurposeEmergencyTreatment Purpose = "ETREAT"  // emergency treatment (break-glass)
	PurposePayment            Purpose = "HPAYMT"  // healthcare payment
	PurposeOperations         Purpose = "HOPERAT" // healthcare operations
	PurposeResearch           Purpose = "HRESCH"  // healthcare research
	PurposePublicHealth       Purpose = "PUBHLTH" // public health
)

// Purposes lists every purpose of use.
var Purposes = []Purpose{
	PurposeTreatment, PurposeEmergencyTreatment, PurposePayment,
	PurposeOperations, PurposeResearch, PurposePublicHealth,
}

var purposeDisplay = map[Purpose]string{
	PurposeTreatment:          "treatment",
	PurposeEmergencyTreatment: "Emergency Treatment",
	PurposePayment:            "healthcare payment",
	PurposeOperations:         "healthcare operations",
	PurposeResearch:           "healthcare research",
	PurposePublicHealth:       "public health",
}

// Valid reports whether p is a known purpose of use.
func (p Purpose) Valid() bool { _, ok := purposeDisplay[p]; return ok }

// Display returns the HL7 display name of p, or "" for an unknown code.
func (p Purpose) Display() string { return purposeDisplay[p] }

// Grantee is who a grant is for: exactly one of a single organisation (Org,
// an org ID) or every organisation of a kind (Kind).
type Grantee struct {
	Org  string
	Kind auth.Kind
}

// Matches reports whether the grantee names org or its kind.
func (g Grantee) Matches(org string, kind auth.Kind) bool {
	if g.Org != "" {
		return org != "" && g.Org == org
	}
	return g.Kind != "" && g.Kind == kind
}

// Grant is one consent provision of one patient. The fields up to NotAfter
// are what the patient asked for (see Validate); the rest is ledger state
// that the projection fills in.
type Grant struct {
	// ID is the consent ID (see NewID).
	ID string
	// Patient is the patient's pseudonym ("ps_" and 64 hex digits).
	Patient string
	Grantee Grantee
	// Effect is Permit or Deny.
	Effect  Effect
	Actions []Action
	// Categories, RecordIDs and ResourceTypes restrict what the grant
	// covers. An empty list does not restrict; a non-empty list requires the
	// requested record to match one of its items. A record must satisfy
	// every non-empty list (as FHIR provision elements combine).
	Categories    []string
	RecordIDs     []string
	ResourceTypes []string
	// Purposes restricts the purposes of use; empty covers every purpose.
	Purposes []Purpose
	// The grant is in force from NotBefore (inclusive) to NotAfter
	// (exclusive). A zero time leaves that side open (Validate requires
	// both).
	NotBefore time.Time
	NotAfter  time.Time

	// Ledger state, set from entries by the projection.

	// GrantedIndex and GrantedAt: the consent.granted entry.
	GrantedIndex uint64
	GrantedAt    time.Time
	// Revoked: a consent.revoked entry at RevokedIndex (time RevokedAt)
	// withdrew the grant. A revoked grant never matches.
	Revoked      bool
	RevokedIndex uint64
	RevokedAt    time.Time
	// Signed: the consent.granted entry carries a valid assertion by one
	// of the patient's registered passkeys over its commitment. A grant
	// made before the patient registered a passkey is not signed.
	Signed bool
}

// Status is a grant's state at an instant.
type Status string

// Statuses.
const (
	StatusActive  Status = "active"
	StatusPending Status = "pending" // before NotBefore
	StatusExpired Status = "expired" // at or after NotAfter
	StatusRevoked Status = "revoked"
)

// Status reports the grant's state at now. Revocation wins over the period.
func (g Grant) Status(now time.Time) Status {
	switch {
	case g.Revoked:
		return StatusRevoked
	case !g.NotBefore.IsZero() && now.Before(g.NotBefore):
		return StatusPending
	case !g.NotAfter.IsZero() && !now.Before(g.NotAfter):
		return StatusExpired
	}
	return StatusActive
}

// VisibleTo reports whether an organisation may see the grant: it names the
// organisation or the organisation's kind.
func (g Grant) VisibleTo(org string, kind auth.Kind) bool {
	return g.Grantee.Matches(org, kind)
}

// CheckRevoke reports whether patient (a pseudonym) may revoke g: only the
// patient who granted it may, once. Another patient's grant gives
// ErrNotFound (its existence is not revealed); a revoked grant gives
// ErrAlreadyRevoked.
func (g Grant) CheckRevoke(patient string) error {
	switch {
	case patient == "" || g.Patient != patient:
		return ErrNotFound
	case g.Revoked:
		return ErrAlreadyRevoked
	}
	return nil
}

// AccessEvent is one logged access decision (an access.decided entry) as the
// projection holds it.
type AccessEvent struct {
	// Index and Time are the entry's ledger index and time.
	Index      uint64
	Time       time.Time
	Requester  string // org ID
	RecordID   string
	Patient    string // pseudonym
	Category   string
	Purpose    Purpose
	Decision   Effect
	Reason     Reason
	GrantID    string
	BreakGlass bool
	// JustificationHash is the unsalted hex SHA-256 of a break-glass
	// justification (older entries); JustificationCommitment the salted
	// commitment newer entries carry (ledger.JustificationCommitment).
	JustificationHash       string
	JustificationCommitment string
	// Justification is the opened break-glass reason: set only for
	// regulators (access.Queries.AuditEvents), after checking it against
	// JustificationCommitment. Never logged.
	Justification string
	// RequestID is the gateway's own request ID; ClientRequestID the
	// caller's X-Request-ID (client-supplied, proves nothing).
	RequestID       string
	ClientRequestID string
}

// Errors. Storage and validation errors wrap these.
var (
	// ErrNotFound: no such grant (or the caller may not see it).
	ErrNotFound = errors.New("consent: not found")
	// ErrInvalidGrant: a grant failed Validate.
	ErrInvalidGrant = errors.New("consent: invalid grant")
	// ErrInvalidCursor: a pagination cursor did not decode.
	ErrInvalidCursor = errors.New("consent: invalid cursor")
	// ErrInvalidPolicy: a Policy failed Validate.
	ErrInvalidPolicy = errors.New("consent: invalid policy")
	// ErrInvalidFilter: an AuditFilter failed Validate.
	ErrInvalidFilter = errors.New("consent: invalid filter")
	// ErrAlreadyRevoked: the grant was revoked already.
	ErrAlreadyRevoked = errors.New("consent: already revoked")
)

// idPrefix starts every consent ID.
const idPrefix = "cns_"

// NewID returns a fresh random consent ID: "cns_" and 32 hex digits.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return idPrefix + hex.EncodeToString(b[:])
}
