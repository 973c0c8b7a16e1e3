package circuits

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/healthgw/healthgw/circuits/credential"
)

// Challenges are signed by the gateway that issues them and bound to the
// verifier they were issued to, so that a verifier cannot hand a patient a
// challenge scoped to another verifier and link the patient's nullifiers
// across verifiers: the scope is not the challenge file's choice but
// ScopeFor(verifier), and the prover checks the signature and that
// binding (Challenge.Check, Prover.ProveChallenge) before proving.

// ChallengeKeyID is the key ID of the gateway's challenge-signing key in
// its JWK Set (/.well-known/jwks.json).
const ChallengeKeyID = "zk-challenge"

// challengeSigPrefix separates challenge signatures from every other use
// of an Ed25519 key.
const challengeSigPrefix = "healthgw/zk-challenge/v1\n"

// Errors of Challenge.Check.
var (
	// ErrChallengeSignature: the challenge is unsigned, or its signature
	// is not the gateway's over this very challenge (it was tampered with).
	ErrChallengeSignature = errors.New("challenge signature does not verify")
	// ErrChallengeScope: the challenge is for another verifier than the
	// one the prover means to prove to, or its scope is not the one the
	// gateway derives for its verifier.
	ErrChallengeScope = errors.New("challenge is scoped to another verifier")
)

// ScopeFor is the nullifier scope of a verifier: derived by the gateway
// from the verifier's registered org ID, never chosen by a challenge.
func ScopeFor(verifier string) string { return verifier }

// signingMessage is what a challenge signature covers: a prefix and the
// challenge's wire form without the signature (encoding/json writes
// struct fields in order and map keys sorted, so it is deterministic).
func (ch Challenge) signingMessage() ([]byte, error) {
	j := ch.wire()
	j.Signature = ""
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("challenge signing message: %w", err)
	}
	return append([]byte(challengeSigPrefix), b...), nil
}

// Sign sets ch.Signature to key's signature over the challenge. The
// challenge must name its verifier and carry the scope derived from it.
func (ch *Challenge) Sign(key ed25519.PrivateKey) error {
	if ch.Verifier == "" || ch.Scope != ScopeFor(ch.Verifier) {
		return fmt.Errorf("%w: sign: scope %q is not the one of verifier %q", ErrChallengeScope, ch.Scope, ch.Verifier)
	}
	if len(key) != ed25519.PrivateKeySize {
		return errors.New("challenge: signing key is not an Ed25519 private key")
	}
	msg, err := ch.signingMessage()
	if err != nil {
		return err
	}
	ch.Signature = ed25519.Sign(key, msg)
	return nil
}

// Check verifies that ch was signed by the gateway key gw and is bound to
// verifier, the verifier the holder means to prove to: ch names it and
// its scope is ScopeFor(verifier). Errors wrap ErrChallengeSignature or
// ErrChallengeScope.
func (ch Challenge) Check(gw ed25519.PublicKey, verifier string) error {
	if len(gw) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: no gateway key to check it with", ErrChallengeSignature)
	}
	if len(ch.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: the challenge is not signed", ErrChallengeSignature)
	}
	msg, err := ch.signingMessage()
	if err != nil {
		return err
	}
	if !ed25519.Verify(gw, msg, ch.Signature) {
		return ErrChallengeSignature
	}
	if verifier == "" || ch.Verifier != verifier {
		return fmt.Errorf("%w: it was issued to %q, not %q", ErrChallengeScope, ch.Verifier, verifier)
	}
	if ch.Scope != ScopeFor(verifier) {
		return fmt.Errorf("%w: scope %q is not verifier %q's", ErrChallengeScope, ch.Scope, verifier)
	}
	return nil
}

// Trust is what a holder checks a challenge against before proving: the
// gateway's challenge key and the verifier it means to prove to.
type Trust struct {
	GatewayKey ed25519.PublicKey
	Verifier   string
}

// ProveChallenge checks ch against trust (Challenge.Check) and only then
// proves it (Prove). A challenge that is unsigned, tampered with or
// scoped to another verifier is refused before any proving.
func (p *Prover) ProveChallenge(cred *credential.Credential, secret credential.Secret, ch Challenge, trust Trust) (*Proof, error) {
	if err := ch.Check(trust.GatewayKey, trust.Verifier); err != nil {
		return nil, err
	}
	return p.Prove(cred, secret, ch)
}
