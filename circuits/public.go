package circuits

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/frontend"

	"github.com/healthgw/healthgw/circuits/age"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/inrange"
	"github.com/healthgw/healthgw/circuits/member"
)

// ErrPublic reports public inputs that are missing or malformed.
var ErrPublic = errors.New("invalid public inputs")

// Public is everything a verifier checks a proof against. The server
// builds it from its own challenge state (Params, Date, Scope, Nonce), the
// issuer key it accepts (registered on the ledger) and the nullifier the
// prover claims; see Proof.PublicFor.
type Public struct {
	Issuer    credential.PublicKey
	Params    Params
	Date      credential.Day     // the challenge date; the credential must be valid on it
	Scope     string             // the verifier scope the nullifier is bound to
	Nonce     []byte             // the challenge nonce
	Nullifier credential.Element // H(TagNullifier, secret, ScopeElement(Scope))
}

// Validate checks pub for statement s.
func (pub Public) Validate(s Statement) error {
	if err := pub.Params.Validate(s); err != nil {
		return err
	}
	switch {
	case pub.Issuer.IsZero():
		return fmt.Errorf("%w: no issuer key", ErrPublic)
	case pub.Date > credential.MaxDay:
		return fmt.Errorf("%w: date: %w", ErrPublic, credential.ErrDate)
	case pub.Scope == "":
		return fmt.Errorf("%w: empty scope", ErrPublic)
	case len(pub.Nonce) == 0:
		return fmt.Errorf("%w: empty nonce", ErrPublic)
	}
	return nil
}

func (pub Public) inputs() (credential.Inputs, error) {
	sc := pub.Params.schema()
	idx, err := sc.Index(pub.Params.Attribute)
	if err != nil {
		return credential.Inputs{}, fmt.Errorf("%w: %w", ErrParams, err)
	}
	return credential.Inputs{
		Issuer:    pub.Issuer,
		Schema:    sc.ID,
		Attribute: idx,
		Date:      pub.Date,
		Scope:     credential.ScopeElement(pub.Scope),
		Nonce:     credential.NonceElement(pub.Nonce),
		Nullifier: pub.Nullifier,
	}, nil
}

// assignment returns the statement's circuit with the public inputs set
// and the private ones left for the prover.
func (pub Public) assignment(s Statement) (frontend.Circuit, error) {
	if err := pub.Validate(s); err != nil {
		return nil, err
	}
	in, err := pub.inputs()
	if err != nil {
		return nil, err
	}
	u := func(v uint64) *big.Int { return new(big.Int).SetUint64(v) }
	switch s {
	case Age:
		c := &age.Circuit{Cutoff: u(uint64(pub.Params.Cutoff))}
		c.Public.Assign(in)
		return c, nil
	case Range:
		c := &inrange.Circuit{Lo: u(pub.Params.Lo), Hi: u(pub.Params.Hi)}
		c.Public.Assign(in)
		return c, nil
	case Member:
		c := &member.Circuit{Root: credential.BigInt(pub.Params.Root)}
		c.Public.Assign(in)
		return c, nil
	}
	return nil, fmt.Errorf("%q: %w", string(s), ErrUnknownStatement)
}

// publicWitness returns the public witness vector for s.
func (pub Public) publicWitness(s Statement) (witness.Witness, error) {
	a, err := pub.assignment(s)
	if err != nil {
		return nil, err
	}
	w, err := frontend.NewWitness(a, ecc.BN254.ScalarField(), frontend.PublicOnly())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPublic, err)
	}
	return w, nil
}

// PublicInputs returns the public input vector of statement s in circuit
// order (issuer X, issuer Y, schema, attribute index, date, scope, nonce,
// nullifier, then the statement's own: cutoff | lo, hi | root).
func PublicInputs(s Statement, pub Public) ([]credential.Element, error) {
	w, err := pub.publicWitness(s)
	if err != nil {
		return nil, err
	}
	v, ok := w.Vector().(fr.Vector)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected witness vector %T", ErrPublic, w.Vector())
	}
	return []credential.Element(v), nil
}
