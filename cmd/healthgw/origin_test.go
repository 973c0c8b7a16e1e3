package main

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/registry"
)

// openTestGatewayCfg opens (without serving) a gateway on dir with addr
// and the extra settings; the caller closes it.
func openTestGatewayCfg(t *testing.T, dir, addr string, mutate func(*serveConfig)) (*gateway, error) {
	t.Helper()
	cfg := defaultServeConfig()
	cfg.Addr = addr
	cfg.DataDir = dir
	cfg.ZKDevSetup = false
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.finish(); err != nil {
		t.Fatal(err)
	}
	return openGateway(t.Context(), cfg, slog.New(slog.DiscardHandler), &env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard})
}

// TestOriginSurvivesRestart: the origin is chosen when the log is created
// and a restart on another port (or with --origin) does not change it.
func TestOriginSurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	g, err := openTestGatewayCfg(t, dir, "127.0.0.1:18080", nil)
	if err != nil {
		t.Fatal(err)
	}
	origin := ledgerOrigin(g.store, g.cfg)
	if !strings.HasPrefix(origin, "healthgw/") || strings.Contains(origin, "8080") {
		t.Errorf("default origin %q: want healthgw/<tag>, not the address", origin)
	}
	registerTestOrg(t, g, "hosp-a")
	vkey := g.vkey
	if err := g.close(); err != nil {
		t.Fatal(err)
	}

	g, err = openTestGatewayCfg(t, dir, "127.0.0.1:19090", nil)
	if err != nil {
		t.Fatalf("restart on another port: %v", err)
	}
	if got := ledgerOrigin(g.store, g.cfg); got != origin {
		t.Errorf("origin after a restart on another port: %q, want %q", got, origin)
	}
	registerTestOrg(t, g, "hosp-b")
	raw, err := g.store.(*gormlog.Log).WaitCheckpoint(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ledger.ParseVerifierKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.OpenCheckpoint(raw, v, origin); err != nil {
		t.Errorf("checkpoint after the restart: %v", err)
	}
	if err := g.close(); err != nil {
		t.Fatal(err)
	}

	_, err = openTestGatewayCfg(t, dir, "127.0.0.1:19090", func(c *serveConfig) { c.Origin = "other.example/ledger" })
	if err == nil || !strings.Contains(err.Error(), "created with another origin") {
		t.Errorf("restart with another --origin: %v, want a refusal", err)
	}
}

// TestOriginFromBaseURL: with a public base URL, a new log's origin is
// the tiles URL prefix without the scheme (C2SP tlog-tiles).
func TestOriginFromBaseURL(t *testing.T) {
	g, err := openTestGatewayCfg(t, filepath.Join(t.TempDir(), "data"), "127.0.0.1:18080", func(c *serveConfig) {
		c.BaseURL = "https://gw.hospital-a.example/hgw"
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	if got, want := ledgerOrigin(g.store, g.cfg), "gw.hospital-a.example/hgw/ledger"; got != want {
		t.Errorf("origin %q, want %q", got, want)
	}
}

// TestOrgKeygenBeforeServe: a CLI command that creates the log before
// the first serve gives it the origin serve then keeps.
func TestOrgKeygenBeforeServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, _, err := runCLI(t, "org", "keygen", "--id", "hosp-a", "--name", "Hospital A", "--kind", "hospital",
		"--out", filepath.Join(t.TempDir(), "keys"), "--data", dir, "--create"); err != nil {
		t.Fatal(err)
	}
	g, err := openTestGatewayCfg(t, dir, "127.0.0.1:19191", nil)
	if err != nil {
		t.Fatalf("serve after org keygen: %v", err)
	}
	defer g.close()
	s, err := ledger.LoadCheckpointSigner(filepath.Join(dir, checkpointKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := ledgerOrigin(g.store, g.cfg); got != s.Name() {
		t.Errorf("origin %q, want the checkpoint key's name %q", got, s.Name())
	}
	raws, err := g.ledger.Entries(t.Context(), 0, 1)
	if err != nil || len(raws) != 1 {
		t.Fatalf("org keygen wrote no entry: %v", err)
	}
}

// registerTestOrg appends an org.registered entry through g.
func registerTestOrg(t *testing.T, g *gateway, id string) {
	t.Helper()
	o := authtest.NewOrg(t, id, auth.KindHospital, "ES256")
	if _, err := registry.Register(t.Context(), g.ledger, g.follower, auth.CheckOrgJWKS, o.Org); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
}
