package main

import (
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
)

func with(m map[string]any, kv ...any) map[string]any {
	m = maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
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

// TestTokenEndpointHostile sends one hostile client assertion per row to
// POST /oauth2/token through the whole HTTP stack. Every row must be
// refused with the RFC 6749 status and error code, and the response must
// carry no token.
func TestTokenEndpointHostile(t *testing.T) {
	g := newTestGateway(t)
	a := g.register("hosp-a", auth.KindHospital)
	b := g.register("hosp-b", auth.KindHospital)
	aud := g.tokenURL()
	claims := func() map[string]any { return a.Claims(aud, time.Now()) }
	hdr := a.Header
	oversize := a.Sign(t, hdr(), with(claims(), "pad", strings.Repeat("x", 20<<10)))
	hugeBody := a.Sign(t, hdr(), with(claims(), "pad", strings.Repeat("x", 70<<10)))

	tests := []struct {
		name       string
		assertion  func(t *testing.T) string
		wantStatus int
		wantCode   string
	}{
		{"alg none", func(t *testing.T) string {
			return authtest.Compact(t, with(hdr(), "alg", "none"), claims(), nil)
		}, 401, "invalid_client"},
		{"alg None", func(t *testing.T) string {
			return authtest.Compact(t, with(hdr(), "alg", "None"), claims(), nil)
		}, 401, "invalid_client"},
		{"alg NONE", func(t *testing.T) string {
			return authtest.Compact(t, with(hdr(), "alg", "NONE"), claims(), nil)
		}, 401, "invalid_client"},
		{"alg nOnE with a signature", func(t *testing.T) string {
			return authtest.Compact(t, with(hdr(), "alg", "nOnE"), claims(), []byte("sig"))
		}, 401, "invalid_client"},
		{"HS256 keyed with the org's public key", func(t *testing.T) string {
			return authtest.HMAC(t, "HS256", authtest.PublicKeyBytes(t, a.Key), with(hdr(), "alg", "HS256"), claims())
		}, 401, "invalid_client"},
		{"another org's key claiming this iss", func(t *testing.T) string {
			return b.Sign(t, with(hdr(), "kid", b.KeyID()), claims())
		}, 401, "invalid_client"},
		{"another org's key under this org's kid", func(t *testing.T) string {
			return b.Sign(t, hdr(), claims())
		}, 401, "invalid_client"},
		{"iss differs from sub", func(t *testing.T) string {
			return a.Sign(t, hdr(), with(claims(), "sub", "hosp-b"))
		}, 401, "invalid_client"},
		{"wrong aud", func(t *testing.T) string {
			return a.Sign(t, hdr(), with(claims(), "aud", "https://elsewhere.example/oauth2/token"))
		}, 401, "invalid_client"},
		{"expired", func(t *testing.T) string {
			return a.Sign(t, hdr(), with(claims(), "iat", time.Now().Add(-10*time.Minute).Unix(), "exp", time.Now().Add(-5*time.Minute).Unix()))
		}, 401, "invalid_client"},
		{"nbf in the future", func(t *testing.T) string {
			return a.Sign(t, hdr(), with(claims(), "nbf", time.Now().Add(3*time.Minute).Unix()))
		}, 401, "invalid_client"},
		{"exp more than 5 minutes ahead", func(t *testing.T) string {
			return a.Sign(t, hdr(), with(claims(), "exp", time.Now().Add(30*time.Minute).Unix()))
		}, 401, "invalid_client"},
		{"no exp", func(t *testing.T) string {
			return a.Sign(t, hdr(), without(claims(), "exp"))
		}, 401, "invalid_client"},
		{"no jti", func(t *testing.T) string {
			return a.Sign(t, hdr(), without(claims(), "jti"))
		}, 401, "invalid_client"},
		{"unknown kid", func(t *testing.T) string {
			return a.Sign(t, with(hdr(), "kid", "no-such-key"), claims())
		}, 401, "invalid_client"},
		{"jku header pointing elsewhere", func(t *testing.T) string {
			return a.Sign(t, with(hdr(), "jku", "https://attacker.example/jwks.json"), claims())
		}, 401, "invalid_client"},
		{"x5u header", func(t *testing.T) string {
			return a.Sign(t, with(hdr(), "x5u", "https://attacker.example/cert.pem"), claims())
		}, 401, "invalid_client"},
		{"JSON-serialized JWS with injected claims", func(t *testing.T) string {
			return authtest.Flattened(t, a.Sign(t, hdr(), claims()), map[string]any{"iss": "hosp-b", "sub": "hosp-b"})
		}, 401, "invalid_client"},
		{"malformed base64", func(t *testing.T) string {
			s := a.Sign(t, hdr(), claims())
			return s[:10] + "!!!" + s[13:]
		}, 401, "invalid_client"},
		{"over the size limit", func(t *testing.T) string { return oversize }, 401, "invalid_client"},
		{"request body over the form limit", func(t *testing.T) string { return hugeBody }, 413, "too_large"},
		{"unknown org", func(t *testing.T) string {
			return a.Sign(t, hdr(), with(claims(), "iss", "hosp-zz", "sub", "hosp-zz"))
		}, 401, "invalid_client"},
		{"an access token used as a client assertion", func(t *testing.T) string {
			return g.token(a, "")
		}, 401, "invalid_client"},
		{"a patient token used as a client assertion", func(t *testing.T) string {
			return g.patientToken("pat-1")
		}, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := g.postToken(tt.assertion(t), "")
			got := decode[struct {
				Error       string `json:"error"`
				AccessToken string `json:"access_token"`
			}](t, body)
			if status != tt.wantStatus || got.Error != tt.wantCode || got.AccessToken != "" {
				t.Errorf("got %d %q (token %t), want %d %q", status, got.Error, got.AccessToken != "", tt.wantStatus, tt.wantCode)
			}
		})
	}

	t.Run("replayed jti", func(t *testing.T) {
		as := a.Assertion(t, aud, time.Now())
		if status, body := g.postToken(as, ""); status != http.StatusOK {
			t.Fatalf("first use: %d %s", status, body)
		}
		if status, body := g.postToken(as, ""); status != http.StatusUnauthorized || decode[apiErrorOAuth](t, body).Error != "invalid_client" {
			t.Errorf("replay: %d %s", status, body)
		}
	})
	t.Run("replayed jti just before expiry", func(t *testing.T) {
		c := with(claims(), "iat", time.Now().Add(-4*time.Minute).Unix(), "exp", time.Now().Add(2*time.Second).Unix())
		as := a.Sign(t, hdr(), c)
		if status, body := g.postToken(as, ""); status != http.StatusOK {
			t.Fatalf("first use: %d %s", status, body)
		}
		if status, _ := g.postToken(as, ""); status != http.StatusUnauthorized {
			t.Errorf("replay just before expiry: %d", status)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, form := range []string{
			"grant_type=password&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion=x",
			"grant_type=client_credentials",
			"grant_type=client_credentials&client_assertion_type=other&client_assertion=x",
		} {
			req, _ := http.NewRequest(http.MethodPost, g.tokenURL(), strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", form, resp.StatusCode)
			}
		}
	})
	t.Run("scope not allowed for the org", func(t *testing.T) {
		status, body := g.postToken(a.Assertion(t, aud, time.Now()), "audit.read")
		if status != http.StatusBadRequest || decode[apiErrorOAuth](t, body).Error != "invalid_scope" {
			t.Errorf("got %d %s, want 400 invalid_scope", status, body)
		}
	})
}

type apiErrorOAuth struct {
	Error string `json:"error"`
}

// TestReplayCacheSurvivesRestart uses an assertion, restarts the gateway on
// the same data directory and replays it.
func TestReplayCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	g1 := newTestGateway(t, func(c *serveConfig) { c.DataDir = dir })
	a := g1.register("hosp-a", auth.KindHospital)
	as := a.Assertion(t, g1.tokenURL(), time.Now())
	if status, body := g1.postToken(as, ""); status != http.StatusOK {
		t.Fatalf("first use: %d %s", status, body)
	}
	g1.srv.Close()
	if err := g1.close(); err != nil {
		t.Fatal(err)
	}
	// Same address, so the token endpoint URL (the aud) is the same.
	addr := strings.TrimPrefix(g1.url, "http://")
	g2 := newTestGatewayAt(t, addr, dir)
	if status, body := g2.postToken(as, ""); status != http.StatusUnauthorized {
		t.Errorf("replay after restart: %d %s, want 401", status, body)
	}
	// A fresh assertion still works: the org survived the restart too.
	if status, body := g2.postToken(a.Assertion(t, g2.tokenURL(), time.Now()), ""); status != http.StatusOK {
		t.Errorf("fresh assertion after restart: %d %s", status, body)
	}
}

// TestAuthenticatedRouteHostile presents hostile bearer tokens to an
// authenticated route: each gets 401 with the standard error body.
func TestAuthenticatedRouteHostile(t *testing.T) {
	g := newTestGateway(t)
	a := g.register("hosp-a", auth.KindHospital)
	good := g.token(a, "")
	if status, body := g.do("GET", "/v1/whoami", good, nil); status != http.StatusOK {
		t.Fatalf("valid token: %d %s", status, body)
	}
	parts := strings.Split(good, ".")
	tests := []struct {
		name  string
		token string
	}{
		{"no token", ""},
		{"alg none", authtest.Compact(t, map[string]any{"alg": "none", "typ": "at+jwt"}, map[string]any{"iss": g.url, "sub": "hosp-a", "exp": time.Now().Add(time.Minute).Unix(), "jti": "x"}, nil)},
		{"signature stripped", parts[0] + "." + parts[1] + "."},
		{"payload swapped", parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2]},
		{"client assertion used as an access token", a.Assertion(t, g.tokenURL(), time.Now())},
		{"malformed base64", "e!!.e!!.e!!"},
		{"JSON-serialized JWS", authtest.Flattened(t, good, map[string]any{"sub": "hosp-b"})},
		{"over the size limit", strings.Repeat("a", 9<<10)},
		{"HS256 keyed with the gateway's public key", authtest.HMAC(t, "HS256", authtest.PublicKeyBytes(t, g.signKey.Public()),
			map[string]any{"alg": "HS256", "kid": g.signKey.KeyID(), "typ": "at+jwt"},
			map[string]any{"iss": g.url, "aud": g.url, "sub": "hosp-a", "scope": "system/records.read", "exp": time.Now().Add(time.Minute).Unix(), "jti": "x"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := g.do("GET", "/v1/whoami", tt.token, nil)
			e := decode[apiError](t, body)
			if status != http.StatusUnauthorized || e.Error != "unauthorized" || e.RequestID == "" {
				t.Errorf("got %d %s, want 401 unauthorized", status, body)
			}
		})
	}
}
