package credential

import (
	"math/big"

	edbn254 "github.com/consensys/gnark-crypto/ecc/bn254/twistededwards"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/algebra/native/twistededwards"
	"github.com/consensys/gnark/std/hash"
	"github.com/consensys/gnark/std/math/bits"
	"github.com/consensys/gnark/std/signature/eddsa"
)

// baseWindow is the window width, in bits, of the fixed-base scalar
// multiplication [S]B.
const baseWindow = 3

// verifySignature asserts that sig is a valid EdDSA signature of msg under
// pub, with the same verification equation as gnark's
// std/signature/eddsa.Verify (and gnark-crypto's native Verify):
//
//	[8]([S]B) = [8](R + [h]A),  h = H(R.X, R.Y, A.X, A.Y, msg),  0 ≤ S < ℓ.
//
// It is std's gadget with the scalar multiplications rearranged, because
// std computes [S]B + [h](−A) with one double-and-add over both 254-bit
// scalars (a doubling, two 4-way lookups and an addition per bit) and
// checks S < ℓ with a separate full-width comparison (cmp.IsLess), which
// decomposes S a second time. Here:
//
//   - S is decomposed once into ⌈log₂ ℓ⌉ = 251 bits, and S < ℓ is the
//     decomposition of S + (2²⁵¹ − ℓ) into 251 bits: with S < 2²⁵¹ the sum
//     does not wrap the field (2²⁵¹ + 2²⁵¹ − ℓ < p), so it fits 251 bits iff
//     S < ℓ;
//   - [S]B uses the fixed generator B: the multiples [v·8ʲ]B are constants,
//     so each 3-bit window costs a constant lookup (3 constraints) and one
//     addition, with no doubling;
//   - [h]A is a left-to-right double-and-add over 2-bit windows with the
//     table {O, A, 2A, 3A};
//   - h is decomposed with api.ToBinary, which enforces the canonical
//     (reduced) representation, as std does.
//
// The twisted Edwards addition law of this curve (a = −1 a square, d a
// non-square) is complete, so the identity needs no special case. A and R
// must be asserted on the curve by the caller (Verify does).
func verifySignature(api frontend.API, curve twistededwards.Curve, sig eddsa.Signature, msg frontend.Variable, pub eddsa.PublicKey, h hash.FieldHasher) {
	h.Write(sig.R.X, sig.R.Y, pub.A.X, pub.A.Y, msg)
	hRAM := h.Sum()

	sB := fixedBaseMul(api, curve, reducedScalarBits(api, sig.S, curve.Params().Order))
	hA := varBaseMul(api, curve, pub.A, api.ToBinary(hRAM))

	// [8]([S]B − [h]A − R) must be the identity (0, 1).
	q := curve.Add(sB, curve.Neg(hA))
	q = curve.Add(q, curve.Neg(sig.R))
	q = curve.Double(curve.Double(curve.Double(q)))
	api.AssertIsEqual(q.X, 0)
	api.AssertIsEqual(q.Y, 1)
}

// reducedScalarBits asserts 0 ≤ s < order and returns the little-endian
// bits of s (order.BitLen() of them).
func reducedScalarBits(api frontend.API, s frontend.Variable, order *big.Int) []frontend.Variable {
	n := order.BitLen() // 251 for this curve
	sBits := bits.ToBinary(api, s, bits.WithNbDigits(n))
	shift := new(big.Int).Lsh(big.NewInt(1), uint(n))
	shift.Sub(shift, order)
	bits.ToBinary(api, api.Add(s, shift), bits.WithNbDigits(n))
	return sBits
}

// fixedBaseMul returns [s]B for the curve's generator B and the
// little-endian bits of s.
func fixedBaseMul(api frontend.API, curve twistededwards.Curve, sBits []frontend.Variable) twistededwards.Point {
	tables := baseTables(len(sBits))
	var acc twistededwards.Point
	for j, t := range tables {
		w := make([]frontend.Variable, baseWindow)
		for i := range w {
			if k := j*baseWindow + i; k < len(sBits) {
				w[i] = sBits[k]
			} else {
				w[i] = 0
			}
		}
		p := lookupConst(api, t, w)
		if j == 0 {
			acc = p
			continue
		}
		acc = curve.Add(acc, p)
	}
	return acc
}

// lookupConst returns t[w₀ + 2w₁ + 4w₂] for bits w and a table of 8
// constant points: the two halves are multilinear in (w₀, w₁) — linear
// given the product w₀w₁ — and w₂ selects between them.
func lookupConst(api frontend.API, t [1 << baseWindow][2]*big.Int, w []frontend.Variable) twistededwards.Point {
	w01 := api.Mul(w[0], w[1])
	coord := func(c int) frontend.Variable {
		half := func(o int) frontend.Variable {
			v0, v1, v2, v3 := t[o][c], t[o+1][c], t[o+2][c], t[o+3][c]
			// v0 + w₀(v1−v0) + w₁(v2−v0) + w₀w₁(v3−v2−v1+v0)
			d1 := new(big.Int).Sub(v1, v0)
			d2 := new(big.Int).Sub(v2, v0)
			d3 := new(big.Int).Sub(v3, v2)
			d3.Sub(d3, v1).Add(d3, v0)
			return api.Add(v0, api.Mul(w[0], d1), api.Mul(w[1], d2), api.Mul(w01, d3))
		}
		lo, hi := half(0), half(4)
		return api.Select(w[2], hi, lo)
	}
	return twistededwards.Point{X: coord(0), Y: coord(1)}
}

// baseTables returns, for each 3-bit window j of an nbBits-bit scalar, the
// affine points [v·8ʲ]B for v = 0…7 (v = 0 is the identity (0, 1)),
// computed with gnark-crypto.
func baseTables(nbBits int) [][1 << baseWindow][2]*big.Int {
	params := edbn254.GetEdwardsCurve()
	nw := (nbBits + baseWindow - 1) / baseWindow
	tables := make([][1 << baseWindow][2]*big.Int, nw)
	var step edbn254.PointAffine // [8ʲ]B
	step.Set(&params.Base)
	for j := range tables {
		var p edbn254.PointAffine
		p.X.SetZero()
		p.Y.SetOne()
		for v := range tables[j] {
			tables[j][v] = [2]*big.Int{p.X.BigInt(new(big.Int)), p.Y.BigInt(new(big.Int))}
			p.Add(&p, &step)
		}
		for range baseWindow {
			step.Double(&step)
		}
	}
	return tables
}

// varBaseMul returns [k]a for a point a on the curve and the little-endian
// bits of k: left to right, two doublings and one addition of an element
// of {O, a, 2a, 3a} per 2-bit window.
func varBaseMul(api frontend.API, curve twistededwards.Curve, a twistededwards.Point, kBits []frontend.Variable) twistededwards.Point {
	a2 := curve.Double(a)
	a3 := curve.Add(a2, a)
	n := len(kBits)
	if n%2 == 1 {
		kBits = append(kBits, 0)
		n++
	}
	var acc twistededwards.Point
	for i := n - 2; i >= 0; i -= 2 {
		b0, b1 := kBits[i], kBits[i+1]
		p := twistededwards.Point{
			X: api.Lookup2(b0, b1, 0, a.X, a2.X, a3.X),
			Y: api.Lookup2(b0, b1, 1, a.Y, a2.Y, a3.Y),
		}
		if i == n-2 {
			acc = p
			continue
		}
		acc = curve.Double(curve.Double(acc))
		acc = curve.Add(acc, p)
	}
	return acc
}
