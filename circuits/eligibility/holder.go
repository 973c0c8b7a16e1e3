package eligibility

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
)

// The holder's side: a patient shows their credentials, checks a
// verifier's challenge before proving it (the proving itself runs on the
// patient's machine, `healthgw zk prove`), and hands the proof to the
// gateway, which verifies it for the verifier exactly as if the verifier
// had posted it. The verifier then reads the outcome (ChallengeStatus).

// Errors of the holder's side.
var (
	// ErrNotCredential: the file is not a credential, or was altered
	// after the issuer signed it.
	ErrNotCredential = errors.New("eligibility: not a valid credential file")
	// ErrNotChallenge: the file is not a challenge.
	ErrNotChallenge = errors.New("eligibility: not a challenge file")
	// ErrNotProof: the file is not a proof.
	ErrNotProof = errors.New("eligibility: not a proof file")
	// ErrOtherChallenge: the proof answers another challenge than the one
	// the holder is answering.
	ErrOtherChallenge = errors.New("eligibility: the proof answers another challenge")
)

// HeldCredential is a credential file as its holder sees it, checked.
type HeldCredential struct {
	Credential *credential.Credential
	// Issuer is the registered issuer of the credential's key; Registered
	// is false when the key is not registered on the ledger (verifiers
	// refuse proofs from it: issuer.unregistered).
	Issuer     Issuer
	Registered bool
	// Valid reports whether the credential is valid on the day of now
	// (its expiry is the last valid day).
	Valid bool
}

// InspectCredential reads a credential file, checks the issuer's
// signature and looks up the issuer among the registered ones. A
// malformed or altered file is ErrNotCredential. Nothing is stored.
func (s *Service) InspectCredential(ctx context.Context, file []byte, now time.Time) (HeldCredential, error) {
	cred, err := credential.ParseCredential(file)
	if err != nil {
		return HeldCredential{}, fmt.Errorf("%w: %w", ErrNotCredential, err)
	}
	if err := s.c.Sync.SyncAll(ctx); err != nil {
		return HeldCredential{}, err
	}
	h := HeldCredential{Credential: cred}
	iss, err := s.c.Store.Issuer(ctx, cred.Issuer.ID())
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return HeldCredential{}, err
	case iss.PublicKey == cred.Issuer.String():
		h.Issuer, h.Registered = iss, true
	}
	today, err := credential.DayOf(now.UTC())
	if err != nil {
		return HeldCredential{}, err
	}
	h.Valid = today <= cred.Expiry
	return h, nil
}

// challengeKey is the public half of the challenge signing key.
func (s *Service) challengeKey() ed25519.PublicKey {
	if len(s.c.ChallengeKey) != ed25519.PrivateKeySize {
		return nil
	}
	return s.c.ChallengeKey.Public().(ed25519.PublicKey)
}

// CheckChallenge reads a challenge file a verifier handed its holder and
// checks it as the holder's prover will: signed by this gateway, unchanged,
// bound to the verifier it names; and, against the gateway's own copy,
// still open. Errors: ErrNotChallenge, circuits.ErrChallengeSignature,
// circuits.ErrChallengeScope, ErrChallengeExpired, ErrChallengeUsed,
// ErrNotFound (not one of this gateway's open challenges: it may have been
// deleted after it expired).
func (s *Service) CheckChallenge(ctx context.Context, file []byte, now time.Time) (circuits.Challenge, error) {
	ch, err := circuits.ParseChallenge(file)
	if err != nil {
		return circuits.Challenge{}, fmt.Errorf("%w: %w", ErrNotChallenge, err)
	}
	if err := ch.Check(s.challengeKey(), ch.Verifier); err != nil {
		return circuits.Challenge{}, err
	}
	stored, err := s.c.Store.Challenge(ctx, ch.ID, ch.Verifier)
	if err != nil {
		return circuits.Challenge{}, err
	}
	switch {
	case !bytes.Equal(stored.Nonce, ch.Nonce) || stored.Statement != string(ch.Statement):
		return circuits.Challenge{}, circuits.ErrChallengeSignature // cannot happen with the gateway's key uncompromised
	case !stored.UsedAt.IsZero():
		return circuits.Challenge{}, ErrChallengeUsed
	case !now.Before(stored.ExpiresAt):
		return circuits.Challenge{}, ErrChallengeExpired
	}
	return ch, nil
}

// Answer verifies a holder's proof of ch (a challenge CheckChallenge
// accepted) for ch's verifier, exactly as Verify does when the verifier
// posts it: the challenge is used up and the outcome logged, and the
// verifier reads it with ChallengeStatus. A proof of another challenge
// is ErrOtherChallenge and uses nothing up; a malformed one is
// ErrNotProof.
func (s *Service) Answer(ctx context.Context, ch circuits.Challenge, proof []byte, now time.Time) (Result, error) {
	if err := ch.Check(s.challengeKey(), ch.Verifier); err != nil {
		return Result{}, err
	}
	p, err := circuits.ParseProof(proof)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrNotProof, err)
	}
	if p.Challenge != ch.ID || p.Statement != ch.Statement {
		return Result{}, ErrOtherChallenge
	}
	return s.Verify(ctx, ch.Verifier, proof, now)
}

// Outcome is the verification that used up a challenge, as the ledger
// holds it (proof.verified). Issuer and Nullifier are set for a valid
// proof only: a refused proof proves nothing.
type Outcome struct {
	Verifier    string
	Challenge   string
	Statement   string
	Valid       bool
	Reason      Reason
	Issuer      string
	Nullifier   string
	LedgerIndex uint64
	Time        time.Time
}

// UsesChallenge reports whether a verification refused for r still used
// up its challenge: every reason but an unknown, used or expired one
// (those never reached the challenge).
func (r Reason) UsesChallenge() bool {
	switch r {
	case ReasonUnknownChallenge, ReasonChallengeUsed, ReasonChallengeExpired:
		return false
	}
	return true
}

// ChallengeState is what became of a challenge.
type ChallengeState string

// The states.
const (
	// StateOpen: not answered yet, not expired.
	StateOpen ChallengeState = "open"
	// StateAnswered: a proof was verified against it (valid or not);
	// ChallengeStatus.Outcome says how.
	StateAnswered ChallengeState = "answered"
	// StateExpired: expired unanswered.
	StateExpired ChallengeState = "expired"
	// StateUnknown: used up, but no outcome was logged (the verification
	// failed before its entry was durable): its outcome is unknown, and
	// the verifier asks for a new challenge.
	StateUnknown ChallengeState = "unknown"
)

// ChallengeStatus is a challenge and what became of it.
type ChallengeStatus struct {
	Challenge Challenge
	State     ChallengeState
	Outcome   *Outcome // when State is StateAnswered
}

// ChallengeStatus returns verifier's challenge id and what became of it,
// after catching up with the log. Another verifier's challenge, like one
// that does not exist, is ErrNotFound.
func (s *Service) ChallengeStatus(ctx context.Context, verifier, id string, now time.Time) (ChallengeStatus, error) {
	if err := s.c.Sync.SyncAll(ctx); err != nil {
		return ChallengeStatus{}, err
	}
	out, err := s.c.Store.Outcome(ctx, verifier, id)
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		out = Outcome{}
	default:
		return ChallengeStatus{}, err
	}
	ch, err := s.c.Store.Challenge(ctx, id, verifier)
	switch {
	case errors.Is(err, ErrNotFound) && out.Challenge != "":
		// Deleted after it expired; the outcome stays on the ledger.
		ch = Challenge{ID: id, Verifier: verifier, Statement: out.Statement}
	case err != nil:
		return ChallengeStatus{}, err
	}
	st := ChallengeStatus{Challenge: ch}
	switch {
	case out.Challenge != "":
		st.State, st.Outcome = StateAnswered, &out
	case !ch.UsedAt.IsZero():
		st.State = StateUnknown
	case !now.Before(ch.ExpiresAt):
		st.State = StateExpired
	default:
		st.State = StateOpen
	}
	return st, nil
}
