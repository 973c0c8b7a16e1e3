package eligibility

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/ledger"
)

// DefaultChallengeTTL is how long a proof challenge is valid.
const DefaultChallengeTTL = 5 * time.Minute

// Config is what a Service uses.
type Config struct {
	Store   Store
	Keys    Keys
	Issuers IssuerKeySource
	Log     ledger.Appender
	Sync    Syncer
	// ChallengeTTL is how long a challenge stays usable
	// (DefaultChallengeTTL when zero).
	ChallengeTTL time.Duration
	// Rand is the source of challenge IDs and nonces (crypto/rand when
	// nil).
	Rand io.Reader
	// ChallengeKey is the gateway's Ed25519 key that signs challenges
	// (circuits.Challenge.Sign); required to issue challenges. Holders
	// check the signature and the verifier binding before proving.
	ChallengeKey ed25519.PrivateKey
}

// Service is the eligibility use case. It is safe for concurrent use.
type Service struct {
	c Config
}

// NewService returns the use case over c.
func NewService(c Config) *Service {
	if c.ChallengeTTL <= 0 {
		c.ChallengeTTL = DefaultChallengeTTL
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return &Service{c: c}
}

// CredentialRequest asks for a credential over a patient's attributes,
// in text form. The holder's secret never reaches the gateway: only its
// commitment.
type CredentialRequest struct {
	Holder     string            // hex commitment H(secret) from the patient app
	Schema     string            // schema name; "" is credential.PatientV1
	Attributes map[string]string // by attribute name, see credential.Schema.Parse
	Expires    string            // YYYY-MM-DD, the last valid day
}

// IssueCredential issues the credential req asks for, signed with the
// issuer key of org (registering it on the ledger first if needed), and
// returns it in the credential file format. Bad requests are
// ValidationError or the credential package's validation errors.
func (s *Service) IssueCredential(ctx context.Context, org string, req CredentialRequest, now time.Time) ([]byte, error) {
	holder, err := credential.ParseElement(req.Holder)
	if err != nil {
		return nil, invalid("holder must be a field element in hex.")
	}
	sc, err := credential.SchemaByName(cmp.Or(req.Schema, credential.PatientV1.Name))
	if err != nil {
		return nil, err
	}
	attrs, err := sc.Parse(req.Attributes)
	if err != nil {
		return nil, err
	}
	exp, err := credential.ParseDay(req.Expires)
	if err != nil {
		return nil, invalid("expires must be a date YYYY-MM-DD.")
	}
	today, err := credential.DayOf(now.UTC())
	if err != nil {
		return nil, err
	}
	if exp < today {
		return nil, invalid("expires is in the past.")
	}
	key, err := s.c.Issuers.Key(ctx, org)
	if err != nil {
		return nil, err
	}
	cred, err := credential.Issue(key, holder, sc, attrs, exp)
	if err != nil {
		return nil, err
	}
	return credential.MarshalCredential(cred)
}

// CircuitStatus is a registered circuit and whether this gateway verifies
// with exactly its key.
type CircuitStatus struct {
	Circuit
	Loaded bool
}

// Circuits lists the registered circuits, after catching up with the log.
func (s *Service) Circuits(ctx context.Context) ([]CircuitStatus, error) {
	if err := s.c.Sync.SyncAll(ctx); err != nil {
		return nil, err
	}
	list, err := s.c.Store.Circuits(ctx)
	if err != nil {
		return nil, err
	}
	var loaded []circuits.CircuitInfo
	if v, err := s.c.Keys.Verifier(ctx); err == nil {
		loaded = v.Circuits()
	}
	out := make([]CircuitStatus, 0, len(list))
	for _, r := range list {
		cs := CircuitStatus{Circuit: r}
		for _, info := range loaded {
			if string(info.Statement) == r.Statement && info.Version == r.Version && info.VKHash == r.VKHash {
				cs.Loaded = true
			}
		}
		out = append(out, cs)
	}
	return out, nil
}

// ProvingKeyPath returns the proving key file of the statement named st,
// for patient apps to download. An unknown statement is ErrNotFound; no
// keys yet is ErrNotReady.
func (s *Service) ProvingKeyPath(ctx context.Context, st string) (string, error) {
	stmt, err := circuits.ParseStatement(st)
	if err != nil {
		return "", ErrNotFound
	}
	if _, err := s.c.Keys.Verifier(ctx); err != nil {
		return "", err
	}
	return s.c.Keys.ProvingKeyPath(stmt), nil
}

// NewChallenge creates and stores a single-use challenge of verifier for
// the statement and parameters (map form, see circuits.ParseParams),
// valid from now for the configured TTL, and returns it in the challenge
// wire format.
func (s *Service) NewChallenge(ctx context.Context, verifier, statement string, params map[string]string, now time.Time) ([]byte, error) {
	st, err := circuits.ParseStatement(statement)
	if err != nil {
		return nil, err
	}
	p, err := circuits.ParseParams(st, params)
	if err != nil {
		return nil, err
	}
	if _, err := s.c.Keys.Verifier(ctx); err != nil {
		return nil, err
	}
	now = now.UTC()
	day, err := credential.DayOf(now)
	if err != nil {
		return nil, err
	}
	var raw [40]byte
	if _, err := io.ReadFull(s.c.Rand, raw[:]); err != nil {
		return nil, fmt.Errorf("challenge nonce: %w", err)
	}
	// The scope is derived from the verifier's org ID, and the challenge
	// signed with it, so that no verifier can hand out a challenge scoped
	// to another (which would link a patient's nullifiers across them).
	ch := circuits.Challenge{
		ID: hex.EncodeToString(raw[:8]), Statement: st, Params: p, Nonce: raw[8:],
		Scope: circuits.ScopeFor(verifier), Date: day, ExpiresAt: now.Add(s.c.ChallengeTTL),
		Verifier: verifier,
	}
	if len(s.c.ChallengeKey) == 0 {
		return nil, errors.New("eligibility: no challenge signing key configured")
	}
	if err := ch.Sign(s.c.ChallengeKey); err != nil {
		return nil, err
	}
	body, err := circuits.MarshalChallenge(ch)
	if err != nil {
		return nil, err
	}
	err = s.c.Store.CreateChallenge(ctx, Challenge{
		ID: ch.ID, Verifier: verifier, Statement: string(st), Params: p.Map(st), Nonce: ch.Nonce,
		Scope: ch.Scope, Date: uint64(day), CreatedAt: now, ExpiresAt: ch.ExpiresAt,
	})
	if err != nil {
		return nil, err
	}
	return body, nil
}

// Reason is why a proof is refused (the proof.verified entry's reason).
type Reason string

// The reasons.
const (
	ReasonUnknownChallenge Reason = "challenge.unknown"
	ReasonChallengeUsed    Reason = "challenge.used"
	ReasonChallengeExpired Reason = "challenge.expired"
	ReasonStatement        Reason = "statement.mismatch"
	ReasonParams           Reason = "params.mismatch"
	ReasonIssuer           Reason = "issuer.unregistered"
	ReasonCircuit          Reason = "circuit.unregistered"
	ReasonInvalid          Reason = "proof.invalid"
)

var reasonMessages = map[Reason]string{
	ReasonUnknownChallenge: "No such challenge for this verifier.",
	ReasonChallengeUsed:    "The challenge was already used: a proof can be verified once.",
	ReasonChallengeExpired: "The challenge expired; ask for a new one.",
	ReasonStatement:        "The proof is for another statement than the challenge.",
	ReasonParams:           "The proof's parameters differ from the challenge's.",
	ReasonIssuer:           "The credential's issuer is not registered.",
	ReasonCircuit:          "The statement's verifying key is not the registered one.",
	ReasonInvalid:          "The proof does not verify.",
}

// Message is the reason in words, safe to show the verifier.
func (r Reason) Message() string { return reasonMessages[r] }

// Result is the outcome of a verification.
type Result struct {
	Valid       bool
	Statement   circuits.Statement
	Issuer      string // the issuer's org, once the issuer key is known
	Nullifier   string // hex
	Reason      Reason // "" when valid
	LedgerIndex uint64 // of the proof.verified entry
}

// Verify checks proof (the proof file format) for verifier at now, using
// up the challenge it answers, and logs the outcome on the ledger. A
// refused proof is a Result with a Reason, not an error; an error means
// the proof is malformed (circuits.ErrFile), no keys are set up
// (ErrNotReady), or the check or the log failed, in which case nothing
// is said about the proof.
func (s *Service) Verify(ctx context.Context, verifier string, proof []byte, now time.Time) (Result, error) {
	p, err := circuits.ParseProof(proof)
	if err != nil {
		return Result{}, err
	}
	v, err := s.c.Keys.Verifier(ctx)
	if err != nil {
		return Result{}, err
	}
	if err := s.c.Sync.SyncAll(ctx); err != nil {
		return Result{}, err
	}
	res := Result{Statement: p.Statement, Nullifier: credential.FormatElement(p.Public.Nullifier)}
	res.Issuer, res.Reason, err = s.check(ctx, verifier, p, v, now.UTC())
	if err != nil {
		return Result{}, fmt.Errorf("check proof: %w", err)
	}
	res.Valid = res.Reason == ""
	e, err := ledger.NewEntry(verifier, proofEntry(verifier, p, res))
	if err != nil {
		return Result{}, err
	}
	if res.LedgerIndex, err = s.c.Log.Append(ctx, e); err != nil {
		return Result{}, fmt.Errorf("log proof verification: %w", err)
	}
	return res, nil
}

// proofEntry is the proof.verified body of res: the issuer and nullifier
// as proven for a valid proof; for a refused one, only as claimed
// (claimed_issuer, claimed_nullifier, proven false).
func proofEntry(verifier string, p *circuits.Proof, res Result) *ledger.ProofVerified {
	proven := res.Valid
	b := &ledger.ProofVerified{
		Verifier: verifier, Statement: string(p.Statement), Params: p.Public.Params.Map(p.Statement),
		Valid: res.Valid, Reason: string(res.Reason), Challenge: p.Challenge, Proven: &proven,
	}
	if proven {
		b.Issuer, b.Nullifier = res.Issuer, res.Nullifier
	} else {
		b.ClaimedIssuer, b.ClaimedNullifier = res.Issuer, res.Nullifier
	}
	return b
}

// check uses the proof's challenge (so it cannot be used again) and
// checks the proof against it. It returns the issuer's org (once known)
// and "" or the refusal reason; an error means the check could not be
// made (storage failed), which is not the prover's fault and is not
// logged as a refusal.
func (s *Service) check(ctx context.Context, verifier string, p *circuits.Proof, v Verifier, now time.Time) (string, Reason, error) {
	ch, err := s.c.Store.UseChallenge(ctx, p.Challenge, verifier, now)
	switch {
	case errors.Is(err, ErrNotFound):
		return "", ReasonUnknownChallenge, nil
	case errors.Is(err, ErrChallengeUsed):
		return "", ReasonChallengeUsed, nil
	case errors.Is(err, ErrChallengeExpired):
		return "", ReasonChallengeExpired, nil
	case err != nil:
		return "", "", err
	}
	if string(p.Statement) != ch.Statement {
		return "", ReasonStatement, nil
	}
	want, err := circuits.ParseParams(p.Statement, ch.Params)
	if err != nil {
		return "", "", fmt.Errorf("stored challenge %s: %w", ch.ID, err)
	}
	if !p.Public.Params.Equal(p.Statement, want) {
		return "", ReasonParams, nil
	}
	iss, err := s.c.Store.Issuer(ctx, p.Public.Issuer.ID())
	switch {
	case errors.Is(err, ErrNotFound):
		return "", ReasonIssuer, nil
	case err != nil:
		return "", "", err
	case iss.PublicKey != p.Public.Issuer.String():
		return "", ReasonIssuer, nil
	}
	registered, err := s.registeredVK(ctx, p.Statement, v)
	if err != nil {
		return iss.Org, "", err
	}
	if !registered {
		return iss.Org, ReasonCircuit, nil
	}
	pub := circuits.Public{
		Issuer: p.Public.Issuer, Params: want, Date: credential.Day(ch.Date), Scope: ch.Scope,
		Nonce: ch.Nonce, Nullifier: p.Public.Nullifier,
	}
	if err := v.Verify(p.Statement, pub, p.Bytes); err != nil {
		return iss.Org, ReasonInvalid, nil
	}
	return iss.Org, "", nil
}

// registeredVK reports whether the loaded verifying key of st is the one
// registered on the ledger (the latest circuit.registered of its
// version). A statement with no loaded key is not registered.
func (s *Service) registeredVK(ctx context.Context, st circuits.Statement, v Verifier) (bool, error) {
	list, err := s.c.Store.Circuits(ctx)
	if err != nil {
		return false, err
	}
	for _, info := range v.Circuits() {
		if info.Statement != st {
			continue
		}
		for _, r := range list {
			if r.Statement == string(st) && r.Version == info.Version {
				return r.VKHash == info.VKHash, nil
			}
		}
	}
	return false, nil
}
