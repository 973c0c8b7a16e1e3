package ledger

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Bounds of an opening's parts.
const (
	// MaxAttestations bounds the attestations of one entry.
	MaxAttestations = 4
	// MaxJustificationLength bounds a break-glass justification, in bytes
	// of UTF-8.
	MaxJustificationLength = 2048

	maxAttestationSize   = 8192
	maxJustificationSize = MaxJustificationLength + 128
)

// Attestation kinds.
const (
	// AttestationWebAuthn is a WebAuthn assertion by a patient's passkey
	// whose challenge is the entry's commitment (consents made in the
	// patient app).
	AttestationWebAuthn = "webauthn"
	// AttestationJWS is a compact JWS by an org whose payload is the
	// entry's commitment. (An org.keys_rotated carries the org's
	// signature in its body instead: OrgKeysRotated.Signature, checked by
	// the Authority.)
	AttestationJWS = "jws"
)

// Attestation is a signature over an entry's commitment by someone other
// than its author. Attestations travel in the opening, never in the
// public header: a passkey's credential ID would link a patient's
// entries. The header carries only their digest. This package carries and
// commits to them; checking them against the registry (the patient's
// passkey, the org's key as of the entry's index) is the verifier's job.
type Attestation struct {
	Kind string `json:"kind"`
	// WebAuthn assertion fields, unpadded base64url.
	CredentialID      string `json:"credential_id,omitempty"`
	AuthenticatorData string `json:"authenticator_data,omitempty"`
	ClientDataJSON    string `json:"client_data_json,omitempty"`
	Signature         string `json:"signature,omitempty"`
	// JWS is the compact serialization of a JWS (AttestationJWS).
	JWS string `json:"jws,omitempty"`
}

func (a Attestation) validate() error {
	switch a.Kind {
	case AttestationWebAuthn:
		if a.JWS != "" {
			return fmt.Errorf("webauthn attestation with a jws")
		}
		for name, v := range map[string]string{
			"credential_id": a.CredentialID, "authenticator_data": a.AuthenticatorData,
			"client_data_json": a.ClientDataJSON, "signature": a.Signature,
		} {
			if v == "" {
				return fmt.Errorf("webauthn attestation without %s", name)
			}
			if _, err := base64.RawURLEncoding.Strict().DecodeString(v); err != nil {
				return fmt.Errorf("webauthn attestation %s is not unpadded base64url", name)
			}
		}
	case AttestationJWS:
		if a.CredentialID != "" || a.AuthenticatorData != "" || a.ClientDataJSON != "" || a.Signature != "" {
			return fmt.Errorf("jws attestation with webauthn fields")
		}
		if a.JWS == "" || bytes.Count([]byte(a.JWS), []byte(".")) != 2 {
			return fmt.Errorf("jws attestation is not a compact JWS")
		}
	default:
		return fmt.Errorf("unknown attestation kind %q", a.Kind)
	}
	return nil
}

func validateAttestations(atts []Attestation) error {
	if len(atts) > MaxAttestations {
		return fmt.Errorf("%w: %d attestations (at most %d)", ErrTooLarge, len(atts), MaxAttestations)
	}
	for i, a := range atts {
		if err := a.validate(); err != nil {
			return fmt.Errorf("%w: attestation %d: %v", ErrMalformed, i, err)
		}
	}
	return nil
}

// AttestationsDigest returns the digest a header carries for atts:
// SHA-256("healthgw/entry/v2/attestations\n" ‖ canonical JSON array of
// atts), or the zero digest when there are none.
func AttestationsDigest(atts []Attestation) (Digest, error) {
	if len(atts) == 0 {
		return Digest{}, nil
	}
	if err := validateAttestations(atts); err != nil {
		return Digest{}, err
	}
	b, err := marshalCompact(atts)
	if err != nil {
		return Digest{}, fmt.Errorf("%w: attestations: %v", ErrMalformed, err)
	}
	return domainHash(attestationsDomain, b), nil
}

// Justification is the opening of a break-glass justification
// commitment: the free-text reason (it may hold PHI) and the salt that
// keeps a short or templated reason from falling to a dictionary. It is
// sealed to regulators only.
type Justification struct {
	Salt   Salt
	Reason string
}

type wireJustification struct {
	Salt   string `json:"salt"`
	Reason string `json:"reason"`
}

// NewJustification returns a justification for reason with a fresh salt.
func NewJustification(reason string) (Justification, error) {
	if err := validReason(reason); err != nil {
		return Justification{}, err
	}
	salt, err := NewSalt()
	if err != nil {
		return Justification{}, err
	}
	return Justification{Salt: salt, Reason: reason}, nil
}

func validReason(reason string) error {
	if reason == "" || len(reason) > MaxJustificationLength || !utf8.ValidString(reason) {
		return fmt.Errorf("%w: justification must be 1 to %d bytes of UTF-8", ErrMalformed, MaxJustificationLength)
	}
	return nil
}

// Commitment returns JustificationCommitment(j.Salt, j.Reason).
func (j Justification) Commitment() Digest { return JustificationCommitment(j.Salt, j.Reason) }

// JustificationCommitment is what an access.decided body carries for a
// break-glass reason: SHA-256("healthgw/entry/v2/justification\n" ‖
// salt ‖ reason). The salt has a fixed size, so the input is unambiguous.
func JustificationCommitment(salt Salt, reason string) Digest {
	return domainHash(justificationDomain, salt[:], []byte(reason))
}

// Opening is what a party receives of an entry: the statement's canonical
// bytes, the attestations over its commitment and, for regulators only, the
// opening of a break-glass justification. CheckOpening checks it against
// the entry's header.
type Opening struct {
	Statement     []byte
	Attestations  []Attestation
	Justification *Justification
	// Subject is the patient's pseudonym for an entry about a patient,
	// for the gateways that open the entry (they index their
	// projections by it). It is not committed to: a gateway checks it
	// against the statement's patient reference (CheckSubject), which
	// needs the pseudonym secret. It is never handed to an organisation
	// (WithoutSubject).
	Subject string
}

type wireOpening struct {
	Statement     json.RawMessage    `json:"statement"`
	Attestations  []Attestation      `json:"attestations,omitempty"`
	Justification *wireJustification `json:"justification,omitempty"`
	Subject       string             `json:"subject,omitempty"`
}

// WithoutSubject returns o without its subject: the opening as an
// organisation or the public may see it.
func (o Opening) WithoutSubject() Opening {
	o.Subject = ""
	return o
}

// WithoutJustification returns o without the break-glass justification:
// the opening for every party but the regulators.
func (o Opening) WithoutJustification() Opening {
	o.Justification = nil
	return o
}

// EncodeOpening returns the canonical encoding of o:
// {"statement":<the statement's canonical JSON>,"attestations":[…],
// "justification":{"salt","reason"}}, the last two omitted when empty.
// The statement must decode (DecodeStatement).
func EncodeOpening(o Opening) ([]byte, error) {
	if _, err := DecodeStatement(o.Statement); err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	return encodeOpening(o, 0)
}

// encodeOpening is EncodeOpening for an opening whose statement is known
// to decode, so is canonical (the Node's own, decoded once when it was
// prepared), into a buffer of at least minCap bytes (room for sealing it
// in place, sealedPlainCap).
func encodeOpening(o Opening, minCap int) ([]byte, error) {
	if err := validateAttestations(o.Attestations); err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	if o.Subject != "" {
		if err := validPatientID(o.Subject); err != nil {
			return nil, fmt.Errorf("%w: opening: subject: %v", ErrMalformed, err)
		}
	}
	if j := o.Justification; j != nil {
		if err := validReason(j.Reason); err != nil {
			return nil, fmt.Errorf("opening: %w", err)
		}
		if j.Salt == (Salt{}) {
			return nil, fmt.Errorf("%w: opening: justification salt not set", ErrMalformed)
		}
	}
	// The members as encoding/json writes wireOpening: the statement is
	// canonical (compact JSON, copied as is), the free text quoted as
	// encoding/json quotes it (appendJSONString).
	b := make([]byte, 0, max(minCap, len(o.Statement)+64+len(o.Subject)))
	b = append(b, `{"statement":`...)
	b = append(b, o.Statement...)
	if len(o.Attestations) > 0 {
		a, err := marshalCompact(o.Attestations)
		if err != nil {
			return nil, fmt.Errorf("%w: opening: %v", ErrMalformed, err)
		}
		b = append(b, `,"attestations":`...)
		b = append(b, a...)
	}
	var err error
	if j := o.Justification; j != nil {
		b = append(b, `,"justification":{"salt":"`...)
		b = base64.RawURLEncoding.AppendEncode(b, j.Salt[:])
		b = append(b, `","reason":`...)
		if b, err = appendJSONString(b, j.Reason); err != nil {
			return nil, fmt.Errorf("%w: opening: %v", ErrMalformed, err)
		}
		b = append(b, '}')
	}
	if o.Subject != "" {
		b = append(b, `,"subject":`...)
		if b, err = appendJSONString(b, o.Subject); err != nil {
			return nil, fmt.Errorf("%w: opening: %v", ErrMalformed, err)
		}
	}
	b = append(b, '}')
	if len(b) > MaxOpeningSize {
		return nil, fmt.Errorf("%w: opening of %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// DecodeOpening parses an opening's canonical encoding. It does not check
// the opening against a header (CheckOpening does).
func DecodeOpening(b []byte) (Opening, error) {
	if len(b) > MaxOpeningSize {
		return Opening{}, fmt.Errorf("%w: opening of %d bytes", ErrTooLarge, len(b))
	}
	var w wireOpening
	if err := strictUnmarshal(b, &w); err != nil {
		return Opening{}, fmt.Errorf("%w: opening: %v", ErrMalformed, err)
	}
	o := Opening{Statement: []byte(w.Statement), Attestations: w.Attestations, Subject: w.Subject}
	if w.Justification != nil {
		salt, err := parseSalt(w.Justification.Salt)
		if err != nil {
			return Opening{}, fmt.Errorf("%w: justification salt: %v", ErrMalformed, err)
		}
		o.Justification = &Justification{Salt: salt, Reason: w.Justification.Reason}
	}
	again, err := EncodeOpening(o)
	if err != nil {
		return Opening{}, err
	}
	if !bytes.Equal(again, b) {
		return Opening{}, fmt.Errorf("%w: opening", ErrNonCanonical)
	}
	return o, nil
}

func randomFill(b []byte) error {
	_, err := rand.Read(b)
	return err
}
