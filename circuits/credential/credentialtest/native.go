package credentialtest

import (
	"errors"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/twistededwards"
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
