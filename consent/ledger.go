package consent

import (
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/ledger"
)

// LedgerBody returns the consent.granted body for g (its provision; the
// ledger state fields are not part of it). Append it with the patient as
// the entry's Org ("patient:<pseudonym>").
func (g Grant) LedgerBody() *ledger.ConsentGranted {
	return &ledger.ConsentGranted{
		ConsentID:     g.ID,
		Patient:       g.Patient,
		Grantee:       ledger.Grantee{Org: g.Grantee.Org, Kind: string(g.Grantee.Kind)},
		Decision:      string(g.Effect),
		Actions:       convert[Action, string](g.Actions),
		Categories:    clone(g.Categories),
		RecordIDs:     clone(g.RecordIDs),
		ResourceTypes: clone(g.ResourceTypes),
		Purposes:      convert[Purpose, string](g.Purposes),
		NotBefore:     g.NotBefore.UTC(),
		NotAfter:      g.NotAfter.UTC(),
	}
}

// RevocationBody returns the consent.revoked body that withdraws g.
func (g Grant) RevocationBody() *ledger.ConsentRevoked {
	return &ledger.ConsentRevoked{ConsentID: g.ID, Patient: g.Patient}
}

// FromLedger returns the grant a consent.granted body describes, with the
// ledger state of a fresh grant: granted at index and at time t. Empty lists
// become nil.
func FromLedger(index uint64, t time.Time, b *ledger.ConsentGranted) Grant {
	return Grant{
		ID:            b.ConsentID,
		Patient:       b.Patient,
		Grantee:       Grantee{Org: b.Grantee.Org, Kind: auth.Kind(b.Grantee.Kind)},
		Effect:        Effect(b.Decision),
		Actions:       convert[string, Action](b.Actions),
		Categories:    clone(b.Categories),
		RecordIDs:     clone(b.RecordIDs),
		ResourceTypes: clone(b.ResourceTypes),
		Purposes:      convert[string, Purpose](b.Purposes),
		NotBefore:     b.NotBefore.UTC(),
		NotAfter:      b.NotAfter.UTC(),
		GrantedIndex:  index,
		GrantedAt:     t.UTC(),
	}
}

// LedgerBody returns the access.decided body that logs decision d on req.
// The justification is not logged (it may hold PHI); the caller sets
// JustificationCommitment, a salted commitment to it (see
// ledger.NewJustification), and keeps the opening for regulators.
func (d Decision) LedgerBody(req Request, requestID string) *ledger.AccessDecided {
	b := &ledger.AccessDecided{
		Requester:  req.Requester,
		RecordID:   req.RecordID,
		Patient:    req.Patient,
		Category:   req.Category,
		Purpose:    string(req.Purpose),
		Decision:   string(d.Effect),
		Reason:     string(d.Reason),
		GrantID:    d.GrantID,
		BreakGlass: d.BreakGlass,
		RequestID:  requestID,
	}
	return b
}

// AccessEventFromLedger returns the access event an access.decided body at
// index (entry time t) describes.
func AccessEventFromLedger(index uint64, t time.Time, b *ledger.AccessDecided) AccessEvent {
	return AccessEvent{
		Index:                   index,
		Time:                    t.UTC(),
		Requester:               b.Requester,
		RecordID:                b.RecordID,
		Patient:                 b.Patient,
		Category:                b.Category,
		Purpose:                 Purpose(b.Purpose),
		Decision:                Effect(b.Decision),
		Reason:                  Reason(b.Reason),
		GrantID:                 b.GrantID,
		BreakGlass:              b.BreakGlass,
		JustificationHash:       b.JustificationHash,
		JustificationCommitment: b.JustificationCommitment,
		RequestID:               b.RequestID,
		ClientRequestID:         b.ClientRequestID,
	}
}

func convert[From, To ~string](in []From) []To {
	if len(in) == 0 {
		return nil
	}
	out := make([]To, len(in))
	for i, v := range in {
		out[i] = To(v)
	}
	return out
}

func clone(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	return append([]string(nil), in...)
}
