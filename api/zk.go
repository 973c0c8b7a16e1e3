package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/eligibility"
)

// ZKService is the eligibility use case as the API calls it
// (eligibility.Service).
type ZKService interface {
	IssueCredential(ctx context.Context, org string, req eligibility.CredentialRequest, now time.Time) ([]byte, error)
	Circuits(ctx context.Context) ([]eligibility.CircuitStatus, error)
	ProvingKeyPath(ctx context.Context, statement string) (string, error)
	NewChallenge(ctx context.Context, verifier, statement string, params map[string]string, now time.Time) ([]byte, error)
	Verify(ctx context.Context, verifier string, proof []byte, now time.Time) (eligibility.Result, error)
	ChallengeStatus(ctx context.Context, verifier, id string, now time.Time) (eligibility.ChallengeStatus, error)
}

var _ ZKService = (*eligibility.Service)(nil)

// ErrZKNotReady: no Groth16 keys are set up yet.
var ErrZKNotReady = eligibility.ErrNotReady

// ZKDeps are what the credential and proof routes need.
type ZKDeps struct {
	Service ZKService
	// Sync brings the projections up to date with the log for the query
	// routes.
	Sync Syncer
}

// maxProofBody bounds a proof submission.
const maxProofBody = 64 << 10

// MountZK mounts credentials, circuits and proof verification.
func (s *Server) MountZK(d ZKDeps) {
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
		errorRule{target: eligibility.ErrNotFound, status: http.StatusNotFound, code: errNotFound.Code, message: errNotFound.Message},
	)
	g := s.engine.Group("/v1", s.authenticate)
	g.GET("/proofs/challenges/:id", s.requireOrg(auth.ScopeProofsVerify, auth.KindVerifier), s.getChallenge)
	g.POST("/credentials", s.requireOrg(auth.ScopeCredentialsIssue, auth.KindHospital), s.limitBody(s.cfg.MaxJSONBody), s.postCredential)
	g.GET("/circuits", s.listCircuits)
	g.GET("/circuits/:statement/proving-key", s.getProvingKey)
	g.POST("/proofs/challenges", s.requireOrg(auth.ScopeProofsVerify, auth.KindVerifier), s.limitBody(s.cfg.MaxJSONBody), s.postChallenge)
	g.POST("/proofs/verify", s.requireOrg(auth.ScopeProofsVerify, auth.KindVerifier), s.limitBody(maxProofBody),
		s.idempotent("POST /v1/proofs/verify", nil, nil), s.verifyProof)
}

// failZK is fail with the eligibility use case's validation errors, whose
// message is written for the caller, as 400s.
func (s *Server) failZK(c *gin.Context, err error) {
	var ve *eligibility.ValidationError
	if errors.As(err, &ve) {
		err = badRequest(ve.Message)
	}
	s.fail(c, err)
}

// credentialRequest is the body of POST /v1/credentials. The holder's
// secret never reaches the gateway: only its commitment.
type credentialRequest struct {
	Holder     string            `json:"holder"` // hex commitment H(secret) from the patient app
	Schema     string            `json:"schema,omitempty"`
	Attributes map[string]string `json:"attributes"`
	Expires    string            `json:"expires"` // YYYY-MM-DD, last valid day
}

// Validate checks presence; the use case checks values.
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
	b, err := s.zk.Service.IssueCredential(c.Request.Context(), principal(c).Org, eligibility.CredentialRequest{
		Holder: req.Holder, Schema: req.Schema, Attributes: req.Attributes, Expires: req.Expires,
	}, s.nowUTC())
	if err != nil {
		s.failZK(c, err)
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
	list, err := s.zk.Service.Circuits(c.Request.Context())
	if err != nil {
		s.failZK(c, err)
		return
	}
	out := struct {
		Circuits []circuitView `json:"circuits"`
	}{Circuits: []circuitView{}}
	for _, r := range list {
		cv := circuitView{Statement: r.Statement, Version: r.Version, VKHash: r.VKHash, Setup: r.Setup, LedgerIndex: r.LedgerIndex, RegisteredAt: r.Time, Loaded: r.Loaded}
		if r.Loaded {
			cv.ProvingKeyPath = "/v1/circuits/" + r.Statement + "/proving-key"
		}
		out.Circuits = append(out.Circuits, cv)
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) getProvingKey(c *gin.Context) {
	path, err := s.zk.Service.ProvingKeyPath(c.Request.Context(), c.Param("statement"))
	if err != nil {
		s.failZK(c, err)
		return
	}
	f, err := os.Open(path)
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
	body, err := s.zk.Service.NewChallenge(c.Request.Context(), principal(c).Org, req.Statement, req.Params, s.nowUTC())
	if err != nil {
		s.failZK(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusCreated, "application/json", body)
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

// errVerifyRetry: a verification repeated after an attempt whose outcome
// is unknown cannot be run again (its challenge is used up by the first).
var errVerifyRetry = &Error{Status: http.StatusConflict, Code: "outcome_unknown", Message: "An earlier attempt with this Idempotency-Key ended without a known outcome, and a proof is checked only once per challenge, so it is not checked again. If you need the result, verify again with a new Idempotency-Key (and a new challenge if this one is used up)."}

func (s *Server) verifyProof(c *gin.Context) {
	if idemClaim(c).Retry() {
		s.fail(c, errVerifyRetry)
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.zk.Service.Verify(c.Request.Context(), principal(c).Org, body, s.nowUTC())
	if err != nil {
		s.failZK(c, err)
		return
	}
	c.JSON(http.StatusOK, verifyResponse{
		Valid: res.Valid, Statement: string(res.Statement), Issuer: res.Issuer, Nullifier: res.Nullifier,
		Reason: string(res.Reason), Message: res.Reason.Message(), LedgerIndex: res.LedgerIndex,
	})
}

// challengeStatusResponse is the body of GET /v1/proofs/challenges/{id}:
// the verifier's challenge and what became of it. A patient may answer
// a challenge in the patient app instead of handing the proof back to
// the verifier; the verifier reads the outcome here.
type challengeStatusResponse struct {
	ID        string            `json:"id"`
	Statement string            `json:"statement"`
	Params    map[string]string `json:"params,omitempty"`
	CreatedAt *time.Time        `json:"created_at,omitempty"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
	// Status: open, answered (result says how), expired (unanswered), or
	// unknown (used up, but its verification was never logged: ask for a
	// new challenge).
	Status string          `json:"status"`
	Result *verifyResponse `json:"result,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func (s *Server) getChallenge(c *gin.Context) {
	st, err := s.zk.Service.ChallengeStatus(c.Request.Context(), principal(c).Org, c.Param("id"), s.nowUTC())
	if err != nil {
		s.failZK(c, err)
		return
	}
	ch := st.Challenge
	out := challengeStatusResponse{ID: ch.ID, Statement: ch.Statement, Params: ch.Params,
		CreatedAt: optTime(ch.CreatedAt), ExpiresAt: optTime(ch.ExpiresAt), Status: string(st.State)}
	if o := st.Outcome; o != nil {
		out.Result = &verifyResponse{Valid: o.Valid, Statement: o.Statement, Issuer: o.Issuer, Nullifier: o.Nullifier,
			Reason: string(o.Reason), Message: o.Reason.Message(), LedgerIndex: o.LedgerIndex}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}
