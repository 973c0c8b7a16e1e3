package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
)

// memRevocations is an in-memory auth.Revocations.
type memRevocations struct {
	mu sync.Mutex
	m  map[string]bool
}

func (r *memRevocations) Revoke(_ context.Context, jti string, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[jti] = true
	return nil
}

func (r *memRevocations) Revoked(_ context.Context, jti string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[jti], nil
}

type oauthGateway struct {
	srv  *httptest.Server
	a, b *authtest.Org
}

func newOAuthGateway(t *testing.T) *oauthGateway {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	g := &oauthGateway{
		a: authtest.NewOrg(t, "hosp-a", auth.KindHospital, "ES256"),
		b: authtest.NewOrg(t, "hosp-b", auth.KindHospital, "EdDSA"),
	}
	// The server's URL is the issuer: listen first, then build the API.
	var h http.Handler
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(g.srv.Close)
	key := authtest.NewSigningKey(t)
	cfg := auth.Config{Issuer: g.srv.URL, Revocations: &memRevocations{m: map[string]bool{}}}
	x, err := auth.NewExchanger(cfg, key, authtest.NewOrgs(g.a, g.b), authtest.NewReplay(time.Now))
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewAuthenticator(cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(api.Config{BaseURL: g.srv.URL}, nil, authn)
	s.MountAuth(x, key.PublicJWKS())
	s.MountTokenManagement(x, authn)
	h = s.Handler()
	return g
}

func (g *oauthGateway) post(t *testing.T, path string, form url.Values, bearer string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", g.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return do(t, req)
}

func (g *oauthGateway) get(t *testing.T, path, bearer string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", g.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %s", req.Method, req.URL.Path, resp.StatusCode, b)
		}
	}
	return resp, m
}

func assertionForm(tok string) url.Values {
	return url.Values{"client_assertion_type": {auth.AssertionTypeJWTBearer}, "client_assertion": {tok}}
}

// token gets an access token for o with an assertion whose aud is aud.
func (g *oauthGateway) token(t *testing.T, o *authtest.Org, aud string) string {
	t.Helper()
	form := assertionForm(o.Assertion(t, aud, time.Now()))
	form.Set("grant_type", "client_credentials")
	resp, body := g.post(t, "/oauth2/token", form, "")
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %v", resp.StatusCode, body)
	}
	return body["access_token"].(string)
}

// TestDiscovery: the SMART configuration at the root and at the FHIR base,
// and RFC 8414 metadata, with the fields SMART 2.x and RFC 8414 ask for.
func TestDiscovery(t *testing.T) {
	g := newOAuthGateway(t)
	iss := g.srv.URL
	_, root := g.get(t, "/.well-known/smart-configuration", "")
	_, fhirBase := g.get(t, "/fhir/.well-known/smart-configuration", "")
	rootJSON, _ := json.Marshal(root)
	fhirJSON, _ := json.Marshal(fhirBase)
	if string(rootJSON) != string(fhirJSON) {
		t.Errorf("SMART configuration differs at the FHIR base:\n%s\n%s", rootJSON, fhirJSON)
	}
	want := map[string]any{
		"issuer":                 iss,
		"token_endpoint":         iss + "/oauth2/token",
		"jwks_uri":               iss + "/.well-known/jwks.json",
		"introspection_endpoint": iss + "/oauth2/introspect",
		"revocation_endpoint":    iss + "/oauth2/revoke",
	}
	for k, v := range want {
		if root[k] != v {
			t.Errorf("smart-configuration %s = %v, want %v", k, root[k], v)
		}
	}
	has := func(doc map[string]any, field, value string) bool {
		list, _ := doc[field].([]any)
		for _, x := range list {
			if x == value {
				return true
			}
		}
		return false
	}
	for field, value := range map[string]string{
		"grant_types_supported":                            "client_credentials",
		"token_endpoint_auth_methods_supported":            "private_key_jwt",
		"token_endpoint_auth_signing_alg_values_supported": "ES384",
		"capabilities":     "client-confidential-asymmetric",
		"scopes_supported": "system/records.read",
	} {
		if !has(root, field, value) {
			t.Errorf("smart-configuration %s lacks %q: %v", field, value, root[field])
		}
	}
	if _, ok := root["response_types_supported"]; ok {
		t.Errorf("smart-configuration advertises response types without an authorization endpoint: %v", root["response_types_supported"])
	}
	resp, meta := g.get(t, "/.well-known/oauth-authorization-server", "")
	if resp.StatusCode != 200 || meta["issuer"] != iss || meta["token_endpoint"] != iss+"/oauth2/token" ||
		!has(meta, "introspection_endpoint_auth_methods_supported", "private_key_jwt") ||
		!has(meta, "revocation_endpoint_auth_methods_supported", "private_key_jwt") {
		t.Errorf("RFC 8414 metadata: %d %v", resp.StatusCode, meta)
	}
	if rt, ok := meta["response_types_supported"].([]any); !ok || len(rt) != 0 {
		t.Errorf("RFC 8414 response_types_supported = %v, want []", meta["response_types_supported"])
	}
}

// TestTokenEndpointErrors: invalid_client answers carry a precise
// error_description and no WWW-Authenticate; aud = the issuer works.
func TestTokenEndpointErrors(t *testing.T) {
	g := newOAuthGateway(t)
	g.token(t, g.a, g.srv.URL) // RFC 7523bis audience
	now := time.Now()
	form := assertionForm(g.a.Sign(t, g.a.Header(), map[string]any{
		"iss": "hosp-a", "sub": "hosp-a", "aud": []string{g.srv.URL, g.srv.URL + "/oauth2/token"},
		"jti": authtest.NewJTI(), "exp": now.Add(time.Minute).Unix(),
	}))
	form.Set("grant_type", "client_credentials")
	resp, body := g.post(t, "/oauth2/token", form, "")
	if resp.StatusCode != 401 || body["error"] != "invalid_client" || !strings.Contains(body["error_description"].(string), "single value") {
		t.Errorf("multi-valued aud: %d %v", resp.StatusCode, body)
	}
	if h := resp.Header.Get("WWW-Authenticate"); h != "" {
		t.Errorf("token endpoint invalid_client has WWW-Authenticate %q", h)
	}
}

// TestIntrospectionAndRevocation over HTTP: both client authentications,
// the refusals, and a revoked token failing authentication right away
// (also when this gateway had it cached as verified).
func TestIntrospectionAndRevocation(t *testing.T) {
	g := newOAuthGateway(t)
	iss := g.srv.URL
	tokA := g.token(t, g.a, iss+"/oauth2/token")
	if resp, _ := g.get(t, "/v1/whoami", tokA); resp.StatusCode != 200 {
		t.Fatalf("whoami: %d", resp.StatusCode)
	}

	// By client assertion, aud = the introspection endpoint.
	form := assertionForm(g.a.Assertion(t, iss+"/oauth2/introspect", time.Now()))
	form.Set("token", tokA)
	resp, info := g.post(t, "/oauth2/introspect", form, "")
	if resp.StatusCode != 200 || info["active"] != true || info["client_id"] != "hosp-a" || info["token_type"] != "Bearer" {
		t.Errorf("introspect own token: %d %v", resp.StatusCode, info)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("introspection response is cacheable")
	}
	// By bearer token: hosp-b learns nothing about hosp-a's token.
	tokB := g.token(t, g.b, iss)
	_, info = g.post(t, "/oauth2/introspect", url.Values{"token": {tokA}}, tokB)
	if len(info) != 1 || info["active"] != false {
		t.Errorf("hosp-b introspecting hosp-a's token: %v, want only active=false", info)
	}
	for name, tt := range map[string]struct {
		form   url.Values
		bearer string
		status int
		code   string
	}{
		"no client authentication": {url.Values{"token": {tokA}}, "", 401, "invalid_client"},
		"a bad bearer":             {url.Values{"token": {tokA}}, "nope", 401, "invalid_token"},
		"two methods": {func() url.Values {
			f := assertionForm(g.a.Assertion(t, iss, time.Now()))
			f.Set("token", tokA)
			return f
		}(), tokB, 400, "invalid_request"},
		"no token":    {url.Values{}, tokB, 400, "invalid_request"},
		"token twice": {url.Values{"token": {tokA, tokB}}, tokB, 400, "invalid_request"},
	} {
		resp, body := g.post(t, "/oauth2/introspect", tt.form, tt.bearer)
		if resp.StatusCode != tt.status || body["error"] != tt.code {
			t.Errorf("%s: %d %v, want %d %s", name, resp.StatusCode, body, tt.status, tt.code)
		}
	}

	// hosp-b may not revoke hosp-a's token.
	resp, body := g.post(t, "/oauth2/revoke", url.Values{"token": {tokA}}, tokB)
	if resp.StatusCode != 400 || body["error"] != "unauthorized_client" {
		t.Errorf("revoke another client's token: %d %v", resp.StatusCode, body)
	}
	// Unknown tokens: 200, nothing to do (RFC 7009).
	if resp, _ := g.post(t, "/oauth2/revoke", url.Values{"token": {"garbage"}, "token_type_hint": {"access_token"}}, tokB); resp.StatusCode != 200 {
		t.Errorf("revoke an unknown token: %d", resp.StatusCode)
	}
	// hosp-a revokes its own token, authenticating with that very token.
	if resp, body := g.post(t, "/oauth2/revoke", url.Values{"token": {tokA}}, tokA); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %v", resp.StatusCode, body)
	}
	if resp, _ := g.get(t, "/v1/whoami", tokA); resp.StatusCode != 401 {
		t.Errorf("whoami with a revoked token: %d, want 401", resp.StatusCode)
	}
	form = assertionForm(g.a.Assertion(t, iss, time.Now()))
	form.Set("token", tokA)
	if _, info := g.post(t, "/oauth2/introspect", form, ""); info["active"] != false {
		t.Errorf("revoked token introspects as %v", info)
	}
	if resp, _ := g.get(t, "/v1/whoami", tokB); resp.StatusCode != 200 {
		t.Errorf("another client's token after a revocation: %d", resp.StatusCode)
	}
}
