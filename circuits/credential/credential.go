package credential

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	"github.com/consensys/gnark-crypto/ecc/bn254/twistededwards/eddsa"
)

// Errors of issuance and native checks.
var (
	ErrSignature = errors.New("credential signature invalid")
	ErrExpired   = errors.New("credential expired")
	ErrHolder    = errors.New("holder secret does not match the credential")
)

// Credential is an issued credential, held by the patient app.
type Credential struct {
	Issuer     PublicKey
	Schema     *Schema
	Holder     Element // H(TagHolder, secret)
	Attributes Attributes
	Expiry     Day // last day on which the credential is valid
	Signature  []byte
}

// Words packs the attributes, schema and expiry into NumWords field
// elements of 192 bits, three 64-bit fields each, least significant first:
//
//	W₀ = a[0] + a[1]·2⁶⁴ + a[2]·2¹²⁸
//	W₁ = a[3] + a[4]·2⁶⁴ + a[5]·2¹²⁸
//	W₂ = a[6] + a[7]·2⁶⁴ + (expiry + schema·2³²)·2¹²⁸
//
// Attributes are below 2⁶⁴ and schema IDs and days below 2³², so the
// packing is injective, and in-circuit a 192-bit decomposition of a word
// (unique, as 192 bits are below the field size) recovers exactly these
// fields.
func Words(schema uint64, attrs Attributes, expiry Day) [NumWords]Element {
	var ws [NumWords]Element
	fields := append(attrs[:], schema<<DayBits|uint64(expiry))
	for i := range ws {
		w := new(big.Int)
		for k := perWord - 1; k >= 0; k-- {
			w.Lsh(w, ValueBits)
			w.Or(w, new(big.Int).SetUint64(fields[i*perWord+k]))
		}
		ws[i].SetBigInt(w)
	}
	return ws
}

// Message returns the signed commitment
// H(TagCredential, holder, W₀, W₁, W₂) of the packed words (Words).
func Message(holder Element, schema uint64, attrs Attributes, expiry Day) Element {
	ws := Words(schema, attrs, expiry)
	return hashElements(elem(TagCredential), holder, ws[0], ws[1], ws[2])
}

// Words returns the packed words of the signed commitment.
func (c *Credential) Words() [NumWords]Element {
	return Words(c.Schema.ID, c.Attributes, c.Expiry)
}

// Message returns the commitment the issuer signed.
func (c *Credential) Message() Element {
	return Message(c.Holder, c.Schema.ID, c.Attributes, c.Expiry)
}

// Issue signs a credential for the holder commitment (from the patient
// app) over attrs, valid through expiry. holder must be non-zero; attribute
// values are any uint64 (Absent for "not asserted").
func Issue(key *IssuerKey, holder Element, schema *Schema, attrs Attributes, expiry Day) (*Credential, error) {
	if key == nil || schema == nil {
		return nil, errors.New("issue credential: nil key or schema")
	}
	if holder.IsZero() {
		return nil, fmt.Errorf("issue credential: %w: zero holder commitment", ErrElement)
	}
	if expiry > MaxDay {
		return nil, fmt.Errorf("issue credential: expiry: %w", ErrDate)
	}
	if schema.ID >= 1<<DayBits {
		return nil, fmt.Errorf("issue credential: %w: schema ID %d too large", ErrUnknownSchema, schema.ID)
	}
	c := &Credential{
		Issuer:     key.Public(),
		Schema:     schema,
		Holder:     holder,
		Attributes: attrs,
		Expiry:     expiry,
	}
	m := c.Message()
	b := m.Bytes()
	sig, err := key.priv.Sign(b[:], poseidon2.NewMerkleDamgardHasher())
	if err != nil {
		return nil, fmt.Errorf("issue credential: sign: %w", err)
	}
	c.Signature = sig
	return c, nil
}

// Verify checks the issuer's signature natively.
func (c *Credential) Verify() error {
	if c.Schema == nil || c.Issuer.IsZero() {
		return fmt.Errorf("%w: missing issuer or schema", ErrSignature)
	}
	m := c.Message()
	b := m.Bytes()
	ok, err := c.Issuer.eddsa().Verify(c.Signature, b[:], poseidon2.NewMerkleDamgardHasher())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	if !ok {
		return ErrSignature
	}
	return nil
}

// Check verifies natively what every statement proves about the credential
// itself: the signature, that it has not expired on day date, and that
// secret is the holder's.
func (c *Credential) Check(secret Secret, date Day) error {
	if err := c.Verify(); err != nil {
		return err
	}
	if date > c.Expiry {
		return fmt.Errorf("%w: valid through %s, checked on %s", ErrExpired, c.Expiry, date)
	}
	h := secret.Commitment()
	if !h.Equal(&c.Holder) {
		return ErrHolder
	}
	return nil
}

// signatureParts splits the signature into R (affine) and S for the
// circuit witness.
func (c *Credential) signatureParts() (rx, ry Element, s []byte, err error) {
	var sig eddsa.Signature
	if _, err := sig.SetBytes(c.Signature); err != nil {
		return rx, ry, nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return sig.R.X, sig.R.Y, sig.S[:], nil
}
