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
// and the expiry below 2³² (MaxDay < 2²²). Schema IDs are below 2³² too.
const (
	ValueBits = 64
	DayBits   = 32
)

// The packed layout of the signed message: NumWords words of wordBits
// bits, perWord 64-bit fields each (see Words).
const (
	NumWords = 3
	perWord  = 3
	wordBits = perWord * ValueBits
)

// Gadget is the private part of a credential inside a circuit: the holder
// secret, the three packed attribute words of the signed message (see
// Words) and the issuer's signature.
type Gadget struct {
	Secret    frontend.Variable
	Words     [NumWords]frontend.Variable
	Signature eddsa.Signature
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
// selected attribute, below 2⁶⁴ and different from Absent:
//
//   - holder = H(TagHolder, Secret) (knowledge of the holder secret);
//   - m = H(TagCredential, holder, W₀, W₁, W₂) (the packed words, see
//     Words);
//   - Signature is a valid EdDSA signature of m under Issuer (R and the
//     key are asserted on the curve; std/signature/eddsa.Verify);
//   - W₂ is decomposed into 192 bits, which range-checks its fields:
//     Expiry < 2³² and the schema field < 2³², and the schema field equals
//     the public Schema — so Schema is a canonical 32-bit value and is bound
//     in a constraint;
//   - Date ≤ Expiry, Date range-checked to DayBits first;
//   - Nullifier = H(TagNullifier, Secret, Scope);
//   - Nonce ≠ 0, which puts the nonce in a constraint: Groth16 does not
//     bind a public input that no constraint uses, so without this a proof
//     would verify under any nonce;
//   - the attribute is 64-bit field Attribute mod 3 of the word
//     Attribute / 3, with Attribute < NumAttributes: the selected word is
//     decomposed into 192 bits, so its fields are exactly the signed ones
//     (a decomposition below the field size is unique).
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
	msg := []frontend.Variable{TagCredential, holder}
	msg = append(msg, g.Words[:]...)
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

	// W₂ = a₆ + a₇·2⁶⁴ + expiry·2¹²⁸ + schema·2¹⁶⁰.
	last := bits.ToBinary(api, g.Words[NumWords-1], bits.WithNbDigits(wordBits))
	expiry := bits.FromBinary(api, last[2*ValueBits:2*ValueBits+DayBits], bits.WithUnconstrainedInputs())
	schema := bits.FromBinary(api, last[2*ValueBits+DayBits:], bits.WithUnconstrainedInputs())
	api.AssertIsEqual(pub.Schema, schema)

	RangeCheck(api, pub.Date, DayBits)
	AssertLessOrEqual(api, pub.Date, expiry, DayBits)

	nf, err := hash(TagNullifier, g.Secret, pub.Scope)
	if err != nil {
		return nil, err
	}
	api.AssertIsEqual(pub.Nullifier, nf)

	api.AssertIsDifferent(pub.Nonce, 0)

	// Attribute i is field i mod 3 of word i / 3. selector.Mux asserts
	// Attribute < NumAttributes.
	var words, fields [NumAttributes]frontend.Variable
	for i := range words {
		words[i] = g.Words[i/perWord]
	}
	word := selector.Mux(api, pub.Attribute, words[:]...)
	wb := bits.ToBinary(api, word, bits.WithNbDigits(wordBits))
	for i := range fields {
		k := i % perWord
		fields[i] = bits.FromBinary(api, wb[k*ValueBits:(k+1)*ValueBits], bits.WithUnconstrainedInputs())
	}
	attr := selector.Mux(api, pub.Attribute, fields[:]...)
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
	for i, w := range c.Words() {
		g.Words[i] = BigInt(w)
	}
	g.Signature.R.X = BigInt(rx)
	g.Signature.R.Y = BigInt(ry)
	g.Signature.S = new(big.Int).SetBytes(s)
	return nil
}
