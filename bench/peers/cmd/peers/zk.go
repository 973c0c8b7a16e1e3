package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
)

// gnarkAge is healthgw's age statement in-process: a development Groth16
// setup, a credential issued by a fresh issuer key, and a challenge it
// satisfies (at least 18 on the challenge date).
type gnarkAge struct {
	prover      *circuits.Prover
	verifier    *circuits.Verifier
	cred        *credential.Credential
	secret      credential.Secret
	ch          circuits.Challenge
	proof       *circuits.Proof
	constraints int
}

func newGnarkAge(ctx context.Context, dir string) (*gnarkAge, error) {
	keys := filepath.Join(dir, "gnark-keys")
	infos, err := circuits.SetupDevKeys(ctx, keys, []circuits.Statement{circuits.Age}, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("gnark dev setup: %w", err)
	}
	g := &gnarkAge{}
	for _, in := range infos {
		if in.Statement == circuits.Age {
			g.constraints = in.Constraints
		}
	}
	if g.prover, err = circuits.LoadProver(keys, circuits.Age, nil); err != nil {
		return nil, err
	}
	if g.verifier, err = circuits.LoadVerifier(keys); err != nil {
		return nil, err
	}
	issuer, err := credential.GenerateIssuerKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if g.secret, err = credential.NewSecret(rand.Reader); err != nil {
		return nil, err
	}
	attrs, err := credential.PatientV1.Parse(map[string]string{
		"birth_date": "1990-04-01", "sex": "female", "hba1c": "7.2", "ldl": "130",
		"bmi": "31.4", "diagnosis": "E11.9", "systolic_bp": "128",
	})
	if err != nil {
		return nil, err
	}
	expiry, _ := credential.ParseDay("2027-12-31")
	if g.cred, err = credential.Issue(issuer, g.secret.Commitment(), credential.PatientV1, attrs, expiry); err != nil {
		return nil, err
	}
	date, _ := credential.ParseDay("2026-03-01")
	cut, err := credential.AgeCutoff(date, 18)
	if err != nil {
		return nil, err
	}
	g.ch = circuits.Challenge{ID: "bench", Statement: circuits.Age, Nonce: []byte("nonce-0123456789"),
		Scope: "verifier-acme/eligibility", Date: date, Params: circuits.Params{Attribute: "birth_date", Cutoff: cut}}
	if g.proof, err = g.prover.Prove(g.cred, g.secret, g.ch); err != nil {
		return nil, fmt.Errorf("gnark prove: %w", err)
	}
	if err := g.verifier.Verify(circuits.Age, g.proof.PublicFor(g.ch), g.proof.Bytes); err != nil {
		return nil, fmt.Errorf("gnark verify: %w", err)
	}
	// A proof must not verify for another cutoff: the benchmark verifies
	// real proofs.
	other := g.ch
	other.Params.Cutoff++
	if err := g.verifier.Verify(circuits.Age, g.proof.PublicFor(other), g.proof.Bytes); err == nil {
		return nil, errors.New("gnark verify: a proof verified for another cutoff")
	}
	return g, nil
}

// loop runs op at least once and until d has passed; it returns ops/s.
func loop(d time.Duration, op func() error) (float64, error) {
	n := 0
	start := time.Now()
	for time.Since(start) < d || n == 0 {
		if err := op(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func (g *gnarkAge) prove(d time.Duration) (float64, error) {
	return loop(d, func() error {
		_, err := g.prover.Prove(g.cred, g.secret, g.ch)
		return err
	})
}

func (g *gnarkAge) verify(d time.Duration) (float64, error) {
	pub := g.proof.PublicFor(g.ch)
	return loop(d, func() error { return g.verifier.Verify(circuits.Age, pub, g.proof.Bytes) })
}

// snarkjsAge is the circom2 + snarkjs peer (zk/age.circom, zk/bench.mjs):
// compiled with circom2 (WebAssembly) at --O2, a Groth16 setup of its own
// (a fresh powers of tau of 2^ptauPower with one contribution, then one
// zkey contribution), proven and verified by snarkjs in node.
type snarkjsAge struct {
	zkDir, build string
	constraints  int
}

// nodeTools says why the snarkjs side cannot run, or "" when it can.
func nodeTools(zkDir string) string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed"
	}
	for _, p := range []string{"snarkjs/cli.js", "circom2/cli.js", "circomlib/circuits/eddsaposeidon.circom", "circomlibjs/package.json"} {
		if _, err := os.Stat(filepath.Join(zkDir, "node_modules", p)); err != nil {
			return "the pinned npm packages are not installed (run `npm ci` in bench/peers/zk)"
		}
	}
	return ""
}

// ptauPower is the size of the peer's powers of tau, 2^14: enough for the
// circuit's constraints (about 5,500 at --O2) and its public inputs.
const ptauPower = 14

// newSnarkjsAge compiles the circuit and runs the setup in build (kept
// between runs: a step whose output is there is not run again; every step
// writes to a temporary name first, so an interrupted one leaves nothing
// to reuse).
func newSnarkjsAge(ctx context.Context, zkDir, build string, progress io.Writer) (*snarkjsAge, error) {
	s := &snarkjsAge{zkDir: zkDir, build: build}
	if err := os.MkdirAll(build, 0o755); err != nil {
		return nil, err
	}
	snark := filepath.Join(zkDir, "node_modules", "snarkjs", "cli.js")
	b := func(name string) string { return filepath.Join(build, name) }
	pot := fmt.Sprintf("pot%d", ptauPower)
	circomTmp := b("circom.tmp")
	steps := []struct {
		out  string // the step's output in build
		args func(tmp string) []string
	}{
		{"age.r1cs", func(string) []string {
			return []string{filepath.Join(zkDir, "node_modules", "circom2", "cli.js"), filepath.Join(zkDir, "age.circom"),
				"--r1cs", "--wasm", "--O2", "-o", circomTmp, "-l", filepath.Join(zkDir, "node_modules")}
		}},
		{pot + "_0.ptau", func(tmp string) []string {
			return []string{snark, "powersoftau", "new", "bn128", strconv.Itoa(ptauPower), tmp}
		}},
		{pot + "_1.ptau", func(tmp string) []string {
			return []string{snark, "powersoftau", "contribute", b(pot + "_0.ptau"), tmp, "--name=bench", "-e=" + rand.Text()}
		}},
		{pot + ".ptau", func(tmp string) []string {
			return []string{snark, "powersoftau", "prepare", "phase2", b(pot + "_1.ptau"), tmp}
		}},
		{"age0.zkey", func(tmp string) []string {
			return []string{snark, "groth16", "setup", b("age.r1cs"), b(pot + ".ptau"), tmp}
		}},
		{"age.zkey", func(tmp string) []string {
			return []string{snark, "zkey", "contribute", b("age0.zkey"), tmp, "--name=bench", "-e=" + rand.Text()}
		}},
		{"vkey.json", func(tmp string) []string {
			return []string{snark, "zkey", "export", "verificationkey", b("age.zkey"), tmp}
		}},
		{"input.json", func(tmp string) []string { return []string{filepath.Join(zkDir, "bench.mjs"), "input", tmp} }},
	}
	for _, st := range steps {
		if _, err := os.Stat(b(st.out)); err == nil {
			continue
		}
		fmt.Fprintf(progress, "snarkjs setup: %s\n", st.out)
		tmp := b(st.out + ".tmp")
		_ = os.RemoveAll(tmp)
		_ = os.RemoveAll(circomTmp)
		if st.out == "age.r1cs" {
			// circom refuses an output directory that does not exist
			// ("invalid output path").
			if err := os.MkdirAll(circomTmp, 0o755); err != nil {
				return nil, err
			}
		}
		cmd := exec.CommandContext(ctx, "node", st.args(tmp)...)
		cmd.Dir = zkDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("snarkjs setup %s: %w\n%s", st.out, err, tail(out, 2000))
		}
		if st.out == "age.r1cs" {
			// circom writes age.r1cs and age_js/ into its output directory.
			_ = os.RemoveAll(b("age_js"))
			if err := os.Rename(filepath.Join(circomTmp, "age_js"), b("age_js")); err != nil {
				return nil, err
			}
			if err := os.Rename(filepath.Join(circomTmp, "age.r1cs"), b("age.r1cs")); err != nil {
				return nil, err
			}
			_ = os.RemoveAll(circomTmp)
			continue
		}
		if err := os.Rename(tmp, b(st.out)); err != nil {
			return nil, err
		}
	}
	out, err := exec.CommandContext(ctx, "node", snark, "r1cs", "info", filepath.Join(build, "age.r1cs")).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("r1cs info: %w\n%s", err, out)
	}
	if s.constraints, err = parseR1CSConstraints(out); err != nil {
		return nil, err
	}
	// One proof and its verification, to fail early and to have a proof
	// for the verify rounds.
	if _, err := s.prove(ctx, 0); err != nil {
		return nil, err
	}
	if _, err := s.verify(ctx, 0); err != nil {
		return nil, err
	}
	return s, nil
}

var constraintsRe = regexp.MustCompile(`# of Constraints:\s*([0-9]+)`)

func parseR1CSConstraints(out []byte) (int, error) {
	m := constraintsRe.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("r1cs info: no constraint count in:\n%s", out)
	}
	return strconv.Atoi(string(m[1]))
}

type loopResult struct {
	Ops     int     `json:"ops"`
	Seconds float64 `json:"seconds"`
}

// runNodeLoop runs bench.mjs with args and returns its ops/s.
func (s *snarkjsAge) runNodeLoop(ctx context.Context, args ...string) (float64, error) {
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(s.zkDir, "bench.mjs")}, args...)...)
	cmd.Dir = s.zkDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("bench.mjs %s: %w\n%s", args[0], err, tail(stderr.Bytes(), 2000))
	}
	var r loopResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Ops > 0 {
			return float64(r.Ops) / r.Seconds, nil
		}
	}
	return 0, fmt.Errorf("bench.mjs %s: no result in %q", args[0], out)
}

func (s *snarkjsAge) prove(ctx context.Context, d time.Duration) (float64, error) {
	return s.runNodeLoop(ctx, "prove", filepath.Join(s.build, "age_js", "age.wasm"), filepath.Join(s.build, "age.zkey"),
		filepath.Join(s.build, "input.json"), strconv.FormatFloat(d.Seconds(), 'f', 3, 64), s.build)
}

func (s *snarkjsAge) verify(ctx context.Context, d time.Duration) (float64, error) {
	return s.runNodeLoop(ctx, "verify", filepath.Join(s.build, "vkey.json"), filepath.Join(s.build, "proof.json"),
		filepath.Join(s.build, "public.json"), strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
