package age_test

import (
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/test"

	"github.com/healthgw/healthgw/circuits/age"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/credential/credentialtest"
)

func TestCircuit(t *testing.T) {
	f := credentialtest.New(t, 1)

	// Native reference first (gnark-crypto): the credential verifies, is
	// valid on the date, belongs to the secret, and the holder (born
	// 1990-04-01) is at least 18 and at least 35 but not at least 36 on
	// 2026-03-01.
	if err := f.Credential.Check(f.Secret, f.Date); err != nil {
		t.Fatalf("native check: %v", err)
	}
	birth := f.Value(t, "birth_date")
	cutoff := func(years int) uint64 {
		c, err := credential.AgeCutoff(f.Date, years)
		if err != nil {
			t.Fatal(err)
		}
		return uint64(c)
	}
	for _, tc := range []struct {
		years int
		want  bool
	}{{18, true}, {35, true}, {36, false}} {
		if got := birth <= cutoff(tc.years); got != tc.want {
			t.Fatalf("native: at least %d = %v, want %v", tc.years, got, tc.want)
		}
	}

	assign := func(c credentialtest.Case, cut any) *age.Circuit {
		var w age.Circuit
		c.Assign(t, &w.Credential, &w.Public)
		w.Cutoff = cut
		return &w
	}
	solve := func(w *age.Circuit) error {
		return test.IsSolved(&age.Circuit{}, w, ecc.BN254.ScalarField())
	}

	valid := f.Valid(t, "birth_date")
	t.Run("valid at least 18", func(t *testing.T) {
		if err := solve(assign(valid, cutoff(18))); err != nil {
			t.Fatalf("valid assignment not solved: %v", err)
		}
	})
	t.Run("valid on the birthday cutoff", func(t *testing.T) {
		if err := solve(assign(valid, birth)); err != nil {
			t.Fatalf("cutoff equal to the birth date not solved: %v", err)
		}
	})

	t.Run("every public input bound", func(t *testing.T) {
		credentialtest.AssertPublicInputsBound(t, &age.Circuit{})
	})

	fieldMinus1 := new(big.Int).Sub(ecc.BN254.ScalarField(), big.NewInt(1))
	statement := []struct {
		name   string
		c      credentialtest.Case
		cutoff any
	}{
		{"younger than the cutoff", valid, cutoff(36)},
		{"cutoff one day before birth", valid, birth - 1},
		{"cutoff wraps the field", valid, fieldMinus1},
		{"cutoff of 2^64", valid, new(big.Int).Lsh(big.NewInt(1), 64)},
		{"absent attribute", withAttribute(t, f, "last_visit"), cutoff(18)},
	}
	for _, tc := range statement {
		t.Run(tc.name, func(t *testing.T) {
			if err := solve(assign(tc.c, tc.cutoff)); err == nil {
				t.Fatal("adversarial assignment solved")
			}
		})
	}
	for _, c := range f.Cases(t, "birth_date") {
		t.Run(c.Name, func(t *testing.T) {
			if c.Native == nil {
				t.Fatal("native reference accepts the case")
			}
			if err := solve(assign(c, cutoff(18))); err == nil {
				t.Fatal("adversarial assignment solved")
			}
		})
	}
}

// withAttribute returns the valid case re-pointed at attribute attr.
func withAttribute(t *testing.T, f *credentialtest.Fixture, attr string) credentialtest.Case {
	c := f.Valid(t, attr)
	c.Name = attr
	return c
}
