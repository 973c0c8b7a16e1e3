package main

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/healthgw/healthgw/auth"
)

// metricValues parses the unlabelled samples of a /metrics body.
func metricValues(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", sc.Text(), err)
		}
		out[name] = f
	}
	return out
}

// TestCometMetrics: a gateway serving with the consortium ledger exports
// the node's height, peers, last-block age and sync state on /metrics,
// and they follow the node: after an entry is committed by both
// validators the height is the node's and the peer is counted.
func TestCometMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a two-validator network")
	}
	c := newConsortium(t, 2)
	a := c.gws[0]
	a.register("hosp-a", auth.KindHospital) // committed by both validators: they are peers
	c.syncAll(t)

	st, body := a.do("GET", "/metrics", "", nil)
	if st != http.StatusOK {
		t.Fatalf("/metrics: %d", st)
	}
	got := metricValues(t, body)
	node := c.net.Log(0).Status()
	for _, name := range []string{"healthgw_comet_height", "healthgw_comet_peers", "healthgw_comet_last_block_age_seconds", "healthgw_comet_catching_up"} {
		if _, ok := got[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// The height only grows: the scrape came before the status read.
	if h := got["healthgw_comet_height"]; h < 1 || h > float64(node.Height) {
		t.Errorf("healthgw_comet_height %v, want between 1 and the node's %d", h, node.Height)
	}
	if p := got["healthgw_comet_peers"]; p != 1 {
		t.Errorf("healthgw_comet_peers %v, want 1 (the other validator)", p)
	}
	if age := got["healthgw_comet_last_block_age_seconds"]; age < 0 {
		t.Errorf("healthgw_comet_last_block_age_seconds %v, want at least 0", age)
	}
	if cu := got["healthgw_comet_catching_up"]; cu != 0 && cu != 1 {
		t.Errorf("healthgw_comet_catching_up %v, want 0 or 1", cu)
	}

	// Every comet metric the Grafana dashboard queries exists.
	dash, err := os.ReadFile("../../deploy/grafana/healthgw.json")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`healthgw_comet_[a-z_]+`).FindAllString(string(dash), -1)
	if len(names) == 0 {
		t.Error("the dashboard shows no comet metric")
	}
	for _, name := range names {
		if _, ok := got[name]; !ok {
			t.Errorf("dashboard queries %s, which a comet gateway's /metrics lacks", name)
		}
	}

	// The embedded ledger has no consensus: no comet series.
	g := newTestGateway(t)
	_, body = g.do("GET", "/metrics", "", nil)
	if bytes.Contains(body, []byte("healthgw_comet_")) {
		t.Error("the embedded ledger's /metrics has healthgw_comet_ series")
	}
}
