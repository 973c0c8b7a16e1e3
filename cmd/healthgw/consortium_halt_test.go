package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/internal/testscale"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
	"github.com/healthgw/healthgw/ledger/comet/comettest"
	"github.com/healthgw/healthgw/registry"
)

// TestConsortiumConsensusFailure provokes a real consensus failure on one
// of four validators and checks what its gateway does. Hospital-4's node
// is started with a genesis that lacks hospital-2's gateway (a member
// misconfigured, or its state corrupted, deterministically): it agrees
// with the others on every entry until hospital-2's gateway registers;
// then its application refuses the entry the others apply, its next block
// header carries an application hash it did not compute, and CometBFT
// stops consensus on it (CONSENSUS FAILURE, wrong AppHash). Its gateway,
// ready before, is then not ready, refuses writes saying why, and the
// halt is logged at ERROR; the other three keep committing.
func TestConsortiumConsensusFailure(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	const n, bad, late = 4, 3, 1 // hospital-4 diverges when hospital-2 registers
	logs := &lockedBuffer{}
	var skeys []string
	dirs := make([]string, n)
	secret := make([]byte, ledger.PseudonymKeySize)
	for i := range n {
		skey, vkey, err := ledger.GenerateCheckpointKey("halt.test/hospital-" + string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		skeys = append(skeys, skey)
		dirs[i] = filepath.Join(t.TempDir(), "data")
		for _, f := range []struct {
			path string
			err  error
		}{
			{checkpointKeyFile, ledger.WriteKeyFile(filepath.Join(dirs[i], checkpointKeyFile), skey, false)},
			{checkpointKeyFile + ledger.VerifierKeySuffix, ledger.WriteKeyFile(filepath.Join(dirs[i], checkpointKeyFile+ledger.VerifierKeySuffix), vkey, true)},
			{pseudonymKeyFile, writeFileAtomic(filepath.Join(dirs[i], pseudonymKeyFile), secret, 0o600)},
		} {
			if f.err != nil {
				t.Fatalf("%s: %v", f.path, f.err)
			}
		}
	}
	net := comettest.NewNetwork(t, n, comettest.Options{
		TimeoutCommit:  100 * time.Millisecond,
		CheckpointKeys: skeys,
		Logger:         slog.New(slog.NewTextHandler(logs, nil)),
		Tune: func(i int, c *cfg.Config) {
			if i == bad {
				c.Genesis = genesisWithout(t, c.GenesisFile(), "hospital-2")
			}
		},
	})
	gws := make([]*testGateway, n)
	open := func(i int) {
		t.Helper()
		ln, err := listenLoopback()
		if err != nil {
			t.Fatal(err)
		}
		c := defaultServeConfig()
		c.Addr, c.DataDir, c.Ledger, c.CometHome = ln.Addr().String(), dirs[i], "comet", net.Node(i).Home
		c.ZKDevSetup = false
		if err := c.finish(); err != nil {
			t.Fatal(err)
		}
		g, err := openGatewayOn(t.Context(), c, slog.New(slog.NewTextHandler(logs, nil)).With(slog.Int("gateway", i)),
			&env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}, net.Log(i))
		if err != nil {
			t.Fatalf("gateway %d: %v", i, err)
		}
		srv := httptest.NewUnstartedServer(g.api.Handler())
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		t.Cleanup(func() {
			srv.Close()
			if err := g.close(); err != nil && !errors.Is(err, comet.ErrHalted) {
				t.Errorf("close gateway %d: %v", i, err)
			}
		})
		gws[i] = &testGateway{gateway: g, t: t, srv: srv, url: c.BaseURL}
	}
	readyz := func(i int) (int, string) {
		t.Helper()
		status, body := gws[i].do("GET", "/readyz", "", nil)
		return status, string(body)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(testscale.Timeout(90 * time.Second))
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\nlogs:\n%s", what, tail(logs.String(), 40))
			}
			select {
			case <-t.Context().Done():
				t.Fatal(t.Context().Err())
			case <-tick.C:
			}
		}
	}

	// Three gateways register; hospital-4's node agrees with the others
	// on every entry so far, and its gateway is ready (its genesis names
	// no other gateway) and writes.
	for _, i := range []int{0, 2, bad} {
		open(i)
	}
	waitFor("hospital-4's gateway to be ready", func() bool { s, _ := readyz(bad); return s == http.StatusOK })
	hospD := gws[bad].register("hosp-d", auth.KindHospital)
	tokD := gws[bad].token(hospD, "")
	if _, err := client.New(gws[bad].url, gws[bad].httpClient()).PutRecord(t.Context(), tokD, record("before the failure")); err != nil {
		t.Fatalf("write at hospital-4 before the failure: %v", err)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("an error was logged before the failure:\n%s", tail(logs.String(), 40))
	}

	// Hospital-2's gateway registers, and one more entry is committed:
	// hospital-4's node refused the registration the others applied.
	open(late)
	gws[0].register("hosp-a", auth.KindHospital)

	waitFor("hospital-4's gateway to be not ready", func() bool { s, _ := readyz(bad); return s == http.StatusServiceUnavailable })
	status, body := readyz(bad)
	t.Logf("hospital-4 /readyz: %d %s", status, body)
	if !strings.Contains(body, `"halted"`) {
		t.Errorf("hospital-4 /readyz = %s, want its ledger check to say halted (not a transient outage)", body)
	}
	var errLines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") {
			errLines = append(errLines, l)
		}
	}
	if !slices.ContainsFunc(errLines, func(l string) bool {
		return strings.Contains(l, "node=hospital-4") && strings.Contains(l, "halted") && strings.Contains(l, "AppHash")
	}) {
		t.Errorf("no ERROR line from hospital-4 saying it halted and why; ERROR lines:\n%s", strings.Join(errLines, "\n"))
	}
	for _, l := range errLines {
		if !strings.Contains(l, "node=hospital-4") && !strings.Contains(l, "gateway=3") {
			t.Errorf("an ERROR from another member: %s", l)
		}
	}
	// Writes at hospital-4 are refused: through the ledger, saying it
	// halted and why, and through the API, as halted.
	if _, err := registry.Register(t.Context(), gws[bad].ledger, gws[bad].follower, auth.CheckOrgJWKS, authtest.NewOrg(t, "hosp-d2", auth.KindHospital, "ES256").Org); !errors.Is(err, comet.ErrHalted) || !errors.Is(err, ledger.ErrUnavailable) || !strings.Contains(err.Error(), "AppHash") {
		t.Errorf("append at the halted node = %v, want ErrHalted naming the wrong AppHash", err)
	}
	_, err := client.New(gws[bad].url, gws[bad].httpClient()).PutRecord(t.Context(), tokD, record("after the failure"))
	var apiErr *client.StatusError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable || apiErr.Body.Error != "halted" {
		t.Errorf("record write at the halted gateway = %v, want 503 halted", err)
	} else {
		t.Logf("hospital-4 refuses the write: %v", err)
	}

	// The other three continue: they are ready, and commit.
	for _, i := range []int{0, late, 2} {
		waitFor("the others to be ready", func() bool { s, _ := readyz(i); return s == http.StatusOK })
	}
	gws[late].register("hosp-b", auth.KindHospital) // committed by the three
	if s, err := gws[bad].ledger.Size(t.Context()); err == nil {
		t.Errorf("the halted node serves its log (size %d)", s)
	}
}

// genesisWithout writes, beside genesis file path, a copy whose app_state
// lacks gateway id, and returns its path.
func genesisWithout(t *testing.T, path, id string) string {
	t.Helper()
	out := filepath.Join(filepath.Dir(path), "genesis-without-"+id+".json")
	if path == out {
		return out
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	gs, err := comet.ParseAppState(doc["app_state"])
	if err != nil {
		t.Fatal(err)
	}
	gs.Gateways = slices.DeleteFunc(gs.Gateways, func(g comet.Gateway) bool { return g.ID == id })
	if doc["app_state"], err = gs.MarshalAppState(); err != nil {
		t.Fatal(err)
	}
	if b, err = json.MarshalIndent(doc, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

func record(note string) client.RecordUpload {
	b, _ := json.Marshal(map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "HbA1c"}, "note": []any{map[string]string{"text": note}}})
	return client.RecordUpload{Patient: "patient-halt", Category: "labs", ContentType: "application/fhir+json", Content: b}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
