package records

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
)

// FormatVersion is the envelope format written by this code. It is stored
// with every record and bound into both associated data strings, so a
// future format can never be confused with this one.
const FormatVersion = 1

// KeySize is the size of data keys and key-encryption keys: AES-256.
const KeySize = 32

// Domain-separation labels of the two associated-data strings.
const (
	contentLabel = "healthgw/records/content"
	wrapLabel    = "healthgw/records/dek-wrap"
)

// orgPattern is the organisation ID syntax (as auth.Org.Validate). It is
// checked before an org ID is used in a path or variable name.
var orgPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// KEK is one version of an organisation's key-encryption key. Its key
// material is held in an AES-GCM instance and never exported; String and
// the zero value are safe to log.
type KEK struct {
	org     string
	version int
	aead    cipher.AEAD
}

// NewKEK returns version (>= 1) of org's key-encryption key from a 32-byte
// key. Providers call it; the key bytes can be cleared afterwards.
func NewKEK(org string, version int, key []byte) (KEK, error) {
	if !orgPattern.MatchString(org) {
		return KEK{}, fmt.Errorf("%w: bad organisation ID", ErrBadKey)
	}
	if version < 1 {
		return KEK{}, fmt.Errorf("%w: version %d", ErrBadKey, version)
	}
	if len(key) != KeySize {
		return KEK{}, fmt.Errorf("%w: %s v%d is %d bytes, want %d", ErrBadKey, org, version, len(key), KeySize)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return KEK{}, err
	}
	return KEK{org: org, version: version, aead: aead}, nil
}

// Org returns the organisation the key belongs to.
func (k KEK) Org() string { return k.org }

// Version returns the key's version.
func (k KEK) Version() int { return k.version }

// String names the key without revealing it.
func (k KEK) String() string { return fmt.Sprintf("kek(%s v%d)", k.org, k.version) }

// newAEAD returns AES-256-GCM with random 96-bit nonces that Seal prepends
// to the ciphertext (crypto/cipher.NewGCMWithRandomNonce).
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// binding is what a record's content ciphertext is bound to.
type binding struct {
	format       int
	id           string
	holder       string
	patient      string // pseudonym
	category     string
	contentType  string
	resourceType string
}

// contentAD encodes b unambiguously: a label, the format, then each field
// with a 32-bit length prefix.
func contentAD(b binding) []byte {
	ad := make([]byte, 0, 128)
	ad = appendField(ad, contentLabel)
	ad = binary.BigEndian.AppendUint32(ad, uint32(b.format))
	for _, f := range []string{b.id, b.holder, b.patient, b.category, b.contentType, b.resourceType} {
		ad = appendField(ad, f)
	}
	return ad
}

// wrapAD binds a wrapped data key to its format, organisation, KEK version
// and record.
func wrapAD(format int, org string, version int, id string) []byte {
	ad := make([]byte, 0, 96)
	ad = appendField(ad, wrapLabel)
	ad = binary.BigEndian.AppendUint32(ad, uint32(format))
	ad = appendField(ad, org)
	ad = binary.BigEndian.AppendUint32(ad, uint32(version))
	ad = appendField(ad, id)
	return ad
}

func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// sealed is the output of seal: what is stored.
type sealed struct {
	ciphertext []byte // nonce || AES-256-GCM(content) || tag
	wrappedKey []byte // nonce || AES-256-GCM(DEK) || tag
	keyVersion int
}

// seal encrypts plaintext under a fresh data key bound to b, and wraps the
// data key under kek bound to b.id.
func seal(kek KEK, b binding, plaintext []byte) (sealed, error) {
	if kek.aead == nil {
		return sealed{}, fmt.Errorf("%w: zero KEK", ErrNoKey)
	}
	if kek.org != b.holder {
		return sealed{}, fmt.Errorf("%w: %s cannot wrap a key of %s", ErrBadKey, kek, b.holder)
	}
	dek := make([]byte, KeySize)
	defer clear(dek)
	if _, err := rand.Read(dek); err != nil {
		return sealed{}, fmt.Errorf("data key: %w", err)
	}
	aead, err := newAEAD(dek)
	if err != nil {
		return sealed{}, err
	}
	ct := aead.Seal(nil, nil, plaintext, contentAD(b))
	wrapped := kek.aead.Seal(nil, nil, dek, wrapAD(b.format, kek.org, kek.version, b.id))
	return sealed{ciphertext: ct, wrappedKey: wrapped, keyVersion: kek.version}, nil
}

// open unwraps the data key with kek and decrypts ciphertext bound to b.
// Any authentication failure is ErrDecrypt, with no plaintext.
func open(kek KEK, b binding, wrappedKey, ciphertext []byte) ([]byte, error) {
	dek, err := unwrap(kek, b.format, b.id, wrappedKey)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	aead, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nil, ciphertext, contentAD(b))
	if err != nil {
		return nil, fmt.Errorf("%w: content fails authentication", ErrDecrypt)
	}
	return pt, nil
}

// unwrap recovers a data key wrapped under kek for record id.
func unwrap(kek KEK, format int, id string, wrapped []byte) ([]byte, error) {
	if kek.aead == nil {
		return nil, fmt.Errorf("%w: zero KEK", ErrNoKey)
	}
	dek, err := kek.aead.Open(nil, nil, wrapped, wrapAD(format, kek.org, kek.version, id))
	if err != nil {
		return nil, fmt.Errorf("%w: data key does not unwrap under %s", ErrDecrypt, kek)
	}
	if len(dek) != KeySize {
		clear(dek)
		return nil, fmt.Errorf("%w: data key has the wrong size", ErrDecrypt)
	}
	return dek, nil
}

// rewrap moves a data key from one KEK version to another of the same
// organisation without touching the content.
func rewrap(from, to KEK, format int, id string, wrapped []byte) ([]byte, error) {
	if from.org != to.org {
		return nil, errors.New("rewrap across organisations")
	}
	dek, err := unwrap(from, format, id, wrapped)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	return to.aead.Seal(nil, nil, dek, wrapAD(format, to.org, to.version, id)), nil
}
