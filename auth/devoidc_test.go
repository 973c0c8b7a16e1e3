package auth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
)

type oidcFixture struct {
	srv    *httptest.Server
	issuer string
	o      *auth.DevOIDC
}

const (
	testClient   = "app"
	testSecret   = "s3cret-s3cret-s3cret"
	testRedirect = "https://rp.example/callback"
)

func newOIDCFixture(t *testing.T) *oidcFixture {
	t.Helper()
	idp, err := auth.LoadOrCreateDevIdP(auth.DevIdPKeyPath(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	f := &oidcFixture{}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL + auth.DevOIDCPath
	f.o, err = idp.OIDC(auth.DevOIDCConfig{
		Issuer: f.issuer, Audience: "https://gw.example",
		Clients: []auth.DevOIDCClient{{ID: testClient, Secret: testSecret, RedirectURIs: []string{testRedirect}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(auth.DevOIDCPath+"/", f.o)
	return f
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func challenge(verifier string) string {
	s := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// code runs the authorize page and its form and returns the code.
func (f *oidcFixture) code(t *testing.T, q url.Values, fields url.Values) (int, string) {
	t.Helper()
	resp, err := http.Get(f.issuer + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, string(body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("login page CSP %q", csp)
	}
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	resp, err = noRedirect.PostForm(f.issuer+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, string(body)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), testRedirect+"?") || loc.Query().Get("state") != q.Get("state") {
		t.Fatalf("redirect %s", loc)
	}
	return http.StatusSeeOther, loc.Query().Get("code")
}

func (f *oidcFixture) token(t *testing.T, form url.Values, basic bool) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(testClient, testSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func authzQuery(verifier, scope string) url.Values {
	return url.Values{"response_type": {"code"}, "client_id": {testClient}, "redirect_uri": {testRedirect}, "scope": {scope},
		"state": {"st-1"}, "nonce": {"n-1"}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
}

// TestDevOIDC: the development IdP is an OIDC provider that go-oidc
// discovers and whose ID tokens it verifies; its access tokens are
// patient tokens the gateway accepts.
func TestDevOIDC(t *testing.T) {
	f := newOIDCFixture(t)
	ctx := t.Context()
	p, err := oidc.NewProvider(ctx, f.issuer) // discovery, issuer check
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	verifier := strings.Repeat("v", 50)
	status, code := f.code(t, authzQuery(verifier, "openid"), url.Values{"patient": {"pat-1"}})
	if status != http.StatusSeeOther {
		t.Fatalf("authorize: %d %s", status, code)
	}
	status, tok := f.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}, true)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: testClient}).Verify(ctx, tok["id_token"].(string))
	if err != nil {
		t.Fatalf("verify id_token: %v", err)
	}
	var claims struct {
		Role string `json:"healthgw_role"`
	}
	_ = idt.Claims(&claims)
	if idt.Subject != "pat-1" || idt.Nonce != "n-1" || claims.Role != "patient" {
		t.Errorf("id token: sub %q nonce %q role %q", idt.Subject, idt.Nonce, claims.Role)
	}
	a, err := auth.NewAuthenticator(auth.Config{Issuer: "https://gw.example"}, authtest.NewSigningKey(t), f.o.PatientIdP())
	if err != nil {
		t.Fatal(err)
	}
	if pr, err := a.Authenticate(ctx, tok["access_token"].(string)); err != nil || pr.Patient != "pat-1" {
		t.Errorf("access token: %+v %v", pr, err)
	}
	// The code is single use.
	if status, out := f.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}, true); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("code reuse: %d %v", status, out)
	}

	// Staff.
	status, code = f.code(t, authzQuery(verifier, "openid "+auth.ScopeDevStaff), url.Values{"staff": {"auditor-1"}, "org": {"reg-x"}})
	if status != http.StatusSeeOther {
		t.Fatalf("staff authorize: %d %s", status, code)
	}
	_, tok = f.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {verifier},
		"client_id": {testClient}, "client_secret": {testSecret}}, false)
	idt, err = p.Verifier(&oidc.Config{ClientID: testClient}).Verify(ctx, tok["id_token"].(string))
	var sc struct {
		Role string `json:"healthgw_role"`
		Org  string `json:"healthgw_org"`
	}
	if err != nil || idt.Claims(&sc) != nil || sc.Role != "staff" || sc.Org != "reg-x" || idt.Subject != "auditor-1" {
		t.Errorf("staff id token: %v %+v", err, sc)
	}
	if _, err := a.Authenticate(ctx, tok["access_token"].(string)); err == nil {
		t.Error("a staff access token authenticates at the gateway")
	}
}

func TestDevOIDCHostile(t *testing.T) {
	f := newOIDCFixture(t)
	verifier := strings.Repeat("w", 60)
	for name, mutate := range map[string]func(url.Values){
		"unknown client":   func(q url.Values) { q.Set("client_id", "evil") },
		"unregistered uri": func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") },
		"no PKCE":          func(q url.Values) { q.Del("code_challenge") },
		"plain PKCE":       func(q url.Values) { q.Set("code_challenge_method", "plain") },
		"no openid":        func(q url.Values) { q.Set("scope", "profile") },
		"no state":         func(q url.Values) { q.Del("state") },
		"implicit flow":    func(q url.Values) { q.Set("response_type", "token") },
	} {
		q := authzQuery(verifier, "openid")
		mutate(q)
		if status, body := f.code(t, q, nil); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	if status, _ := f.code(t, authzQuery(verifier, "openid"), url.Values{"patient": {"has space"}}); status != http.StatusBadRequest {
		t.Errorf("bad patient ID: %d", status)
	}
	if status, _ := f.code(t, authzQuery(verifier, "openid"), url.Values{"mac": {"forged"}}); status != http.StatusBadRequest {
		t.Errorf("forged form: %d", status)
	}
	// A form whose hidden redirect was swapped fails its MAC.
	if status, _ := f.code(t, authzQuery(verifier, "openid"), url.Values{"state": {"other"}}); status != http.StatusBadRequest {
		t.Errorf("altered form: %d", status)
	}
	for name, tc := range map[string]struct {
		form   url.Values
		basic  bool
		status int
		err    string
	}{
		"wrong verifier": {url.Values{"code_verifier": {strings.Repeat("x", 60)}}, true, 400, "invalid_grant"},
		"no verifier":    {url.Values{"code_verifier": {""}}, true, 400, "invalid_grant"},
		"wrong redirect": {url.Values{"redirect_uri": {"https://rp.example/other"}}, true, 400, "invalid_grant"},
		"no client auth": {url.Values{}, false, 401, "invalid_client"},
		"wrong secret":   {url.Values{"client_id": {testClient}, "client_secret": {"nope"}}, false, 401, "invalid_client"},
		"wrong grant":    {url.Values{"grant_type": {"client_credentials"}}, true, 400, "unsupported_grant_type"},
		"unknown code":   {url.Values{"code": {"made-up"}}, true, 400, "invalid_grant"},
	} {
		status, code := f.code(t, authzQuery(verifier, "openid"), url.Values{"patient": {"pat-1"}})
		if status != http.StatusSeeOther {
			t.Fatalf("authorize: %d", status)
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}
		for k, v := range tc.form {
			form[k] = v
		}
		if status, out := f.token(t, form, tc.basic); status != tc.status || out["error"] != tc.err {
			t.Errorf("%s: %d %v, want %d %s", name, status, out, tc.status, tc.err)
		}
	}
}
