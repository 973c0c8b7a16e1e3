package ledger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Patient references (docs/design/ledger-privacy.md, "Patient
// references"). No v2 body carries a global pseudonym: a body's patient is
// a reference blinded by the statement's salt, so two entries about one
// patient carry unrelated references. Whoever can compute the patient's
// key (the gateway, for a caller who named the patient) can test an entry
// with IsAbout; nobody without the key can link two entries.

// PatientRefKey is a patient's reference key K_p. It is as secret as the
// pseudonym secret it is derived from: never log it, store it or send it.
type PatientRefKey [sha256.Size]byte

// patientKeyDomain is the HMAC message prefix of PatientKey. It ends in a
// newline, which no patient identifier holds (PatientKey refuses control
// characters), so no v1 pseudonym (HMAC of a bare patient identifier under
// the same secret) can equal a patient key.
const patientKeyDomain = "healthgw/patient-key/v2\n"

// maxPatientIDLen bounds the patient identifiers PatientKey accepts, as
// the vault does.
const maxPatientIDLen = 256

// PatientKey derives patient's reference key from the gateway's pseudonym
// secret (PseudonymKeySize bytes):
// K_p = HMAC-SHA-256(secret, "healthgw/patient-key/v2\n" ‖ patient).
func PatientKey(secret []byte, patient string) (PatientRefKey, error) {
	if len(secret) != PseudonymKeySize {
		return PatientRefKey{}, fmt.Errorf("ledger: pseudonym secret must be %d bytes", PseudonymKeySize)
	}
	if err := validPatientID(patient); err != nil {
		return PatientRefKey{}, err
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(patientKeyDomain))
	m.Write([]byte(patient))
	var k PatientRefKey
	m.Sum(k[:0])
	return k, nil
}

// patientRefPrefix starts every patient reference ("ps_" is the v1
// pseudonym's).
const patientRefPrefix = "pr_"

// ValidPatientRef reports whether s has the syntax of a patient reference.
func ValidPatientRef(s string) bool { return patientRefPattern.MatchString(s) }

func patientRefMAC(key PatientRefKey, salt Salt) []byte {
	var sum [sha256.Size]byte
	return patientRefSum(&sum, key, salt)
}

// patientRefSum computes HMAC-SHA-256(key, salt) into sum.
func patientRefSum(sum *[sha256.Size]byte, key PatientRefKey, salt Salt) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write(salt[:])
	return m.Sum(sum[:0])
}

// PatientRef returns the reference to the patient of key in the statement
// with salt: "pr_" ‖ hex(HMAC-SHA-256(K_p, salt)).
func PatientRef(key PatientRefKey, salt Salt) string {
	var sum [sha256.Size]byte
	var ref [len(patientRefPrefix) + 2*sha256.Size]byte
	copy(ref[:], patientRefPrefix)
	hex.Encode(ref[len(patientRefPrefix):], patientRefSum(&sum, key, salt))
	return string(ref[:])
}

// IsAbout reports whether ref, found in the statement with salt, refers to
// the patient of key. It compares in constant time.
func IsAbout(key PatientRefKey, salt Salt, ref string) bool {
	want := patientRefMAC(key, salt)
	if !ValidPatientRef(ref) {
		return false
	}
	got, err := hex.DecodeString(ref[len(patientRefPrefix):])
	if err != nil {
		return false
	}
	return hmac.Equal(got, want)
}

// validPatientID checks a patient identifier (or pseudonym): 1 to
// maxPatientIDLen bytes of UTF-8 without control characters.
func validPatientID(patient string) error {
	if patient == "" || len(patient) > maxPatientIDLen || !utf8.ValidString(patient) {
		return fmt.Errorf("ledger: patient identifier must be 1 to %d bytes of UTF-8", maxPatientIDLen)
	}
	for _, r := range patient {
		if unicode.IsControl(r) {
			return fmt.Errorf("ledger: patient identifier holds a control character")
		}
	}
	return nil
}
