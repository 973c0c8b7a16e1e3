package inrange_test

import (
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/test"

	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/credential/credentialtest"
	"github.com/healthgw/healthgw/circuits/inrange"
)

func TestCircuit(t *testing.T) {
	f := credentialtest.New(t, 2)

	// Native reference first: HbA1c 7.2 % is 720 at scale 100, inside
	// [6.5, 14] and outside [5.7, 6.4].
	if err := f.Credential.Check(f.Secret, f.Date); err != nil {
		t.Fatalf("native check: %v", err)
	}
	enc := func(s string) uint64 {
		v, err := credential.PatientV1.Encode("hba1c", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := f.Value(t, "hba1c")
	lo, hi := enc("6.5"), enc("14")
	if v != 720 || !(lo <= v && v <= hi) || (enc("5.7") <= v && v <= enc("6.4")) {
		t.Fatalf("native: hba1c = %d, lo %d, hi %d", v, lo, hi)
	}

	assign := func(c credentialtest.Case, lo, hi any) *inrange.Circuit {
		var w inrange.Circuit
		c.Assign(t, &w.Credential, &w.Public)
		w.Lo, w.Hi = lo, hi
		return &w
	}
	solve := func(w *inrange.Circuit) error {
		return test.IsSolved(&inrange.Circuit{}, w, ecc.BN254.ScalarField())
	}

	valid := f.Valid(t, "hba1c")
	t.Run("every public input bound", func(t *testing.T) {
		credentialtest.AssertPublicInputsBound(t, &inrange.Circuit{})
	})
	for _, tc := range []struct {
		name   string
		lo, hi uint64
	}{
		{"6.5 to 14", lo, hi},
		{"exactly the value", v, v},
		{"lower bound equal", v, hi},
		{"upper bound equal", lo, v},
	} {
		t.Run("valid "+tc.name, func(t *testing.T) {
			if err := solve(assign(valid, tc.lo, tc.hi)); err != nil {
				t.Fatalf("valid assignment not solved: %v", err)
			}
		})
	}

	p := ecc.BN254.ScalarField()
	pMinus := func(k int64) *big.Int { return new(big.Int).Sub(p, big.NewInt(k)) }
	for _, tc := range []struct {
		name   string
		c      credentialtest.Case
		lo, hi any
	}{
		{"below the range", valid, enc("7.3"), hi},
		{"above the range", valid, enc("5.7"), enc("6.4")},
		{"empty range", valid, hi, lo},
		// Without range checks, hi − v and v − lo would be small field
		// elements for these bounds.
		{"lower bound wraps the field", valid, pMinus(1), hi},
		{"upper bound wraps the field", valid, pMinus(1), pMinus(1)},
		{"upper bound of 2^64", valid, lo, new(big.Int).Lsh(big.NewInt(1), 64)},
		{"absent attribute", f.Valid(t, "last_visit"), 0, uint64(credential.Absent)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := solve(assign(tc.c, tc.lo, tc.hi)); err == nil {
				t.Fatal("adversarial assignment solved")
			}
		})
	}
	for _, c := range f.Cases(t, "hba1c") {
		t.Run(c.Name, func(t *testing.T) {
			if c.Native == nil {
				t.Fatal("native reference accepts the case")
			}
			if err := solve(assign(c, lo, hi)); err == nil {
				t.Fatal("adversarial assignment solved")
			}
		})
	}
}
