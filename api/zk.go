package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/zkstore"
	"github.com/healthgw/healthgw/ledger"
)

// ZKStore is the zero-knowledge state as the API uses it (zkstore.Store).
type ZKStore interface {
	Issuer(ctx context.Context, keyID string) (zkstore.Issuer, error)
	Circuits(ctx context.Context) ([]zkstore.Circuit, error)
	CreateChallenge(ctx context.Context, c zkstore.Challenge) error
	UseChallenge(ctx context.Context, id, verifier string, now time.Time) (zkstore.Challenge, error)
}

// ZKKeys gives the Groth16 keys the gateway verifies with.
type ZKKeys interface {
	// Verifier returns the loaded verifying keys, or an error wrapping
	// ErrZKNotReady while none are set up.
	Verifier() (*circuits.Verifier, error)
	// ProvingKeyPath is the proving key file of a statement (for patient
	// apps to download).
	ProvingKeyPath(s circuits.Statement) string
}

// IssuerKeys holds the credential issuer keys of the hospitals this
// gateway issues for, registering each on the ledger before first use.
type IssuerKeys interface {
	Key(ctx context.Context, org string) (*credential.IssuerKey, error)
}

// ErrZKNotReady: no Groth16 keys are set up yet.
var ErrZKNotReady = errors.New("zero-knowledge keys are not set up")

// ZKDeps are what the credential and proof routes need.
type ZKDeps struct {
	Store   ZKStore
	Keys    ZKKeys
	Issuers IssuerKeys
	Log     ledger.Appender
	// Sync brings the projections (registered issuers and circuits) up to
	// date with the log.
	Sync Syncer
	// ChallengeTTL is how long a challenge stays usable
	// (DefaultChallengeTTL).
	ChallengeTTL time.Duration
}

// DefaultChallengeTTL is how long a proof challenge is valid.
const DefaultChallengeTTL = 5 * time.Minute

// maxProofBody bounds a proof submission.
const maxProofBody = 64 << 10

// MountZK mounts credentials, circuits and proof verification.
func (s *Server) MountZK(d ZKDeps) {
	if d.ChallengeTTL <= 0 {
		d.ChallengeTTL = DefaultChallengeTTL
	}
	s.zk = d
	s.projections = d.Sync
	s.addErrorRules(
		errorRule{target: ErrZKNotReady, status: http.StatusServiceUnavailable, code: "unavailable", message: "Zero-knowledge keys are not set up yet (healthgw zk setup, or a ceremony)."},
		errorRule{target: circuits.ErrParams, status: http.StatusBadRequest, code: "invalid_request", public: true},
		errorRule{target: circuits.ErrUnknownStatement, status: http.StatusBadRequest, code: "invalid_request", public: true},
		errorRule{target: credential.ErrUnknownSchema, status: http.StatusBadRequest, code: "invalid_request", public: true},
		errorRule{target: credential.ErrUnknownAttribute, status: http.StatusBadRequest, code: "invalid_request", public: true},
		errorRule{target: credential.ErrAttributeValue, status: http.StatusBadRequest, code: "invalid_request", public: true},
		errorRule{target: credential.ErrElement, status: http.StatusBadRequest, code: "invalid_request", public: true},
		errorRule{target: credential.ErrDate, status: http.StatusBadRequest, code: "invalid_request", public: true},
		errorRule{target: circuits.ErrFile, status: http.StatusBadRequest, code: "invalid_request", public: true},
	)
	g := s.engine.Group("/v1", s.authenticate)
	g.POST("/credentials", s.requireOrg(auth.ScopeCredentialsIssue, auth.KindHospital), s.limitBody(s.cfg.MaxJSONBody), s.postCredential)
	g.GET("/circuits", s.listCircuits)
	g.GET("/circuits/:statement/proving-key", s.getProvingKey)
	g.POST("/proofs/challenges", s.requireOrg(auth.ScopeProofsVerify, auth.KindVerifier), s.limitBody(s.cfg.MaxJSONBody), s.postChallenge)
	g.POST("/proofs/verify", s.requireOrg(auth.ScopeProofsVerify, auth.KindVerifier), s.limitBody(maxProofBody), s.verifyProof)
}

// credentialRequest is the body of POST /v1/credentials. The holder's
// secret never reaches the gateway: only its commitment.
type credentialRequest struct {
	Holder     string            `json:"holder"` // hex commitment H(secret) from the patient app
	Schema     string            `json:"schema,omitempty"`
	Attributes map[string]string `json:"attributes"`
	Expires    string            `json:"expires"` // YYYY-MM-DD, last valid day
}

// Validate checks presence; the schema checks values.
func (r *credentialRequest) Validate() error {
	switch {
	case r.Holder == "":
		return badRequest("holder (the holder commitment) is required.")
	case len(r.Attributes) == 0:
		return badRequest("attributes are required.")
	case r.Expires == "":
		return badRequest("expires is required.")
	}
	return nil
}

func (s *Server) postCredential(c *gin.Context) {
	var req credentialRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	holder, err := credential.ParseElement(req.Holder)
	if err != nil {
		s.fail(c, badRequest("holder must be a field element in hex."))
		return
	}
	name := req.Schema
	if name == "" {
		name = credential.PatientV1.Name
	}
	sc, err := credential.SchemaByName(name)
	if err != nil {
		s.fail(c, err)
		return
	}
	attrs, err := sc.Parse(req.Attributes)
	if err != nil {
		s.fail(c, err)
		return
	}
	exp, err := credential.ParseDay(req.Expires)
	if err != nil {
		s.fail(c, badRequest("expires must be a date YYYY-MM-DD."))
		return
	}
	today, _ := credential.DayOf(s.nowUTC())
	if exp < today {
		s.fail(c, badRequest("expires is in the past."))
		return
	}
	key, err := s.zk.Issuers.Key(c.Request.Context(), principal(c).Org)
	if err != nil {
		s.fail(c, err)
		return
	}
	cred, err := credential.Issue(key, holder, sc, attrs, exp)
	if err != nil {
		s.fail(c, err)
		return
	}
	b, err := credential.MarshalCredential(cred)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusCreated, "application/json", b)
}

// circuitView is one registered statement.
type circuitView struct {
	Statement      string    `json:"statement"`
	Version        int       `json:"version"`
	VKHash         string    `json:"vk_hash"`
	Setup          string    `json:"setup"`
	LedgerIndex    uint64    `json:"ledger_index"`
	RegisteredAt   time.Time `json:"registered_at"`
	Loaded         bool      `json:"loaded"` // this gateway verifies with exactly this key
	ProvingKeyPath string    `json:"proving_key,omitempty"`
}

func (s *Server) listCircuits(c *gin.Context) {
	ctx := c.Request.Context()
	if err := s.catchUp(ctx); err != nil {
		s.fail(c, err)
		return
	}
	list, err := s.zk.Store.Circuits(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	v, _ := s.zk.Keys.Verifier()
	out := struct {
		Circuits []circuitView `json:"circuits"`
	}{Circuits: []circuitView{}}
	for _, r := range list {
		cv := circuitView{Statement: r.Statement, Version: r.Version, VKHash: r.VKHash, Setup: r.Setup, LedgerIndex: r.LedgerIndex, RegisteredAt: r.Time}
		if v != nil {
			for _, info := range v.Circuits() {
				if string(info.Statement) == r.Statement && info.Version == r.Version && info.VKHash == r.VKHash {
					cv.Loaded = true
					cv.ProvingKeyPath = "/v1/circuits/" + r.Statement + "/proving-key"
				}
			}
		}
		out.Circuits = append(out.Circuits, cv)
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) getProvingKey(c *gin.Context) {
	st, err := circuits.ParseStatement(c.Param("statement"))
	if err != nil {
		s.fail(c, errNotFound)
		return
	}
	if _, err := s.zk.Keys.Verifier(); err != nil {
		s.fail(c, err)
		return
	}
	f, err := os.Open(s.zk.Keys.ProvingKeyPath(st))
	if err != nil {
		s.fail(c, errNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "public, max-age=3600")
	c.DataFromReader(http.StatusOK, fi.Size(), "application/octet-stream", f, nil)
}

// challengeRequest is the body of POST /v1/proofs/challenges.
type challengeRequest struct {
	Statement string            `json:"statement"`
	Params    map[string]string `json:"params"`
}

func (r *challengeRequest) Validate() error {
	if r.Statement == "" {
		return badRequest("statement is required.")
	}
	return nil
}

func (s *Server) postChallenge(c *gin.Context) {
	var req challengeRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	st, err := circuits.ParseStatement(req.Statement)
	if err != nil {
		s.fail(c, err)
		return
	}
	params, err := circuits.ParseParams(st, req.Params)
	if err != nil {
		s.fail(c, err)
		return
	}
	if _, err := s.zk.Keys.Verifier(); err != nil {
		s.fail(c, err)
		return
	}
	now := s.nowUTC()
	day, err := credential.DayOf(now)
	if err != nil {
		s.fail(c, err)
		return
	}
	var raw [40]byte
	if _, err := rand.Read(raw[:]); err != nil {
		s.fail(c, err)
		return
	}
	ch := circuits.Challenge{
		ID: hex.EncodeToString(raw[:8]), Statement: st, Params: params, Nonce: raw[8:],
		Scope: principal(c).Org, Date: day, ExpiresAt: now.Add(s.zk.ChallengeTTL),
	}
	body, err := circuits.MarshalChallenge(ch)
	if err != nil {
		s.fail(c, err)
		return
	}
	err = s.zk.Store.CreateChallenge(c.Request.Context(), zkstore.Challenge{
		ID: ch.ID, Verifier: principal(c).Org, Statement: string(st), Params: params.Map(st), Nonce: ch.Nonce,
		Scope: ch.Scope, Date: uint64(day), CreatedAt: now, ExpiresAt: ch.ExpiresAt,
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusCreated, "application/json", body)
}

// Reasons a proof is refused (the proof.verified entry's reason).
const (
	reasonUnknownChallenge = "challenge.unknown"
	reasonChallengeUsed    = "challenge.used"
	reasonChallengeExpired = "challenge.expired"
	reasonStatement        = "statement.mismatch"
	reasonParams           = "params.mismatch"
	reasonIssuer           = "issuer.unregistered"
	reasonCircuit          = "circuit.unregistered"
	reasonInvalid          = "proof.invalid"
)

var reasonMessages = map[string]string{
	reasonUnknownChallenge: "No such challenge for this verifier.",
	reasonChallengeUsed:    "The challenge was already used: a proof can be verified once.",
	reasonChallengeExpired: "The challenge expired; ask for a new one.",
	reasonStatement:        "The proof is for another statement than the challenge.",
	reasonParams:           "The proof's parameters differ from the challenge's.",
	reasonIssuer:           "The credential's issuer is not registered.",
	reasonCircuit:          "The statement's verifying key is not the registered one.",
	reasonInvalid:          "The proof does not verify.",
}

// verifyResponse is the body of POST /v1/proofs/verify.
type verifyResponse struct {
	Valid       bool   `json:"valid"`
	Statement   string `json:"statement"`
	Issuer      string `json:"issuer,omitempty"` // issuer org
	Nullifier   string `json:"nullifier,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Message     string `json:"message,omitempty"`
	LedgerIndex uint64 `json:"ledger_index"`
}

func (s *Server) verifyProof(c *gin.Context) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		s.fail(c, err)
		return
	}
	proof, err := circuits.ParseProof(body)
	if err != nil {
		s.fail(c, err)
		return
	}
	verifier, err := s.zk.Keys.Verifier()
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if err := s.catchUp(ctx); err != nil {
		s.fail(c, err)
		return
	}
	res := verifyResponse{Statement: string(proof.Statement), Nullifier: credential.FormatElement(proof.Public.Nullifier)}
	issuerOrg := ""
	reason, err := s.checkProof(ctx, principal(c).Org, proof, verifier, &issuerOrg)
	if err != nil {
		s.fail(c, fmt.Errorf("check proof: %w", err))
		return
	}
	res.Issuer = issuerOrg
	res.Valid = reason == ""
	if !res.Valid {
		res.Reason, res.Message = reason, reasonMessages[reason]
	}
	params := proof.Public.Params.Map(proof.Statement)
	e, err := ledger.NewEntry(principal(c).Org, &ledger.ProofVerified{
		Verifier: principal(c).Org, Statement: string(proof.Statement), Params: params, Issuer: issuerOrg,
		Nullifier: res.Nullifier, Valid: res.Valid, Reason: reason, Challenge: proof.Challenge,
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	idx, err := s.zk.Log.Append(ctx, e)
	if err != nil {
		s.fail(c, fmt.Errorf("log proof verification: %w", err))
		return
	}
	res.LedgerIndex = idx
	c.JSON(http.StatusOK, res)
}

// checkProof uses the proof's challenge (so it cannot be used again) and
// checks the proof against it. It returns "" or the refusal reason; an
// error means the check could not be made (storage failed), which is not
// the prover's fault and is not logged as a refusal.
func (s *Server) checkProof(ctx context.Context, verifierOrg string, p *circuits.Proof, v *circuits.Verifier, issuerOrg *string) (string, error) {
	ch, err := s.zk.Store.UseChallenge(ctx, p.Challenge, verifierOrg, s.nowUTC())
	switch {
	case errors.Is(err, zkstore.ErrNotFound):
		return reasonUnknownChallenge, nil
	case errors.Is(err, zkstore.ErrChallengeUsed):
		return reasonChallengeUsed, nil
	case errors.Is(err, zkstore.ErrChallengeExpired):
		return reasonChallengeExpired, nil
	case err != nil:
		return "", err
	}
	if string(p.Statement) != ch.Statement {
		return reasonStatement, nil
	}
	want, err := circuits.ParseParams(p.Statement, ch.Params)
	if err != nil {
		return "", fmt.Errorf("stored challenge %s: %w", ch.ID, err)
	}
	if !mapsEqual(p.Public.Params.Map(p.Statement), want.Map(p.Statement)) {
		return reasonParams, nil
	}
	iss, err := s.zk.Store.Issuer(ctx, p.Public.Issuer.ID())
	switch {
	case errors.Is(err, zkstore.ErrNotFound):
		return reasonIssuer, nil
	case err != nil:
		return "", err
	case iss.PublicKey != p.Public.Issuer.String():
		return reasonIssuer, nil
	}
	*issuerOrg = iss.Org
	vk, ok := v.VerifyingKey(p.Statement)
	if !ok {
		return reasonCircuit, nil
	}
	registered, err := s.registeredVK(ctx, p.Statement, v)
	if err != nil {
		return "", err
	}
	if !registered {
		return reasonCircuit, nil
	}
	pub := circuits.Public{
		Issuer: p.Public.Issuer, Params: want, Date: credential.Day(ch.Date), Scope: ch.Scope,
		Nonce: ch.Nonce, Nullifier: p.Public.Nullifier,
	}
	if err := circuits.Verify(p.Statement, vk, pub, p.Bytes); err != nil {
		return reasonInvalid, nil
	}
	return "", nil
}

// registeredVK reports whether the loaded verifying key of s is the one
// registered on the ledger (the latest circuit.registered of its version).
func (s *Server) registeredVK(ctx context.Context, st circuits.Statement, v *circuits.Verifier) (bool, error) {
	list, err := s.zk.Store.Circuits(ctx)
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

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
