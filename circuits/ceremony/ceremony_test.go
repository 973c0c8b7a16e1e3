package ceremony

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/google/go-cmp/cmp"
)

// toy is a small circuit so that the ceremony logic is tested quickly,
// also under -race: Y = X⁵ + X with a public Y.
type toy struct {
	X frontend.Variable
	Y frontend.Variable `gnark:",public"`
}

func (c *toy) Define(api frontend.API) error {
	x2 := api.Mul(c.X, c.X)
	x4 := api.Mul(x2, x2)
	api.AssertIsEqual(c.Y, api.Add(api.Mul(x4, c.X), c.X))
	return nil
}

// toy2 is a second circuit of another size: Y = X³ · Z with a public Y.
type toy2 struct {
	X, Z frontend.Variable
	Y    frontend.Variable `gnark:",public"`
}

func (c *toy2) Define(api frontend.API) error {
	api.AssertIsEqual(c.Y, api.Mul(c.X, c.X, c.X, c.Z))
	return nil
}

func compileToy(name string) (circuit, error) {
	var c frontend.Circuit
	switch name {
	case "toy":
		c = &toy{}
	case "toy2":
		c = &toy2{}
	default:
		return circuit{}, fmt.Errorf("no circuit %q", name)
	}
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		return circuit{}, err
	}
	return circuit{name: name, version: 1, ccs: ccs.(*cs.R1CS)}, nil
}

func assignments(name string) (full, public frontend.Circuit) {
	if name == "toy" {
		return &toy{X: 3, Y: 246}, &toy{Y: 246}
	}
	return &toy2{X: 2, Z: 5, Y: 40}, &toy2{Y: 40}
}

// proveWith checks that keys from the ceremony prove and verify.
func proveWith(t *testing.T, kp keyPair) {
	t.Helper()
	c, err := compileToy(kp.name)
	if err != nil {
		t.Fatal(err)
	}
	full, public := assignments(kp.name)
	w, err := frontend.NewWitness(full, ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	pw, err := frontend.NewWitness(public, ecc.BN254.ScalarField(), frontend.PublicOnly())
	if err != nil {
		t.Fatal(err)
	}
	proof, err := groth16.Prove(c.ccs, kp.pk, w)
	if err != nil {
		t.Fatalf("prove with ceremony keys: %v", err)
	}
	if err := groth16.Verify(proof, kp.vk, pw); err != nil {
		t.Fatalf("verify with ceremony keys: %v", err)
	}
}

var (
	beacon1 = []byte("drand round 1000: 0123456789abcdef")
	beacon2 = []byte("drand round 2000: fedcba9876543210")
)

// runToyCeremony runs a complete ceremony with three contributors per
// phase over the toy circuits and returns its directory and keys.
func runToyCeremony(t *testing.T) (string, []keyPair) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ceremony")
	names := []string{"toy", "toy2"}
	if err := initCeremony(dir, names, compileToy, nil); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"hospital-a", "hospital-b", "hospital-c"} {
		if _, err := contribute(dir, who, compileToy, nil); err != nil {
			t.Fatalf("phase 1 contribution of %s: %v", who, err)
		}
	}
	if _, err := finalize(dir, beacon1, compileToy, nil, nil); err != nil {
		t.Fatalf("finalize phase 1: %v", err)
	}
	for _, who := range []string{"hospital-a", "hospital-b", "hospital-c"} {
		if _, err := contribute(dir, who, compileToy, nil); err != nil {
			t.Fatalf("phase 2 contribution of %s: %v", who, err)
		}
	}
	var keys []keyPair
	write := func(kps []keyPair) error { keys = kps; return nil }
	if _, err := finalize(dir, beacon2, compileToy, write, nil); err != nil {
		t.Fatalf("finalize phase 2: %v", err)
	}
	return dir, keys
}

func TestToyCeremony(t *testing.T) {
	dir, keys := runToyCeremony(t)
	rep, err := verify(dir, compileToy, nil, "")
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var got []string
	for _, r := range rep.Contributions {
		got = append(got, fmt.Sprintf("%d/%d %s", r.Phase, r.Index, r.Name))
	}
	want := []string{
		"1/1 hospital-a", "1/2 hospital-b", "1/3 hospital-c",
		"2/1 hospital-a", "2/2 hospital-b", "2/3 hospital-c",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("contributions (-want +got):\n%s", diff)
	}
	if rep.Phase != Done || len(rep.Keys) != 2 || rep.Domain != 4 {
		t.Errorf("report: phase %d, %d keys, domain %d", rep.Phase, len(rep.Keys), rep.Domain)
	}
	if len(keys) != 2 {
		t.Fatalf("%d key pairs, want 2", len(keys))
	}
	for _, kp := range keys {
		if kp.vkHash != rep.Keys[indexOf(rep.Circuits, kp.name)].VKHash {
			t.Errorf("%s: verify recomputes another verifying key", kp.name)
		}
		proveWith(t, kp)
	}
	if _, err := contribute(dir, "late", compileToy, nil); !errors.Is(err, ErrFinished) {
		t.Errorf("contribution after the end: %v, want ErrFinished", err)
	}
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// The tampering tests edit a finished transcript the way an attacker
// controlling the directory could: they also fix up the recorded hashes,
// so that only the cryptographic checks can catch the change.
func TestToyCeremonyTampering(t *testing.T) {
	_, g1 := generators()
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir string)
	}{
		{"phase 1 point replaced", func(t *testing.T, dir string) {
			// The last point of the file is [ατ^(N-1)]₁, followed by the
			// 1-byte length and the 32-byte challenge.
			editFile(t, dir, "phase1/0002.bin", func(b []byte) {
				copy(b[len(b)-33-len(g1):], g1)
			})
		}},
		{"phase 1 byte flipped", func(t *testing.T, dir string) {
			editFile(t, dir, "phase1/0001.bin", func(b []byte) { b[len(b)/2] ^= 1 })
		}},
		{"phase 1 contribution skipped", func(t *testing.T, dir string) {
			// Contributor 3 builds on contribution 1, not 2.
			var p mpcsetup.Phase1
			readFile(t, dir, "phase1/0001.bin", &p)
			p.Contribute()
			writeFile(t, dir, "phase1/0003.bin", &p)
		}},
		{"phase 2 point replaced", func(t *testing.T, dir string) {
			// After the commitment count (2 bytes) and [δ]₁ (32 bytes),
			// the length-prefixed PKK starts at byte 38.
			editFile(t, dir, "phase2/toy/0002.bin", func(b []byte) { copy(b[38:], g1) })
		}},
		{"phase 2 contribution replaced by a fresh one", func(t *testing.T, dir string) {
			var p mpcsetup.Phase2
			readFile(t, dir, "phase2/toy2/0001.bin", &p)
			p.Contribute()
			writeFile(t, dir, "phase2/toy2/0003.bin", &p)
		}},
		{"sealed phase 1 replaced", func(t *testing.T, dir string) {
			editFile(t, dir, "phase1/srs.bin", func(b []byte) { copy(b[len(b)-len(g1):], g1) })
		}},
		{"phase 2 start replaced", func(t *testing.T, dir string) {
			editFile(t, dir, "phase2/toy/0000.bin", func(b []byte) { copy(b[38:], g1) })
		}},
		{"phase 2 beacon changed", func(t *testing.T, dir string) {
			editState(t, dir, func(st *stateJSON) { st.Phase2Beacon = "00" + st.Phase2Beacon })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := runToyCeremony(t)
			if _, err := verify(dir, compileToy, nil, ""); err != nil {
				t.Fatalf("untampered transcript: %v", err)
			}
			tc.tamper(t, dir)
			_, err := verify(dir, compileToy, nil, "")
			if !errors.Is(err, ErrVerify) {
				t.Fatalf("verify after tampering = %v, want ErrVerify", err)
			}
			t.Logf("detected: %v", err)
		})
	}
}

func TestCeremonyErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	if err := initCeremony(dir, []string{"toy"}, compileToy, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"init twice", initCeremony(dir, []string{"toy"}, compileToy, nil), ErrState},
		{"finalize without contributions", func() error { _, err := finalize(dir, beacon1, compileToy, nil, nil); return err }(), ErrState},
		{"short beacon", func() error { _, err := finalize(dir, []byte("x"), compileToy, nil, nil); return err }(), ErrState},
		{"no name", func() error { _, err := contribute(dir, " ", compileToy, nil); return err }(), ErrState},
		{"locked", func() error {
			unlock, err := lock(dir)
			if err != nil {
				return err
			}
			defer unlock()
			_, err = contribute(dir, "a", compileToy, nil)
			return err
		}(), ErrLocked},
		{"no ceremony", func() error { _, err := verify(t.TempDir(), compileToy, nil, ""); return err }(), ErrState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("error = %v, want %v", tc.err, tc.want)
			}
		})
	}
}

func generators() (curve.G1Affine, []byte) {
	_, _, g1, _ := curve.Generators()
	var p curve.G1Affine
	p.ScalarMultiplication(&g1, big.NewInt(7))
	b := p.Bytes()
	return p, b[:]
}

// editFile changes a transcript file and records its new hash, as an
// attacker would.
func editFile(t *testing.T, dir, rel string, edit func([]byte)) {
	t.Helper()
	p := filepath.Join(dir, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	edit(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	fixHash(t, dir, rel, b)
}

func readFile(t *testing.T, dir, rel string, v interface {
	ReadFrom(r io.Reader) (int64, error)
}) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.ReadFrom(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, dir, rel string, v interface {
	WriteTo(w io.Writer) (int64, error)
}) {
	t.Helper()
	var b bytes.Buffer
	if _, err := v.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, rel), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fixHash(t, dir, rel, b.Bytes())
}

func fixHash(t *testing.T, dir, rel string, b []byte) {
	t.Helper()
	editState(t, dir, func(st *stateJSON) {
		for i, r := range st.Contributions {
			var file string
			if r.Phase == Phase1 {
				file = fmt.Sprintf("phase1/%04d.bin", r.Index)
				if file == rel {
					st.Contributions[i].Hashes["phase1"] = hashHex(b)
				}
				continue
			}
			for name := range r.Hashes {
				if fmt.Sprintf("phase2/%s/%04d.bin", name, r.Index) == rel {
					st.Contributions[i].Hashes[name] = hashHex(b)
				}
			}
		}
	})
}

func editState(t *testing.T, dir string, edit func(*stateJSON)) {
	t.Helper()
	p := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var st stateJSON
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	edit(&st)
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
