package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/verify"
	"github.com/healthgw/healthgw/registry"
)

// testGateway is a complete gateway on a loopback listener.
type testGateway struct {
	*gateway
	t      testing.TB
	srv    *httptest.Server
	url    string
	client *http.Client // validates every exchange against api/openapi.json
	once   sync.Once    // builds client when a test made the testGateway itself
}

// newTestGateway starts a gateway with a fresh data directory (SQLite by
// default; mutate may point cfg.DB at PostgreSQL) and stops it when the
// test ends.
// localhostBase, as a test gateway's BaseURL, is http://localhost on the
// port the gateway listens on.
const localhostBase = "http://localhost:0"

func newTestGateway(t testing.TB, mutate ...func(*serveConfig)) *testGateway {
	t.Helper()
	return newTestGatewayOn(t, nil, mutate...)
}

// newTestGatewayOn is newTestGateway on an open database (nil: open the
// configured one); the caller closes db.
func newTestGatewayOn(t testing.TB, db *gorm.DB, mutate ...func(*serveConfig)) *testGateway {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	cfg := defaultServeConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	for _, m := range mutate {
		m(&cfg)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = ln.Addr().String()
	if cfg.BaseURL == localhostBase {
		// WebAuthn needs a secure context: http://localhost is one, an IP
		// address is not.
		_, port, _ := net.SplitHostPort(cfg.Addr)
		cfg.BaseURL = "http://localhost:" + port
	}
	if err := cfg.finish(); err != nil {
		t.Fatal(err)
	}
	g := &gateway{cfg: cfg, log: testLogger(), db: db}
	err = g.open(t.Context(), &env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard})
	if err != nil {
		err = errors.Join(err, g.close())
		ln.Close()
		t.Fatalf("open gateway: %v", err)
	}
	srv := httptest.NewUnstartedServer(g.handler)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	tg := &testGateway{gateway: g, t: t, srv: srv, url: cfg.BaseURL}
	t.Cleanup(func() {
		srv.Close()
		if err := g.close(); err != nil {
			t.Errorf("close gateway: %v", err)
		}
	})
	return tg
}

// register registers a fresh organisation (through the ledger) and returns
// it with its private keys.
func (g *testGateway) register(id string, kind auth.Kind) *authtest.Org {
	g.t.Helper()
	o := authtest.NewOrg(g.t, id, kind, "ES256")
	if _, err := registry.Register(g.t.Context(), g.ledger, g.follower, auth.CheckOrgJWKS, o.Org); err != nil {
		g.t.Fatalf("register %s: %v", id, err)
	}
	return o
}

func (g *testGateway) tokenURL() string { return g.url + "/oauth2/token" }

// token exchanges a fresh client assertion of o for an access token.
func (g *testGateway) token(o *authtest.Org, scope string) string {
	g.t.Helper()
	status, body := g.postToken(o.Assertion(g.t, g.tokenURL(), time.Now()), scope)
	if status != http.StatusOK {
		g.t.Fatalf("token for %s: %d %s", o.ID, status, body)
	}
	var tr client.TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		g.t.Fatalf("token response %s: %v", body, err)
	}
	return tr.AccessToken
}

func (g *testGateway) postToken(assertion, scope string) (int, []byte) {
	g.t.Helper()
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	resp, err := g.httpClient().PostForm(g.tokenURL(), form)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// patientToken mints a development-IdP token for patient id.
func (g *testGateway) patientToken(id string) string {
	g.t.Helper()
	tok, err := g.devIdP.Mint(id, g.url, time.Now(), 10*time.Minute)
	if err != nil {
		g.t.Fatal(err)
	}
	return tok
}

// do sends a request with an optional bearer token and JSON body and
// returns the status and body.
func (g *testGateway) do(method, path, token string, body any, hdr ...string) (int, []byte) {
	g.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			g.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(g.t.Context(), method, g.url+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := g.httpClient().Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// decode unmarshals b into v, failing the test otherwise.
func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, b, err)
	}
	return v
}

// apiError is the error body every route answers with.
type apiError = client.Error

// newTestGatewayAt starts a gateway on a fixed address and data directory
// (a restart of an earlier one).
func newTestGatewayAt(t testing.TB, addr, dir string) *testGateway {
	t.Helper()
	return newTestGateway(t, func(c *serveConfig) {
		c.Addr = addr
		c.BaseURL = ""
		c.DataDir = dir
	})
}

// verifyLedger audits the gateway's log both ways a regulator can: over the
// tiles API with the checkpoint key, and directly on its storage.
func (g *testGateway) verifyLedger() {
	g.t.Helper()
	ctx := g.t.Context()
	if _, err := g.ledger.(interface {
		WaitCheckpoint(context.Context, uint64) ([]byte, error)
	}).WaitCheckpoint(ctx, g.size()); err != nil {
		g.t.Fatalf("wait for checkpoint: %v", err)
	}
	v, err := ledger.ParseVerifierKey(g.vkey)
	if err != nil {
		g.t.Fatal(err)
	}
	if _, err := verify.Remote(ctx, g.url+"/ledger/", nil, verify.Options{Verifier: v}); err != nil {
		g.t.Fatalf("ledger verify (tiles): %v", err)
	}
	if _, err := verify.Local(ctx, g.ledger, verify.Options{Verifier: v}); err != nil {
		g.t.Fatalf("ledger verify (storage): %v", err)
	}
}

// size is the ledger's current size.
func (g *testGateway) size() uint64 {
	g.t.Helper()
	n, err := g.ledger.Size(g.t.Context())
	if err != nil {
		g.t.Fatal(err)
	}
	return n
}

// entries decodes every ledger entry of type typ.
func (g *testGateway) entries(typ ledger.Type) []ledger.Entry {
	g.t.Helper()
	all, err := g.ledger.Read(g.t.Context(), 0, g.size())
	if err != nil {
		g.t.Fatal(err)
	}
	var out []ledger.Entry
	for _, e := range all {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// testLogger discards the gateway's log unless HEALTHGW_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("HEALTHGW_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}
