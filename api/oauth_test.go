package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
)

func TestTokenRoute(t *testing.T) {
	ts := newTestServer(t)
	var got auth.TokenRequest
	ts.tokens.exchange = func(r auth.TokenRequest) (auth.AccessToken, error) {
		got = r
		switch r.ClientAssertion {
		case "good":
			return auth.AccessToken{Token: "at", TokenType: "Bearer", ExpiresIn: 300, Scope: "system/records.read"}, nil
		case "bad":
			return auth.AccessToken{}, &auth.OAuthError{Code: auth.CodeInvalidClient, Description: "signature does not verify", Status: http.StatusUnauthorized}
		}
		return auth.AccessToken{}, errors.New("pq: connection refused")
	}
	post := func(contentType, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(t.Context(), "POST", "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		ts.Handler().ServeHTTP(rec, req)
		return rec
	}
	form := func(assertion string) string {
		return url.Values{
			"grant_type":            {auth.GrantClientCredentials},
			"client_assertion_type": {auth.AssertionTypeJWTBearer},
			"client_assertion":      {assertion},
			"scope":                 {"system/records.read"},
		}.Encode()
	}
	rec := post("application/x-www-form-urlencoded", form("good"))
	if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("good assertion: %d %s", rec.Code, rec.Body)
	}
	if diff := cmp.Diff(tokenResponse{AccessToken: "at", TokenType: "Bearer", ExpiresIn: 300, Scope: "system/records.read"}, decodeBody[tokenResponse](t, rec)); diff != "" {
		t.Errorf("token response (-want +got):\n%s", diff)
	}
	if got.ClientAssertion != "good" || got.Scope != "system/records.read" {
		t.Errorf("exchanged %+v", got)
	}
	for _, tt := range []struct {
		name, contentType, body, code string
		status                        int
	}{
		{"refused assertion", "application/x-www-form-urlencoded", form("bad"), auth.CodeInvalidClient, http.StatusUnauthorized},
		{"JSON body", "application/json", `{}`, auth.CodeInvalidRequest, http.StatusBadRequest},
		{"internal failure", "application/x-www-form-urlencoded", form("boom"), auth.CodeServerError, http.StatusInternalServerError},
	} {
		rec := post(tt.contentType, tt.body)
		e := decodeBody[tokenError](t, rec)
		if rec.Code != tt.status || e.Error != tt.code || strings.Contains(rec.Body.String(), "pq:") {
			t.Errorf("%s: %d %s", tt.name, rec.Code, rec.Body)
		}
	}
	if rec := post("application/x-www-form-urlencoded", strings.Repeat("a", maxTokenForm+1)); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: %d", rec.Code)
	}
	if rec := ts.do("GET", "/.well-known/smart-configuration", "", nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "token_endpoint") {
		t.Errorf("smart configuration: %d %s", rec.Code, rec.Body)
	}
	if rec := ts.do("GET", "/.well-known/jwks.json", "", nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"keys"`) {
		t.Errorf("jwks: %d %s", rec.Code, rec.Body)
	}
}
