package consentstore

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
)

// grantRow is one consent grant. Lists are JSON arrays (NULL when empty).
type grantRow struct {
	ID      string `gorm:"primaryKey"`
	Patient string `gorm:"not null;index:idx_consent_grants_patient,priority:1;index:idx_consent_grants_patient_org,priority:1;index:idx_consent_grants_patient_kind,priority:1"`
	// GrantedIndex is the consent.granted entry's ledger index; it orders
	// every list.
	GrantedIndex  uint64 `gorm:"not null;uniqueIndex;index:idx_consent_grants_patient,priority:2;index:idx_consent_grants_org,priority:2;index:idx_consent_grants_kind,priority:2;index:idx_consent_grants_patient_org,priority:3;index:idx_consent_grants_patient_kind,priority:3"`
	GranteeOrg    string `gorm:"not null;index:idx_consent_grants_org,priority:1;index:idx_consent_grants_patient_org,priority:2"`
	GranteeKind   string `gorm:"not null;index:idx_consent_grants_kind,priority:1;index:idx_consent_grants_patient_kind,priority:2"`
	Effect        string `gorm:"not null"`
	Actions       *string
	Categories    *string
	RecordIDs     *string
	ResourceTypes *string
	Purposes      *string
	NotBefore     *int64
	NotAfter      *int64
	GrantedAt     *int64
	Revoked       bool `gorm:"not null"`
	RevokedIndex  *uint64
	RevokedAt     *int64
	// Signed: the grant carries a valid passkey assertion.
	Signed bool `gorm:"not null;default:false"`
}

func (grantRow) TableName() string { return "consent_grants" }

// passkeyRow is a patient's registered passkey (a passkey.registered
// entry). A credential ID is registered once: the first entry wins.
type passkeyRow struct {
	CredentialID  string `gorm:"primaryKey"`
	Patient       string `gorm:"not null;index"`
	PublicKey     string `gorm:"not null"`
	RPID          string `gorm:"not null"`
	Origin        string `gorm:"not null"`
	RegisterIndex uint64 `gorm:"not null;uniqueIndex"`
}

func (passkeyRow) TableName() string { return "consent_passkeys" }

func passkeyToRow(p consent.Passkey) passkeyRow {
	return passkeyRow{CredentialID: p.CredentialID, Patient: p.Patient, PublicKey: p.PublicKey,
		RPID: p.RPID, Origin: p.Origin, RegisterIndex: p.Index}
}

func rowToPasskey(r passkeyRow) consent.Passkey {
	return consent.Passkey{CredentialID: r.CredentialID, Patient: r.Patient, PublicKey: r.PublicKey,
		RPID: r.RPID, Origin: r.Origin, Index: r.RegisterIndex}
}

// eventRow is one access event (an access.decided entry).
type eventRow struct {
	LedgerIndex       uint64 `gorm:"primaryKey;autoIncrement:false;index:idx_consent_events_requester,priority:2;index:idx_consent_events_patient,priority:2;index:idx_consent_events_break_glass,priority:2"`
	EntryTime         *int64 `gorm:"index"`
	Requester         string `gorm:"not null;index:idx_consent_events_requester,priority:1"`
	RecordID          string `gorm:"not null"`
	Patient           string `gorm:"not null;index:idx_consent_events_patient,priority:1"`
	Category          string `gorm:"not null"`
	Purpose           string `gorm:"not null"`
	Decision          string `gorm:"not null"`
	Reason            string `gorm:"not null"`
	GrantID           string `gorm:"not null"`
	BreakGlass        bool   `gorm:"not null;index:idx_consent_events_break_glass,priority:1"`
	JustificationHash string `gorm:"not null"`
	// JustificationCommitment: the salted commitment (the opening is not
	// in the projection).
	JustificationCommitment string `gorm:"not null;default:''"`
	RequestID               string `gorm:"not null"`
	ClientRequestID         string `gorm:"not null;default:''"`
}

func (eventRow) TableName() string { return "consent_access_events" }

func grantToRow(g consent.Grant) grantRow {
	r := grantRow{
		ID:            g.ID,
		Patient:       g.Patient,
		GrantedIndex:  g.GrantedIndex,
		GranteeOrg:    g.Grantee.Org,
		GranteeKind:   string(g.Grantee.Kind),
		Effect:        string(g.Effect),
		Actions:       encodeList(g.Actions),
		Categories:    encodeList(g.Categories),
		RecordIDs:     encodeList(g.RecordIDs),
		ResourceTypes: encodeList(g.ResourceTypes),
		Purposes:      encodeList(g.Purposes),
		NotBefore:     toNanos(g.NotBefore),
		NotAfter:      toNanos(g.NotAfter),
		GrantedAt:     toNanos(g.GrantedAt),
		Revoked:       g.Revoked,
		RevokedAt:     toNanos(g.RevokedAt),
		Signed:        g.Signed,
	}
	if g.Revoked {
		r.RevokedIndex = &g.RevokedIndex
	}
	return r
}

func rowToGrant(r grantRow) (consent.Grant, error) {
	g := consent.Grant{
		ID:           r.ID,
		Patient:      r.Patient,
		Grantee:      consent.Grantee{Org: r.GranteeOrg, Kind: auth.Kind(r.GranteeKind)},
		Effect:       consent.Effect(r.Effect),
		NotBefore:    fromNanos(r.NotBefore),
		NotAfter:     fromNanos(r.NotAfter),
		GrantedIndex: r.GrantedIndex,
		GrantedAt:    fromNanos(r.GrantedAt),
		Revoked:      r.Revoked,
		RevokedAt:    fromNanos(r.RevokedAt),
		Signed:       r.Signed,
	}
	if r.RevokedIndex != nil {
		g.RevokedIndex = *r.RevokedIndex
	}
	var err error
	if g.Actions, err = decodeList[consent.Action](r.Actions); err != nil {
		return consent.Grant{}, fmt.Errorf("grant %s: actions: %w", r.ID, err)
	}
	if g.Categories, err = decodeList[string](r.Categories); err != nil {
		return consent.Grant{}, fmt.Errorf("grant %s: categories: %w", r.ID, err)
	}
	if g.RecordIDs, err = decodeList[string](r.RecordIDs); err != nil {
		return consent.Grant{}, fmt.Errorf("grant %s: record IDs: %w", r.ID, err)
	}
	if g.ResourceTypes, err = decodeList[string](r.ResourceTypes); err != nil {
		return consent.Grant{}, fmt.Errorf("grant %s: resource types: %w", r.ID, err)
	}
	if g.Purposes, err = decodeList[consent.Purpose](r.Purposes); err != nil {
		return consent.Grant{}, fmt.Errorf("grant %s: purposes: %w", r.ID, err)
	}
	return g, nil
}

// decodeList reads a list stored by encodeList. Lists of plain values (no
// backslash, hence no escaped quote) are split directly, which is exact and
// several times faster than encoding/json; anything else goes through
// encoding/json.
func decodeList[T ~string](s *string) ([]T, error) {
	if s == nil {
		return nil, nil
	}
	v := *s
	if inner, ok := strings.CutPrefix(v, `["`); ok && !strings.ContainsRune(v, '\\') {
		if inner, ok = strings.CutSuffix(inner, `"]`); ok {
			parts := strings.Split(inner, `","`)
			out := make([]T, len(parts))
			for i, p := range parts {
				out[i] = T(p)
			}
			return out, nil
		}
	}
	var out []T
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func eventToRow(e consent.AccessEvent) eventRow {
	return eventRow{
		LedgerIndex:             e.Index,
		EntryTime:               toNanos(e.Time),
		Requester:               e.Requester,
		RecordID:                e.RecordID,
		Patient:                 e.Patient,
		Category:                e.Category,
		Purpose:                 string(e.Purpose),
		Decision:                string(e.Decision),
		Reason:                  string(e.Reason),
		GrantID:                 e.GrantID,
		BreakGlass:              e.BreakGlass,
		JustificationHash:       e.JustificationHash,
		JustificationCommitment: e.JustificationCommitment,
		RequestID:               e.RequestID,
		ClientRequestID:         e.ClientRequestID,
	}
}

func rowToEvent(r eventRow) consent.AccessEvent {
	return consent.AccessEvent{
		Index:                   r.LedgerIndex,
		Time:                    fromNanos(r.EntryTime),
		Requester:               r.Requester,
		RecordID:                r.RecordID,
		Patient:                 r.Patient,
		Category:                r.Category,
		Purpose:                 consent.Purpose(r.Purpose),
		Decision:                consent.Effect(r.Decision),
		Reason:                  consent.Reason(r.Reason),
		GrantID:                 r.GrantID,
		BreakGlass:              r.BreakGlass,
		JustificationHash:       r.JustificationHash,
		JustificationCommitment: r.JustificationCommitment,
		RequestID:               r.RequestID,
		ClientRequestID:         r.ClientRequestID,
	}
}

// encodeList stores a list as a JSON array, and an empty list as NULL.
func encodeList[T ~string](l []T) *string {
	if len(l) == 0 {
		return nil
	}
	b, _ := json.Marshal(l) // a []~string always marshals
	s := string(b)
	return &s
}

// The range of time.Time that UnixNano represents.
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// toNanos stores a time as Unix nanoseconds; the zero time is NULL. Times
// beyond what int64 nanoseconds hold (before 1678, after 2262: consent
// validation refuses them, but the ledger may hold anything) are clamped,
// which keeps their meaning for Decide (far past, far future).
func toNanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	var n int64
	switch {
	case t.Before(minNanoTime):
		n = math.MinInt64
	case t.After(maxNanoTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return &n
}

func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// scopeRow files a grant under one of its index keys
// (consent.Grant.IndexKeys): the read path's lookup (GrantsMatching)
// reads only the grants filed under a request's keys. The primary key is
// the lookup's index; rows are never updated (a revocation changes the
// grant row only, and Decide needs revoked grants for its reasons).
type scopeRow struct {
	Patient      string `gorm:"primaryKey"`
	Grantee      string `gorm:"primaryKey"`
	Scope        string `gorm:"primaryKey"`
	GrantedIndex uint64 `gorm:"primaryKey;autoIncrement:false"`
}

func (scopeRow) TableName() string { return "consent_grant_scopes" }

// scopeRows returns the index rows of g.
func scopeRows(g consent.Grant) []scopeRow {
	grantee, scopes := g.IndexKeys()
	out := make([]scopeRow, len(scopes))
	for i, s := range scopes {
		out[i] = scopeRow{Patient: g.Patient, Grantee: grantee, Scope: s, GrantedIndex: g.GrantedIndex}
	}
	return out
}
