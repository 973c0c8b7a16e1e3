package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authstore"
	"github.com/healthgw/healthgw/database/databasetest"
)

func runToken(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), args, func(string) string { return "" }, &out, &errOut)
	return strings.TrimSpace(out.String()), err
}

func TestTokenPatient(t *testing.T) {
	data := t.TempDir()
	tok, err := runToken(t, "token", "patient", "--id", "pat-123", "--data", data, "--url", "https://gw.example/", "--create")
	if err != nil {
		t.Fatal(err)
	}
	// A gateway with the dev IdP over the same data directory accepts it.
	idp, err := auth.LoadOrCreateDevIdP(auth.DevIdPKeyPath(data))
	if err != nil {
		t.Fatal(err)
	}
	key, err := auth.LoadOrCreateSigningKey(auth.SigningKeyPath(data))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.NewAuthenticator(auth.Config{Issuer: "https://gw.example"}, key, idp.PatientIdP(""))
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.Principal{Patient: "pat-123"}, p, cmpopts.IgnoreFields(auth.Principal{}, "Expires")); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
}

// tokenHandler is a minimal token endpoint over an Exchanger (the real one
// is the API's).
func tokenHandler(x *auth.Exchanger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = r.ParseForm()
		req, err := auth.TokenRequestFromForm(r.PostForm)
		var at auth.AccessToken
		if err == nil {
			at, err = x.Exchange(r.Context(), req)
		}
		var oe *auth.OAuthError
		if errors.As(err, &oe) {
			w.WriteHeader(oe.Status)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": oe.Code, "error_description": oe.Description})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": at.Token, "token_type": at.TokenType, "expires_in": at.ExpiresIn, "scope": at.Scope})
	})
}

// TestTokenClient: keygen registers a demo client; token client signs an
// assertion with its key and exchanges it at a token endpoint on
// 127.0.0.1; the access token authenticates as the org.
func TestTokenClient(t *testing.T) {
	db := databasetest.SQLite(t)
	st := newTestStores(t, db)
	e, _, _ := testEnv()
	keys := t.TempDir()
	kg, err := newKeygen(auth.Org{ID: "hosp-a", Name: "Hospital A", Kind: auth.KindHospital}, keys, "ES384")
	if err != nil {
		t.Fatal(err)
	}
	if err := kg.run(t.Context(), e, st.log, st.follow); err != nil {
		t.Fatal(err)
	}
	replay, err := authstore.Open(t.Context(), db, authstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := auth.LoadOrCreateSigningKey(auth.SigningKeyPath(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cfg := auth.Config{Issuer: srv.URL}
	x, err := auth.NewExchanger(cfg, key, st.reg, replay)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("POST /oauth2/token", tokenHandler(x))
	authn, err := auth.NewAuthenticator(cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(keys, "hosp-a.jwk")

	tests := []struct {
		name    string
		args    []string
		want    auth.Principal
		wantErr string
	}{
		{
			name: "all scopes",
			args: []string{"--org", "hosp-a", "--key", keyFile, "--url", srv.URL},
			want: auth.Principal{Org: "hosp-a", Kind: auth.KindHospital, Scopes: auth.KindScopes[auth.KindHospital]},
		},
		{
			name: "some scopes",
			args: []string{"--org", "hosp-a", "--key", keyFile, "--url", srv.URL, "--scope", "system/records.read,system/records.write"},
			want: auth.Principal{Org: "hosp-a", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeRecordsRead, auth.ScopeRecordsWrite}},
		},
		{
			name:    "scope the org lacks",
			args:    []string{"--org", "hosp-a", "--key", keyFile, "--url", srv.URL, "--scope", "audit.read"},
			wantErr: "invalid_scope",
		},
		{
			name:    "another org's ID",
			args:    []string{"--org", "hosp-b", "--key", keyFile, "--url", srv.URL},
			wantErr: "invalid_client",
		},
		{
			name:    "wrong audience",
			args:    []string{"--org", "hosp-a", "--key", keyFile, "--aud", srv.URL + "/oauth2/token?v=2"},
			wantErr: "invalid_client",
		},
		{
			name:    "public key file",
			args:    []string{"--org", "hosp-a", "--key", filepath.Join(keys, "hosp-a.jwks.json"), "--url", srv.URL},
			wantErr: "not a JWK",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := runToken(t, append([]string{"token", "client"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("token client = %v, want an error mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := authn.Authenticate(t.Context(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, p, cmpopts.IgnoreFields(auth.Principal{}, "Expires")); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("assertion only", func(t *testing.T) {
		assertion, err := runToken(t, "token", "client", "--org", "hosp-a", "--key", keyFile, "--url", srv.URL, "--exchange=false")
		if err != nil {
			t.Fatal(err)
		}
		req := auth.TokenRequest{GrantType: auth.GrantClientCredentials, ClientAssertionType: auth.AssertionTypeJWTBearer, ClientAssertion: assertion}
		if _, err := x.Exchange(t.Context(), req); err != nil {
			t.Fatalf("exchanging the printed assertion: %v", err)
		}
		if _, err := x.Exchange(t.Context(), req); !errors.Is(err, auth.ErrReplay) {
			t.Errorf("exchanging it again = %v, want ErrReplay", err)
		}
	})
}
