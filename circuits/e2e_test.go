package circuits_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/credential/credentialtest"
	"github.com/healthgw/healthgw/circuits/member"
)

// tempRoot is removed by TestMain; set once devKeys has run.
var tempRoot string

// devKeys runs one dev setup for every statement, shared by the tests of
// this package (setup is the slow part).
var devKeys = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "healthgw-circuits-test-")
	if err != nil {
		return "", err
	}
	tempRoot = dir
	keys := filepath.Join(dir, "keys")
	if _, err := circuits.SetupDevKeys(contextBackground(), keys, circuits.Statements(), nil); err != nil {
		return "", fmt.Errorf("dev setup: %w", err)
	}
	return keys, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if tempRoot != "" {
		os.RemoveAll(tempRoot)
	}
	os.Exit(code)
}

func keysDir(t testing.TB) string {
	t.Helper()
	dir, err := devKeys()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// provers caches one prover per statement.
var provers sync.Map

func prover(t testing.TB, s circuits.Statement) *circuits.Prover {
	t.Helper()
	if p, ok := provers.Load(s); ok {
		return p.(*circuits.Prover)
	}
	p, err := circuits.LoadProver(keysDir(t), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	provers.Store(s, p)
	return p
}

func diabetesSet(t testing.TB) *member.Set {
	t.Helper()
	var vs []uint64
	for _, c := range []string{"E10.9", "E11.9", "E11.65", "O24.4"} {
		v, err := credential.PatientV1.Encode("diagnosis", c)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	s, err := member.NewSet(vs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// challenge returns a challenge the fixture credential satisfies.
func challenge(t testing.TB, f *credentialtest.Fixture, s circuits.Statement) circuits.Challenge {
	t.Helper()
	ch := circuits.Challenge{ID: "ch-1", Statement: s, Nonce: f.Nonce, Scope: f.Scope, Date: f.Date}
	switch s {
	case circuits.Age:
		cut, err := credential.AgeCutoff(f.Date, 18)
		if err != nil {
			t.Fatal(err)
		}
		ch.Params = circuits.Params{Attribute: "birth_date", Cutoff: cut}
	case circuits.Range:
		ch.Params = circuits.Params{Attribute: "hba1c", Lo: 650, Hi: 1400}
	case circuits.Member:
		set := diabetesSet(t)
		ch.Params = circuits.Params{Attribute: "diagnosis", Set: set, Root: set.Root()}
	}
	return ch
}

// proofs caches one valid proof per statement.
var proofs sync.Map

func proofFor(t testing.TB, s circuits.Statement) (*circuits.Proof, circuits.Challenge, *credentialtest.Fixture) {
	t.Helper()
	f := credentialtest.New(t, 10)
	ch := challenge(t, f, s)
	if p, ok := proofs.Load(s); ok {
		return p.(*circuits.Proof), ch, f
	}
	p, err := prover(t, s).Prove(f.Credential, f.Secret, ch)
	if err != nil {
		t.Fatalf("prove %s: %v", s, err)
	}
	proofs.Store(s, p)
	return p, ch, f
}

func verifier(t testing.TB) *circuits.Verifier {
	t.Helper()
	v, err := circuits.LoadVerifier(keysDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestProveVerify(t *testing.T) {
	v := verifier(t)
	for _, s := range circuits.Statements() {
		t.Run(string(s), func(t *testing.T) {
			p, ch, _ := proofFor(t, s)
			// Through the proof file, as the server receives it.
			b, err := circuits.MarshalProof(p)
			if err != nil {
				t.Fatal(err)
			}
			pf, err := circuits.ParseProof(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(pf.Statement, pf.PublicFor(ch), pf.Bytes); err != nil {
				t.Fatalf("valid proof rejected: %v", err)
			}
			if len(pf.Bytes) >= 200 {
				t.Errorf("proof is %d bytes, want < 200", len(pf.Bytes))
			}
		})
	}
}

// TestPublicInputBinding changes one public input at a time: every change
// must make a valid proof fail to verify. The nonce in particular is bound
// only by an explicit constraint in the circuit.
func TestPublicInputBinding(t *testing.T) {
	v := verifier(t)
	f := credentialtest.New(t, 10)
	otherSchema := *credential.PatientV1
	otherSchema.ID = 7
	type edit struct {
		name string
		fn   func(pub *circuits.Public)
	}
	common := []edit{
		{"nonce", func(p *circuits.Public) { p.Nonce = []byte("nonce-other") }},
		{"nullifier", func(p *circuits.Public) { p.Nullifier = f.OtherSecret.Nullifier(credential.ScopeElement(p.Scope)) }},
		{"issuer key", func(p *circuits.Public) { p.Issuer = f.OtherIssuer.Public() }},
		{"scope", func(p *circuits.Public) { p.Scope = "verifier-other/eligibility" }},
		{"date", func(p *circuits.Public) { p.Date-- }},
		{"schema", func(p *circuits.Public) { p.Params.Schema = &otherSchema }},
	}
	specific := map[circuits.Statement][]edit{
		circuits.Age: {
			{"cutoff", func(p *circuits.Public) { p.Params.Cutoff-- }},
			{"attribute", func(p *circuits.Public) { p.Params.Attribute = "last_visit" }},
		},
		circuits.Range: {
			{"lo", func(p *circuits.Public) { p.Params.Lo++ }},
			{"hi", func(p *circuits.Public) { p.Params.Hi-- }},
			{"attribute", func(p *circuits.Public) { p.Params.Attribute = "ldl" }},
		},
		circuits.Member: {
			{"root", func(p *circuits.Public) {
				p.Params.Set = nil
				p.Params.Root.SetUint64(12345)
			}},
			{"attribute", func(p *circuits.Public) { p.Params.Attribute = "sex" }},
		},
	}
	for _, s := range circuits.Statements() {
		p, ch, _ := proofFor(t, s)
		for _, e := range append(append([]edit(nil), common...), specific[s]...) {
			t.Run(string(s)+"/"+e.name, func(t *testing.T) {
				pub := p.PublicFor(ch)
				if err := v.Verify(s, pub, p.Bytes); err != nil {
					t.Fatalf("unaltered proof rejected: %v", err)
				}
				e.fn(&pub)
				err := v.Verify(s, pub, p.Bytes)
				if !errors.Is(err, circuits.ErrInvalidProof) {
					t.Fatalf("Verify with altered %s = %v, want ErrInvalidProof", e.name, err)
				}
			})
		}
	}
}

func TestVerifyErrors(t *testing.T) {
	v := verifier(t)
	p, ch, _ := proofFor(t, circuits.Age)
	pub := p.PublicFor(ch)
	vkRange, _ := v.VerifyingKey(circuits.Range)
	rp, rch, _ := proofFor(t, circuits.Range)
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"truncated proof", v.Verify(circuits.Age, pub, p.Bytes[:100]), circuits.ErrMalformedProof},
		{"trailing bytes", v.Verify(circuits.Age, pub, append(append([]byte(nil), p.Bytes...), 0)), circuits.ErrMalformedProof},
		{"garbage", v.Verify(circuits.Age, pub, make([]byte, len(p.Bytes))), circuits.ErrMalformedProof},
		{"unknown statement", v.Verify("height", pub, p.Bytes), circuits.ErrUnknownStatement},
		{"age proof as range", v.Verify(circuits.Range, rp.PublicFor(rch), p.Bytes), circuits.ErrInvalidProof},
		{"range key for age", circuits.Verify(circuits.Age, vkRange, pub, p.Bytes), circuits.ErrKeys},
		{"empty nonce", v.Verify(circuits.Age, func() circuits.Public { q := pub; q.Nonce = nil; return q }(), p.Bytes), circuits.ErrPublic},
		{"age on a code attribute", v.Verify(circuits.Age, func() circuits.Public { q := pub; q.Params.Attribute = "sex"; return q }(), p.Bytes), circuits.ErrParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("error = %v, want %v", tc.err, tc.want)
			}
		})
	}
}

func TestProveErrors(t *testing.T) {
	f := credentialtest.New(t, 10)
	pr := prover(t, circuits.Age)
	ch := challenge(t, f, circuits.Age)
	old, err := credential.AgeCutoff(f.Date, 40)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cred   *credential.Credential
		secret credential.Secret
		ch     func(circuits.Challenge) circuits.Challenge
		want   error
	}{
		{"too young", f.Credential, f.Secret, func(c circuits.Challenge) circuits.Challenge { c.Params.Cutoff = old; return c }, circuits.ErrNotSatisfied},
		{"absent attribute", f.Credential, f.Secret, func(c circuits.Challenge) circuits.Challenge { c.Params.Attribute = "last_visit"; return c }, circuits.ErrNotSatisfied},
		{"expired", f.Credential, f.Secret, func(c circuits.Challenge) circuits.Challenge { c.Date = f.Credential.Expiry + 1; return c }, credential.ErrExpired},
		{"wrong secret", f.Credential, f.OtherSecret, func(c circuits.Challenge) circuits.Challenge { return c }, credential.ErrHolder},
		{"range challenge", f.Credential, f.Secret, func(circuits.Challenge) circuits.Challenge { return challenge(t, f, circuits.Range) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pr.Prove(tc.cred, tc.secret, tc.ch(ch))
			if err == nil {
				t.Fatal("Prove succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestVerifyConcurrent checks that one Verifier serves concurrent requests
// (run with -race).
func TestVerifyConcurrent(t *testing.T) {
	v := verifier(t)
	p, ch, _ := proofFor(t, circuits.Member)
	good := p.PublicFor(ch)
	bad := good
	bad.Nonce = []byte("other")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			pub := good
			if i%2 == 1 {
				pub = bad
			}
			errs[i] = v.Verify(circuits.Member, pub, p.Bytes)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (i%2 == 0) != (err == nil) {
			t.Errorf("verification %d: %v", i, err)
		}
	}
}
