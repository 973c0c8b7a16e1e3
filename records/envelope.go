package records

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Envelope formats. The format is stored with every record and bound into
// both associated-data strings, so one format can never be read as
// another. Both are read; the vault writes FormatVersion for records up to
// StreamThreshold bytes and FormatStream above.
const (
	// FormatVersion is one AES-256-GCM message: nonce || ciphertext || tag.
	FormatVersion = 1
	// FormatStream is the STREAM construction over AES-256-GCM (see
	// stream.go): the content in chunks of StreamChunkSize bytes, each
	// sealed with a nonce made of its position and a final-chunk flag, so
	// that large records are sealed and opened a chunk at a time and a
	// truncated, reordered or extended stream is refused.
	FormatStream = 2
)

// StreamThreshold is the content size above which the vault writes
// FormatStream.
const StreamThreshold = 1 << 20

// supportedFormat reports whether format is one this code reads and
// writes.
func supportedFormat(format int) bool { return format == FormatVersion || format == FormatStream }

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
	ciphertext []byte // the content envelope (format 1 or 2, see sealContent)
	wrappedKey []byte // nonce || AES-256-GCM(DEK) || tag
	keyVersion int
}

// seal encrypts plaintext under a fresh data key bound to b (in format
// b.format), and wraps the data key under kek bound to b.id. The
// ciphertext is appended to dst (nil: a fresh slice of the exact size).
func seal(kek KEK, b binding, plaintext []byte) (sealed, error) {
	return sealAppend(nil, kek, b, plaintext)
}

// sealAppend is seal appending the ciphertext to dst, which is not
// reallocated when it has the capacity (SealedSize bytes beyond its
// length): the vault seals into a pooled buffer.
func sealAppend(dst []byte, kek KEK, b binding, plaintext []byte) (sealed, error) {
	gcm, wrapped, err := newDataKey(kek, b)
	if err != nil {
		return sealed{}, err
	}
	ct, err := sealContent(dst, gcm, b, plaintext)
	if err != nil {
		return sealed{}, err
	}
	return sealed{ciphertext: ct, wrappedKey: wrapped, keyVersion: kek.version}, nil
}

// newDataKey makes a fresh data key for the record b binds, and returns
// its AES-256-GCM and the key wrapped under kek.
func newDataKey(kek KEK, b binding) (cipher.AEAD, []byte, error) {
	if kek.aead == nil {
		return nil, nil, fmt.Errorf("%w: zero KEK", ErrNoKey)
	}
	if kek.org != b.holder {
		return nil, nil, fmt.Errorf("%w: %s cannot wrap a key of %s", ErrBadKey, kek, b.holder)
	}
	if !supportedFormat(b.format) {
		return nil, nil, fmt.Errorf("%w: unsupported format %d", ErrBadKey, b.format)
	}
	var dek [KeySize]byte
	defer clear(dek[:])
	if _, err := rand.Read(dek[:]); err != nil {
		return nil, nil, fmt.Errorf("data key: %w", err)
	}
	gcm, err := newContentGCM(dek[:])
	if err != nil {
		return nil, nil, err
	}
	wrapped := kek.aead.Seal(nil, nil, dek[:], wrapAD(b.format, kek.org, kek.version, b.id))
	return gcm, wrapped, nil
}

// open unwraps the data key with kek and decrypts ciphertext bound to b
// into a fresh slice. Any authentication failure is ErrDecrypt, with no
// plaintext.
func open(kek KEK, b binding, wrappedKey, ciphertext []byte) ([]byte, error) {
	return openAppend(nil, kek, b, wrappedKey, ciphertext)
}

// openAppend is open appending the plaintext to dst. dst must not overlap
// ciphertext (openInPlace decrypts in place).
func openAppend(dst []byte, kek KEK, b binding, wrappedKey, ciphertext []byte) ([]byte, error) {
	gcm, err := contentKey(kek, b, wrappedKey)
	if err != nil {
		return nil, err
	}
	n, err := plaintextSize(b.format, len(ciphertext))
	if err != nil {
		return nil, err
	}
	ret := slices.Grow(dst, n)[:len(dst)+n]
	out := ret[len(dst):]
	if err := openContent(out, gcm, b, ciphertext); err != nil {
		clear(out)
		return nil, err
	}
	return ret, nil
}

// openInPlace decrypts ciphertext over itself and returns the plaintext,
// within ciphertext's storage: the vault reads a record's freshly
// loaded ciphertext this way, without a second buffer of its size. On
// error ciphertext's contents are undefined (cleared of any plaintext).
func openInPlace(kek KEK, b binding, wrappedKey, ciphertext []byte) ([]byte, error) {
	gcm, err := contentKey(kek, b, wrappedKey)
	if err != nil {
		return nil, err
	}
	pt, err := openContentInPlace(gcm, b, ciphertext)
	if err != nil {
		clear(ciphertext)
		return nil, err
	}
	return pt[:len(pt):len(pt)], nil
}

// contentKey unwraps a record's data key and returns its AES-256-GCM.
func contentKey(kek KEK, b binding, wrappedKey []byte) (cipher.AEAD, error) {
	if !supportedFormat(b.format) {
		return nil, fmt.Errorf("%w: unsupported format %d", ErrDecrypt, b.format)
	}
	dek, err := unwrap(kek, b.format, b.id, wrappedKey)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	return newContentGCM(dek)
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
