// Package passkeytest is a software WebAuthn authenticator for tests: an
// ECDSA P-256 credential that produces assertions as a browser and a
// platform authenticator would (authenticator data, client data JSON, and
// an ES256 signature over both), for go-webauthn to verify.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
)

// Authenticator is one software passkey for relying party RPID at Origin.
type Authenticator struct {
	RPID, Origin string
	// Flags are the authenticator data flags of assertions (user present
	// and verified by default).
	Flags byte
	key   *ecdsa.PrivateKey
	id    []byte
	count uint32
}

// New returns a fresh authenticator with a random credential ID.
func New(rpID, origin string) (*Authenticator, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	return &Authenticator{RPID: rpID, Origin: origin, Flags: 0x05, key: key, id: id}, nil
}

// CredentialID is the credential's ID, unpadded base64url.
func (a *Authenticator) CredentialID() string { return base64.RawURLEncoding.EncodeToString(a.id) }

// COSEKey is the credential's public key as a COSE key (EC2, ES256),
// unpadded base64url.
func (a *Authenticator) COSEKey() (string, error) {
	pub, err := a.key.PublicKey.Bytes() // uncompressed point: 0x04 || X || Y
	if err != nil {
		return "", err
	}
	k := webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{
			KeyType:   int64(webauthncose.EllipticKey),
			Algorithm: int64(webauthncose.AlgES256),
		},
		Curve:  int64(webauthncose.P256),
		XCoord: pub[1:33],
		YCoord: pub[33:],
	}
	b, err := webauthncbor.Marshal(k)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Passkey returns the registration of the credential for patient.
func (a *Authenticator) Passkey(patient string) (consent.Passkey, error) {
	k, err := a.COSEKey()
	if err != nil {
		return consent.Passkey{}, err
	}
	return consent.Passkey{Patient: patient, CredentialID: a.CredentialID(), PublicKey: k, RPID: a.RPID, Origin: a.Origin}, nil
}

// Assert returns an assertion whose challenge is challenge, as a ledger
// attestation.
func (a *Authenticator) Assert(challenge []byte) (ledger.Attestation, error) {
	cd, err := json.Marshal(struct {
		Type        string `json:"type"`
		Challenge   string `json:"challenge"`
		Origin      string `json:"origin"`
		CrossOrigin bool   `json:"crossOrigin"`
	}{"webauthn.get", base64.RawURLEncoding.EncodeToString(challenge), a.Origin, false})
	if err != nil {
		return ledger.Attestation{}, err
	}
	a.count++
	rp := sha256.Sum256([]byte(a.RPID))
	ad := append(rp[:], a.Flags)
	ad = binary.BigEndian.AppendUint32(ad, a.count)
	cdHash := sha256.Sum256(cd)
	msg := sha256.Sum256(append(append([]byte(nil), ad...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, msg[:])
	if err != nil {
		return ledger.Attestation{}, fmt.Errorf("sign: %w", err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return ledger.Attestation{Kind: ledger.AttestationWebAuthn, CredentialID: a.CredentialID(),
		AuthenticatorData: enc(ad), ClientDataJSON: enc(cd), Signature: enc(sig)}, nil
}

// AssertEntry returns an assertion over a prepared entry's commitment.
func (a *Authenticator) AssertEntry(commitment ledger.Digest) (ledger.Attestation, error) {
	return a.Assert(commitment[:])
}

// Impostor returns an authenticator with a fresh key that claims a's
// credential ID, RP ID and origin: its assertions must not verify
// against a's registered key.
func (a *Authenticator) Impostor() (*Authenticator, error) {
	b, err := New(a.RPID, a.Origin)
	if err != nil {
		return nil, err
	}
	b.id = append([]byte(nil), a.id...)
	return b, nil
}
