package auth

import (
	"errors"
	"fmt"
	"time"
)

// DevIdPIssuer is the iss of tokens minted by the development patient
// IdP.
const DevIdPIssuer = "urn:healthgw:dev-idp"

// DefaultPatientTokenTTL is the lifetime of development patient tokens.
const DefaultPatientTokenTTL = time.Hour

// DevIdP is a local development patient identity provider: an ES256 key
// under the data directory that mints patient tokens. Production
// configurations leave it out.
type DevIdP struct {
	key *SigningKey
}

// LoadOrCreateDevIdP returns the development IdP whose key is stored at
// path (use DevIdPKeyPath(dataDir)), creating the key on first use.
func LoadOrCreateDevIdP(path string) (*DevIdP, error) {
	k, err := loadOrCreateKey(path, SigningAlg)
	if err != nil {
		return nil, fmt.Errorf("dev IdP key: %w", err)
	}
	sk, err := NewSigningKey(k)
	if err != nil {
		return nil, fmt.Errorf("dev IdP key: %w", err)
	}
	return &DevIdP{key: sk}, nil
}

// PatientIdP returns the IdP configuration that accepts this IdP's tokens
// for audience (the gateway's base URL).
func (d *DevIdP) PatientIdP(audience string) PatientIdP {
	set := &KeySet{sig: map[string]verifyKey{d.key.verify.kid: d.key.verify}}
	return PatientIdP{Issuer: DevIdPIssuer, Audience: audience, Keys: set}
}

// Mint returns a patient token: iss DevIdPIssuer, sub patientID, aud
// audience, issued at now and valid for ttl (default
// DefaultPatientTokenTTL).
func (d *DevIdP) Mint(patientID, audience string, now time.Time, ttl time.Duration) (string, error) {
	if !validPatientID(patientID) {
		return "", errors.New("patient ID must be 1-255 printable characters without spaces")
	}
	if ttl <= 0 {
		ttl = DefaultPatientTokenTTL
	}
	return d.key.sign(typJWT, map[string]any{
		"iss": DevIdPIssuer,
		"sub": patientID,
		"aud": audience,
		"jti": newJTI(),
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	})
}
