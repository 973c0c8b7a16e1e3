package credential

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	nativeposeidon2 "github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	edbn254 "github.com/consensys/gnark-crypto/ecc/bn254/twistededwards"
	nativeeddsa "github.com/consensys/gnark-crypto/ecc/bn254/twistededwards/eddsa"
	tedwards "github.com/consensys/gnark-crypto/ecc/twistededwards"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/algebra/native/twistededwards"
	"github.com/consensys/gnark/std/hash/poseidon2"
	"github.com/consensys/gnark/std/math/bits"
	"github.com/consensys/gnark/std/signature/eddsa"
	"github.com/consensys/gnark/test"
)

// mulCircuit checks fixedBaseMul and varBaseMul against native results.
type mulCircuit struct {
	K      frontend.Variable
	P      twistededwards.Point
	KB, KP twistededwards.Point // [K]B, [K]P
}

func (c *mulCircuit) Define(api frontend.API) error {
	curve, err := twistededwards.NewEdCurve(api, tedwards.BN254)
	if err != nil {
		return err
	}
	n := curve.Params().Order.BitLen()
	kb := fixedBaseMul(api, curve, bits.ToBinary(api, c.K, bits.WithNbDigits(n)))
	kp := varBaseMul(api, curve, c.P, api.ToBinary(c.K))
	api.AssertIsEqual(kb.X, c.KB.X)
	api.AssertIsEqual(kb.Y, c.KB.Y)
	api.AssertIsEqual(kp.X, c.KP.X)
	api.AssertIsEqual(kp.Y, c.KP.Y)
	return nil
}

func point(p edbn254.PointAffine) twistededwards.Point {
	return twistededwards.Point{X: BigInt(p.X), Y: BigInt(p.Y)}
}

// TestScalarMul compares the in-circuit scalar multiplications with
// gnark-crypto's for edge scalars and random ones, then checks a wrong
// result is refused.
func TestScalarMul(t *testing.T) {
	params := edbn254.GetEdwardsCurve()
	order := &params.Order
	r := rand.New(rand.NewPCG(1, 2))
	var p edbn254.PointAffine
	p.ScalarMultiplication(&params.Base, big.NewInt(987654321))

	pow251 := new(big.Int).Lsh(big.NewInt(1), uint(order.BitLen())) // 2²⁵¹
	scalars := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(7), big.NewInt(8),
		new(big.Int).Sub(order, big.NewInt(1)), new(big.Int).Set(order),
		new(big.Int).Sub(pow251, big.NewInt(1)),
	}
	for range 4 {
		var k fr.Element // below the field modulus, so above ℓ at times
		k.SetUint64(r.Uint64())
		var hi fr.Element
		hi.SetUint64(r.Uint64())
		k.Mul(&k, &hi).Mul(&k, &hi).Mul(&k, &hi)
		scalars = append(scalars, new(big.Int).Mod(BigInt(k), pow251))
	}
	for _, k := range scalars {
		var kb, kp edbn254.PointAffine
		kb.ScalarMultiplication(&params.Base, k)
		kp.ScalarMultiplication(&p, k)
		w := &mulCircuit{K: k, P: point(p), KB: point(kb), KP: point(kp)}
		if err := test.IsSolved(&mulCircuit{}, w, ecc.BN254.ScalarField()); err != nil {
			t.Fatalf("k = %v: %v", k, err)
		}
		var wrong edbn254.PointAffine
		wrong.Add(&kb, &params.Base)
		w.KB = point(wrong)
		if err := test.IsSolved(&mulCircuit{}, w, ecc.BN254.ScalarField()); err == nil {
			t.Fatalf("k = %v: wrong [k]B accepted", k)
		}
	}
}

// varCircuit checks varBaseMul alone, for scalars up to the field size
// (the challenge h is a full field element).
type varCircuit struct {
	K  frontend.Variable
	P  twistededwards.Point
	KP twistededwards.Point
}

func (c *varCircuit) Define(api frontend.API) error {
	curve, err := twistededwards.NewEdCurve(api, tedwards.BN254)
	if err != nil {
		return err
	}
	kp := varBaseMul(api, curve, c.P, api.ToBinary(c.K))
	api.AssertIsEqual(kp.X, c.KP.X)
	api.AssertIsEqual(kp.Y, c.KP.Y)
	return nil
}

func TestVarBaseMulFullWidth(t *testing.T) {
	params := edbn254.GetEdwardsCurve()
	var p edbn254.PointAffine
	p.ScalarMultiplication(&params.Base, big.NewInt(123456789))
	p1 := new(big.Int).Sub(ecc.BN254.ScalarField(), big.NewInt(1))
	for _, k := range []*big.Int{p1, new(big.Int).Lsh(big.NewInt(1), 253), new(big.Int).Mul(&params.Order, big.NewInt(7))} {
		var kp edbn254.PointAffine
		kp.ScalarMultiplication(&p, k)
		w := &varCircuit{K: k, P: point(p), KP: point(kp)}
		if err := test.IsSolved(&varCircuit{}, w, ecc.BN254.ScalarField()); err != nil {
			t.Fatalf("k = %v: %v", k, err)
		}
		kp.Neg(&kp)
		w.KP = point(kp)
		if err := test.IsSolved(&varCircuit{}, w, ecc.BN254.ScalarField()); err == nil && !kp.IsZero() {
			t.Fatalf("k = %v: −[k]P accepted", k)
		}
	}
}

// sigCircuit runs verifySignature (Std false) or std's eddsa.Verify.
type sigCircuit struct {
	Std bool `gnark:"-"`
	Sig eddsa.Signature
	Pub eddsa.PublicKey
	Msg frontend.Variable
}

func (c *sigCircuit) Define(api frontend.API) error {
	curve, err := twistededwards.NewEdCurve(api, tedwards.BN254)
	if err != nil {
		return err
	}
	h, err := poseidon2.New(api)
	if err != nil {
		return err
	}
	curve.AssertIsOnCurve(c.Pub.A)
	curve.AssertIsOnCurve(c.Sig.R)
	if c.Std {
		return eddsa.Verify(curve, c.Sig, c.Msg, c.Pub, h)
	}
	verifySignature(api, curve, c.Sig, c.Msg, c.Pub, h)
	return nil
}

// TestVerifySignature checks verifySignature gives std's verdict on valid
// signatures and on tampered ones (including S + ℓ, which the cofactored
// equation alone would accept).
func TestVerifySignature(t *testing.T) {
	params := edbn254.GetEdwardsCurve()
	r := rand.NewChaCha8([32]byte{'s', 'i', 'g'})
	type sig struct {
		rx, ry fr.Element
		s      *big.Int
		a      edbn254.PointAffine
		msg    fr.Element
	}
	var cases []struct {
		name string
		sig  sig
		want bool
	}
	for i := range 3 {
		priv, err := nativeeddsa.GenerateKey(r)
		if err != nil {
			t.Fatal(err)
		}
		var msg fr.Element
		msg.SetUint64(uint64(1000 + i))
		mb := msg.Bytes()
		raw, err := priv.Sign(mb[:], nativeposeidon2.NewMerkleDamgardHasher())
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := priv.PublicKey.Verify(raw, mb[:], nativeposeidon2.NewMerkleDamgardHasher()); !ok || err != nil {
			t.Fatalf("native verify: %v", err)
		}
		var s nativeeddsa.Signature
		if _, err := s.SetBytes(raw); err != nil {
			t.Fatal(err)
		}
		valid := sig{rx: s.R.X, ry: s.R.Y, s: new(big.Int).SetBytes(s.S[:]), a: priv.PublicKey.A, msg: msg}
		add := func(name string, want bool, edit func(*sig)) {
			c := valid
			c.s = new(big.Int).Set(valid.s)
			edit(&c)
			cases = append(cases, struct {
				name string
				sig  sig
				want bool
			}{name, c, want})
		}
		add("valid", true, func(*sig) {})
		add("S+1", false, func(c *sig) { c.s.Add(c.s, big.NewInt(1)) })
		add("S+l", false, func(c *sig) { c.s.Add(c.s, &params.Order) })
		add("other message", false, func(c *sig) { c.msg.SetUint64(7) })
		add("negated R", false, func(c *sig) { c.rx.Neg(&c.rx) })
		add("other key", false, func(c *sig) { c.a.Double(&c.a) })
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, std := range []bool{true, false} {
				w := &sigCircuit{Std: std, Msg: BigInt(tc.sig.msg), Pub: eddsa.PublicKey{A: point(tc.sig.a)}}
				w.Sig.R = twistededwards.Point{X: BigInt(tc.sig.rx), Y: BigInt(tc.sig.ry)}
				w.Sig.S = tc.sig.s
				err := test.IsSolved(&sigCircuit{Std: std}, w, ecc.BN254.ScalarField())
				if got := err == nil; got != tc.want {
					t.Errorf("std=%v: accepted = %v, want %v (%v)", std, got, tc.want, err)
				}
			}
		})
	}
}

type reducedCircuit struct{ S frontend.Variable }

func (c *reducedCircuit) Define(api frontend.API) error {
	params := edbn254.GetEdwardsCurve()
	reducedScalarBits(api, c.S, &params.Order)
	return nil
}

// TestReducedScalar checks the S < ℓ bound at its edges.
func TestReducedScalar(t *testing.T) {
	params := edbn254.GetEdwardsCurve()
	l := &params.Order
	p := ecc.BN254.ScalarField()
	for _, tc := range []struct {
		name string
		s    *big.Int
		want bool
	}{
		{"0", big.NewInt(0), true},
		{"l-1", new(big.Int).Sub(l, big.NewInt(1)), true},
		{"l", new(big.Int).Set(l), false},
		{"2^251", new(big.Int).Lsh(big.NewInt(1), 251), false},
		{"p-1", new(big.Int).Sub(p, big.NewInt(1)), false},
		{"p-(2^251-l)", new(big.Int).Sub(p, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 251), l)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := test.IsSolved(&reducedCircuit{}, &reducedCircuit{S: tc.s}, ecc.BN254.ScalarField())
			if got := err == nil; got != tc.want {
				t.Fatalf("accepted = %v, want %v", got, tc.want)
			}
		})
	}
}
