package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/federation"
	"github.com/healthgw/healthgw/fhir"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// Error is an error with a status, a machine-readable code and a message
// that is safe to show the client. Handlers return it (or domain errors
// that errorTable knows); anything else becomes a 500 with no detail.
type Error struct {
	Status  int
	Code    string
	Message string
	Err     error // internal cause, logged, never sent
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Common API errors.
var (
	errNotFound     = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "Not found."}
	errUnauthorized = &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "Missing or invalid credentials."}
	errTooLarge     = &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "Request body too large."}
	errInternal     = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "Internal error."}
)

// badRequest is a 400 whose message is written for the client.
func badRequest(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: msg}
}

// errorRule maps a domain error (matched with errors.Is) to a response.
//
// The message is the rule's fixed text, or, when public is set, the safe
// message a typed error in the chain carries (see publicMessage): never
// the text of a wrapped chain, which holds package prefixes and internal
// context.
type errorRule struct {
	target  error
	status  int
	code    string
	message string
	public  bool
	// legacyText lets the rule show err.Error() when no typed message is
	// in the chain. Only the zero-knowledge rules (MountZK) still need it,
	// until their errors carry typed messages.
	legacyText bool
}

// errorTable is the one ordered mapping from domain errors to responses;
// the first rule that matches wins. The zero-knowledge rules follow it
// (Server.zkRules, see below).
var errorTable = []errorRule{
	// Not found, and not permitted (a denied read is access.ErrNotFound,
	// which is records.ErrNotFound): one answer.
	{target: records.ErrNotFound, status: http.StatusNotFound, code: "not_found", message: "Not found."},
	{target: consent.ErrNotFound, status: http.StatusNotFound, code: "not_found", message: "Not found."},
	{target: ledger.ErrNotFound, status: http.StatusNotFound, code: "not_found", message: "No such entry or tree size."},

	// Too large for an inline answer (a read that was permitted and
	// logged): the content route serves it.
	{target: records.ErrInlineTooLarge, status: http.StatusNotAcceptable, code: "too_large_inline", message: "This record is too large to answer inline: read its content with GET /v1/records/{id}/content."},

	// Bad input.
	{target: access.ErrInvalidJustification, status: http.StatusBadRequest, code: "invalid_request", message: "Invalid break-glass reason.", public: true},
	{target: access.ErrInvalidGrantee, status: http.StatusBadRequest, code: "invalid_request", message: "Invalid grantee.", public: true},
	{target: consent.ErrInvalidGrant, status: http.StatusBadRequest, code: "invalid_request", message: "Invalid consent.", public: true},
	{target: consent.ErrInvalidCursor, status: http.StatusBadRequest, code: "invalid_request", message: "Invalid cursor."},
	{target: consent.ErrInvalidFilter, status: http.StatusBadRequest, code: "invalid_request", message: "Invalid filter.", public: true},
	{target: records.ErrInvalid, status: http.StatusBadRequest, code: "invalid_request", message: "Invalid record.", public: true},
	{target: ledger.ErrInvalidRange, status: http.StatusBadRequest, code: "invalid_request", message: "Invalid index or tree size."},
	{target: records.ErrUploadTimeout, status: http.StatusRequestTimeout, code: "upload_timeout", message: "The upload took too long; nothing of it was kept.", public: true},
	{target: records.ErrTooLarge, status: http.StatusRequestEntityTooLarge, code: "too_large", message: "The record is too large.", public: true},
	{target: records.ErrNoEncryptionKey, status: http.StatusNotAcceptable, code: "not_acceptable", message: "No encryption key (use \"enc\") is registered for this organisation."},

	// Not for this caller.
	{target: access.ErrForbidden, status: http.StatusForbidden, code: "forbidden", message: "Not allowed for this caller."},

	// Conflicts.
	{target: consent.ErrAlreadyRevoked, status: http.StatusConflict, code: "conflict", message: "The consent is already revoked."},
	{target: access.ErrSignatureRequired, status: http.StatusConflict, code: "signature_required", message: "This patient has registered a passkey: consent changes must be signed with it in the patient app."},

	// Dependencies. A holder's gateway that cannot be asked is never a
	// 404: that would look like a denial.
	{target: federation.ErrLocatorUnreachable, status: http.StatusBadGateway, code: "locator_unreachable", message: "The custodian's gateway, which lists the patient's records across the consortium, is unreachable: no listing could be made. This says nothing about the patient's records; retry later."},
	{target: federation.ErrLocatorUnavailable, status: http.StatusServiceUnavailable, code: "locator_unavailable", message: "The custodian's gateway, which lists the patient's records across the consortium, cannot answer now (its ledger is not caught up or has lost its quorum). Retry shortly."},
	{target: federation.ErrLocatorFailed, status: http.StatusBadGateway, code: "locator_failed", message: "The custodian's gateway, which lists the patient's records across the consortium, answered with an error or an answer that does not verify."},
	{target: federation.ErrHolderUnreachable, status: http.StatusBadGateway, code: "holder_unreachable", message: "The holder's gateway is unreachable: the record could not be read there. This is not a denial; retry later."},
	{target: federation.ErrHolderUnavailable, status: http.StatusServiceUnavailable, code: "holder_unavailable", message: "The holder's gateway cannot decide now (its ledger is not caught up or has lost its quorum). This is not a denial; retry shortly."},
	{target: federation.ErrHolderFailed, status: http.StatusBadGateway, code: "holder_failed", message: "The holder's gateway answered with an error or an answer that does not verify. This is not a denial."},
	{target: access.ErrNotCaughtUp, status: http.StatusServiceUnavailable, code: "unavailable", message: "Ledger not caught up: this node has not yet applied every committed entry, so it does not decide. Retry shortly."},
	{target: access.ErrCatchingUp, status: http.StatusServiceUnavailable, code: "catching_up", message: "The access log is catching up with the ledger after a burst of entries: it would not yet show every decision. Retry shortly."},
	{target: ledger.ErrHalted, status: http.StatusServiceUnavailable, code: "halted", message: "This node's ledger has halted after a consensus failure: it accepts no writes and serves no entries until its operator repairs it. Use another member's gateway."},
	{target: ledger.ErrUnsettledFull, status: http.StatusServiceUnavailable, code: "unavailable", message: "This gateway keeps as many writes with an unknown outcome for their retries as it can, so it takes no new write now (the consortium may have lost its quorum). Retry shortly; repeat earlier writes with their Idempotency-Keys."},
	{target: ledger.ErrUnavailable, status: http.StatusServiceUnavailable, code: "unavailable", message: "The ledger is unavailable (the consortium may have lost its quorum). Retry shortly."},
	{target: ledger.ErrClosed, status: http.StatusServiceUnavailable, code: "unavailable", message: "The ledger is shutting down."},

	// Zero-knowledge rules: registered by MountZK (api/zk.go) through
	// addErrorRules and tried after the rules above, in the order given.
}

// addErrorRules registers the zero-knowledge rules (see errorTable).
func (s *Server) addErrorRules(rules ...errorRule) {
	for _, r := range rules {
		if r.public {
			r.public, r.legacyText = true, true
		}
		s.zkRules = append(s.zkRules, r)
	}
}

// publicMessager is an error that carries a message written for the
// client, by type (consent.ValidationError, records.InputError, …).
type publicMessager interface {
	PublicMessage() string
}

// publicMessage returns the safe message of the first typed error in
// err's chain that carries one.
func publicMessage(err error) (string, bool) {
	var pm publicMessager
	if errors.As(err, &pm) {
		if m := pm.PublicMessage(); m != "" {
			return m, true
		}
	}
	return "", false
}

// errorResponse is the body of every error.
type errorResponse = client.Error

// fail is the one error boundary: it maps err to a status and public
// message, logs the detail with the request ID, and aborts the request.
func (s *Server) fail(c *gin.Context, err error) {
	e := s.classify(err)
	rid := requestID(c)
	level := slog.LevelInfo
	switch {
	case e.Status == http.StatusServiceUnavailable:
		level = slog.LevelWarn // a dependency is not ready: expected, transient
	case e.Status >= 500:
		level = slog.LevelError
	}
	s.log.LogAttrs(c.Request.Context(), level, "request failed",
		slog.String("request_id", rid),
		slog.String("client_request_id", clientRequestID(c)),
		slog.String("route", c.FullPath()),
		slog.Int("status", e.Status),
		slog.String("code", e.Code),
		slog.String("err", err.Error()),
	)
	writeError(c, e, rid)
}

// writeError renders an error: under /fhir as a FHIR OperationOutcome
// (application/fhir+json), elsewhere as errorResponse.
func writeError(c *gin.Context, e *Error, rid string) {
	if isFHIRPath(c.Request.URL.Path) {
		c.Header("Content-Type", fhir.ContentType)
		c.AbortWithStatusJSON(e.Status, fhir.NewOperationOutcome(e.Status, e.Code, e.Message, rid))
		return
	}
	body := errorResponse{Error: e.Code, Message: e.Message, RequestID: rid, ClientRequestID: clientRequestID(c)}
	if e.Status >= 500 && keyedWrite(c) {
		// The write may have taken effect (a 503 from the ledger: the
		// entry may still be committed). Say so, and how to find out.
		body.Outcome = "unknown"
		body.IdempotencyKey = c.GetString(ctxIdemKey)
		body.Message = e.Message + " " + outcomeUnknown
		if body.IdempotencyKey == "" {
			body.Message = e.Message + " " + outcomeUnknownNoKey
		}
		if loc := c.GetString(ctxIdemLoc); loc != "" {
			body.Location = loc
			body.Message += " Or look for it: GET " + loc + "."
		}
	}
	if e.Status == http.StatusServiceUnavailable {
		// Transient (catching up, no quorum, shutting down): reads and
		// writes alike may retry.
		c.Header("Retry-After", "2")
	}
	c.AbortWithStatusJSON(e.Status, body)
}

func (s *Server) classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	for _, rules := range [][]errorRule{errorTable, s.zkRules} {
		for _, r := range rules {
			if errors.Is(err, r.target) {
				return r.response(err)
			}
		}
	}
	return errInternal
}

func (r errorRule) response(err error) *Error {
	msg := r.message
	if r.public {
		if m, ok := publicMessage(err); ok {
			msg = m
		} else if r.legacyText {
			msg = err.Error()
		}
	}
	return &Error{Status: r.status, Code: r.code, Message: msg}
}
