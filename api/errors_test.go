package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
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
		if rec.Code != tt.status || body.Error != tt.code || body.Message != tt.msg || body.RequestID != "req-123" {
			t.Errorf("%s: %d %+v, want %d %s %q", tt.path, rec.Code, body, tt.status, tt.code, tt.msg)
		}
		if strings.Contains(rec.Body.String(), "users_secret_table") || rec.Header().Get("X-Request-ID") != "req-123" {
			t.Errorf("%s: leaked detail or lost the request ID: %s", tt.path, rec.Body)
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
	if rec.Code != http.StatusOK {
		t.Errorf("healthz: %d", rec.Code)
	}
}
