package circuits_test

import (
	"crypto/rand"
	"fmt"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
)

// The whole flow: a hospital issues a credential, a verifier challenges,
// the patient proves "at least 18" and the verifier checks the proof.
func Example() {
	// Keys: circuits.SetupDevKeys for development, package ceremony for
	// production. (The tests share one development key directory.)
	keys, err := devKeys()
	if err != nil {
		panic(err)
	}

	// Hospital and patient app.
	issuer, _ := credential.GenerateIssuerKey(rand.Reader)
	secret, _ := credential.NewSecret(rand.Reader)
	attrs, _ := credential.PatientV1.Parse(map[string]string{"birth_date": "1990-04-01"})
	expiry, _ := credential.ParseDay("2027-12-31")
	cred, _ := credential.Issue(issuer, secret.Commitment(), credential.PatientV1, attrs, expiry)

	// Verifier: a challenge (POST /v1/proofs/challenges).
	today, _ := credential.ParseDay("2026-03-01")
	cutoff, _ := credential.AgeCutoff(today, 18)
	nonce := make([]byte, 32)
	rand.Read(nonce)
	ch := circuits.Challenge{
		Statement: circuits.Age,
		Params:    circuits.Params{Attribute: "birth_date", Cutoff: cutoff},
		Nonce:     nonce,
		Scope:     "insurer-acme/eligibility",
		Date:      today,
	}

	// Patient app: prove.
	prover, err := circuits.LoadProver(keys, circuits.Age, nil)
	if err != nil {
		panic(err)
	}
	proof, err := prover.Prove(cred, secret, ch)
	if err != nil {
		panic(err)
	}
	file, _ := circuits.MarshalProof(proof)

	// Verifier: POST /v1/proofs/verify.
	verifier, err := circuits.LoadVerifier(keys)
	if err != nil {
		panic(err)
	}
	got, err := circuits.ParseProof(file)
	if err != nil {
		panic(err)
	}
	fmt.Println(verifier.Verify(got.Statement, got.PublicFor(ch), got.Bytes))

	// The same proof does not answer another challenge.
	ch.Nonce = []byte("another nonce")
	fmt.Println(verifier.Verify(got.Statement, got.PublicFor(ch), got.Bytes) != nil)
	// Output:
	// <nil>
	// true
}
