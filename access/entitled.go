package access

import (
	"context"
	"crypto/subtle"
	"fmt"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/ledger"
)

// Who may read an entry's body (docs/design/ledger-privacy.md, "Who can
// read what"): the public leaf and its inclusion proof are for anyone;
// the body (the entry's header and opening) is for
//
//   - a party the entry names: the org it is written for (the holder of
//     a record or an access decision, the issuer of an issuer
//     registration, the verifier of a proof, the org an org entry
//     registers or rotates), a consent's grantee org, an access
//     decision's requester;
//   - the patient the entry is about (their pseudonym is the opening's
//     subject);
//   - a regulator (audit.read), who sees every body, break-glass reasons
//     included.
//
// Everyone else gets the leaf and the proof only, with no sign that the
// body exists or what kind of party might see it.

// Entitled reports whether viewer v may see the body of the opened entry
// o. pseudonym is a patient viewer's own ledger pseudonym (ignored for
// organisations).
func Entitled(v auth.Principal, pseudonym string, o ledger.Opened) bool {
	switch {
	case v.IsPatient():
		subject := o.Opening.Subject
		return subject != "" && pseudonym != "" && subtle.ConstantTimeCompare([]byte(subject), []byte(pseudonym)) == 1
	case !v.IsOrg():
		return false
	case regulator(v):
		return true
	}
	for _, org := range parties(o.Entry) {
		if org == v.Org {
			return true
		}
	}
	return false
}

func regulator(v auth.Principal) bool {
	return v.RequireOrg(auth.ScopeAuditRead, auth.KindRegulator) == nil
}

// parties are the organisations entry e names (see Entitled). The
// gateway's own entries (gateway and circuit registrations, org
// "gateway") and consents (org "patient:…") name no organisation by
// their org.
func parties(e ledger.Entry) []string {
	var out []string
	if e.Org != ledger.OrgGateway && !ledger.IsPatientOrg(e.Org) {
		out = append(out, e.Org)
	}
	switch b := e.Body.(type) {
	case *ledger.OrgRegistered:
		out = append(out, b.ID)
	case *ledger.OrgKeysRotated:
		out = append(out, b.Org)
	case *ledger.ConsentGranted:
		if b.Grantee.Org != "" {
			out = append(out, b.Grantee.Org)
		}
	case *ledger.RecordRegistered:
		out = append(out, b.Holder)
	case *ledger.RecordShredded:
		out = append(out, b.Holder)
	case *ledger.AccessDecided:
		out = append(out, b.Requester)
	case *ledger.IssuerRegistered:
		out = append(out, b.Issuer)
	case *ledger.ProofVerified:
		out = append(out, b.Verifier)
	}
	return out
}

// Body returns the opening viewer v may see of the opened entry o, and
// false when v is not entitled to it (Entitled). The opening never
// carries the patient's pseudonym (ledger.Opening.WithoutSubject); a
// regulator's carries the break-glass justification of an access
// decision (its salt and reason, from Config.Openings, checked against
// the entry's commitment), every other viewer's none.
func (q *Queries) Body(ctx context.Context, v auth.Principal, o ledger.Opened) (ledger.Opening, bool, error) {
	pseudonym := ""
	if v.IsPatient() {
		pseudonym = q.cfg.Pseud.Pseudonym(v.Patient)
	}
	if !Entitled(v, pseudonym, o) {
		return ledger.Opening{}, false, nil
	}
	out := o.Opening.WithoutSubject().WithoutJustification()
	ad, ok := o.Entry.Body.(*ledger.AccessDecided)
	if !ok || ad.JustificationCommitment == "" || !regulator(v) || q.cfg.Openings == nil {
		return out, true, nil
	}
	open, err := q.cfg.Openings.Openings(ctx, []string{ad.JustificationCommitment})
	if err != nil {
		return ledger.Opening{}, false, fmt.Errorf("access: open justification: %w", err)
	}
	if j, ok := open[ad.JustificationCommitment]; ok && j.Commitment().String() == ad.JustificationCommitment {
		out.Justification = &j
	}
	return out, true, nil
}
