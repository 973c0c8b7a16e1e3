package member_test

import (
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/test"

	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/credential/credentialtest"
	"github.com/healthgw/healthgw/circuits/member"
)

func codes(t *testing.T, texts ...string) []uint64 {
	t.Helper()
	var vs []uint64
	for _, s := range texts {
		v, err := credential.PatientV1.Encode("diagnosis", s)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

func TestCircuit(t *testing.T) {
	f := credentialtest.New(t, 3)

	// Native reference first: the diagnosis E11.9 is in the diabetes
	// program's set and not in the cardiology set; its gnark-crypto Merkle
	// path leads to the root.
	if err := f.Credential.Check(f.Secret, f.Date); err != nil {
		t.Fatalf("native check: %v", err)
	}
	diabetes, err := member.NewSet(codes(t, "E10.9", "E11.9", "E11.65", "O24.4"))
	if err != nil {
		t.Fatal(err)
	}
	cardio, err := member.NewSet(codes(t, "I20.9", "I21.4", "I25.10"))
	if err != nil {
		t.Fatal(err)
	}
	v := f.Value(t, "diagnosis")
	if !diabetes.Contains(v) || cardio.Contains(v) {
		t.Fatal("native: set membership is wrong")
	}
	index, path, err := diabetes.Prove(v)
	if err != nil {
		t.Fatal(err)
	}
	otherIndex, otherPath, err := diabetes.Prove(codes(t, "E10.9")[0])
	if err != nil {
		t.Fatal(err)
	}

	type witness struct {
		root  credential.Element
		index any
		path  [member.Depth]credential.Element
	}
	assign := func(c credentialtest.Case, w witness) *member.Circuit {
		var a member.Circuit
		c.Assign(t, &a.Credential, &a.Public)
		a.Root = credential.BigInt(w.root)
		a.Index = w.index
		for i := range w.path {
			a.Path[i] = credential.BigInt(w.path[i])
		}
		return &a
	}
	solve := func(a *member.Circuit) error {
		return test.IsSolved(&member.Circuit{}, a, ecc.BN254.ScalarField())
	}

	valid := f.Valid(t, "diagnosis")
	good := witness{root: diabetes.Root(), index: index, path: path}
	t.Run("every public input bound", func(t *testing.T) {
		credentialtest.AssertPublicInputsBound(t, &member.Circuit{})
	})
	t.Run("valid", func(t *testing.T) {
		if err := solve(assign(valid, good)); err != nil {
			t.Fatalf("valid assignment not solved: %v", err)
		}
	})

	tamperedPath := path
	tamperedPath[3].SetUint64(42)
	for _, tc := range []struct {
		name string
		c    credentialtest.Case
		w    witness
	}{
		{"not in the set", valid, witness{root: cardio.Root(), index: index, path: path}},
		{"another member's path", valid, witness{root: diabetes.Root(), index: otherIndex, path: otherPath}},
		{"wrong index", valid, witness{root: diabetes.Root(), index: index + 1, path: path}},
		{"index beyond the tree", valid, witness{root: diabetes.Root(), index: new(big.Int).SetUint64(index + member.MaxSetSize), path: path}},
		{"tampered path", valid, witness{root: diabetes.Root(), index: index, path: tamperedPath}},
		{"another attribute", f.Valid(t, "ldl"), good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := solve(assign(tc.c, tc.w)); err == nil {
				t.Fatal("adversarial assignment solved")
			}
		})
	}
	for _, c := range f.Cases(t, "diagnosis") {
		t.Run(c.Name, func(t *testing.T) {
			if c.Native == nil {
				t.Fatal("native reference accepts the case")
			}
			if err := solve(assign(c, good)); err == nil {
				t.Fatal("adversarial assignment solved")
			}
		})
	}
}
