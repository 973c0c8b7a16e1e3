package auth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
)

func TestLoadOrCreateSigningKey(t *testing.T) {
	dir := t.TempDir()
	path := auth.SigningKeyPath(dir)
	k1, err := auth.LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := auth.LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.KeyID() != k2.KeyID() || k1.Algorithm() != "ES256" {
		t.Errorf("reloaded key %s (%s), want %s (ES256)", k2.KeyID(), k2.Algorithm(), k1.KeyID())
	}
	// The published set holds exactly the public key.
	b, err := json.Marshal(k1.PublicJWKS())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 1 || doc.Keys[0]["kid"] != k1.KeyID() || doc.Keys[0]["alg"] != "ES256" || doc.Keys[0]["use"] != "sig" || doc.Keys[0]["d"] != nil {
		t.Errorf("PublicJWKS = %s", b)
	}
	if _, err := auth.ParseOrgJWKS(b); err != nil {
		t.Errorf("PublicJWKS does not parse as a public set: %v", err)
	}
	// A corrupt key file is an error, not silently replaced.
	if err := os.WriteFile(path, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadOrCreateSigningKey(path); err == nil {
		t.Error("LoadOrCreateSigningKey accepted a corrupt key file")
	}
}

func TestDevIdP(t *testing.T) {
	dir := t.TempDir()
	idp, err := auth.LoadOrCreateDevIdP(auth.DevIdPKeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	clock := authtest.NewClock(t0)
	cfg := auth.Config{Issuer: issuer, Now: clock.Now}
	key := authtest.NewSigningKey(t)
	with, err := auth.NewAuthenticator(cfg, key, idp.PatientIdP(issuer))
	if err != nil {
		t.Fatal(err)
	}
	withoutIdP, err := auth.NewAuthenticator(cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	// Reloading the IdP gives the same key: tokens minted by the CLI
	// verify in the server.
	again, err := auth.LoadOrCreateDevIdP(auth.DevIdPKeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := again.Mint("pat-123", issuer, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := with.Authenticate(t.Context(), tok)
	if err != nil || p.Patient != "pat-123" || p.Org != "" || p.Expires.IsZero() {
		t.Errorf("Authenticate(dev patient token) = %+v, %v", p, err)
	}
	if _, err := withoutIdP.Authenticate(t.Context(), tok); oauthCode(t, err) != auth.CodeInvalidToken {
		t.Errorf("without the dev IdP configured: %v, want invalid_token", err)
	}
	if _, err := idp.Mint("pat 123", issuer, t0, 0); err == nil {
		t.Error("Mint accepted a patient ID with a space")
	}
}

func TestLoadPatientIdPFile(t *testing.T) {
	k, err := auth.GenerateSigningKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := auth.PublicJWKS(k)
	path := filepath.Join(t.TempDir(), "idp.json")
	if err := os.WriteFile(path, jwks, 0o644); err != nil {
		t.Fatal(err)
	}
	idp, err := auth.LoadPatientIdP(idpIss, path, "")
	if err != nil {
		t.Fatal(err)
	}
	clock := authtest.NewClock(t0)
	a, err := auth.NewAuthenticator(auth.Config{Issuer: issuer, Now: clock.Now}, authtest.NewSigningKey(t), idp)
	if err != nil {
		t.Fatal(err)
	}
	tok := authtest.Sign(t, k, map[string]any{"alg": "ES256", "kid": mustKid(k)}, map[string]any{
		"iss": idpIss, "aud": issuer, "sub": "pat-9", "jti": "j", "exp": t0.Add(time.Hour).Unix(),
	})
	if p, err := a.Authenticate(t.Context(), tok); err != nil || p.Patient != "pat-9" {
		t.Errorf("Authenticate = %+v, %v", p, err)
	}
	if _, err := auth.LoadPatientIdP(idpIss, filepath.Join(t.TempDir(), "missing.json"), ""); err == nil {
		t.Error("LoadPatientIdP accepted a missing file")
	}
}

// TestJWKSURL serves an org's and a patient IdP's keys over HTTP (on
// 127.0.0.1): they are fetched once, cached, and refetched (rate-limited)
// when a token names a kid the cache lacks.
func TestJWKSURL(t *testing.T) {
	org := authtest.NewOrg(t, "hosp-u", auth.KindHospital, "ES256")
	idpKey, _ := auth.GenerateSigningKey("ES256")
	idpKey2, _ := auth.GenerateSigningKey("ES256")
	var idpSet atomic.Value
	first, _ := auth.PublicJWKS(idpKey)
	idpSet.Store(first)
	var orgFetches, idpFetches atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/org.json", func(w http.ResponseWriter, r *http.Request) {
		orgFetches.Add(1)
		_, _ = w.Write([]byte(org.JWKS))
	})
	mux.HandleFunc("/idp.json", func(w http.ResponseWriter, r *http.Request) {
		idpFetches.Add(1)
		_, _ = w.Write(idpSet.Load().([]byte))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	clock := authtest.NewClock(t0)
	// A plain-http test server: development mode.
	cfg := auth.Config{Issuer: issuer, Now: clock.Now, HTTPClient: srv.Client(), AllowInsecureJWKSURL: true}
	byURL := org.Org
	byURL.JWKS, byURL.JWKSURL = "", srv.URL+"/org.json"
	orgs := authtest.NewOrgs()
	orgs.Put(byURL)
	key := authtest.NewSigningKey(t)
	x, err := auth.NewExchanger(cfg, key, orgs, authtest.NewReplay(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := x.Exchange(t.Context(), assertionRequest(org.Assertion(t, tokenURL, clock.Now()))); err != nil {
			t.Fatalf("Exchange with a JWKS URL org: %v", err)
		}
	}
	if n := orgFetches.Load(); n != 1 {
		t.Errorf("org JWKS fetched %d times for 3 exchanges, want 1", n)
	}
	if ek, ok, err := x.EncryptionKey(t.Context(), "hosp-u"); err != nil || !ok || mustKid(ek) != mustKid(org.EncKey) {
		t.Errorf("EncryptionKey = %v, %v, %v", ek, ok, err)
	}

	a, err := auth.NewAuthenticator(cfg, key, auth.PatientIdP{Issuer: idpIss, JWKSURL: srv.URL + "/idp.json"})
	if err != nil {
		t.Fatal(err)
	}
	patient := func(k any, kid string) string {
		return authtest.Sign(t, k, map[string]any{"alg": "ES256", "kid": kid}, map[string]any{
			"iss": idpIss, "aud": issuer, "sub": "pat-1", "jti": authtest.NewJTI(), "exp": clock.Now().Add(time.Hour).Unix(),
		})
	}
	if _, err := a.Authenticate(t.Context(), patient(idpKey, mustKid(idpKey))); err != nil {
		t.Fatalf("patient token via JWKS URL: %v", err)
	}
	// The IdP rotates to a new key. Right away, the unknown kid does not
	// trigger a refetch (rate limit); 30 s later it does.
	rotated, _ := auth.PublicJWKS(idpKey2)
	idpSet.Store(rotated)
	tok2 := patient(idpKey2, mustKid(idpKey2))
	if _, err := a.Authenticate(t.Context(), tok2); oauthCode(t, err) != auth.CodeInvalidToken {
		t.Errorf("rotated key before the refresh interval: %v, want invalid_token", err)
	}
	clock.Add(31 * time.Second)
	if _, err := a.Authenticate(t.Context(), tok2); err != nil {
		t.Errorf("rotated key after the refresh interval: %v", err)
	}
	if n := idpFetches.Load(); n != 2 {
		t.Errorf("IdP JWKS fetched %d times, want 2", n)
	}
}

func TestTokenRequestFromForm(t *testing.T) {
	tests := []struct {
		name string
		form url.Values
		want auth.TokenRequest
		code string
	}{
		{
			name: "all parameters",
			form: url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {auth.AssertionTypeJWTBearer}, "client_assertion": {"a.b.c"}, "scope": {"audit.read"}},
			want: auth.TokenRequest{GrantType: "client_credentials", ClientAssertionType: auth.AssertionTypeJWTBearer, ClientAssertion: "a.b.c", Scope: "audit.read"},
		},
		{
			name: "assertion given twice",
			form: url.Values{"grant_type": {"client_credentials"}, "client_assertion": {"a.b.c", "d.e.f"}},
			code: auth.CodeInvalidRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.TokenRequestFromForm(tt.form)
			if c := oauthCode(t, err); c != tt.code {
				t.Fatalf("code %q, want %q", c, tt.code)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSMARTConfiguration(t *testing.T) {
	f := newFixture(t)
	w := f.world(t, nil)
	doc := w.x.SMARTConfiguration()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		TokenEndpoint string   `json:"token_endpoint"`
		AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
		Algs          []string `json:"token_endpoint_auth_signing_alg_values_supported"`
		Grants        []string `json:"grant_types_supported"`
		Scopes        []string `json:"scopes_supported"`
		Capabilities  []string `json:"capabilities"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.TokenEndpoint != tokenURL || !cmp.Equal(got.AuthMethods, []string{"private_key_jwt"}) ||
		!cmp.Equal(got.Grants, []string{"client_credentials"}) || len(got.Scopes) != len(auth.AllScopes())+6 ||
		!cmp.Equal(got.Algs, []string{"ES256", "ES384", "RS384", "EdDSA"}) || len(got.Capabilities) == 0 {
		t.Errorf("SMART configuration = %s", b)
	}
}

func TestConfigBounds(t *testing.T) {
	key := authtest.NewSigningKey(t)
	for _, cfg := range []auth.Config{
		{Issuer: "gw.example"},
		{Issuer: issuer, AccessTokenTTL: 10 * time.Minute},
		{Issuer: issuer, Skew: 2 * time.Minute},
	} {
		if _, err := auth.NewAuthenticator(cfg, key); err == nil {
			t.Errorf("NewAuthenticator(%+v) accepted", cfg)
		}
	}
	if _, err := auth.NewAuthenticator(auth.Config{Issuer: issuer}, key, auth.PatientIdP{Issuer: issuer, JWKSURL: "https://x"}); err == nil {
		t.Error("a patient IdP sharing the gateway's issuer was accepted")
	}
}
