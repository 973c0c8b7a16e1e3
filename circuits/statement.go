package circuits

import (
	"errors"
	"fmt"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/healthgw/healthgw/circuits/age"
	"github.com/healthgw/healthgw/circuits/inrange"
	"github.com/healthgw/healthgw/circuits/member"
)

// Statement names a provable statement.
type Statement string

// The statements.
const (
	Age    Statement = "age"    // a date attribute ≤ a public cutoff (package age)
	Range  Statement = "range"  // lo ≤ attribute ≤ hi (package inrange)
	Member Statement = "member" // attribute in a set with a public Merkle root (package member)
)

// ErrUnknownStatement reports a statement name that is not known.
var ErrUnknownStatement = errors.New("unknown statement")

// Statements lists every statement, in a fixed order.
func Statements() []Statement { return []Statement{Age, Range, Member} }

// ParseStatement checks that s names a statement.
func ParseStatement(s string) (Statement, error) {
	for _, st := range Statements() {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("%q: %w", s, ErrUnknownStatement)
}

// Version is the statement's circuit version, registered on the ledger with
// its verifying key (circuit.registered). Any change to a circuit changes
// its constraint count (see testdata/constraints.golden) and must bump the
// version: old keys do not fit the new circuit.
func (s Statement) Version() int {
	// Version 2: packed credential message (credential.Words), EdDSA with
	// a fixed-base [S]B and a single decomposition of S, the schema bound
	// as a canonical 32-bit field of the signed message.
	switch s {
	case Age, Range, Member:
		return 2
	}
	return 0
}

func (s Statement) valid() error {
	if s.Version() == 0 {
		return fmt.Errorf("%q: %w", string(s), ErrUnknownStatement)
	}
	return nil
}

// Circuit returns the statement's empty circuit, for compilation.
func (s Statement) Circuit() (frontend.Circuit, error) {
	switch s {
	case Age:
		return &age.Circuit{}, nil
	case Range:
		return &inrange.Circuit{}, nil
	case Member:
		return &member.Circuit{}, nil
	}
	return nil, fmt.Errorf("%q: %w", string(s), ErrUnknownStatement)
}

// Compile compiles the statement to an R1CS over BN254 for Groth16.
// Compilation is deterministic: the same code always gives the same
// constraint system, so keys from a setup fit every later compilation.
func Compile(s Statement) (constraint.ConstraintSystem, error) {
	c, err := s.Circuit()
	if err != nil {
		return nil, err
	}
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", s, err)
	}
	return ccs, nil
}
