package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet/comettest"
	"github.com/healthgw/healthgw/registry"
)

// consortium is four hospital gateways, each on its own CometBFT validator
// of one in-process network, sharing the pseudonym secret as a real
// consortium does.
type consortium struct {
	net *comettest.Network
	gws []*testGateway
}

// consortiumOptions tune newConsortiumWith.
type consortiumOptions struct {
	// net configures the network (TimeoutCommit defaults to 100ms; the
	// checkpoint keys are the gateways').
	net comettest.Options
	// rpc enables every node's CometBFT RPC (for --comet-home commands).
	rpc bool
	// mutate adjusts gateway i's configuration.
	mutate func(i int, c *serveConfig)
	// follow runs each gateway's projection follower on its node's
	// commits, as serve does; without it the tests catch up themselves
	// (syncAll), or the read path does.
	follow bool
	// wrap, if set, wraps gateway i's HTTP handler (to watch what crosses
	// the wire).
	wrap func(i int, h http.Handler) http.Handler
}

func newConsortium(t *testing.T, n int) *consortium {
	t.Helper()
	return newConsortiumWith(t, n, consortiumOptions{})
}

// newConsortiumWith starts n validators and a gateway on each, opened one
// after the other (each registers itself on the ledger as it opens).
func newConsortiumWith(t *testing.T, n int, o consortiumOptions) *consortium {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	secret := make([]byte, ledger.PseudonymKeySize)
	for i := range secret {
		secret[i] = byte(i * 7)
	}
	var skeys []string
	dirs := make([]string, n)
	for i := range n {
		skey, vkey, err := ledger.GenerateCheckpointKey("consortium.test/hospital-" + string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		skeys = append(skeys, skey)
		dirs[i] = filepath.Join(t.TempDir(), "data")
		if err := ledger.WriteKeyFile(filepath.Join(dirs[i], checkpointKeyFile), skey, false); err != nil {
			t.Fatal(err)
		}
		if err := ledger.WriteKeyFile(filepath.Join(dirs[i], checkpointKeyFile+ledger.VerifierKeySuffix), vkey, true); err != nil {
			t.Fatal(err)
		}
		if err := writeFileAtomic(filepath.Join(dirs[i], pseudonymKeyFile), secret, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := o.net
	if opts.TimeoutCommit == 0 {
		opts.TimeoutCommit = 100 * time.Millisecond
	}
	opts.CheckpointKeys, opts.RPC = skeys, opts.RPC || o.rpc
	net := comettest.NewNetwork(t, n, opts)
	c := &consortium{net: net}
	for i := range n {
		ln, err := listenLoopback()
		if err != nil {
			t.Fatal(err)
		}
		cfg := defaultServeConfig()
		cfg.Addr = ln.Addr().String()
		cfg.DataDir = dirs[i]
		cfg.Ledger = "comet"
		cfg.CometHome = net.Node(i).Home
		if o.mutate != nil {
			o.mutate(i, &cfg)
		}
		if err := cfg.finish(); err != nil {
			t.Fatal(err)
		}
		g, err := openGatewayOn(t.Context(), cfg, consortiumLogger(i), &env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}, net.Log(i))
		if err != nil {
			t.Fatalf("gateway %d: %v", i, err)
		}
		var h http.Handler = g.api.Handler()
		if o.wrap != nil {
			h = o.wrap(i, h)
		}
		srv := httptest.NewUnstartedServer(h)
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		tg := &testGateway{gateway: g, t: t, srv: srv, url: cfg.BaseURL}
		stopFollow := func() {}
		if o.follow {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				g.follower.Watch(ctx, net.Log(i).Committed, consortiumLogger(i))
			}()
			stopFollow = func() { cancel(); <-done }
		}
		t.Cleanup(func() {
			srv.Close()
			stopFollow()
			if err := g.close(); err != nil {
				t.Errorf("close gateway %d: %v", i, err)
			}
		})
		c.gws = append(c.gws, tg)
	}
	return c
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// consortiumLogger is gateway i's logger: discarded, unless
// HEALTHGW_CONSORTIUM_LOG is set (then text to stderr).
func consortiumLogger(i int) *slog.Logger {
	if os.Getenv("HEALTHGW_CONSORTIUM_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil)).With(slog.Int("gateway", i))
}

// syncAll waits until every node has every entry any node has committed
// so far, and every gateway has projected them.
func (c *consortium) syncAll(t *testing.T) {
	t.Helper()
	var size uint64
	for _, g := range c.gws {
		size = max(size, g.size())
	}
	c.net.WaitSize(size, 30*time.Second)
	for _, g := range c.gws {
		if err := g.follower.Sync(t.Context(), size); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConsortiumGateways: a consent granted through hospital A's gateway is
// enforced at hospital B's gateway once committed; an access logged at B
// is listed by a regulator querying C; every node reports the same root at
// the same height.
func TestConsortiumGateways(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a four-validator network")
	}
	c := newConsortium(t, 4)
	a, b, cc := c.gws[0], c.gws[1], c.gws[2]

	// Organisations register once, each at its home gateway (the only
	// gateway that may write for it); the registry replicates. Hospital
	// C reads at B's gateway, so it is homed there: the access service
	// logs a decision under the requester's org (access.go), which only
	// the requester's home may author. (The design has the decision
	// under the holder's org; then C's home would not matter.)
	orgs := map[string]*authtest.Org{}
	for _, o := range []struct {
		id   string
		kind auth.Kind
		home *testGateway
	}{{"hosp-a", auth.KindHospital, a}, {"hosp-b", auth.KindHospital, b}, {"hosp-c", auth.KindHospital, b}, {"reg-x", auth.KindRegulator, cc}} {
		org := authtest.NewOrg(t, o.id, o.kind, "ES256")
		if _, err := registry.Register(t.Context(), o.home.ledger, o.home.follower, auth.CheckOrgJWKS, org.Org); err != nil {
			t.Fatalf("register %s: %v", o.id, err)
		}
		orgs[o.id] = org
	}
	c.syncAll(t)

	// Hospital B holds a lab record of pat-1 (records stay at B's gateway).
	rec := b.putRecord(b.token(orgs["hosp-b"], ""), "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	// Hospital C reads it at B's gateway: no consent yet.
	ctokAtB := b.token(orgs["hosp-c"], "")
	path := "/v1/records/" + rec.ID + "?purpose=TREAT"
	if status, _ := b.do("GET", path, ctokAtB, nil); status != http.StatusNotFound {
		t.Fatalf("read before consent: %d, want 404", status)
	}
	// The patient grants C through A's gateway.
	status, body := a.do("POST", "/v1/consents", a.patientToken("pat-1"), map[string]any{
		"grantee": map[string]string{"org": "hosp-c"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"},
	})
	if status != http.StatusCreated {
		t.Fatalf("grant at A: %d %s", status, body)
	}
	c.syncAll(t)
	if status, body := b.do("GET", path, ctokAtB, nil); status != http.StatusOK {
		t.Fatalf("read at B under the grant made at A: %d %s", status, body)
	}
	c.syncAll(t)

	// A regulator querying C sees both decisions made at B.
	ev := decodeEvents(t, cc, cc.token(orgs["reg-x"], ""), "/v1/audit/events?org=hosp-c")
	if len(ev) != 2 || ev[0] != "permit" || ev[1] != "deny" {
		t.Errorf("regulator at C sees %v, want [permit deny]", ev)
	}

	// Every node holds the same log: the same root at the same size.
	size := cc.size()
	c.net.WaitSize(size, 30*time.Second)
	var roots []string
	for i := range c.gws {
		root, err := ledger.TreeHash(t.Context(), c.net.Log(i), size)
		if err != nil {
			t.Fatalf("node %d: root at %d: %v", i, size, err)
		}
		roots = append(roots, fmt.Sprintf("size %d root %s", size, root))
	}
	for i := range roots {
		if roots[i] != roots[0] {
			t.Errorf("node %d has %s, node 0 %s", i, roots[i], roots[0])
		}
	}
	for _, g := range c.gws {
		g.verifyLedger()
	}
}

func decodeEvents(t *testing.T, g *testGateway, token, path string) []string {
	t.Helper()
	status, body := g.do("GET", path, token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	var out []string
	for _, e := range decode[eventsResp](t, body).Events {
		out = append(out, e.Decision)
	}
	return out
}

// TestOrgAddConsortium registers an organisation through a running
// consortium node's RPC: the entry is committed by consensus, every node
// has it, and the org's home is the node's gateway at the base URL that
// gateway registered.
func TestOrgAddConsortium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a validator network")
	}
	net := comettest.NewNetwork(t, 2, comettest.Options{RPC: true, Gateways: true, TimeoutCommit: 100 * time.Millisecond})
	org := authtest.NewOrg(t, "hosp-q", auth.KindHospital, "ES256")
	jwks := filepath.Join(t.TempDir(), "hosp-q.jwks.json")
	if err := writeFileAtomic(jwks, []byte(org.JWKS), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	err := run(t.Context(), []string{"org", "add", "--comet-home", net.Node(0).Home, "--id", "hosp-q", "--name", "Hospital Q", "--kind", "hospital", "--jwks", jwks},
		func(string) string { return "" }, &out, &errOut)
	if err != nil {
		t.Fatalf("org add: %v\n%s", err, errOut.String())
	}
	const base = 2 // the gateways' registrations
	net.WaitSize(base+1, 30*time.Second)
	es, err := net.Ledger(1).Read(t.Context(), base, base+1)
	if err != nil {
		t.Fatal(err)
	}
	e := es[0]
	b, ok := e.Body.(*ledger.OrgRegistered)
	if !ok || b.ID != "hosp-q" || b.Name != "Hospital Q" || e.Author != net.Node(0).Name ||
		b.Home != (ledger.GatewayHome{Gateway: net.Node(0).Name, BaseURL: "http://" + net.Node(0).Name + ".test"}) {
		t.Errorf("entry at node 1 = %+v (%+v), want org.registered for hosp-q homed at %s", e, e.Body, net.Node(0).Name)
	}
	// A second registration, by the other member, is refused.
	err = run(t.Context(), []string{"org", "add", "--comet-home", net.Node(1).Home, "--id", "hosp-q", "--name", "Hospital Q", "--kind", "hospital", "--jwks", jwks},
		func(string) string { return "" }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("org add of hosp-q at the other member = %v, want a refusal saying it is registered", err)
	}
}

// TestDemoConsortium: `healthgw demo --url <node> --comet-home <its home>`
// tells the whole story against one member of a four-hospital consortium
// (the organisations it registers through the node's RPC are homed at that
// member's gateway), and every member ends with the same log, of which it
// opens the entries it is a party to (step 3: before, every member opened
// every entry).
func TestDemoConsortium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a four-validator network")
	}
	keys := devZKKeys(t)
	c := newConsortiumWith(t, 4, consortiumOptions{rpc: true, follow: true, mutate: func(_ int, cfg *serveConfig) { cfg.ZKKeys = keys }})
	g := c.gws[1]
	var out, errOut strings.Builder
	err := run(t.Context(), []string{"demo", "--url", g.url, "--comet-home", g.cfg.CometHome, "--data", g.cfg.DataDir},
		func(string) string { return "" }, &out, &errOut)
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "The story holds") {
		t.Errorf("demo output:\n%s", out.String())
	}
	c.syncAll(t)
	size := g.size()
	c.net.WaitSize(size, 30*time.Second)
	var root string
	for i, gw := range c.gws {
		r, err := ledger.TreeHash(t.Context(), c.net.Log(i), size)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			root = r.String()
		} else if r.String() != root {
			t.Errorf("gateway %d has root %s at %d, gateway 0 %s", i, r, size, root)
		}
		es, err := gw.node.Read(t.Context(), 0, size)
		if err != nil {
			t.Fatalf("gateway %d: read: %v", i, err)
		}
		envs, err := c.net.Log(i).Envelopes(t.Context(), 0, size)
		if err != nil {
			t.Fatal(err)
		}
		for j, e := range es {
			// Who opens what (consortium/routing): every org of the demo
			// is homed at the demo's member, its regulator too, so that
			// member opens everything; the custodian (gateway 0) every
			// record, consent and decision, not the proofs; the others
			// the registry entries only, which travel in clear.
			want := len(envs[j].Clear) > 0 || i == 1 || (i == 0 && e.Type != ledger.TypeProofVerified)
			if got := e.Body != nil; got != want {
				t.Errorf("gateway %d opens entry %d (%s by %s): %v, want %v", i, j, e.Type, e.Author, got, want)
			}
		}
	}
}
