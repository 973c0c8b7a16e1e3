package ledger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// PseudonymKeySize is the size of the ledger secret behind pseudonyms.
const PseudonymKeySize = 32

// Pseudonymizer maps patient identifiers to keyed pseudonyms
// (HMAC-SHA-256 under the ledger secret). Every node of a consortium must
// share the secret so that the same patient has the same pseudonym
// everywhere; without the secret a pseudonym cannot be linked to a patient
// by guessing identifiers.
type Pseudonymizer struct {
	key []byte
}

// NewPseudonymizer returns a Pseudonymizer for a 32-byte secret.
func NewPseudonymizer(key []byte) (*Pseudonymizer, error) {
	if len(key) != PseudonymKeySize {
		return nil, errors.New("ledger: pseudonym key must be 32 bytes")
	}
	return &Pseudonymizer{key: append([]byte(nil), key...)}, nil
}

// Pseudonym returns the pseudonym of patient: "ps_" and 64 hex digits.
func (p *Pseudonymizer) Pseudonym(patient string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(patient))
	return "ps_" + hex.EncodeToString(m.Sum(nil))
}
