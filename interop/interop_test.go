// Package interop runs third-party clients against the gateway's OAuth
// endpoints: npm openid-client (its default private_key_jwt assertion)
// and jose (a hand-built RFC 7523bis assertion). They live in this
// directory as a pinned node project; install it with `make interop-deps`
// (npm ci). Without node, npm or node_modules the test is skipped.
package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
)

// nodeTimeout bounds the node run; generous for a saturated machine.
const nodeTimeout = 2 * time.Minute

func TestThirdPartyClients(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the third-party client interop test")
	}
	for _, dep := range []string{"openid-client", "jose"} {
		if _, err := os.Stat(filepath.Join("node_modules", dep, "package.json")); err != nil {
			t.Skipf("interop/node_modules/%s is missing: run `make interop-deps` (npm ci in interop/) to run this test", dep)
		}
	}

	gin.SetMode(gin.ReleaseMode)
	org := authtest.NewOrg(t, "hosp-a", auth.KindHospital, "ES256")
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer srv.Close()
	key := authtest.NewSigningKey(t)
	cfg := auth.Config{Issuer: srv.URL}
	x, err := auth.NewExchanger(cfg, key, authtest.NewOrgs(org), authtest.NewReplay(time.Now))
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewAuthenticator(cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(api.Config{BaseURL: srv.URL}, nil, authn)
	s.MountAuth(x, key.PublicJWKS())
	s.MountTokenManagement(x, authn)
	h = s.Handler()

	keyFile := filepath.Join(t.TempDir(), "org.jwk")
	kb, err := json.Marshal(org.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, kb, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Env = append(os.Environ(), "HEALTHGW_URL="+srv.URL, "ORG_ID="+org.ID, "ORG_KEY_FILE="+keyFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	type whoami struct {
		Org    string   `json:"org"`
		Kind   string   `json:"kind"`
		Scopes []string `json:"scopes"`
	}
	var got struct {
		OpenIDClient struct {
			Scope     string `json:"scope"`
			TokenType string `json:"token_type"`
			Whoami    whoami `json:"whoami"`
		} `json:"openid_client"`
		Jose struct {
			Scope     string `json:"scope"`
			TokenType string `json:"token_type"`
			Whoami    whoami `json:"whoami"`
			Replay    struct {
				Status          int     `json:"status"`
				WWWAuthenticate *string `json:"www_authenticate"`
				Body            struct {
					Error       string `json:"error"`
					Description string `json:"error_description"`
				} `json:"body"`
			} `json:"replay"`
		} `json:"jose"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("node output %q: %v", stdout.String(), err)
	}
	oc := got.OpenIDClient
	if oc.Whoami.Org != "hosp-a" || oc.Whoami.Kind != "hospital" || !strings.EqualFold(oc.TokenType, "bearer") ||
		oc.Scope != "system/*.rs system/records.read system/consents.read" {
		t.Errorf("openid-client: %+v", oc)
	}
	j := got.Jose
	if j.Whoami.Org != "hosp-a" || j.Scope != "system/Observation.rs system/records.write" || len(j.Whoami.Scopes) != 2 {
		t.Errorf("jose: %+v", j)
	}
	if r := j.Replay; r.Status != 401 || r.WWWAuthenticate != nil || r.Body.Error != "invalid_client" || !strings.Contains(r.Body.Description, "replayed") {
		t.Errorf("replayed assertion: %+v", r)
	}
}
