package consent

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/healthgw/healthgw/ledger"
)

// Passkey is a patient's registered WebAuthn credential, as a
// passkey.registered entry records it.
type Passkey struct {
	// Patient is the patient's pseudonym.
	Patient string
	// CredentialID and PublicKey (a COSE key) are unpadded base64url.
	CredentialID string
	PublicKey    string
	// RPID and Origin are the relying party ID and the origin the
	// passkey was registered at; assertions must name the same.
	RPID   string
	Origin string
	// Index is the passkey.registered entry's ledger index.
	Index uint64
}

// PasskeyFromLedger returns the passkey a passkey.registered body at index
// records.
func PasskeyFromLedger(index uint64, b *ledger.PasskeyRegistered) Passkey {
	return Passkey{Patient: b.Patient, CredentialID: b.CredentialID, PublicKey: b.PublicKey,
		RPID: b.RPID, Origin: b.Origin, Index: index}
}

// LedgerBody returns the passkey.registered body for p. Append it with the
// patient as the entry's Org ("patient:<pseudonym>").
func (p Passkey) LedgerBody() *ledger.PasskeyRegistered {
	return &ledger.PasskeyRegistered{Patient: p.Patient, CredentialID: p.CredentialID,
		PublicKey: p.PublicKey, RPID: p.RPID, Origin: p.Origin}
}

// Errors of VerifyAssertion.
var (
	// ErrNoAssertion: the entry carries no WebAuthn assertion by any of
	// the patient's passkeys.
	ErrNoAssertion = errors.New("consent: no assertion by a registered passkey")
	// ErrBadAssertion: an assertion by a registered passkey does not
	// verify (wrong challenge, origin, RP ID, flags or signature).
	ErrBadAssertion = errors.New("consent: passkey assertion does not verify")
)

// Challenge is the WebAuthn challenge of an assertion over an entry:
// the unpadded base64url of its commitment.
func Challenge(commitment ledger.Digest) string {
	return base64.RawURLEncoding.EncodeToString(commitment[:])
}

// VerifyAssertion checks that atts hold a WebAuthn assertion by one of
// keys (the patient's registered passkeys) over commitment: challenge
// equal to the commitment, origin and RP ID as registered, user present,
// signature valid under the registered COSE key. It returns the passkey
// that signed. The checks are go-webauthn's (protocol package); the
// signature counter is not checked (passkeys synced across devices report
// 0), so the result depends only on the entry and the keys.
func VerifyAssertion(keys []Passkey, atts []ledger.Attestation, commitment ledger.Digest) (Passkey, error) {
	var firstErr error
	for _, a := range atts {
		if a.Kind != ledger.AttestationWebAuthn {
			continue
		}
		for _, k := range keys {
			if k.CredentialID != a.CredentialID {
				continue
			}
			err := verifyOne(k, a, commitment)
			if err == nil {
				return k, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if firstErr != nil {
		return Passkey{}, firstErr
	}
	return Passkey{}, ErrNoAssertion
}

func verifyOne(k Passkey, a ledger.Attestation, commitment ledger.Digest) error {
	pub, err := base64.RawURLEncoding.DecodeString(k.PublicKey)
	if err != nil {
		return fmt.Errorf("%w: registered key is not base64url", ErrBadAssertion)
	}
	raw, err := AssertionResponse(a)
	if err != nil {
		return err
	}
	parsed, err := raw.Parse()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadAssertion, describe(err))
	}
	err = parsed.Verify(Challenge(commitment), k.RPID, "", []string{k.Origin}, nil, nil,
		protocol.TopOriginExplicitVerificationMode, false, false, true, pub, protocol.SignaturePolicy{})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadAssertion, describe(err))
	}
	return nil
}

// AssertionResponse rebuilds the browser's assertion response from a
// ledger attestation, for go-webauthn to parse.
func AssertionResponse(a ledger.Attestation) (protocol.CredentialAssertionResponse, error) {
	var r protocol.CredentialAssertionResponse
	dec := func(name, v string) ([]byte, error) {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%w: %s is not base64url", ErrBadAssertion, name)
		}
		return b, nil
	}
	id, err := dec("credential_id", a.CredentialID)
	if err != nil {
		return r, err
	}
	ad, err := dec("authenticator_data", a.AuthenticatorData)
	if err != nil {
		return r, err
	}
	cd, err := dec("client_data_json", a.ClientDataJSON)
	if err != nil {
		return r, err
	}
	sig, err := dec("signature", a.Signature)
	if err != nil {
		return r, err
	}
	r.ID, r.RawID, r.Type = a.CredentialID, id, string(protocol.PublicKeyCredentialType)
	r.AssertionResponse.AuthenticatorData = ad
	r.AssertionResponse.ClientDataJSON = cd
	r.AssertionResponse.Signature = sig
	return r, nil
}

// describe returns a go-webauthn error's details (its Error() is only the
// generic type).
func describe(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return pe.Details
	}
	return err.Error()
}
