package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// TestErrorBoundary: panics and unexpected errors become a 500 with no
// detail; typed errors keep their status and public message; every
// response carries a request ID.
func TestErrorBoundary(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	s := New(Config{}, nil, nil)
	secret := errors.New("pq: relation users_secret_table does not exist")
	s.engine.GET("/panic", func(c *gin.Context) { panic("boom: " + secret.Error()) })
	s.engine.GET("/internal", func(c *gin.Context) { s.fail(c, secret) })
	s.engine.GET("/typed", func(c *gin.Context) { s.fail(c, badRequest("Field x is wrong.")) })
	for _, tt := range []struct {
		path, code, msg string
		status          int
	}{
		{"/panic", "internal", "Internal error.", 500},
		{"/internal", "internal", "Internal error.", 500},
		{"/typed", "invalid_request", "Field x is wrong.", 400},
		{"/nowhere", "not_found", "Not found.", 404},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", tt.path, nil)
		req.Header.Set("X-Request-ID", "req-123")
		s.Handler().ServeHTTP(rec, req)
		var body errorResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v: %s", tt.path, err, rec.Body)
		}
		rid := rec.Header().Get("X-Request-ID")
		if rec.Code != tt.status || body.Error != tt.code || body.Message != tt.msg || body.RequestID != rid || body.ClientRequestID != "req-123" {
			t.Errorf("%s: %d %+v, want %d %s %q", tt.path, rec.Code, body, tt.status, tt.code, tt.msg)
		}
		if strings.Contains(rec.Body.String(), "users_secret_table") || rec.Header().Get("X-Client-Request-ID") != "req-123" {
			t.Errorf("%s: leaked detail or lost the client's request ID: %s", tt.path, rec.Body)
		}
		// The request ID is the gateway's own, never the client's.
		if _, err := uuid.Parse(rid); err != nil || rid == "req-123" {
			t.Errorf("%s: request ID %q is not the gateway's", tt.path, rid)
		}
	}
	// A malformed request ID is replaced, never echoed.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-ID", "<script>")
	s.Handler().ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Request-ID"); got == "" || got == "<script>" {
		t.Errorf("request ID %q", got)
	}
	if got := rec.Header().Get("X-Client-Request-ID"); got != "" {
		t.Errorf("malformed client request ID echoed: %q", got)
	}
	if rec.Code != http.StatusOK {
		t.Errorf("healthz: %d", rec.Code)
	}
}

// TestErrorTable: every domain error maps to its status, code and message
// through the one table, wrapped or not; typed errors supply their own
// safe message and nothing else of the chain is shown.
func TestErrorTable(t *testing.T) {
	s := New(Config{}, nil, nil)
	wrap := func(err error) error { return fmt.Errorf("somepkg: doing a thing: %w", err) }
	for _, tt := range []struct {
		err    error
		status int
		code   string
		msg    string
	}{
		{records.ErrNotFound, 404, "not_found", "Not found."},
		{access.ErrNotFound, 404, "not_found", "Not found."},
		{consent.ErrNotFound, 404, "not_found", "Not found."},
		{ledger.ErrNotFound, 404, "not_found", "No such entry or tree size."},
		{&consent.ValidationError{Field: "purposes", Message: "item 0 must be one of TREAT"}, 400, "invalid_request", "purposes: item 0 must be one of TREAT."},
		{consent.ErrInvalidGrant, 400, "invalid_request", "Invalid consent."},
		{consent.ErrInvalidCursor, 400, "invalid_request", "Invalid cursor."},
		{&consent.FilterError{Message: "decision must be permit or deny."}, 400, "invalid_request", "decision must be permit or deny."},
		{&records.InputError{Err: records.ErrInvalid, Message: "content is empty"}, 400, "invalid_request", "content is empty"},
		{records.ErrInvalid, 400, "invalid_request", "Invalid record."},
		{&records.InputError{Err: records.ErrTooLarge, Message: "too big"}, 413, "too_large", "too big"},
		{records.ErrNoEncryptionKey, 406, "not_acceptable", "No encryption key (use \"enc\") is registered for this organisation."},
		{ledger.ErrInvalidRange, 400, "invalid_request", "Invalid index or tree size."},
		{consent.ErrAlreadyRevoked, 409, "conflict", "The consent is already revoked."},
		{ledger.ErrUnsettledFull, 503, "unavailable", "This gateway keeps as many writes with an unknown outcome for their retries as it can, so it takes no new write now (the consortium may have lost its quorum). Retry shortly; repeat earlier writes with their Idempotency-Keys."},
		{ledger.ErrUnavailable, 503, "unavailable", "The ledger is unavailable (the consortium may have lost its quorum). Retry shortly."},
		{ledger.ErrClosed, 503, "unavailable", "The ledger is shutting down."},
		{&http.MaxBytesError{Limit: 1}, 413, "too_large", "Request body too large."},
		{errors.New("pq: secret"), 500, "internal", "Internal error."},
	} {
		for _, err := range []error{tt.err, wrap(tt.err)} {
			got := s.classify(err)
			if got.Status != tt.status || got.Code != tt.code || got.Message != tt.msg {
				t.Errorf("classify(%v) = %d %s %q, want %d %s %q", err, got.Status, got.Code, got.Message, tt.status, tt.code, tt.msg)
			}
		}
	}
	// The zero-knowledge rules come after the table, and keep their
	// current (error text) messages until their errors carry typed ones.
	errZK := errors.New("bad params: attribute age")
	s.addErrorRules(
		errorRule{target: errZK, status: 400, code: "invalid_request", public: true},
		errorRule{target: records.ErrNotFound, status: 418, code: "teapot", message: "never"},
	)
	if got := s.classify(wrap(errZK)); got.Status != 400 || got.Message != "somepkg: doing a thing: bad params: attribute age" {
		t.Errorf("zero-knowledge rule: %+v", got)
	}
	if got := s.classify(records.ErrNotFound); got.Status != 404 {
		t.Errorf("a later rule overrode the table: %+v", got)
	}
	e := &Error{Status: 400, Code: "x", Message: "m", Err: errZK}
	if !errors.Is(e, errZK) || !strings.Contains(e.Error(), errZK.Error()) {
		t.Errorf("Error does not wrap its cause: %v", e)
	}
}

// TestPanicAfterWrite: a panic after the response started aborts without
// writing a second body.
func TestPanicAfterWrite(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	s := New(Config{}, nil, nil)
	s.engine.GET("/half", func(c *gin.Context) {
		c.String(http.StatusOK, "partial")
		panic("late")
	})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/half", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "partial" {
		t.Errorf("%d %q", rec.Code, rec.Body)
	}
}
