package credential

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/consensys/gnark-crypto/ecc/bn254/twistededwards"
	"github.com/consensys/gnark-crypto/ecc/bn254/twistededwards/eddsa"
)

// pemIssuerKey is the PEM block type of an issuer private key file.
const pemIssuerKey = "HEALTHGW ISSUER KEY"

// ErrIssuerKey reports a malformed issuer key.
var ErrIssuerKey = errors.New("invalid issuer key")

// IssuerKey is a hospital's credential-signing key: EdDSA on the BN254
// twisted Edwards curve (gnark-crypto).
type IssuerKey struct {
	priv *eddsa.PrivateKey
}

// PublicKey is an issuer's public key. The zero value is invalid.
type PublicKey struct {
	a twistededwards.PointAffine
}

// GenerateIssuerKey makes a new issuer key from 32 bytes of rand (use
// crypto/rand.Reader).
func GenerateIssuerKey(rand io.Reader) (*IssuerKey, error) {
	priv, err := eddsa.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generate issuer key: %w", err)
	}
	return &IssuerKey{priv: priv}, nil
}

// Public returns the public key.
func (k *IssuerKey) Public() PublicKey {
	return PublicKey{a: k.priv.PublicKey.A}
}

// MarshalPEM encodes the private key as a PEM block (the key file format).
func (k *IssuerKey) MarshalPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemIssuerKey, Bytes: k.priv.Bytes()})
}

// ParseIssuerKey decodes a PEM issuer key file.
func ParseIssuerKey(data []byte) (*IssuerKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != pemIssuerKey {
		return nil, fmt.Errorf("%w: no %q PEM block", ErrIssuerKey, pemIssuerKey)
	}
	var priv eddsa.PrivateKey
	n, err := priv.SetBytes(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIssuerKey, err)
	}
	if n != len(b.Bytes) {
		return nil, fmt.Errorf("%w: trailing bytes", ErrIssuerKey)
	}
	return &IssuerKey{priv: &priv}, nil
}

// ParsePublicKey parses the hex form of a public key (the compressed point,
// as in the ledger's issuer.registered entry). The point must be on the
// curve, in the prime-order subgroup and not the identity.
func ParsePublicKey(s string) (PublicKey, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %w", ErrIssuerKey, err)
	}
	return PublicKeyFromBytes(b)
}

// PublicKeyFromBytes parses the 32-byte compressed form of a public key.
func PublicKeyFromBytes(b []byte) (PublicKey, error) {
	var pk eddsa.PublicKey
	if len(b) != len(pk.Bytes()) {
		return PublicKey{}, fmt.Errorf("%w: want %d bytes, got %d", ErrIssuerKey, len(pk.Bytes()), len(b))
	}
	if _, err := pk.SetBytes(b); err != nil {
		return PublicKey{}, fmt.Errorf("%w: %w", ErrIssuerKey, err)
	}
	return PublicKey{a: pk.A}, nil
}

// Bytes returns the 32-byte compressed form.
func (p PublicKey) Bytes() []byte {
	b := p.a.Bytes()
	return b[:]
}

// String returns the hex compressed form (ledger issuer.registered
// public_key).
func (p PublicKey) String() string { return hex.EncodeToString(p.Bytes()) }

// ID returns a short key identifier: the first 8 bytes of the SHA-256 of
// the compressed key, in hex.
func (p PublicKey) ID() string {
	h := sha256.Sum256(p.Bytes())
	return hex.EncodeToString(h[:8])
}

// Equal reports whether p and q are the same key.
func (p PublicKey) Equal(q PublicKey) bool { return p.a.Equal(&q.a) }

// IsZero reports whether p is the zero value (not a key).
func (p PublicKey) IsZero() bool { return p.a.X.IsZero() && p.a.Y.IsZero() }

// XY returns the affine coordinates of the key, the public inputs of every
// statement.
func (p PublicKey) XY() (x, y Element) { return p.a.X, p.a.Y }

func (p PublicKey) eddsa() *eddsa.PublicKey { return &eddsa.PublicKey{A: p.a} }
