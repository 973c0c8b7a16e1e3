package credentialtest

import (
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
)

// AssertPublicInputsBound compiles circuit and checks that every public
// input wire (each field element: the issuer key's X and Y separately)
// occurs with a non-zero coefficient in at least one constraint. Groth16
// does not bind a public input that no constraint uses: a proof would
// verify with any value of it. (TestPublicInputBinding in package circuits
// checks the same with real proofs.)
func AssertPublicInputsBound(t *testing.T, circuit frontend.Circuit) {
	t.Helper()
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, circuit)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := ccs.(interface{ GetR1Cs() []constraint.R1C })
	if !ok {
		t.Fatalf("compiled system is %T, not an R1CS", ccs)
	}
	nbPublic := ccs.GetNbPublicVariables() // wire 0 is the constant one
	if nbPublic < 2 {
		t.Fatal("circuit has no public inputs")
	}
	used := make([]bool, nbPublic)
	mark := func(l constraint.LinearExpression) {
		for _, term := range l {
			if !term.IsConstant() && term.CID != constraint.CoeffIdZero && int(term.VID) < nbPublic {
				used[term.VID] = true
			}
		}
	}
	for _, c := range r.GetR1Cs() {
		mark(c.L)
		mark(c.R)
		mark(c.O)
	}
	for i := 1; i < nbPublic; i++ {
		if !used[i] {
			t.Errorf("public input %d is not used by any constraint", i-1)
		}
	}
}
