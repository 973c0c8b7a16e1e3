package eligibility_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/credential/credentialtest"
	"github.com/healthgw/healthgw/circuits/eligibility"
)

// TestHonestMemberProof: a real Groth16 member proof, made by the patient
// for a challenge whose parameters name the set, verifies. (It used to be
// refused with params.mismatch: proof files carry the root, not the set.)
func TestHonestMemberProof(t *testing.T) {
	if testing.Short() {
		t.Skip("Groth16 setup and proving")
	}
	dir := filepath.Join(t.TempDir(), "zk")
	if _, err := circuits.SetupDevKeys(t.Context(), dir, []circuits.Statement{circuits.Member}, nil); err != nil {
		t.Fatal(err)
	}
	v, err := circuits.LoadVerifier(dir)
	if err != nil {
		t.Fatal(err)
	}
	prover, err := circuits.LoadProver(dir, circuits.Member, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := credentialtest.New(t, 1) // diagnosis E11.9
	w := newWorld(t)
	w.issuer = f.Issuer
	pub := f.Issuer.Public()
	w.store.issuers = map[string]eligibility.Issuer{pub.ID(): {Org: "hosp-a", KeyID: pub.ID(), PublicKey: pub.String()}}
	w.store.circuits = nil
	for _, info := range v.Circuits() {
		w.store.circuits = append(w.store.circuits, eligibility.Circuit{Statement: string(info.Statement), Version: info.Version, VKHash: info.VKHash, Setup: info.Setup})
	}
	w.loaded = v.Circuits()
	w.verify = v.Verify

	ch := w.challenge(t, "member", diabetes)
	p, err := prover.Prove(f.Credential, f.Secret, ch)
	if err != nil {
		t.Fatalf("prove: %v", err)
	}
	b, err := circuits.MarshalProof(p)
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.svc.Verify(context.Background(), verifierOrg, b, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Valid || res.Issuer != "hosp-a" || res.Nullifier != credential.FormatElement(p.Public.Nullifier) {
		t.Errorf("honest member proof: %+v, want valid", res)
	}
	// The same proof is refused by the real verifier once tampered with.
	ch2 := w.challenge(t, "member", diabetes)
	p2, err := prover.Prove(f.Credential, f.Secret, ch2)
	if err != nil {
		t.Fatal(err)
	}
	p2.Public.Nullifier = credential.Hash(p2.Public.Nullifier)
	b2, err := circuits.MarshalProof(p2)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := w.svc.Verify(t.Context(), verifierOrg, b2, t0); err != nil || res.Reason != eligibility.ReasonInvalid {
		t.Errorf("tampered nullifier: %+v, %v; want proof.invalid", res, err)
	}
}
