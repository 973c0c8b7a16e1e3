package eligibility_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/eligibility"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

const verifierOrg = "ins-v"

var (
	over18    = map[string]string{"attribute": "birth_date", "cutoff": "2008-03-01"}
	hba1c     = map[string]string{"attribute": "hba1c", "lo": "6.5", "hi": "14"}
	diabetes  = map[string]string{"attribute": "diagnosis", "set": "E11.9,E10.9,E13.9"}
	loadedAll = []circuits.CircuitInfo{
		{Statement: circuits.Age, Version: 1, VKHash: "vk-age", Setup: "dev"},
		{Statement: circuits.Range, Version: 1, VKHash: "vk-range", Setup: "dev"},
		{Statement: circuits.Member, Version: 1, VKHash: "vk-member", Setup: "dev"},
	}
)

// world is a Service over fakes: hosp-a's issuer key and every loaded
// circuit are registered; the verifier accepts every proof unless verify
// says otherwise.
type world struct {
	store  *memStore
	log    *fakeLog
	sync   *fakeSync
	issuer *credential.IssuerKey
	loaded []circuits.CircuitInfo
	verify func(s circuits.Statement, pub circuits.Public, proof []byte) error
	ready  error
	svc    *eligibility.Service
	chKey  ed25519.PrivateKey
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{store: newMemStore(), log: &fakeLog{}, sync: &fakeSync{}, issuer: newIssuer(t), loaded: loadedAll}
	w.store.log = w.log
	pub := w.issuer.Public()
	w.store.issuers[pub.ID()] = eligibility.Issuer{Org: "hosp-a", KeyID: pub.ID(), PublicKey: pub.String(), LedgerIndex: 1}
	for i, info := range loadedAll {
		w.store.circuits = append(w.store.circuits, eligibility.Circuit{Statement: string(info.Statement), Version: info.Version, VKHash: info.VKHash, Setup: info.Setup, LedgerIndex: uint64(2 + i)})
	}
	keys := fakeKeys{
		verifier: func(context.Context) (eligibility.Verifier, error) {
			if w.ready != nil {
				return nil, w.ready
			}
			return fakeVerifier{
				circuits: func() []circuits.CircuitInfo { return w.loaded },
				verify: func(s circuits.Statement, pub circuits.Public, proof []byte) error {
					if w.verify != nil {
						return w.verify(s, pub, proof)
					}
					return nil
				},
			}, nil
		},
		pkPath: func(s circuits.Statement) string { return "/keys/" + string(s) + ".pk" },
	}
	_, w.chKey, _ = ed25519.GenerateKey(nil)
	w.svc = eligibility.NewService(eligibility.Config{Store: w.store, Keys: keys, Log: w.log, Sync: w.sync, ChallengeKey: w.chKey,
		Issuers: fakeIssuers(func(_ context.Context, org string) (*credential.IssuerKey, error) {
			if org != "hosp-a" {
				return nil, errors.New("not an issuer")
			}
			return w.issuer, nil
		})})
	return w
}

type fakeIssuers func(ctx context.Context, org string) (*credential.IssuerKey, error)

func (f fakeIssuers) Key(ctx context.Context, org string) (*credential.IssuerKey, error) {
	return f(ctx, org)
}

func (w *world) challenge(t *testing.T, statement string, params map[string]string) circuits.Challenge {
	t.Helper()
	b, err := w.svc.NewChallenge(t.Context(), verifierOrg, statement, params, t0)
	if err != nil {
		t.Fatalf("challenge: %v", err)
	}
	ch, err := circuits.ParseChallenge(b)
	if err != nil {
		t.Fatalf("parse challenge: %v", err)
	}
	// Every challenge is the gateway's, for the verifier that asked,
	// scoped as the gateway derives it.
	if err := ch.Check(w.chKey.Public().(ed25519.PublicKey), verifierOrg); err != nil || ch.Scope != circuits.ScopeFor(verifierOrg) {
		t.Fatalf("challenge %+v: %v", ch, err)
	}
	return ch
}

// proof is a proof file answering ch with the given issuer key; its
// Groth16 bytes are well formed, and the fake verifier decides.
func proof(t *testing.T, ch circuits.Challenge, issuer *credential.IssuerKey) []byte {
	t.Helper()
	p := &circuits.Proof{
		Statement: ch.Statement, Version: ch.Statement.Version(), Challenge: ch.ID,
		Public: circuits.Public{Issuer: issuer.Public(), Params: ch.Params, Date: ch.Date, Scope: ch.Scope, Nonce: ch.Nonce,
			Nullifier: credential.Hash(credential.ScopeElement(ch.Scope))},
		Bytes: emptyGroth16(t),
	}
	b, err := circuits.MarshalProof(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withChallengeID(t *testing.T, proof []byte, id string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(proof, &m); err != nil {
		t.Fatal(err)
	}
	m["challenge"] = id
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerify covers the verification policy: the cases of the API's
// eligibility test, and those only fakes can reach. Every outcome, valid
// or refused, is logged with its reason.
func TestVerify(t *testing.T) {
	tests := []struct {
		name string
		// proof returns the proof to submit; it may change w.
		proof      func(t *testing.T, w *world) []byte
		now        time.Time // zero: t0 plus a minute
		wantReason eligibility.Reason
		wantIssuer string
	}{
		{name: "valid age proof", wantIssuer: "hosp-a",
			proof: func(t *testing.T, w *world) []byte { return proof(t, w.challenge(t, "age", over18), w.issuer) }},
		{name: "valid range proof", wantIssuer: "hosp-a",
			proof: func(t *testing.T, w *world) []byte { return proof(t, w.challenge(t, "range", hba1c), w.issuer) }},
		{name: "valid member proof for a challenge that names the set", wantIssuer: "hosp-a",
			proof: func(t *testing.T, w *world) []byte { return proof(t, w.challenge(t, "member", diabetes), w.issuer) }},
		{name: "replayed proof", wantReason: eligibility.ReasonChallengeUsed,
			proof: func(t *testing.T, w *world) []byte {
				p := proof(t, w.challenge(t, "age", over18), w.issuer)
				if res, err := w.svc.Verify(t.Context(), verifierOrg, p, t0); err != nil || !res.Valid {
					t.Fatalf("first use: %+v, %v", res, err)
				}
				return p
			}},
		{name: "unknown challenge", wantReason: eligibility.ReasonUnknownChallenge,
			proof: func(t *testing.T, w *world) []byte {
				return withChallengeID(t, proof(t, w.challenge(t, "age", over18), w.issuer), "0000000000000000")
			}},
		{name: "another verifier's challenge", wantReason: eligibility.ReasonUnknownChallenge,
			proof: func(t *testing.T, w *world) []byte {
				b, err := w.svc.NewChallenge(t.Context(), "other-v", "age", over18, t0)
				if err != nil {
					t.Fatal(err)
				}
				ch, err := circuits.ParseChallenge(b)
				if err != nil {
					t.Fatal(err)
				}
				return proof(t, ch, w.issuer)
			}},
		{name: "parameters that differ from the challenge", wantReason: eligibility.ReasonParams,
			proof: func(t *testing.T, w *world) []byte {
				ch := w.challenge(t, "age", over18)
				var err error
				if ch.Params, err = circuits.ParseParams(circuits.Age, map[string]string{"attribute": "birth_date", "cutoff": "2020-01-01"}); err != nil {
					t.Fatal(err)
				}
				return proof(t, ch, w.issuer)
			}},
		{name: "a member proof for another set", wantReason: eligibility.ReasonParams,
			proof: func(t *testing.T, w *world) []byte {
				ch := w.challenge(t, "member", diabetes)
				var err error
				if ch.Params, err = circuits.ParseParams(circuits.Member, map[string]string{"attribute": "diagnosis", "set": "E11.9,E10.9,I10"}); err != nil {
					t.Fatal(err)
				}
				return proof(t, ch, w.issuer)
			}},
		{name: "a proof for another statement", wantReason: eligibility.ReasonStatement,
			proof: func(t *testing.T, w *world) []byte {
				other := w.challenge(t, "range", hba1c)
				return withChallengeID(t, proof(t, w.challenge(t, "age", over18), w.issuer), other.ID)
			}},
		{name: "an unregistered issuer", wantReason: eligibility.ReasonIssuer,
			proof: func(t *testing.T, w *world) []byte { return proof(t, w.challenge(t, "age", over18), newIssuer(t)) }},
		{name: "an issuer key ID registered with another key", wantReason: eligibility.ReasonIssuer,
			proof: func(t *testing.T, w *world) []byte {
				pub := w.issuer.Public()
				iss := w.store.issuers[pub.ID()]
				iss.PublicKey = newIssuer(t).Public().String()
				w.store.issuers[pub.ID()] = iss
				return proof(t, w.challenge(t, "age", over18), w.issuer)
			}},
		{name: "expired challenge", wantReason: eligibility.ReasonChallengeExpired, now: t0.Add(eligibility.DefaultChallengeTTL + time.Minute),
			proof: func(t *testing.T, w *world) []byte { return proof(t, w.challenge(t, "age", over18), w.issuer) }},
		{name: "a loaded key that is not the registered one", wantReason: eligibility.ReasonCircuit, wantIssuer: "hosp-a",
			proof: func(t *testing.T, w *world) []byte {
				w.loaded = []circuits.CircuitInfo{{Statement: circuits.Age, Version: 1, VKHash: "vk-other", Setup: "dev"}}
				return proof(t, w.challenge(t, "age", over18), w.issuer)
			}},
		{name: "no key loaded for the statement", wantReason: eligibility.ReasonCircuit, wantIssuer: "hosp-a",
			proof: func(t *testing.T, w *world) []byte {
				w.loaded = loadedAll[1:]
				return proof(t, w.challenge(t, "age", over18), w.issuer)
			}},
		{name: "a statement with no registered circuit", wantReason: eligibility.ReasonCircuit, wantIssuer: "hosp-a",
			proof: func(t *testing.T, w *world) []byte {
				w.store.circuits = w.store.circuits[1:]
				return proof(t, w.challenge(t, "age", over18), w.issuer)
			}},
		{name: "a proof that does not verify", wantReason: eligibility.ReasonInvalid, wantIssuer: "hosp-a",
			proof: func(t *testing.T, w *world) []byte {
				w.verify = func(circuits.Statement, circuits.Public, []byte) error { return circuits.ErrInvalidProof }
				return proof(t, w.challenge(t, "age", over18), w.issuer)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			p := tt.proof(t, w)
			before := len(w.log.proofs())
			now := tt.now
			if now.IsZero() {
				now = t0.Add(time.Minute)
			}
			got, err := w.svc.Verify(t.Context(), verifierOrg, p, now)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Valid != (tt.wantReason == "") || got.Reason != tt.wantReason || got.Issuer != tt.wantIssuer {
				t.Errorf("got valid %v reason %q issuer %q, want reason %q issuer %q", got.Valid, got.Reason, got.Issuer, tt.wantReason, tt.wantIssuer)
			}
			if got.Reason != "" && got.Reason.Message() == "" {
				t.Errorf("reason %q has no message", got.Reason)
			}
			logged := w.log.proofs()
			if len(logged) != before+1 {
				t.Fatalf("%d proof.verified entries logged, want 1", len(logged)-before)
			}
			e := logged[len(logged)-1]
			if e.Valid != got.Valid || e.Reason != string(got.Reason) || e.Verifier != verifierOrg || e.Proven == nil || *e.Proven != got.Valid {
				t.Errorf("logged %+v for result %+v", e, got)
			}
			// A valid proof's values are proven; a refused proof's only
			// claimed, and marked so.
			proven := [2]string{e.Issuer, e.Nullifier}
			claimed := [2]string{e.ClaimedIssuer, e.ClaimedNullifier}
			if want := [2]string{got.Issuer, got.Nullifier}; got.Valid && (proven != want || claimed != [2]string{}) || !got.Valid && (claimed != want || proven != [2]string{}) {
				t.Errorf("valid %v: logged proven %q, claimed %q; result %q", got.Valid, proven, claimed, want)
			}
			if got.LedgerIndex != uint64(len(w.log.entries)-1) {
				t.Errorf("ledger index %d, want %d", got.LedgerIndex, len(w.log.entries)-1)
			}
			if w.sync.calls == 0 {
				t.Error("Verify did not catch up with the log")
			}
		})
	}
}

// TestVerifyAgainstTheChallenge: the verifier checks the proof against
// the gateway's own challenge (params with the set, date, scope, nonce),
// and the issuer and nullifier from the proof.
func TestVerifyAgainstTheChallenge(t *testing.T) {
	w := newWorld(t)
	ch := w.challenge(t, "member", diabetes)
	var got circuits.Public
	w.verify = func(s circuits.Statement, pub circuits.Public, _ []byte) error {
		got = pub
		return nil
	}
	if res, err := w.svc.Verify(t.Context(), verifierOrg, proof(t, ch, w.issuer), t0); err != nil || !res.Valid {
		t.Fatalf("Verify: %+v, %v", res, err)
	}
	if got.Scope != verifierOrg || got.Date != ch.Date || !bytes.Equal(got.Nonce, ch.Nonce) || !got.Issuer.Equal(w.issuer.Public()) {
		t.Errorf("verified against %+v, want the challenge's values", got)
	}
	if diff := cmp.Diff(ch.Params.Map(circuits.Member), got.Params.Map(circuits.Member)); diff != "" {
		t.Errorf("params (-challenge +verified):\n%s", diff)
	}
}

// TestVerifyErrors: a malformed proof, missing keys and failures of the
// store or the log are errors, not refusals: nothing is logged and the
// prover is not blamed.
func TestVerifyErrors(t *testing.T) {
	boom := errors.New("database is down")
	tests := []struct {
		name    string
		setup   func(w *world)
		proof   func(t *testing.T, w *world) []byte
		wantErr error
	}{
		{name: "malformed proof", wantErr: circuits.ErrFile,
			proof: func(*testing.T, *world) []byte { return []byte(`{"statement":"age"`) }},
		{name: "truncated Groth16 bytes", wantErr: circuits.ErrFile,
			proof: func(t *testing.T, w *world) []byte {
				var m map[string]any
				json.Unmarshal(proof(t, w.challenge(t, "age", over18), w.issuer), &m)
				m["proof"] = "AAAA"
				b, _ := json.Marshal(m)
				return b
			}},
		{name: "no keys yet", wantErr: eligibility.ErrNotReady, setup: func(w *world) { w.ready = eligibility.ErrNotReady }},
		{name: "catch-up fails", wantErr: boom, setup: func(w *world) { w.sync.fail = boom }},
		{name: "challenge store fails", wantErr: boom, setup: func(w *world) { w.store.failUse = boom }},
		{name: "issuer store fails", wantErr: boom, setup: func(w *world) { w.store.failIssuer = boom }},
		{name: "circuit store fails", wantErr: boom, setup: func(w *world) { w.store.failCircuits = boom }},
		{name: "log fails", wantErr: boom, setup: func(w *world) { w.log.fail = boom }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			var p []byte
			if tt.proof != nil {
				p = tt.proof(t, w)
			} else {
				p = proof(t, w.challenge(t, "age", over18), w.issuer)
			}
			if tt.setup != nil {
				tt.setup(w)
			}
			res, err := w.svc.Verify(t.Context(), verifierOrg, p, t0)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify: %+v, %v; want %v", res, err, tt.wantErr)
			}
			if n := len(w.log.proofs()); n != 0 {
				t.Errorf("%d proof.verified entries logged for an error", n)
			}
		})
	}
}

func TestNewChallenge(t *testing.T) {
	w := newWorld(t)
	ch := w.challenge(t, "member", diabetes)
	stored := w.store.challenges[ch.ID]
	want := eligibility.Challenge{
		ID: ch.ID, Verifier: verifierOrg, Statement: "member", Params: ch.Params.Map(circuits.Member), Nonce: ch.Nonce,
		Scope: verifierOrg, Date: uint64(ch.Date), CreatedAt: t0, ExpiresAt: t0.Add(eligibility.DefaultChallengeTTL),
	}
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("stored challenge (-want +got):\n%s", diff)
	}
	if len(ch.Nonce) != 32 || !ch.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("challenge nonce %d bytes, expires %v", len(ch.Nonce), ch.ExpiresAt)
	}
	if other := w.challenge(t, "member", diabetes); other.ID == ch.ID || bytes.Equal(other.Nonce, ch.Nonce) {
		t.Error("two challenges share an ID or nonce")
	}

	for _, tt := range []struct {
		name      string
		statement string
		params    map[string]string
		ready     error
		wantErr   error
	}{
		{"unknown statement", "height", over18, nil, circuits.ErrUnknownStatement},
		{"bad params", "age", map[string]string{"attribute": "birth_date", "cutoff": "yesterday"}, nil, circuits.ErrParams},
		{"a parameter the statement does not take", "age", map[string]string{"attribute": "birth_date", "cutoff": "2008-01-01", "lo": "1"}, nil, circuits.ErrParams},
		{"no keys yet", "age", over18, eligibility.ErrNotReady, eligibility.ErrNotReady},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.ready = tt.ready
			if _, err := w.svc.NewChallenge(t.Context(), verifierOrg, tt.statement, tt.params, t0); !errors.Is(err, tt.wantErr) {
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
			if len(w.store.challenges) != 0 {
				t.Error("a refused challenge was stored")
			}
		})
	}
}

func TestIssueCredential(t *testing.T) {
	w := newWorld(t)
	secret, err := credential.NewSecret(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	holder := credential.FormatElement(secret.Commitment())
	attrs := map[string]string{"birth_date": "1990-04-01", "hba1c": "7.1"}
	b, err := w.svc.IssueCredential(t.Context(), "hosp-a", eligibility.CredentialRequest{Holder: holder, Attributes: attrs, Expires: "2027-01-01"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := credential.ParseCredential(b)
	if err != nil {
		t.Fatal(err)
	}
	if !cred.Issuer.Equal(w.issuer.Public()) || cred.Schema != credential.PatientV1 {
		t.Errorf("credential issued by %v with schema %s", cred.Issuer, cred.Schema.Name)
	}
	if err := cred.Check(secret, credential.Day(0)+1); err != nil {
		t.Errorf("the credential does not check for its holder: %v", err)
	}

	var ve *eligibility.ValidationError
	for _, tt := range []struct {
		name    string
		req     eligibility.CredentialRequest
		wantErr func(error) bool
	}{
		{"bad holder", eligibility.CredentialRequest{Holder: "zz", Attributes: attrs, Expires: "2027-01-01"}, func(err error) bool { return errors.As(err, &ve) }},
		{"bad expiry", eligibility.CredentialRequest{Holder: holder, Attributes: attrs, Expires: "soon"}, func(err error) bool { return errors.As(err, &ve) }},
		{"expired on issue", eligibility.CredentialRequest{Holder: holder, Attributes: attrs, Expires: "2026-02-28"}, func(err error) bool { return errors.As(err, &ve) }},
		{"unknown schema", eligibility.CredentialRequest{Holder: holder, Schema: "nope", Attributes: attrs, Expires: "2027-01-01"}, func(err error) bool { return errors.Is(err, credential.ErrUnknownSchema) }},
		{"unknown attribute", eligibility.CredentialRequest{Holder: holder, Attributes: map[string]string{"shoe_size": "44"}, Expires: "2027-01-01"}, func(err error) bool { return errors.Is(err, credential.ErrUnknownAttribute) }},
		{"bad date", eligibility.CredentialRequest{Holder: holder, Attributes: map[string]string{"birth_date": "1990-13-45"}, Expires: "2027-01-01"}, func(err error) bool { return err != nil && !errors.As(err, &ve) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := w.svc.IssueCredential(t.Context(), "hosp-a", tt.req, t0); !tt.wantErr(err) {
				t.Errorf("got %v", err)
			}
		})
	}
	if _, err := w.svc.IssueCredential(t.Context(), "ins-v", eligibility.CredentialRequest{Holder: holder, Attributes: attrs, Expires: "2027-01-01"}, t0); err == nil {
		t.Error("a credential was issued without an issuer key")
	}
}

func TestCircuitsAndProvingKeys(t *testing.T) {
	w := newWorld(t)
	w.loaded = []circuits.CircuitInfo{loadedAll[0], {Statement: circuits.Range, Version: 1, VKHash: "vk-not-registered"}}
	list, err := w.svc.Circuits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range list {
		got[c.Statement] = c.Loaded
	}
	if diff := cmp.Diff(map[string]bool{"age": true, "range": false, "member": false}, got); diff != "" {
		t.Errorf("loaded (-want +got):\n%s", diff)
	}
	if w.sync.calls == 0 {
		t.Error("Circuits did not catch up with the log")
	}
	if p, err := w.svc.ProvingKeyPath(t.Context(), "age"); err != nil || p != "/keys/age.pk" {
		t.Errorf("proving key path: %q, %v", p, err)
	}
	if _, err := w.svc.ProvingKeyPath(t.Context(), "../../etc/passwd"); !errors.Is(err, eligibility.ErrNotFound) {
		t.Errorf("unknown statement: %v, want ErrNotFound", err)
	}
	w.ready = eligibility.ErrNotReady
	if _, err := w.svc.ProvingKeyPath(t.Context(), "age"); !errors.Is(err, eligibility.ErrNotReady) {
		t.Errorf("no keys: %v, want ErrNotReady", err)
	}
	if list, err := w.svc.Circuits(t.Context()); err != nil || len(list) != 3 || list[0].Loaded {
		t.Errorf("circuits without keys: %+v, %v; want all registered, none loaded", list, err)
	}
}
