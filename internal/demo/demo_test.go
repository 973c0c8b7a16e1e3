package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
)

// TestOrgTokenWaitsForRegistry: a gateway that does not know the new
// organisation yet (its node has not applied the registration) answers
// invalid_client; the demo retries, saying so, until it does, and gives
// up at RegistryWait with an error that says why.
func TestOrgTokenWaitsForRegistry(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Set(jwk.KeyIDKey, "k1"); err != nil {
		t.Fatal(err)
	}
	if err := key.Set(jwk.AlgorithmKey, "ES256"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		unknown  int64 // answers before the gateway knows the org
		wait     time.Duration
		wantErr  string
		wantSays string
	}{
		{"applied after three tries", 3, time.Minute, "", "waiting for the gateway to apply the registration of hosp-d"},
		{"never applied", 1 << 30, 300 * time.Millisecond, "had not applied its registration", "waiting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if calls.Add(1) <= tc.unknown {
					w.WriteHeader(http.StatusUnauthorized)
					w.Write([]byte(`{"error":"invalid_client","error_description":"unknown client"}`))
					return
				}
				w.Write([]byte(`{"access_token":"tok","token_type":"Bearer","expires_in":300}`))
			}))
			defer srv.Close()
			var out strings.Builder
			d := &demo{
				cfg: Config{Out: &out, RegistryWait: tc.wait, RegisterOrg: func(context.Context, string, auth.Org) (jwk.Key, error) { return key, nil }},
				c:   client.New(srv.URL, srv.Client()),
			}
			tok, err := d.orgToken(t.Context(), t.TempDir(), auth.Org{ID: "hosp-d", Kind: auth.KindHospital})
			if tc.wantErr == "" {
				if err != nil || tok != "tok" {
					t.Fatalf("orgToken = %q, %v", tok, err)
				}
				if got := calls.Load(); got != tc.unknown+1 {
					t.Errorf("%d token requests, want %d", got, tc.unknown+1)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("orgToken error = %v, want %q", err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.wantSays) {
				t.Errorf("progress %q does not say %q", out.String(), tc.wantSays)
			}
		})
	}
}
