package credentialtest

import (
	"errors"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/twistededwards"

	"github.com/healthgw/healthgw/circuits/credential"
)

var (
	errWrongNullifier = errors.New("nullifier is not H(secret, scope)")
	errZeroNonce      = errors.New("zero nonce")
)

// nativeOtherKey verifies the fixture credential under the other issuer's
// key with gnark-crypto: it must fail.
func nativeOtherKey(f *Fixture) error {
	c := *f.Credential
	c.Issuer = f.OtherIssuer.Public()
	return c.Verify()
}

// addOrder returns s + ℓ (ℓ the twisted Edwards group order): a signature
// scalar that satisfies the verification equation but is not reduced.
func addOrder(s *big.Int) *big.Int {
	curve := twistededwards.GetEdwardsCurve()
	return new(big.Int).Add(s, &curve.Order)
}

// shiftedSchema returns schema + (expiry − date)·2⁻³² in the BN254 scalar
// field: with it, schema'·2³² + date = schema·2³² + expiry.
func shiftedSchema(schema uint64, expiry, date credential.Day) *big.Int {
	var d, inv, s credential.Element
	d.SetInt64(int64(expiry) - int64(date))
	inv.SetUint64(1 << credential.DayBits)
	inv.Inverse(&inv)
	d.Mul(&d, &inv)
	s.SetUint64(schema)
	s.Add(&s, &d)
	return credential.BigInt(s)
}
