package credential

import (
	"fmt"
	"math/big"

	tedwards "github.com/consensys/gnark-crypto/ecc/twistededwards"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/algebra/native/twistededwards"
	"github.com/consensys/gnark/std/hash/poseidon2"
	"github.com/consensys/gnark/std/math/bits"
	"github.com/consensys/gnark/std/math/cmp"
	"github.com/consensys/gnark/std/selector"
	"github.com/consensys/gnark/std/signature/eddsa"
)

// Range-check widths. Every compared value is range-checked before a
// comparison: attributes, cutoffs and bounds are below 2⁶⁴, the proof date
// and the expiry below 2³² (MaxDay < 2²²).
const (
	ValueBits = 64
	DayBits   = 32
)

// Gadget is the private part of a credential inside a circuit.
type Gadget struct {
	Secret     frontend.Variable
	Attributes [NumAttributes]frontend.Variable
	Expiry     frontend.Variable
	Signature  eddsa.Signature
}

// Public holds the public inputs common to every statement. Embed it in a
// statement's Circuit with the tag `gnark:",public"`.
type Public struct {
	Issuer    eddsa.PublicKey   // issuer key (affine X, Y)
	Schema    frontend.Variable // schema ID
	Attribute frontend.Variable // index of the attribute the predicate is about
	Date      frontend.Variable // Day on which the proof is made; credential must not be expired
	Scope     frontend.Variable // ScopeElement of the verifier scope
	Nonce     frontend.Variable // NonceElement of the verifier's challenge nonce
	Nullifier frontend.Variable // H(TagNullifier, secret, Scope)
}

// Verify adds the constraints every statement shares and returns the
// selected attribute, range-checked to ValueBits bits and different from
// Absent:
//
//   - holder = H(TagHolder, Secret) (knowledge of the holder secret);
//   - m = H(TagCredential, holder, Attributes…, Schema·2³² + Expiry);
//   - Signature is a valid EdDSA signature of m under Issuer (R and the
//     key are asserted on the curve; S < group order is checked by the
//     std gadget);
//   - Date ≤ Expiry, both range-checked to DayBits first;
//   - Nullifier = H(TagNullifier, Secret, Scope);
//   - Nonce ≠ 0, which puts the nonce in a constraint: Groth16 does not
//     bind a public input that no constraint uses, so without this a proof
//     would verify under any nonce;
//   - the attribute is Attributes[Attribute] (Attribute < NumAttributes).
func (g *Gadget) Verify(api frontend.API, pub *Public) (frontend.Variable, error) {
	curve, err := twistededwards.NewEdCurve(api, tedwards.BN254)
	if err != nil {
		return nil, fmt.Errorf("credential gadget: %w", err)
	}
	hash := func(xs ...frontend.Variable) (frontend.Variable, error) {
		h, err := poseidon2.New(api)
		if err != nil {
			return nil, fmt.Errorf("credential gadget: %w", err)
		}
		h.Write(xs...)
		return h.Sum(), nil
	}

	holder, err := hash(TagHolder, g.Secret)
	if err != nil {
		return nil, err
	}
	// Expiry < 2³² is range-checked below, so Schema·2³² + Expiry is an
	// injective packing (schema IDs are below 2³²; Schema is public).
	msg := []frontend.Variable{TagCredential, holder}
	msg = append(msg, g.Attributes[:]...)
	msg = append(msg, api.Add(api.Mul(pub.Schema, 1<<DayBits), g.Expiry))
	m, err := hash(msg...)
	if err != nil {
		return nil, err
	}

	curve.AssertIsOnCurve(pub.Issuer.A)
	curve.AssertIsOnCurve(g.Signature.R)
	h, err := poseidon2.New(api)
	if err != nil {
		return nil, fmt.Errorf("credential gadget: %w", err)
	}
	if err := eddsa.Verify(curve, g.Signature, m, pub.Issuer, h); err != nil {
		return nil, fmt.Errorf("credential gadget: %w", err)
	}

	RangeCheck(api, pub.Date, DayBits)
	RangeCheck(api, g.Expiry, DayBits)
	AssertLessOrEqual(api, pub.Date, g.Expiry, DayBits)

	nf, err := hash(TagNullifier, g.Secret, pub.Scope)
	if err != nil {
		return nil, err
	}
	api.AssertIsEqual(pub.Nullifier, nf)

	api.AssertIsDifferent(pub.Nonce, 0)

	attr := selector.Mux(api, pub.Attribute, g.Attributes[:]...)
	RangeCheck(api, attr, ValueBits)
	api.AssertIsDifferent(attr, new(big.Int).SetUint64(Absent))
	return attr, nil
}

// RangeCheck asserts 0 ≤ v < 2^nbBits by binary decomposition (nbBits+1
// constraints). It must precede every comparison: field comparisons wrap
// around the modulus. (std/rangecheck would be cheaper but needs a Groth16
// commitment, which makes proofs larger and the ceremony more complex.)
func RangeCheck(api frontend.API, v frontend.Variable, nbBits int) {
	bits.ToBinary(api, v, bits.WithNbDigits(nbBits))
}

// AssertLessOrEqual asserts a ≤ b for a, b already range-checked to nbBits
// with RangeCheck: then |a − b| < 2^nbBits and the bounded comparator of
// std/math/cmp is exact.
func AssertLessOrEqual(api frontend.API, a, b frontend.Variable, nbBits int) {
	bound := new(big.Int).Lsh(big.NewInt(1), uint(nbBits))
	cmp.NewBoundedComparator(api, bound, false).AssertIsLessEq(a, b)
}

// Inputs are the native values of Public.
type Inputs struct {
	Issuer    PublicKey
	Schema    uint64
	Attribute int
	Date      Day
	Scope     Element
	Nonce     Element
	Nullifier Element
}

// Assign sets p from in.
func (p *Public) Assign(in Inputs) {
	x, y := in.Issuer.XY()
	p.Issuer.A.X = BigInt(x)
	p.Issuer.A.Y = BigInt(y)
	p.Schema = new(big.Int).SetUint64(in.Schema)
	p.Attribute = in.Attribute
	p.Date = new(big.Int).SetUint64(uint64(in.Date))
	p.Scope = BigInt(in.Scope)
	p.Nonce = BigInt(in.Nonce)
	p.Nullifier = BigInt(in.Nullifier)
}

// Assign sets the private witness from the credential and the holder
// secret. It does not check them: the circuit does (use Credential.Check
// first for a clear error).
func (g *Gadget) Assign(c *Credential, secret Secret) error {
	rx, ry, s, err := c.signatureParts()
	if err != nil {
		return err
	}
	g.Secret = BigInt(secret.e)
	for i, a := range c.Attributes {
		g.Attributes[i] = new(big.Int).SetUint64(a)
	}
	g.Expiry = new(big.Int).SetUint64(uint64(c.Expiry))
	g.Signature.R.X = BigInt(rx)
	g.Signature.R.Y = BigInt(ry)
	g.Signature.S = new(big.Int).SetBytes(s)
	return nil
}
