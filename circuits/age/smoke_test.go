package age

import (
	"crypto/rand"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/test"

	"github.com/healthgw/healthgw/circuits/credential"
)

func TestSmoke(t *testing.T) {
	key, _ := credential.GenerateIssuerKey(rand.Reader)
	sec, _ := credential.NewSecret(rand.Reader)
	attrs, err := credential.PatientV1.Parse(map[string]string{"birth_date": "1990-04-01"})
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := credential.ParseDay("2030-01-01")
	cred, err := credential.Issue(key, sec.Commitment(), credential.PatientV1, attrs, exp)
	if err != nil {
		t.Fatal(err)
	}
	if err := cred.Verify(); err != nil {
		t.Fatal(err)
	}
	date, _ := credential.ParseDay("2026-01-01")
	cut, _ := credential.AgeCutoff(date, 18)
	scope := credential.ScopeElement("insurer")
	var w Circuit
	if err := w.Credential.Assign(cred, sec); err != nil {
		t.Fatal(err)
	}
	w.Public.Assign(credential.Inputs{Issuer: key.Public(), Schema: 1, Attribute: 0, Date: date, Scope: scope, Nonce: credential.NonceElement([]byte("n")), Nullifier: sec.Nullifier(scope)})
	w.Cutoff = uint64(cut)
	bad := w
	bad.Cutoff = uint64(cut) - 365*20
	if err := test.IsSolved(&Circuit{}, &bad, ecc.BN254.ScalarField()); err == nil {
		t.Fatal("bad solved")
	} else {
		t.Log(err)
	}
	if err := test.IsSolved(&Circuit{}, &w, ecc.BN254.ScalarField()); err != nil {
		t.Fatal(err)
	}
}
