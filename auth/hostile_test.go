package auth_test

import (
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
)

const (
	issuer   = "https://gw.example"
	tokenURL = issuer + "/oauth2/token"
	idpIss   = "https://idp.example"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// fixture holds keys and organisations shared by the rows of a table;
// every row gets its own clock, replay cache, exchanger and authenticator.
type fixture struct {
	gwKey  jwk.Key // the gateway's private access-token key
	signer *auth.SigningKey
	idpKey jwk.Key // the patient IdP's private key
	a, b   *authtest.Org
	c, d   *authtest.Org
	reg    *authtest.Org
	// u is registered by an https JWKS URL (served by tlsSrv), h by a
	// plain-http one (httpSrv).
	u, h    *authtest.Org
	tlsSrv  *httptest.Server
	httpSrv *httptest.Server
	// fetches counts every JWKS request to either server; evil counts
	// requests to a server no org registered.
	fetches atomic.Int32
	evil    *httptest.Server
	evilHit atomic.Int32
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	gw, err := auth.GenerateSigningKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := auth.NewSigningKey(gw)
	if err != nil {
		t.Fatal(err)
	}
	idp, err := auth.GenerateSigningKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		gwKey:  gw,
		signer: signer,
		idpKey: idp,
		a:      authtest.NewOrg(t, "hosp-a", auth.KindHospital, "ES256"),
		b:      authtest.NewOrg(t, "hosp-b", auth.KindHospital, "ES256"),
		c:      authtest.NewOrg(t, "hosp-c", auth.KindHospital, "ES384"),
		d:      authtest.NewOrg(t, "verif-d", auth.KindVerifier, "EdDSA"),
		reg:    authtest.NewOrg(t, "reg-e", auth.KindRegulator, "ES256"),
		u:      authtest.NewOrg(t, "hosp-u", auth.KindHospital, "ES256"),
		h:      authtest.NewOrg(t, "hosp-h", auth.KindHospital, "ES256"),
	}
	serve := func(jwks string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			f.fetches.Add(1)
			_, _ = w.Write([]byte(jwks))
		}
	}
	f.tlsSrv = httptest.NewTLSServer(serve(f.u.JWKS))
	t.Cleanup(f.tlsSrv.Close)
	f.httpSrv = httptest.NewServer(serve(f.h.JWKS))
	t.Cleanup(f.httpSrv.Close)
	f.evil = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.evilHit.Add(1)
		_, _ = w.Write([]byte(f.b.JWKS))
	}))
	t.Cleanup(f.evil.Close)
	f.u.JWKS, f.u.JWKSURL = "", f.tlsSrv.URL+"/jwks.json"
	f.h.JWKS, f.h.JWKSURL = "", f.httpSrv.URL+"/jwks.json"
	return f
}

// world is one row's gateway.
type world struct {
	*fixture
	clock *authtest.Clock
	x     *auth.Exchanger
	authn *auth.Authenticator
}

func (f *fixture) world(t testing.TB, replay auth.ReplayCache, opts ...func(*auth.Config)) *world {
	t.Helper()
	clock := authtest.NewClock(t0)
	if replay == nil {
		replay = authtest.NewReplay(clock.Now)
	}
	cfg := auth.Config{Issuer: issuer, Now: clock.Now, HTTPClient: f.tlsSrv.Client()}
	for _, o := range opts {
		o(&cfg)
	}
	x, err := auth.NewExchanger(cfg, f.signer, authtest.NewOrgs(f.a, f.b, f.c, f.d, f.reg, f.u, f.h), replay)
	if err != nil {
		t.Fatal(err)
	}
	idpKeys, err := auth.PublicJWKS(f.idpKey)
	if err != nil {
		t.Fatal(err)
	}
	set, err := auth.ParseIdPJWKS(idpKeys)
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewAuthenticator(cfg, f.signer, auth.PatientIdP{Issuer: idpIss, Keys: set})
	if err != nil {
		t.Fatal(err)
	}
	return &world{fixture: f, clock: clock, x: x, authn: authn}
}

func assertionRequest(tok string) auth.TokenRequest {
	return auth.TokenRequest{
		GrantType:           auth.GrantClientCredentials,
		ClientAssertionType: auth.AssertionTypeJWTBearer,
		ClientAssertion:     tok,
	}
}

// exchange issues an access token for o, failing the test otherwise.
func (w *world) exchange(t testing.TB, o *authtest.Org, scope string) auth.AccessToken {
	t.Helper()
	req := assertionRequest(o.Assertion(t, tokenURL, w.clock.Now()))
	req.Scope = scope
	at, err := w.x.Exchange(t.Context(), req)
	if err != nil {
		t.Fatalf("exchange for %s: %v", o.ID, err)
	}
	return at
}

// gatewayHeader and gatewayClaims are those of a well-formed access token
// for hosp-a; rows change them and sign with the gateway's key.
func (w *world) gatewayHeader() map[string]any {
	return map[string]any{"alg": "ES256", "kid": w.signer.KeyID(), "typ": "at+jwt"}
}

func (w *world) gatewayClaims() map[string]any {
	now := w.clock.Now()
	return map[string]any{
		"iss": issuer, "aud": issuer, "sub": "hosp-a", "client_id": "hosp-a",
		"org_kind": "hospital", "scope": "system/records.read",
		"jti": authtest.NewJTI(), "iat": now.Unix(), "exp": now.Add(4 * time.Minute).Unix(),
	}
}

func (w *world) patientClaims() map[string]any {
	now := w.clock.Now()
	return map[string]any{
		"iss": idpIss, "aud": issuer, "sub": "pat-123",
		"jti": authtest.NewJTI(), "iat": now.Unix(), "exp": now.Add(30 * time.Minute).Unix(),
	}
}

func (w *world) patientToken(t testing.TB) string {
	t.Helper()
	kid, _ := w.idpKey.KeyID()
	return authtest.Sign(t, w.idpKey, map[string]any{"alg": "ES256", "kid": kid, "typ": "JWT"}, w.patientClaims())
}

func with(m map[string]any, kv ...any) map[string]any {
	m = maps.Clone(m)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func without(m map[string]any, keys ...string) map[string]any {
	m = maps.Clone(m)
	for _, k := range keys {
		delete(m, k)
	}
	return m
}

func oauthCode(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var oe *auth.OAuthError
	if !errors.As(err, &oe) {
		t.Fatalf("error %v is not an *auth.OAuthError", err)
	}
	if strings.Contains(err.Error(), "eyJ") {
		t.Errorf("error text holds token material: %v", err)
	}
	return oe.Code
}

// TestExchangeHostile sends one hostile client assertion per row to the
// token exchange.
func TestExchangeHostile(t *testing.T) {
	f := newFixture(t)
	now := t0
	a := f.a
	claims := func() map[string]any { return a.Claims(tokenURL, now) }
	tests := []struct {
		name string
		req  func(t *testing.T, w *world) auth.TokenRequest
		// before runs first (e.g. uses the assertion once).
		before   func(t *testing.T, w *world, req auth.TokenRequest)
		wantCode string
		wantErr  error
		// why is a fragment of the expected (internal) reason; desc one
		// of the public error_description (checked when set).
		why  string
		desc string
		// cfg adjusts the row's gateway configuration.
		cfg func(*auth.Config)
		// check runs last (e.g. asserts that nothing was fetched).
		check func(t *testing.T, w *world)
	}{
		{
			name: "valid ES256",
			req:  func(t *testing.T, w *world) auth.TokenRequest { return assertionRequest(a.Assertion(t, tokenURL, now)) },
		},
		{
			name: "valid ES384",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(f.c.Assertion(t, tokenURL, now))
			},
		},
		{
			name: "valid EdDSA",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(f.d.Assertion(t, tokenURL, now))
			},
		},
		{
			name: "alg none, empty signature",
			why:  "empty segment",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(authtest.Compact(t, with(a.Header(), "alg", "none"), claims(), nil))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "alg None",
			why:  "does not match key",
			desc: "alg does not match the key's algorithm (ES256)",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(authtest.Compact(t, with(a.Header(), "alg", "None"), claims(), []byte("x")))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "alg NONE",
			why:  "does not match key",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(authtest.Compact(t, with(a.Header(), "alg", "NONE"), claims(), []byte("x")))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "alg nOnE",
			why:  "does not match key",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(authtest.Compact(t, with(a.Header(), "alg", "nOnE"), claims(), []byte("x")))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "HS256 keyed with the org's public key",
			why:  "does not match key",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(authtest.HMAC(t, "HS256", authtest.PublicKeyBytes(t, a.Key), a.Header(), claims()))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "signed by another org claiming this iss (its own kid)",
			why:  "kid not among",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(f.b.Sign(t, f.b.Header(), claims()))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "signed by another org claiming this iss and kid",
			why:  "signature or format",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(f.b.Sign(t, a.Header(), claims()))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "iss is not sub",
			why:  "sub must equal iss",
			desc: "sub must equal iss",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "sub", "hosp-b")))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "wrong aud",
			why:  "wrong audience",
			desc: "wrong audience",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "aud", "https://other.example/oauth2/token")))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "aud is the issuer (RFC 7523bis, openid-client's default)",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "aud", issuer)))
			},
		},
		{
			name: "aud is the issuer with a trailing slash",
			why:  "wrong audience",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "aud", issuer+"/")))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "aud is an array of the token endpoint alone",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "aud", []string{tokenURL})))
			},
		},
		{
			name: "multi-valued aud (token endpoint and issuer)",
			why:  "single value",
			desc: "aud must be a single value",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "aud", []string{tokenURL, issuer})))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "multi-valued aud injecting another server",
			why:  "single value",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "aud", []string{"https://other.example/token", tokenURL})))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "empty aud array",
			why:  "single value",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "aud", []string{})))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "no aud",
			why:  "required claim",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), without(claims(), "aud")))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "typ client-authentication+jwt (RFC 7523bis)",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, with(a.Header(), "typ", "client-authentication+jwt"), with(claims(), "aud", issuer)))
			},
		},
		{
			name: "typ application/client-authentication+jwt",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, with(a.Header(), "typ", "application/client-authentication+jwt"), claims()))
			},
		},
		{
			name: "no typ",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, without(a.Header(), "typ"), claims()))
			},
		},
		{
			name: "typ of another kind of JWT (logout token)",
			why:  "not an assertion type",
			desc: "typ must be JWT or client-authentication+jwt",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, with(a.Header(), "typ", "logout+jwt"), claims()))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "expired",
			why:  "token expired",
			desc: "expired",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "iat", now.Add(-5*time.Minute).Unix(), "exp", now.Add(-time.Minute).Unix())))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "nbf in the future",
			why:  "nbf",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "nbf", now.Add(2*time.Minute).Unix())))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "iat in the future",
			why:  "iat",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "iat", now.Add(2*time.Minute).Unix())))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "exp more than 5 minutes ahead",
			why:  "exp is too far ahead",
			desc: "exp is too far ahead",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "exp", now.Add(10*time.Minute).Unix())))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "no exp",
			why:  "required claim",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), without(claims(), "exp")))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "no jti",
			why:  "required claim",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), without(claims(), "jti")))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "no sub",
			why:  "required claim",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), without(claims(), "sub")))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "replayed jti",
			why:  "already used",
			desc: "replayed",
			req:  func(t *testing.T, w *world) auth.TokenRequest { return assertionRequest(a.Assertion(t, tokenURL, now)) },
			before: func(t *testing.T, w *world, req auth.TokenRequest) {
				if _, err := w.x.Exchange(t.Context(), req); err != nil {
					t.Fatalf("first use: %v", err)
				}
			},
			wantCode: auth.CodeInvalidClient,
			wantErr:  auth.ErrReplay,
		},
		{
			name: "replayed jti just before expiry",
			why:  "already used",
			req:  func(t *testing.T, w *world) auth.TokenRequest { return assertionRequest(a.Assertion(t, tokenURL, now)) },
			before: func(t *testing.T, w *world, req auth.TokenRequest) {
				if _, err := w.x.Exchange(t.Context(), req); err != nil {
					t.Fatalf("first use: %v", err)
				}
				// exp is now+4m; with the default 30 s skew the assertion
				// still passes the exp check one second before exp+skew.
				w.clock.Set(now.Add(4*time.Minute + auth.DefaultSkew - time.Second))
			},
			wantCode: auth.CodeInvalidClient,
			wantErr:  auth.ErrReplay,
		},
		{
			name: "unknown kid",
			why:  "kid",
			desc: "unknown kid",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, with(a.Header(), "kid", "no-such-key"), claims()))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "no kid",
			why:  "no kid",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, without(a.Header(), "kid"), claims()))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "jku header pointing elsewhere (org with inline keys)",
			why:  "jku is not the registered JWKS URL",
			desc: "jku is not the client's registered JWKS URL",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, with(a.Header(), "jku", f.evil.URL+"/jwks.json"), claims()))
			},
			wantCode: auth.CodeInvalidClient,
			check:    noEvilFetch(f),
		},
		{
			name: "jku equal to the registered JWKS URL",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(f.u.Sign(t, with(f.u.Header(), "jku", f.u.JWKSURL), f.u.Claims(tokenURL, now)))
			},
		},
		{
			name: "registered JWKS URL, no jku",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(f.u.Assertion(t, tokenURL, now))
			},
		},
		{
			name: "jku naming an unregistered URL (org registered by URL), key from there",
			why:  "jku is not the registered JWKS URL",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				// Signed by hosp-b's key, which the evil set serves under
				// hosp-b's kid.
				return assertionRequest(f.b.Sign(t, with(f.b.Header(), "jku", f.evil.URL+"/jwks.json"), f.u.Claims(tokenURL, now)))
			},
			wantCode: auth.CodeInvalidClient,
			check:    noEvilFetch(f),
		},
		{
			name: "jku differing from the registered URL only in case",
			why:  "jku is not the registered JWKS URL",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(f.u.Sign(t, with(f.u.Header(), "jku", strings.ToUpper(f.u.JWKSURL)), f.u.Claims(tokenURL, now)))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "plain-http registered JWKS URL in production",
			why:  "not https",
			desc: "does not use https",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(f.h.Assertion(t, tokenURL, now))
			},
			wantCode: auth.CodeInvalidClient,
			wantErr:  auth.ErrInsecureJWKSURL,
			check: func(t *testing.T, w *world) {
				if n := f.fetches.Load(); n != 0 {
					t.Errorf("a plain-http JWKS URL was fetched %d times in production", n)
				}
			},
		},
		{
			name: "plain-http registered JWKS URL in development",
			cfg: func(c *auth.Config) {
				c.AllowInsecureJWKSURL = true
				c.HTTPClient = f.httpSrv.Client()
			},
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(f.h.Sign(t, with(f.h.Header(), "jku", f.h.JWKSURL), f.h.Claims(tokenURL, now)))
			},
		},
		{
			name: "x5u header pointing elsewhere",
			why:  "\"x5u\" is not accepted",
			desc: `header parameter "x5u" is not accepted`,
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, with(a.Header(), "x5u", "https://evil.example/cert.pem"), claims()))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "embedded jwk header",
			why:  "\"jwk\" is not accepted",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				pub, _ := f.b.Key.PublicKey()
				return assertionRequest(f.b.Sign(t, with(a.Header(), "jwk", pub), claims()))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "crit header",
			why:  "\"crit\" is not accepted",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, with(a.Header(), "crit", []string{"exp"}), claims()))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "duplicate alg in header",
			why:  "duplicate header",
			desc: `malformed: duplicate header parameter "alg"`,
			req: func(t *testing.T, w *world) auth.TokenRequest {
				tok := a.Assertion(t, tokenURL, now)
				segs := strings.Split(tok, ".")
				hdr := `{"alg":"ES256","alg":"none","kid":"` + a.KeyID() + `"}`
				return assertionRequest(b64(hdr) + "." + segs[1] + "." + segs[2])
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "JSON serialization with injected top-level claims",
			why:  "not a compact JWS",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				tok := a.Assertion(t, tokenURL, now)
				return assertionRequest(authtest.Flattened(t, tok, map[string]any{"iss": "hosp-a", "sub": "hosp-a", "scope": "audit.read"}))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "malformed base64 in the payload",
			why:  "not unpadded base64url",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				segs := strings.Split(a.Assertion(t, tokenURL, now), ".")
				return assertionRequest(segs[0] + ".!!" + segs[1][2:] + "." + segs[2])
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "padded base64",
			why:  "not unpadded base64url",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				segs := strings.Split(a.Assertion(t, tokenURL, now), ".")
				return assertionRequest(segs[0] + "==." + segs[1] + "." + segs[2])
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "four segments",
			why:  "not a compact JWS",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Assertion(t, tokenURL, now) + ".eyJ9")
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "over the size limit",
			why:  "over 8192 bytes",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "pad", strings.Repeat("x", auth.MaxTokenSize))))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "access token used as a client assertion",
			why:  "iss is not an organisation ID",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(w.exchange(t, a, "").Token)
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "org-signed assertion typed as an access token",
			why:  "not an assertion type",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, with(a.Header(), "typ", "at+jwt"), claims()))
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name:     "patient token used as a client assertion",
			why:      "iss is not an organisation ID",
			req:      func(t *testing.T, w *world) auth.TokenRequest { return assertionRequest(w.patientToken(t)) },
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "unknown org",
			why:  "unknown organisation",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				return assertionRequest(a.Sign(t, a.Header(), with(claims(), "iss", "hosp-zz", "sub", "hosp-zz")))
			},
			wantCode: auth.CodeInvalidClient,
			wantErr:  auth.ErrUnknownOrg,
		},
		{
			name: "client_id differs from iss",
			why:  "client_id is not iss",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				r := assertionRequest(a.Assertion(t, tokenURL, now))
				r.ClientID = "hosp-b"
				return r
			},
			wantCode: auth.CodeInvalidClient,
		},
		{
			name: "grant type password",
			why:  "only client_credentials",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				r := assertionRequest(a.Assertion(t, tokenURL, now))
				r.GrantType = "password"
				return r
			},
			wantCode: auth.CodeUnsupportedGrantType,
		},
		{
			name: "no grant type",
			why:  "grant_type is required",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				r := assertionRequest(a.Assertion(t, tokenURL, now))
				r.GrantType = ""
				return r
			},
			wantCode: auth.CodeInvalidRequest,
		},
		{
			name: "wrong assertion type",
			why:  "client_assertion_type must be",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				r := assertionRequest(a.Assertion(t, tokenURL, now))
				r.ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
				return r
			},
			wantCode: auth.CodeInvalidRequest,
		},
		{
			name:     "no assertion",
			why:      "required",
			req:      func(t *testing.T, w *world) auth.TokenRequest { return assertionRequest("") },
			wantCode: auth.CodeInvalidRequest,
		},
		{
			name: "scope beyond the org's",
			why:  "not granted",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				r := assertionRequest(a.Assertion(t, tokenURL, now))
				r.Scope = "system/records.read audit.read"
				return r
			},
			wantCode: auth.CodeInvalidScope,
		},
		{
			name: "unknown scope",
			why:  "unknown scope",
			req: func(t *testing.T, w *world) auth.TokenRequest {
				r := assertionRequest(a.Assertion(t, tokenURL, now))
				r.Scope = "patient/*.read"
				return r
			},
			wantCode: auth.CodeInvalidScope,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*auth.Config)
			if tt.cfg != nil {
				opts = append(opts, tt.cfg)
			}
			f.fetches.Store(0)
			w := f.world(t, nil, opts...)
			req := tt.req(t, w)
			if tt.before != nil {
				tt.before(t, w, req)
			}
			at, err := w.x.Exchange(t.Context(), req)
			if tt.check != nil {
				defer tt.check(t, w)
			}
			if got := oauthCode(t, err); got != tt.wantCode {
				t.Fatalf("Exchange: code %q, want %q (err %v)", got, tt.wantCode, err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.why) {
				t.Errorf("Exchange: %v, want reason %q", err, tt.why)
			}
			var oe *auth.OAuthError
			if errors.As(err, &oe) {
				if tt.desc != "" && !strings.Contains(oe.Description, tt.desc) {
					t.Errorf("error_description %q, want it to say %q", oe.Description, tt.desc)
				}
				checkPublicDescription(t, oe.Description)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Exchange: err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if at != (auth.AccessToken{}) {
					t.Errorf("Exchange returned a token with an error")
				}
				return
			}
			// A successful exchange gives a token the authenticator accepts.
			p, err := w.authn.Authenticate(t.Context(), at.Token)
			if err != nil {
				t.Fatalf("Authenticate(issued token): %v", err)
			}
			if p.Org == "" || p.IsPatient() || at.ExpiresIn > 300 || at.ExpiresIn <= 0 || at.TokenType != "Bearer" {
				t.Errorf("issued %+v authenticates as %+v", at, p)
			}
		})
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// noEvilFetch asserts that no request reached the unregistered key server.
func noEvilFetch(f *fixture) func(t *testing.T, w *world) {
	return func(t *testing.T, w *world) {
		if n := f.evilHit.Load(); n != 0 {
			t.Errorf("an unregistered jku was fetched %d times", n)
		}
	}
}

// checkPublicDescription fails if an error_description holds anything a
// client did not send or should not learn: token material, URLs, key
// IDs, internal error text.
func checkPublicDescription(t *testing.T, desc string) {
	t.Helper()
	if desc == "" {
		t.Errorf("empty error_description")
	}
	for _, bad := range []string{"eyJ", "http://", "https://", "127.0.0.1", "auth: ", "jwx", "%!"} {
		if strings.Contains(desc, bad) {
			t.Errorf("error_description %q holds %q", desc, bad)
		}
	}
}

// TestAuthenticateHostile sends one hostile bearer token per row to the
// authenticator.
func TestAuthenticateHostile(t *testing.T) {
	f := newFixture(t)
	gwSign := func(t *testing.T, w *world, hdr, claims map[string]any) string {
		return authtest.Sign(t, w.gwKey, hdr, claims)
	}
	tests := []struct {
		name string
		tok  func(t *testing.T, w *world) string
		// after runs before Authenticate (e.g. moves the clock).
		after    func(w *world)
		want     auth.Principal
		wantCode string
		// why is a fragment of the expected (internal) reason.
		why string
	}{
		{
			name: "valid access token",
			tok:  func(t *testing.T, w *world) string { return w.exchange(t, f.a, "system/records.read").Token },
			want: auth.Principal{Org: "hosp-a", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeRecordsRead}},
		},
		{
			name: "valid access token, all scopes",
			tok:  func(t *testing.T, w *world) string { return w.exchange(t, f.reg, "").Token },
			want: auth.Principal{Org: "reg-e", Kind: auth.KindRegulator, Scopes: []auth.Scope{auth.ScopeAuditRead}},
		},
		{
			name: "valid patient token (RequireOrg refuses it)",
			tok:  func(t *testing.T, w *world) string { return w.patientToken(t) },
			want: auth.Principal{Patient: "pat-123"},
		},
		{
			name: "alg none",
			tok: func(t *testing.T, w *world) string {
				return authtest.Compact(t, with(w.gatewayHeader(), "alg", "none"), w.gatewayClaims(), nil)
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "alg None",
			why:  "does not match key",
			tok: func(t *testing.T, w *world) string {
				return authtest.Compact(t, with(w.gatewayHeader(), "alg", "None"), w.gatewayClaims(), []byte("sig"))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "alg NONE",
			why:  "does not match key",
			tok: func(t *testing.T, w *world) string {
				return authtest.Compact(t, with(w.gatewayHeader(), "alg", "NONE"), w.gatewayClaims(), []byte("sig"))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "alg nonE",
			why:  "does not match key",
			tok: func(t *testing.T, w *world) string {
				return authtest.Compact(t, with(w.gatewayHeader(), "alg", "nonE"), w.gatewayClaims(), []byte("sig"))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "HS256 keyed with the gateway's public key",
			why:  "does not match key",
			tok: func(t *testing.T, w *world) string {
				return authtest.HMAC(t, "HS256", authtest.PublicKeyBytes(t, w.gwKey), w.gatewayHeader(), w.gatewayClaims())
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "signed by an org's key claiming the gateway's iss and kid",
			why:  "signature or format",
			tok: func(t *testing.T, w *world) string {
				return f.a.Sign(t, w.gatewayHeader(), w.gatewayClaims())
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "sub is not client_id",
			why:  "bad sub, client_id",
			tok: func(t *testing.T, w *world) string {
				return gwSign(t, w, w.gatewayHeader(), with(w.gatewayClaims(), "client_id", "hosp-b"))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "scope not allowed for the kind",
			why:  "scope not allowed",
			tok: func(t *testing.T, w *world) string {
				return gwSign(t, w, w.gatewayHeader(), with(w.gatewayClaims(), "scope", "audit.read"))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "wrong aud",
			why:  "wrong audience",
			tok: func(t *testing.T, w *world) string {
				return gwSign(t, w, w.gatewayHeader(), with(w.gatewayClaims(), "aud", "https://other.example"))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name:     "expired",
			why:      "token expired",
			tok:      func(t *testing.T, w *world) string { return w.exchange(t, f.a, "").Token },
			after:    func(w *world) { w.clock.Add(auth.DefaultAccessTokenTTL + auth.DefaultSkew) },
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "nbf in the future",
			why:  "nbf",
			tok: func(t *testing.T, w *world) string {
				return gwSign(t, w, w.gatewayHeader(), with(w.gatewayClaims(), "nbf", t0.Add(2*time.Minute).Unix()))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "exp beyond the access token lifetime",
			why:  "exp is too far ahead",
			tok: func(t *testing.T, w *world) string {
				return gwSign(t, w, w.gatewayHeader(), with(w.gatewayClaims(), "exp", t0.Add(time.Hour).Unix()))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "no exp",
			why:  "required claim",
			tok: func(t *testing.T, w *world) string {
				return gwSign(t, w, w.gatewayHeader(), without(w.gatewayClaims(), "exp"))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "no jti",
			why:  "required claim",
			tok: func(t *testing.T, w *world) string {
				return gwSign(t, w, w.gatewayHeader(), without(w.gatewayClaims(), "jti"))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "unknown kid",
			why:  "kid",
			tok: func(t *testing.T, w *world) string {
				return gwSign(t, w, with(w.gatewayHeader(), "kid", "other"), w.gatewayClaims())
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "jku header pointing elsewhere",
			why:  "\"jku\" is not accepted",
			tok: func(t *testing.T, w *world) string {
				return gwSign(t, w, with(w.gatewayHeader(), "jku", "https://evil.example/jwks.json"), w.gatewayClaims())
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "JSON serialization with injected top-level claims",
			why:  "not a compact JWS",
			tok: func(t *testing.T, w *world) string {
				return authtest.Flattened(t, w.exchange(t, f.a, "").Token, map[string]any{"scope": "audit.read", "org_kind": "regulator"})
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "malformed base64",
			why:  "not unpadded base64url",
			tok: func(t *testing.T, w *world) string {
				segs := strings.Split(w.exchange(t, f.a, "").Token, ".")
				return segs[0] + "." + segs[1] + "." + "+/" + segs[2][2:]
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "over the size limit",
			why:  "over 8192 bytes",
			tok: func(t *testing.T, w *world) string {
				return gwSign(t, w, w.gatewayHeader(), with(w.gatewayClaims(), "pad", strings.Repeat("x", auth.MaxTokenSize)))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "gateway-signed token without the access token typ",
			why:  "typ is not at+jwt",
			tok: func(t *testing.T, w *world) string {
				return gwSign(t, w, with(w.gatewayHeader(), "typ", "JWT"), w.gatewayClaims())
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name:     "client assertion used as a bearer token",
			why:      "unknown issuer",
			tok:      func(t *testing.T, w *world) string { return f.a.Assertion(t, tokenURL, t0) },
			wantCode: auth.CodeInvalidToken,
		},
		{
			name:     "client assertion with the gateway as aud",
			why:      "unknown issuer",
			tok:      func(t *testing.T, w *world) string { return f.a.Assertion(t, issuer, t0) },
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "patient token with wrong aud",
			why:  "wrong audience",
			tok: func(t *testing.T, w *world) string {
				kid, _ := w.idpKey.KeyID()
				return authtest.Sign(t, w.idpKey, map[string]any{"alg": "ES256", "kid": kid}, with(w.patientClaims(), "aud", "https://other.example"))
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name: "patient token signed by an org key",
			why:  "kid not among",
			tok: func(t *testing.T, w *world) string {
				return f.a.Sign(t, f.a.Header(), w.patientClaims())
			},
			wantCode: auth.CodeInvalidToken,
		},
		{
			name:     "patient token expired",
			why:      "token expired",
			tok:      func(t *testing.T, w *world) string { return w.patientToken(t) },
			after:    func(w *world) { w.clock.Add(time.Hour) },
			wantCode: auth.CodeInvalidToken,
		},
		{
			name:     "empty",
			why:      "empty token",
			tok:      func(t *testing.T, w *world) string { return "" },
			wantCode: auth.CodeInvalidToken,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.world(t, nil)
			tok := tt.tok(t, w)
			if tt.after != nil {
				tt.after(w)
			}
			p, err := w.authn.Authenticate(t.Context(), tok)
			if got := oauthCode(t, err); got != tt.wantCode {
				t.Fatalf("Authenticate: code %q, want %q (err %v)", got, tt.wantCode, err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.why) {
				t.Errorf("Authenticate: %v, want reason %q", err, tt.why)
			}
			if diff := cmp.Diff(tt.want, p, cmpopts.IgnoreFields(auth.Principal{}, "Expires")); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
			if err == nil && !p.Expires.After(w.clock.Now()) {
				t.Errorf("principal expires %v, want after now", p.Expires)
			}
			if err != nil {
				return
			}
			// Patients pass RequirePatient and fail RequireOrg; orgs the
			// other way round.
			wantOrg, wantPatient := "", auth.CodeInsufficientScope
			if p.IsPatient() {
				wantOrg, wantPatient = auth.CodeInsufficientScope, ""
			}
			if got := oauthCode(t, p.RequireOrg("")); got != wantOrg {
				t.Errorf("RequireOrg: code %q, want %q", got, wantOrg)
			}
			if got := oauthCode(t, p.RequirePatient()); got != wantPatient {
				t.Errorf("RequirePatient: code %q, want %q", got, wantPatient)
			}
		})
	}
}

// TestPatientIdPPlainHTTPJWKS: outside development a patient IdP whose
// JWKS URL is plain http is never fetched and its tokens are refused.
func TestPatientIdPPlainHTTPJWKS(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name     string
		insecure bool
		wantCode string
	}{
		{"production", false, auth.CodeInvalidToken},
		{"development", true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			jwks, err := auth.PublicJWKS(f.idpKey)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				_, _ = w.Write(jwks)
			}))
			defer srv.Close()
			w := f.world(t, nil)
			cfg := auth.Config{Issuer: issuer, Now: w.clock.Now, HTTPClient: srv.Client(), AllowInsecureJWKSURL: tt.insecure}
			a, err := auth.NewAuthenticator(cfg, f.signer, auth.PatientIdP{Issuer: idpIss, JWKSURL: srv.URL + "/jwks.json"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Authenticate(t.Context(), w.patientToken(t))
			if got := oauthCode(t, err); got != tt.wantCode {
				t.Fatalf("Authenticate: code %q, want %q (err %v)", got, tt.wantCode, err)
			}
			if tt.wantCode != "" && hits.Load() != 0 {
				t.Errorf("plain-http JWKS fetched %d times in production", hits.Load())
			}
		})
	}
}
