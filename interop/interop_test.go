// Package interop runs third-party clients against the gateway's OAuth
// endpoints and its FHIR server: npm openid-client (its default
// private_key_jwt assertion), jose (a hand-built RFC 7523bis assertion)
// and fhir-kit-client (metadata, searches followed by their next links,
// reads by ID) over the real consent-gated read (access.Service on a
// SQLite vault, consent projection and ledger). They live in this
// directory as a pinned node project; install it with `make interop-deps`
// (npm ci). Without node, npm or node_modules the test is skipped.
package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
)

// nodeTimeout bounds the node run; generous for a saturated machine.
const nodeTimeout = 2 * time.Minute

func TestThirdPartyClients(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node is not installed: skipping the third-party client interop test")
	}
	for _, dep := range []string{"openid-client", "jose", "fhir-kit-client"} {
		if _, err := os.Stat(filepath.Join("node_modules", dep, "package.json")); err != nil {
			skipOrFail(t, fmt.Sprintf("interop/node_modules/%s is missing: run `make interop-deps` (npm ci in interop/) to run this test", dep))
		}
	}

	gin.SetMode(gin.ReleaseMode)
	org := authtest.NewOrg(t, "hosp-a", auth.KindHospital, "ES256")
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer srv.Close()
	key := authtest.NewSigningKey(t)
	cfg := auth.Config{Issuer: srv.URL}
	orgs := authtest.NewOrgs(org)
	x, err := auth.NewExchanger(cfg, key, orgs, authtest.NewReplay(time.Now))
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
	recs := mountRecords(t, s, x, orgs)
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
	cmd.Env = append(os.Environ(), "HEALTHGW_URL="+srv.URL, "ORG_ID="+org.ID, "ORG_KEY_FILE="+keyFile,
		"PATIENT=pat-1", "OBSERVATION_ID="+recs.observations[0], "CONDITION_ID="+recs.condition)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	type fhirRead struct {
		Status       int    `json:"status"`
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	type whoami struct {
		Org    string   `json:"org"`
		Kind   string   `json:"kind"`
		Scopes []string `json:"scopes"`
	}
	var got struct {
		OpenIDClient struct {
			Scope     string   `json:"scope"`
			TokenType string   `json:"token_type"`
			Whoami    whoami   `json:"whoami"`
			FHIRRead  fhirRead `json:"fhir_read"`
		} `json:"openid_client"`
		FHIRKit struct {
			FHIRVersion   string   `json:"fhirVersion"`
			Resources     []string `json:"resources"`
			OAuthToken    string   `json:"oauth_token"`
			Pages         int      `json:"pages"`
			SearchIDs     []string `json:"search_ids"`
			ReadIDs       []string `json:"read_ids"`
			Denied        fhirRead `json:"denied"`
			DeniedOutcome string   `json:"denied_outcome"`
		} `json:"fhir_kit"`
		Jose struct {
			Scope     string `json:"scope"`
			TokenType string `json:"token_type"`
			Whoami    whoami `json:"whoami"`
			// The token holds system/Observation.rs: it reads the
			// Observation, and the Condition is not found.
			Observation fhirRead `json:"observation"`
			Condition   fhirRead `json:"condition"`
			Replay      struct {
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
	if r := oc.FHIRRead; r.Status != 200 || r.ResourceType != "Observation" || r.ID != recs.observations[0] {
		t.Errorf("openid-client token, consent-gated FHIR read: %+v", r)
	}
	if r := j.Observation; r.Status != 200 || r.ResourceType != "Observation" || r.ID != recs.observations[0] {
		t.Errorf("jose token (system/Observation.rs), Observation read: %+v", r)
	}
	if r := j.Condition; r.Status != 404 || r.ResourceType != "OperationOutcome" {
		t.Errorf("jose token (system/Observation.rs), Condition read: %+v", r)
	}
	fk := got.FHIRKit
	if fk.FHIRVersion != "4.0.1" || !slices.Contains(fk.Resources, "Observation") || !slices.Contains(fk.Resources, "Consent") || fk.OAuthToken != srv.URL+"/oauth2/token" {
		t.Errorf("fhir-kit-client metadata: %+v", fk)
	}
	if diff := cmp.Diff(recs.observations, fk.SearchIDs); diff != "" || fk.Pages != 2 {
		t.Errorf("fhir-kit-client search over %d pages (-want +got):\n%s", fk.Pages, diff)
	}
	if diff := cmp.Diff(recs.observations, fk.ReadIDs); diff != "" {
		t.Errorf("fhir-kit-client reads by ID (-want +got):\n%s", diff)
	}
	if fk.Denied.Status != 404 || fk.DeniedOutcome != "not-found" {
		t.Errorf("fhir-kit-client read of a record without consent: %+v %q", fk.Denied, fk.DeniedOutcome)
	}
	// Every read was decided on the ledger: the Observations read by the
	// openid-client token, the jose token, the search and the reads by ID
	// permitted; the record without consent denied, and the Condition the
	// Observation-only token asked for read as a missing record (a logged
	// not-found deny).
	permits, denies := recs.decisions(t)
	if want := 1 + 1 + 2*len(recs.observations); permits != want || denies != 2 {
		t.Errorf("ledger: %d permits, %d denies; want %d and 2", permits, denies, want)
	}
	if r := j.Replay; r.Status != 401 || r.WWWAuthenticate != nil || r.Body.Error != "invalid_client" || !strings.Contains(r.Body.Description, "replayed") {
		t.Errorf("replayed assertion: %+v", r)
	}
}

// skipOrFail skips the test, unless HEALTHGW_REQUIRE_INTEROP=1 (CI) makes
// a missing client a failure.
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("HEALTHGW_REQUIRE_INTEROP") == "1" {
		t.Fatal("HEALTHGW_REQUIRE_INTEROP=1: " + msg)
	}
	t.Skip(msg)
}
