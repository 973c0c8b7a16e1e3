package credential

import (
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// ErrSecret reports a malformed or zero holder secret.
var ErrSecret = errors.New("invalid holder secret")

// Secret is the holder's secret: a uniformly random non-zero field
// element that never leaves the patient's device. Its String method does
// not reveal it.
type Secret struct {
	e Element
}

// NewSecret draws a secret from rand (use crypto/rand.Reader): 48 bytes
// reduced modulo the field order, so the bias is below 2⁻¹²⁸.
func NewSecret(rand io.Reader) (Secret, error) {
	var buf [48]byte
	if _, err := io.ReadFull(rand, buf[:]); err != nil {
		return Secret{}, fmt.Errorf("new secret: %w", err)
	}
	var v big.Int
	v.SetBytes(buf[:]).Mod(&v, fr.Modulus())
	var s Secret
	s.e.SetBigInt(&v)
	if s.e.IsZero() {
		return Secret{}, fmt.Errorf("new secret: %w", ErrSecret)
	}
	return s, nil
}

// SecretFromElement wraps a field element as a secret.
func SecretFromElement(e Element) (Secret, error) {
	if e.IsZero() {
		return Secret{}, ErrSecret
	}
	return Secret{e: e}, nil
}

// Element returns the secret's value. Handle with care: never log it.
func (s Secret) Element() Element { return s.e }

// String redacts the secret.
func (s Secret) String() string { return "credential.Secret(redacted)" }

// Commitment returns the holder commitment H(TagHolder, secret), which the
// patient app sends to the issuer.
func (s Secret) Commitment() Element {
	return hashElements(elem(TagHolder), s.e)
}

// Nullifier returns H(TagNullifier, secret, scope): stable for one holder
// and one verifier scope, unlinkable across scopes.
func (s Secret) Nullifier(scope Element) Element {
	return hashElements(elem(TagNullifier), s.e, scope)
}
