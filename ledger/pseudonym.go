package ledger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"sync"
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
	// refMACs holds HMAC-SHA-256 states keyed with key, reset after
	// each use: RefKey computes one for every patient entry, and a keyed
	// state reset costs less than a new one.
	refMACs sync.Pool
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

// readerDomain separates reader pseudonyms from every other keyed hash
// (a newline cannot occur in an org ID or a pseudonym).
const readerDomain = "healthgw/reader-pseudonym/v1\n"

// ForReader returns the pseudonym under which reader (an org ID) is shown
// the patient of pseudonym: "rp_" and 64 hex digits, HMAC-SHA-256 under
// the ledger secret of the reader and the pseudonym. A reader sees the
// same value for the same patient every time, but two readers see
// unrelated values, so the values they are handed do not link the
// patient across them.
func (p *Pseudonymizer) ForReader(reader, pseudonym string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(readerDomain))
	m.Write([]byte(reader))
	m.Write([]byte{'\n'})
	m.Write([]byte(pseudonym))
	return "rp_" + hex.EncodeToString(m.Sum(nil))
}

// ValidPseudonym reports whether s has a pseudonym's form.
func ValidPseudonym(s string) bool { return pseudonymPattern.MatchString(s) }

// RefKey returns the key of the per-entry patient references of the
// patient of pseudonym (PatientKey over the pseudonym): whoever holds the
// ledger secret and the pseudonym can test an entry's reference; nobody
// else can link two entries.
func (p *Pseudonymizer) RefKey(pseudonym string) (PatientRefKey, error) {
	if err := validPatientID(pseudonym); err != nil {
		return PatientRefKey{}, err
	}
	m, _ := p.refMACs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, p.key)
	}
	// PatientKey(p.key, pseudonym), on a pooled state.
	m.Write([]byte(patientKeyDomain))
	m.Write([]byte(pseudonym))
	var k PatientRefKey
	m.Sum(k[:0])
	m.Reset()
	p.refMACs.Put(m)
	return k, nil
}
