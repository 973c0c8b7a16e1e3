package ledger

import (
	"fmt"
	"strings"
)

// The domain view of an entry (Entry, with the bodies of bodies.go) is
// what the gateway's use cases write and its projections read; the v2
// statement (bodies_v2.go) is what is signed, committed to and sealed.
// toV2 and fromV2 translate between them: patient pseudonyms become
// per-entry patient references (PatientRef under the statement's salt)
// and travel, for the gateways that open the entry, as the opening's
// Subject.

// patientOrgPrefix is the domain org of patient actions: "patient:" and
// the patient's pseudonym.
const patientOrgPrefix = OrgPatient + ":"

// v2Statement is a domain entry translated for signing.
type v2Statement struct {
	org     string
	body    any
	subject string // the pseudonym the body's patient reference is of
}

// noPatient is the pseudonym whose reference a decision naming no
// patient computes and drops (toV2): of a pseudonym's form, no
// patient's (pseudonyms are HMAC outputs).
const noPatient = "ps_0000000000000000000000000000000000000000000000000000000000000000"

// toV2 translates domain entry e (see NewEntry) into the org and body of a
// v2 statement with salt. home fills in an org registration's home when
// the caller left it empty.
func toV2(e Entry, salt Salt, ps *Pseudonymizer, home GatewayHome) (v2Statement, error) {
	ref := func(pseudonym string) (string, error) {
		if ps == nil {
			return "", fmt.Errorf("%w: no pseudonym secret for a patient entry", ErrMalformed)
		}
		k, err := ps.RefKey(pseudonym)
		if err != nil {
			return "", fmt.Errorf("%w: patient: %v", ErrMalformed, err)
		}
		return PatientRef(k, salt), nil
	}
	switch b := e.Body.(type) {
	case *GatewayRegistered:
		c := *b
		return v2Statement{org: OrgGateway, body: &c}, nil
	case *OrgRegistered:
		h := b.Home
		if h == (GatewayHome{}) {
			h = home
		}
		return v2Statement{org: b.ID, body: &OrgRegisteredV2{
			ID: b.ID, Name: b.Name, Kind: b.Kind, Scopes: b.Scopes,
			JWKS: b.JWKS, JWKSURL: b.JWKSURL, Home: h,
		}}, nil
	case *OrgKeysRotated:
		c := *b
		return v2Statement{org: b.Org, body: &c}, nil
	case *ConsentGranted:
		r, err := ref(b.Patient)
		if err != nil {
			return v2Statement{}, err
		}
		c := ConsentGrantedV2{
			ConsentID: b.ConsentID, Patient: r, Grantee: b.Grantee, Decision: b.Decision,
			Actions: b.Actions, Categories: b.Categories, RecordIDs: b.RecordIDs,
			ResourceTypes: b.ResourceTypes, Purposes: b.Purposes,
			NotBefore: b.NotBefore.UTC(), NotAfter: b.NotAfter.UTC(),
		}
		return v2Statement{org: OrgPatient, body: &c, subject: b.Patient}, nil
	case *ConsentRevoked:
		r, err := ref(b.Patient)
		if err != nil {
			return v2Statement{}, err
		}
		return v2Statement{org: OrgPatient, body: &ConsentRevokedV2{ConsentID: b.ConsentID, Patient: r}, subject: b.Patient}, nil
	case *PasskeyRegistered:
		r, err := ref(b.Patient)
		if err != nil {
			return v2Statement{}, err
		}
		return v2Statement{org: OrgPatient, body: &PasskeyRegisteredV2{
			Patient: r, CredentialID: b.CredentialID, PublicKey: b.PublicKey, RPID: b.RPID, Origin: b.Origin,
		}, subject: b.Patient}, nil
	case *RecordRegistered:
		r, err := ref(b.Patient)
		if err != nil {
			return v2Statement{}, err
		}
		return v2Statement{org: b.Holder, body: &RecordRegisteredV2{
			RecordID: b.RecordID, Holder: b.Holder, Patient: r, Category: b.Category,
			ResourceType: b.ResourceType, Commitment: b.Commitment, ContentType: b.ContentType, Size: b.Size,
		}, subject: b.Patient}, nil
	case *RecordShredded:
		r, err := ref(b.Patient)
		if err != nil {
			return v2Statement{}, err
		}
		return v2Statement{org: b.Holder, body: &RecordShreddedV2{RecordID: b.RecordID, Holder: b.Holder, Patient: r}, subject: b.Patient}, nil
	case *AccessDecided:
		c := AccessDecidedV2{
			Requester: b.Requester, RecordID: b.RecordID, Category: b.Category,
			Purpose: b.Purpose, Decision: b.Decision, Reason: b.Reason, GrantID: b.GrantID,
			BreakGlass: b.BreakGlass, JustificationCommitment: b.JustificationCommitment,
			RequestID: b.RequestID, ClientRequestID: b.ClientRequestID,
		}
		st := v2Statement{org: e.Org, body: &c}
		if b.Patient != "" {
			r, err := ref(b.Patient)
			if err != nil {
				return v2Statement{}, err
			}
			c.Patient, st.subject = r, b.Patient
		} else if ps != nil {
			// A decision that names no patient (a read of a record that
			// does not exist) computes a reference all the same, and
			// drops it: its latency must not tell it from a denied read
			// of a record that exists.
			if _, err := ref(noPatient); err != nil {
				return v2Statement{}, err
			}
		}
		return st, nil
	case *IssuerRegistered:
		c := *b
		return v2Statement{org: b.Issuer, body: &c}, nil
	case *CircuitRegistered:
		c := *b
		return v2Statement{org: OrgGateway, body: &c}, nil
	case *ProofVerified:
		c := ProofVerifiedV2{
			Verifier: b.Verifier, Statement: b.Statement, Params: b.Params,
			Challenge: b.Challenge, Valid: b.Valid, Reason: b.Reason,
		}
		switch {
		case b.Valid:
			c.Proven = &ProofClaims{Issuer: b.Issuer, Nullifier: b.Nullifier}
		case b.ClaimedIssuer != "" || b.ClaimedNullifier != "":
			c.Unproven = &ProofClaims{Issuer: b.ClaimedIssuer, Nullifier: b.ClaimedNullifier}
		}
		return v2Statement{org: b.Verifier, body: &c}, nil
	}
	return v2Statement{}, fmt.Errorf("%w: body %T", ErrUnknownType, e.Body)
}

// fromV2 translates an opened statement back into the domain entry's org
// and body. subject is the opening's Subject, already checked against the
// statement's patient reference (or empty when the body names none).
func fromV2(st Statement, subject string) (org string, body any, err error) {
	org = st.Org
	switch b := st.Body.(type) {
	case *GatewayRegistered:
		c := *b
		return org, &c, nil
	case *OrgRegisteredV2:
		return org, &OrgRegistered{
			ID: b.ID, Name: b.Name, Kind: b.Kind, Scopes: b.Scopes,
			JWKS: b.JWKS, JWKSURL: b.JWKSURL, Home: b.Home,
		}, nil
	case *OrgKeysRotated:
		c := *b
		return org, &c, nil
	case *ConsentGrantedV2:
		return patientOrgPrefix + subject, &ConsentGranted{
			ConsentID: b.ConsentID, Patient: subject, Grantee: b.Grantee, Decision: b.Decision,
			Actions: b.Actions, Categories: b.Categories, RecordIDs: b.RecordIDs,
			ResourceTypes: b.ResourceTypes, Purposes: b.Purposes,
			NotBefore: b.NotBefore, NotAfter: b.NotAfter,
		}, nil
	case *ConsentRevokedV2:
		return patientOrgPrefix + subject, &ConsentRevoked{ConsentID: b.ConsentID, Patient: subject}, nil
	case *PasskeyRegisteredV2:
		return patientOrgPrefix + subject, &PasskeyRegistered{
			Patient: subject, CredentialID: b.CredentialID, PublicKey: b.PublicKey, RPID: b.RPID, Origin: b.Origin,
		}, nil
	case *RecordRegisteredV2:
		return org, &RecordRegistered{
			RecordID: b.RecordID, Holder: b.Holder, Patient: subject, Category: b.Category,
			ResourceType: b.ResourceType, Commitment: b.Commitment, ContentType: b.ContentType, Size: b.Size,
		}, nil
	case *RecordShreddedV2:
		return org, &RecordShredded{RecordID: b.RecordID, Holder: b.Holder, Patient: subject}, nil
	case *AccessDecidedV2:
		return org, &AccessDecided{
			Requester: b.Requester, RecordID: b.RecordID, Patient: subject, Category: b.Category,
			Purpose: b.Purpose, Decision: b.Decision, Reason: b.Reason, GrantID: b.GrantID,
			BreakGlass: b.BreakGlass, JustificationCommitment: b.JustificationCommitment,
			RequestID: b.RequestID, ClientRequestID: b.ClientRequestID,
		}, nil
	case *IssuerRegistered:
		c := *b
		return org, &c, nil
	case *CircuitRegistered:
		c := *b
		return org, &c, nil
	case *ProofVerifiedV2:
		c := &ProofVerified{
			Verifier: b.Verifier, Statement: b.Statement, Params: b.Params,
			Challenge: b.Challenge, Valid: b.Valid, Reason: b.Reason,
		}
		proven := b.Proven != nil
		c.Proven = &proven
		if p := b.Proven; p != nil {
			c.Issuer, c.Nullifier = p.Issuer, p.Nullifier
		}
		if u := b.Unproven; u != nil {
			c.ClaimedIssuer, c.ClaimedNullifier = u.Issuer, u.Nullifier
		}
		return org, c, nil
	}
	return "", nil, fmt.Errorf("%w: body %T", ErrUnknownType, st.Body)
}

// patientRefOf returns the patient reference a v2 body carries, if any.
func patientRefOf(body any) string {
	switch b := body.(type) {
	case *ConsentGrantedV2:
		return b.Patient
	case *ConsentRevokedV2:
		return b.Patient
	case *PasskeyRegisteredV2:
		return b.Patient
	case *RecordRegisteredV2:
		return b.Patient
	case *RecordShreddedV2:
		return b.Patient
	case *AccessDecidedV2:
		return b.Patient
	}
	return ""
}

// PatientOrg is the domain org of an action by the patient of pseudonym.
func PatientOrg(pseudonym string) string { return patientOrgPrefix + pseudonym }

// IsPatientOrg reports whether org is a patient's domain org.
func IsPatientOrg(org string) bool { return strings.HasPrefix(org, patientOrgPrefix) }
