package eligibility_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/eligibility"
)

func (w *world) credentialFile(t *testing.T, expires string) []byte {
	t.Helper()
	s, err := credential.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.svc.IssueCredential(t.Context(), "hosp-a", eligibility.CredentialRequest{
		Holder:     credential.FormatElement(s.Commitment()),
		Attributes: map[string]string{"birth_date": "1990-04-01", "hba1c": "7.1"},
		Expires:    expires,
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInspectCredential: a holder's credential file is checked (issuer's
// signature) and its issuer looked up; an altered or foreign file is
// refused and nothing is logged.
func TestInspectCredential(t *testing.T) {
	w := newWorld(t)
	file := w.credentialFile(t, "2027-12-31")
	h, err := w.svc.InspectCredential(t.Context(), file, t0)
	if err != nil || !h.Registered || h.Issuer.Org != "hosp-a" || !h.Valid || h.Credential.Expiry.String() != "2027-12-31" {
		t.Fatalf("InspectCredential = %+v, %v; want registered hosp-a, valid", h, err)
	}
	if h, err := w.svc.InspectCredential(t.Context(), file, time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || h.Valid {
		t.Errorf("the day after its expiry: %+v, %v; want not valid", h, err)
	}
	if h, err := w.svc.InspectCredential(t.Context(), file, time.Date(2027, 12, 31, 23, 59, 0, 0, time.UTC)); err != nil || !h.Valid {
		t.Errorf("on its last day: %+v, %v; want valid", h, err)
	}
	// An issuer whose key is not on the ledger.
	other := newIssuer(t)
	s, _ := credential.NewSecret(rand.Reader)
	attrs, _ := credential.PatientV1.Parse(map[string]string{"birth_date": "1990-04-01"})
	exp, _ := credential.ParseDay("2027-12-31")
	c, err := credential.Issue(other, s.Commitment(), credential.PatientV1, attrs, exp)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := credential.MarshalCredential(c)
	if h, err := w.svc.InspectCredential(t.Context(), foreign, t0); err != nil || h.Registered {
		t.Errorf("unregistered issuer: %+v, %v; want shown, not registered", h, err)
	}
	for name, b := range map[string][]byte{
		"altered":  regexp.MustCompile(`"birth_date": "[0-9]+"`).ReplaceAll(file, []byte(`"birth_date": "1"`)),
		"not JSON": []byte("hello"),
		"empty":    nil,
	} {
		if name == "altered" && bytes.Equal(b, file) {
			t.Fatal("the test did not alter the file")
		}
		if _, err := w.svc.InspectCredential(t.Context(), b, t0); !errors.Is(err, eligibility.ErrNotCredential) {
			t.Errorf("%s credential: %v, want ErrNotCredential", name, err)
		}
	}
	if n := len(w.log.entries); n != 0 {
		t.Errorf("inspecting credentials logged %d entries, want 0", n)
	}
}

// TestCheckChallenge: the holder's check accepts only an open challenge of
// this gateway, unchanged; it names every way one is refused.
func TestCheckChallenge(t *testing.T) {
	w := newWorld(t)
	ch := w.challenge(t, "age", over18)
	file, err := circuits.MarshalChallenge(ch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.svc.CheckChallenge(t.Context(), file, t0)
	if err != nil || got.ID != ch.ID || got.Verifier != verifierOrg {
		t.Fatalf("CheckChallenge = %+v, %v", got, err)
	}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	resigned := ch
	if err := resigned.Sign(otherKey); err != nil {
		t.Fatal(err)
	}
	unknown := ch
	unknown.ID = "ffffffffffffffff"
	if err := unknown.Sign(w.chKey); err != nil {
		t.Fatal(err)
	}
	marshal := func(c circuits.Challenge) []byte {
		b, err := circuits.MarshalChallenge(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct {
		name string
		file []byte
		now  time.Time
		want error
	}{
		{"tampered", bytes.Replace(file, []byte(`"cutoff": "2008-03-01"`), []byte(`"cutoff": "2020-03-01"`), 1), t0, circuits.ErrChallengeSignature},
		{"signed by another key", marshal(resigned), t0, circuits.ErrChallengeSignature},
		{"not issued by this gateway", marshal(unknown), t0, eligibility.ErrNotFound},
		{"expired", file, t0.Add(eligibility.DefaultChallengeTTL), eligibility.ErrChallengeExpired},
		{"not a challenge", []byte(`{"statement": "age"}`), t0, eligibility.ErrNotChallenge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := w.svc.CheckChallenge(t.Context(), tt.file, tt.now); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := w.svc.Answer(t.Context(), got, proof(t, got, w.issuer), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.CheckChallenge(t.Context(), file, t0); !errors.Is(err, eligibility.ErrChallengeUsed) {
		t.Errorf("an answered challenge: %v, want ErrChallengeUsed", err)
	}
}

// TestAnswer: a holder's proof handed to the gateway is verified for the
// challenge's verifier, once, and logged; the verifier reads what became
// of its challenge. A proof of another challenge uses nothing up.
func TestAnswer(t *testing.T) {
	w := newWorld(t)
	ch := w.challenge(t, "age", over18)
	other := w.challenge(t, "age", over18)
	status := func(id string, now time.Time) eligibility.ChallengeStatus {
		t.Helper()
		st, err := w.svc.ChallengeStatus(t.Context(), verifierOrg, id, now)
		if err != nil {
			t.Fatalf("ChallengeStatus(%s): %v", id, err)
		}
		return st
	}
	if st := status(ch.ID, t0); st.State != eligibility.StateOpen || st.Outcome != nil {
		t.Fatalf("before the answer: %+v, want open", st)
	}
	if _, err := w.svc.Answer(t.Context(), ch, proof(t, other, w.issuer), t0); !errors.Is(err, eligibility.ErrOtherChallenge) {
		t.Errorf("a proof of another challenge: %v, want ErrOtherChallenge", err)
	}
	if _, err := w.svc.Answer(t.Context(), ch, []byte("{}"), t0); !errors.Is(err, eligibility.ErrNotProof) {
		t.Errorf("a malformed proof: %v, want ErrNotProof", err)
	}
	forged := ch
	forged.Verifier, forged.Scope = "ins-w", circuits.ScopeFor("ins-w") // re-addressed, so its signature no longer holds
	if _, err := w.svc.Answer(t.Context(), forged, proof(t, forged, w.issuer), t0); !errors.Is(err, circuits.ErrChallengeSignature) {
		t.Errorf("a re-addressed challenge: %v, want ErrChallengeSignature", err)
	}
	if n := len(w.log.proofs()); n != 0 {
		t.Fatalf("%d verifications logged by refused answers, want 0", n)
	}
	if st := status(ch.ID, t0); st.State != eligibility.StateOpen {
		t.Fatalf("after refused answers: %+v, want still open", st)
	}

	res, err := w.svc.Answer(t.Context(), ch, proof(t, ch, w.issuer), t0.Add(time.Minute))
	if err != nil || !res.Valid || res.Issuer != "hosp-a" {
		t.Fatalf("Answer = %+v, %v; want valid from hosp-a", res, err)
	}
	st := status(ch.ID, t0.Add(time.Hour)) // answered stays answered after the expiry
	if st.State != eligibility.StateAnswered || st.Outcome == nil || !st.Outcome.Valid || st.Outcome.Issuer != "hosp-a" ||
		st.Outcome.Nullifier != res.Nullifier || st.Outcome.LedgerIndex != res.LedgerIndex {
		t.Errorf("after the answer: %+v %+v, want answered, valid", st, st.Outcome)
	}
	// A second answer is refused as a replay and does not change the outcome.
	again, err := w.svc.Answer(t.Context(), ch, proof(t, ch, w.issuer), t0.Add(2*time.Minute))
	if err != nil || again.Valid || again.Reason != eligibility.ReasonChallengeUsed {
		t.Errorf("second answer: %+v, %v; want refused challenge.used", again, err)
	}
	if st := status(ch.ID, t0); st.Outcome == nil || !st.Outcome.Valid {
		t.Errorf("the replay changed the outcome: %+v", st.Outcome)
	}

	// A refused proof that used the challenge is its outcome, without the
	// claimed issuer.
	w.verify = func(circuits.Statement, circuits.Public, []byte) error { return circuits.ErrInvalidProof }
	res, err = w.svc.Answer(t.Context(), other, proof(t, other, w.issuer), t0)
	if err != nil || res.Valid {
		t.Fatalf("refused answer: %+v, %v", res, err)
	}
	if st := status(other.ID, t0); st.State != eligibility.StateAnswered || st.Outcome.Valid || st.Outcome.Reason != eligibility.ReasonInvalid || st.Outcome.Issuer != "" {
		t.Errorf("refused outcome: %+v", st.Outcome)
	}
	w.verify = nil

	// Expired unanswered; another verifier's challenge is not found; a
	// challenge used up without a logged outcome is unknown.
	late := w.challenge(t, "age", over18)
	if st := status(late.ID, t0.Add(eligibility.DefaultChallengeTTL)); st.State != eligibility.StateExpired {
		t.Errorf("expired: %+v", st)
	}
	if _, err := w.svc.ChallengeStatus(t.Context(), "ins-w", late.ID, t0); !errors.Is(err, eligibility.ErrNotFound) {
		t.Errorf("another verifier's challenge: %v, want ErrNotFound", err)
	}
	w.log.fail = errors.New("disk full")
	if _, err := w.svc.Answer(t.Context(), late, proof(t, late, w.issuer), t0); err == nil {
		t.Fatal("Answer with a failing log succeeded")
	}
	w.log.fail = nil
	if st := status(late.ID, t0); st.State != eligibility.StateUnknown {
		t.Errorf("used without a logged outcome: %+v, want unknown", st)
	}
}
