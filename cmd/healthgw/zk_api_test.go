package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/eligibility"
	"github.com/healthgw/healthgw/ledger"
)

// Development Groth16 keys for age and range, made once per test process
// (a setup takes seconds).
var (
	zkKeysOnce sync.Once
	zkKeysDir  string
	zkKeysErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if zkKeysDir != "" {
		os.RemoveAll(filepath.Dir(zkKeysDir))
	}
	os.Exit(code)
}

func devZKKeys(t *testing.T) string {
	t.Helper()
	zkKeysOnce.Do(func() {
		dir, err := os.MkdirTemp("", "healthgw-zk-test-")
		if err != nil {
			zkKeysErr = err
			return
		}
		zkKeysDir = filepath.Join(dir, "zk")
		_, zkKeysErr = circuits.SetupDevKeys(t.Context(), zkKeysDir, []circuits.Statement{circuits.Age, circuits.Range, circuits.Member}, io.Discard)
	})
	if zkKeysErr != nil {
		t.Fatalf("development keys: %v", zkKeysErr)
	}
	return zkKeysDir
}

// zkWorld is a gateway with keys, a hospital, a verifier and a patient
// holding an over-18 credential.
type zkWorld struct {
	*testGateway
	htok, vtok string
	secret     credential.Secret
	cred       []byte
	prover     *circuits.Prover
}

func newZKWorld(t *testing.T) *zkWorld {
	dir := devZKKeys(t)
	g := newTestGateway(t, func(c *serveConfig) { c.ZKKeys = dir })
	w := &zkWorld{testGateway: g}
	w.htok = g.token(g.register("hosp-a", auth.KindHospital), "")
	w.vtok = g.token(g.register("ins-v", auth.KindVerifier), "")
	var err error
	if w.secret, err = credential.NewSecret(rand.Reader); err != nil {
		t.Fatal(err)
	}
	w.cred = w.issue(w.htok, "1990-04-01")
	if w.prover, err = circuits.LoadProver(dir, circuits.Age, io.Discard); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *zkWorld) issue(token, birth string) []byte {
	w.t.Helper()
	status, body := w.do("POST", "/v1/credentials", token, map[string]any{
		"holder":     credential.FormatElement(w.secret.Commitment()),
		"attributes": map[string]string{"birth_date": birth, "hba1c": "7.1"},
		"expires":    time.Now().AddDate(1, 0, 0).UTC().Format(time.DateOnly),
	})
	if status != http.StatusCreated {
		w.t.Fatalf("issue credential: %d %s", status, body)
	}
	return body
}

func (w *zkWorld) challenge(statement string, params map[string]string) circuits.Challenge {
	w.t.Helper()
	status, body := w.do("POST", "/v1/proofs/challenges", w.vtok, map[string]any{"statement": statement, "params": params})
	if status != http.StatusCreated {
		w.t.Fatalf("challenge: %d %s", status, body)
	}
	ch, err := circuits.ParseChallenge(body)
	if err != nil {
		w.t.Fatalf("parse challenge: %v", err)
	}
	return ch
}

func (w *zkWorld) prove(credFile []byte, ch circuits.Challenge) []byte {
	w.t.Helper()
	cred, err := credential.ParseCredential(credFile)
	if err != nil {
		w.t.Fatal(err)
	}
	p, err := w.prover.Prove(cred, w.secret, ch)
	if err != nil {
		w.t.Fatalf("prove: %v", err)
	}
	b, err := circuits.MarshalProof(p)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

type verifyResult struct {
	Valid     bool   `json:"valid"`
	Statement string `json:"statement"`
	Issuer    string `json:"issuer"`
	Nullifier string `json:"nullifier"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
}

func (w *zkWorld) verify(proof []byte) verifyResult {
	w.t.Helper()
	status, body := w.do("POST", "/v1/proofs/verify", w.vtok, proof)
	if status != http.StatusOK {
		w.t.Fatalf("verify: %d %s", status, body)
	}
	return decode[verifyResult](w.t, body)
}

var over18 = map[string]string{"attribute": "birth_date", "cutoff": time.Now().AddDate(-18, 0, 0).UTC().Format(time.DateOnly)}

// TestZKEligibility: a hospital issues a credential, the patient proves
// "over 18" to a verifier; replays, reused or expired challenges,
// parameters that differ from the challenge, an unregistered issuer and a
// proof for another statement are each refused with a reason and logged.
func TestZKEligibility(t *testing.T) {
	if testing.Short() {
		t.Skip("Groth16 setup and proving")
	}
	w := newZKWorld(t)
	ch := w.challenge("age", over18)
	proof := w.prove(w.cred, ch)
	got := w.verify(proof)
	if !got.Valid || got.Issuer != "hosp-a" || got.Statement != "age" || got.Nullifier == "" {
		t.Fatalf("valid proof: %+v", got)
	}
	refusals := []struct {
		name   string
		proof  func() []byte
		reason string
	}{
		{"replayed proof", func() []byte { return proof }, "challenge.used"},
		{"a fresh proof for a challenge already used", func() []byte { return w.prove(w.cred, ch) }, "challenge.used"},
		{"unknown challenge", func() []byte {
			var p map[string]any
			json.Unmarshal(proof, &p)
			p["challenge"] = "0000000000000000"
			b, _ := json.Marshal(p)
			return b
		}, "challenge.unknown"},
		{"parameters that differ from the challenge", func() []byte {
			// The holder proves a weaker policy (born before 2020) under a
			// real challenge's ID.
			forged := w.challenge("age", over18)
			var err error
			if forged.Params, err = circuits.ParseParams(circuits.Age, map[string]string{"attribute": "birth_date", "cutoff": "2020-01-01"}); err != nil {
				t.Fatal(err)
			}
			return w.prove(w.cred, forged)
		}, "params.mismatch"},
		{"a proof for another statement", func() []byte {
			rch := w.challenge("range", map[string]string{"attribute": "hba1c", "lo": "6.5", "hi": "14"})
			var p map[string]any
			json.Unmarshal(proof, &p)
			p["challenge"] = rch.ID
			b, _ := json.Marshal(p)
			return b
		}, "statement.mismatch"},
		{"an unregistered issuer", func() []byte {
			key, err := credential.GenerateIssuerKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			birth, _ := credential.ParseDay("1990-04-01")
			exp, _ := credential.DayOf(time.Now().AddDate(1, 0, 0))
			var attrs credential.Attributes
			attrs[0] = uint64(birth)
			c, err := credential.Issue(key, w.secret.Commitment(), credential.PatientV1, attrs, exp)
			if err != nil {
				t.Fatal(err)
			}
			cf, _ := credential.MarshalCredential(c)
			return w.prove(cf, w.challenge("age", over18))
		}, "issuer.unregistered"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			got := w.verify(tt.proof())
			if got.Valid || got.Reason != tt.reason || got.Message == "" {
				t.Errorf("got %+v, want refused with %s", got, tt.reason)
			}
		})
	}
	t.Run("expired challenge", func(t *testing.T) {
		ch := w.challenge("age", over18)
		p := w.prove(w.cred, ch)
		// The gateway's clock moves past the challenge's expiry.
		w.api.SetClock(func() time.Time { return time.Now().Add(eligibility.DefaultChallengeTTL + time.Minute) })
		defer w.api.SetClock(time.Now)
		if got := w.verify(p); got.Valid || got.Reason != "challenge.expired" {
			t.Errorf("got %+v, want challenge.expired", got)
		}
	})
	// Every verification, valid or refused, is on the ledger.
	var valid, refused int
	for _, e := range w.entries(ledger.TypeProofVerified) {
		if e.Body.(*ledger.ProofVerified).Valid {
			valid++
		} else {
			refused++
		}
	}
	if valid != 1 || refused != len(refusals)+1 {
		t.Errorf("ledger holds %d valid and %d refused verifications, want 1 and %d", valid, refused, len(refusals)+1)
	}
	// Issuer and circuits are registered on the ledger.
	if n := len(w.entries(ledger.TypeIssuerRegistered)); n != 1 {
		t.Errorf("%d issuer.registered entries, want 1", n)
	}
	status, body := w.do("GET", "/v1/circuits", w.vtok, nil)
	var cl struct {
		Circuits []struct {
			Statement string `json:"statement"`
			Loaded    bool   `json:"loaded"`
			Setup     string `json:"setup"`
		} `json:"circuits"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &cl) != nil || len(cl.Circuits) != 3 || !cl.Circuits[0].Loaded || cl.Circuits[0].Setup != "dev" {
		t.Errorf("GET /v1/circuits: %d %s", status, body)
	}
	if status, body := w.do("GET", "/v1/circuits/age/proving-key", w.vtok, nil); status != http.StatusOK || len(body) < 1000 {
		t.Errorf("proving key download: %d, %d bytes", status, len(body))
	}
	w.verifyLedger()
}

// TestZKMemberSetInChallenge: an honest member proof answers a challenge
// whose parameters name the set (not only its root). Proof files carry the
// root; the gateway compares what the proof binds, so it is valid.
func TestZKMemberSetInChallenge(t *testing.T) {
	if testing.Short() {
		t.Skip("Groth16 setup and proving")
	}
	w := newZKWorld(t)
	status, credFile := w.do("POST", "/v1/credentials", w.htok, map[string]any{
		"holder":     credential.FormatElement(w.secret.Commitment()),
		"attributes": map[string]string{"birth_date": "1990-04-01", "diagnosis": "E11.9"},
		"expires":    time.Now().AddDate(1, 0, 0).UTC().Format(time.DateOnly),
	})
	if status != http.StatusCreated {
		t.Fatalf("issue credential: %d %s", status, credFile)
	}
	prover, err := circuits.LoadProver(devZKKeys(t), circuits.Member, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ch := w.challenge("member", map[string]string{"attribute": "diagnosis", "set": "E11.9,E10.9,E13.9"})
	cred, err := credential.ParseCredential(credFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := prover.Prove(cred, w.secret, ch)
	if err != nil {
		t.Fatalf("prove: %v", err)
	}
	b, err := circuits.MarshalProof(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.verify(b); !got.Valid || got.Statement != "member" || got.Issuer != "hosp-a" {
		t.Errorf("honest member proof: %+v, want valid", got)
	}
	w.verifyLedger()
}

// TestZKBadInput: malformed requests get 400 and nothing is logged;
// callers of the wrong kind get 403; no keys yet gives 503.
func TestZKBadInput(t *testing.T) {
	g := newTestGateway(t, func(c *serveConfig) { c.ZKKeys = filepath.Join(t.TempDir(), "none") })
	htok := g.token(g.register("hosp-a", auth.KindHospital), "")
	vtok := g.token(g.register("ins-v", auth.KindVerifier), "")
	holder := credential.FormatElement(credential.Element{})
	for _, tt := range []struct {
		name   string
		path   string
		token  string
		body   any
		status int
	}{
		{"no keys yet", "/v1/proofs/challenges", vtok, map[string]any{"statement": "age", "params": over18}, 503},
		{"unknown statement", "/v1/proofs/challenges", vtok, map[string]any{"statement": "height", "params": over18}, 400},
		{"bad params", "/v1/proofs/challenges", vtok, map[string]any{"statement": "age", "params": map[string]string{"attribute": "birth_date", "cutoff": "yesterday"}}, 400},
		{"hospital asks for a challenge", "/v1/proofs/challenges", htok, map[string]any{"statement": "age", "params": over18}, 403},
		{"verifier issues a credential", "/v1/credentials", vtok, map[string]any{"holder": holder, "attributes": map[string]string{"birth_date": "1990-01-01"}, "expires": "2099-01-01"}, 403},
		{"bad holder", "/v1/credentials", htok, map[string]any{"holder": "zz", "attributes": map[string]string{"birth_date": "1990-01-01"}, "expires": "2099-01-01"}, 400},
		{"unknown attribute", "/v1/credentials", htok, map[string]any{"holder": holder, "attributes": map[string]string{"shoe_size": "44"}, "expires": "2099-01-01"}, 400},
		{"bad date", "/v1/credentials", htok, map[string]any{"holder": holder, "attributes": map[string]string{"birth_date": "1990-13-45"}, "expires": "2099-01-01"}, 400},
		{"expired on issue", "/v1/credentials", htok, map[string]any{"holder": holder, "attributes": map[string]string{"birth_date": "1990-01-01"}, "expires": "2001-01-01"}, 400},
		{"malformed proof", "/v1/proofs/verify", vtok, `{"statement":"age"`, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := g.size()
			status, body := g.do("POST", tt.path, tt.token, tt.body)
			if status != tt.status {
				t.Errorf("got %d %s, want %d", status, body, tt.status)
			}
			if g.size() != before {
				t.Errorf("ledger grew on a refused request")
			}
		})
	}
}

// gatewayChallengeKey is the challenge key the gateway publishes in its
// JWK Set.
func (w *zkWorld) gatewayChallengeKey() ed25519.PublicKey {
	w.t.Helper()
	status, body := w.do("GET", "/.well-known/jwks.json", "", nil)
	if status != http.StatusOK {
		w.t.Fatalf("jwks: %d %s", status, body)
	}
	f := filepath.Join(w.t.TempDir(), "jwks.json")
	if err := os.WriteFile(f, body, 0o600); err != nil {
		w.t.Fatal(err)
	}
	k, err := readChallengeKey(f)
	if err != nil {
		w.t.Fatal(err)
	}
	return k
}

// TestZKChallengeBoundToVerifier: the gateway signs every challenge and
// scopes it to the verifier that asked; the prover refuses, before
// proving, a challenge that verifier V2 hands a patient but that is scoped
// to V1 (genuine or rewritten), so V2 cannot link the patient's
// nullifiers at V1. A refused proof's proof.verified entry marks its
// values as claimed, not proven.
func TestZKChallengeBoundToVerifier(t *testing.T) {
	w := newZKWorld(t)
	v2tok := w.token(w.register("ins-v2", auth.KindVerifier), "")
	gw := w.gatewayChallengeKey()
	cred, err := credential.ParseCredential(w.cred)
	if err != nil {
		t.Fatal(err)
	}

	v1ch := w.challenge("age", over18) // issued to ins-v
	if err := v1ch.Check(gw, "ins-v"); err != nil || v1ch.Verifier != "ins-v" || v1ch.Scope != circuits.ScopeFor("ins-v") {
		t.Fatalf("V1's challenge %+v: %v", v1ch, err)
	}
	status, body := w.do("POST", "/v1/proofs/challenges", v2tok, map[string]any{"statement": "age", "params": over18})
	if status != http.StatusCreated {
		t.Fatalf("V2's challenge: %d %s", status, body)
	}
	v2ch, err := circuits.ParseChallenge(body)
	if err != nil {
		t.Fatal(err)
	}
	if v2ch.Verifier != "ins-v2" || v2ch.Scope != circuits.ScopeFor("ins-v2") {
		t.Fatalf("V2's challenge is not scoped to V2: %+v", v2ch)
	}
	rewritten := v2ch
	rewritten.Scope = circuits.ScopeFor("ins-v")
	relabelled := v2ch
	relabelled.Verifier, relabelled.Scope = "ins-v", circuits.ScopeFor("ins-v")
	for _, tt := range []struct {
		name string
		ch   circuits.Challenge
		want error
	}{
		{"V1's challenge handed out by V2", v1ch, circuits.ErrChallengeScope},
		{"V2's challenge rewritten to V1's scope", rewritten, circuits.ErrChallengeSignature},
		{"V2's challenge relabelled as V1's", relabelled, circuits.ErrChallengeSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := w.prover.ProveChallenge(cred, w.secret, tt.ch, circuits.Trust{GatewayKey: gw, Verifier: "ins-v2"}); !errors.Is(err, tt.want) {
				t.Errorf("prove to V2: %v, want %v", err, tt.want)
			}
		})
	}

	// A valid proof, then the same proof again (refused: the challenge is
	// used up).
	p, err := w.prover.ProveChallenge(cred, w.secret, v1ch, circuits.Trust{GatewayKey: gw, Verifier: "ins-v"})
	if err != nil {
		t.Fatalf("prove V1's challenge to V1: %v", err)
	}
	pb, err := circuits.MarshalProof(p)
	if err != nil {
		t.Fatal(err)
	}
	first, again := w.verify(pb), w.verify(pb)
	if !first.Valid || again.Valid {
		t.Fatalf("verify: %+v then %+v", first, again)
	}
	es := w.entries(ledger.TypeProofVerified)
	if len(es) < 2 {
		t.Fatalf("%d proof.verified entries", len(es))
	}
	ok, refused := es[len(es)-2].Body.(*ledger.ProofVerified), es[len(es)-1].Body.(*ledger.ProofVerified)
	if !ok.Valid || ok.Proven == nil || !*ok.Proven || ok.Nullifier != first.Nullifier || ok.ClaimedNullifier != "" {
		t.Errorf("valid proof logged as %+v", ok)
	}
	if refused.Valid || refused.Proven == nil || *refused.Proven || refused.Nullifier != "" || refused.Issuer != "" || refused.ClaimedNullifier != first.Nullifier {
		t.Errorf("refused proof logged as %+v", refused)
	}
}
