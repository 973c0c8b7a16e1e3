//go:build !race

package ceremony_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/ceremony"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/credential/credentialtest"
	"github.com/healthgw/healthgw/circuits/member"
)

// TestFullCeremony runs the production ceremony code on the largest
// statement, member, with three contributors per phase (domain 2¹⁴, the
// smallest that fits it, as for all three statements), verifies the
// transcript and the written keys, and proves and verifies with them.
// Deriving a circuit's phase 2 start (gnark's Phase2.Initialize) takes
// about half a minute on this machine and happens three times, so the test
// is built without -race (TestToyCeremony covers the logic under -race),
// skipped with -short, and opt-in: it runs only with HEALTHGW_LONG_TESTS=1
// (make test sets it), so that plain `go test ./...` fits Go's default
// 10-minute timeout on a loaded machine.
func TestFullCeremony(t *testing.T) {
	if testing.Short() || os.Getenv("HEALTHGW_LONG_TESTS") != "1" {
		t.Skip("full ceremony takes minutes: set HEALTHGW_LONG_TESTS=1 (make test does) and leave out -short")
	}
	var progress *os.File
	if testing.Verbose() {
		progress = os.Stderr
	}
	dir := filepath.Join(t.TempDir(), "ceremony")
	keys := filepath.Join(t.TempDir(), "keys")
	if err := ceremony.Init(dir, []circuits.Statement{circuits.Member}, progress); err != nil {
		t.Fatal(err)
	}
	hospitals := []string{"hospital-a", "hospital-b", "hospital-c"}
	for _, h := range hospitals {
		if _, err := ceremony.Contribute(dir, h, progress); err != nil {
			t.Fatalf("phase 1, %s: %v", h, err)
		}
	}
	if _, err := ceremony.Finalize(dir, []byte("beacon: drand round 1000 0123456789"), keys, progress); err != nil {
		t.Fatalf("finalize phase 1: %v", err)
	}
	for _, h := range hospitals {
		if _, err := ceremony.Contribute(dir, h, progress); err != nil {
			t.Fatalf("phase 2, %s: %v", h, err)
		}
	}
	rep, err := ceremony.Finalize(dir, []byte("beacon: drand round 2000 9876543210"), keys, progress)
	if err != nil {
		t.Fatalf("finalize phase 2: %v", err)
	}
	if rep.Domain != 1<<14 || len(rep.Contributions) != 6 || len(rep.Keys) != 1 {
		t.Fatalf("report: domain %d, %d contributions, %d keys", rep.Domain, len(rep.Contributions), len(rep.Keys))
	}

	verified, err := ceremony.VerifyKeys(dir, keys, progress)
	if err != nil {
		t.Fatalf("verify transcript and keys: %v", err)
	}
	infos, err := circuits.ReadManifest(keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, info := range infos {
		if info.Setup != circuits.SetupCeremony || info.VKHash != verified.Keys[i].VKHash {
			t.Errorf("%s: manifest %+v, verified %+v", info.Statement, info, verified.Keys[i])
		}
	}

	// The ceremony keys prove and verify.
	f := credentialtest.New(t, 20)
	code, err := credential.PatientV1.Encode("diagnosis", credentialtest.Attributes()["diagnosis"])
	if err != nil {
		t.Fatal(err)
	}
	set, err := member.NewSet([]uint64{code})
	if err != nil {
		t.Fatal(err)
	}
	ch := circuits.Challenge{Statement: circuits.Member, Params: circuits.Params{Attribute: "diagnosis", Set: set, Root: set.Root()}, Nonce: f.Nonce, Scope: f.Scope, Date: f.Date}
	pr, err := circuits.LoadProver(keys, circuits.Member, progress)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pr.Prove(f.Credential, f.Secret, ch)
	if err != nil {
		t.Fatal(err)
	}
	v, err := circuits.LoadVerifier(keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(circuits.Member, p.PublicFor(ch), p.Bytes); err != nil {
		t.Fatalf("proof with ceremony keys: %v", err)
	}
}
