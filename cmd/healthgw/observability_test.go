package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// lockedBuffer is a log sink safe for the gateway's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemoMetricsAndJSONLogs runs the demo against a gateway logging in
// JSON at debug level, then checks that every log line is one JSON object
// (with the request ID on every line about a request) and that /metrics
// shows the operational metrics.
func TestDemoMetricsAndJSONLogs(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	dir := filepath.Join(t.TempDir(), "data")
	cfg := defaultServeConfig()
	cfg.DataDir, cfg.ZKKeys, cfg.Addr = dir, devZKKeys(t), "127.0.0.1:0"
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = ln.Addr().String()
	if err := cfg.finish(); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	g, err := openGateway(t.Context(), cfg, newLogger(logs, "json", slog.LevelDebug), &env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.api.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		if err := g.close(); err != nil {
			t.Error(err)
		}
	})
	tg := &testGateway{gateway: g, t: t, srv: srv, url: cfg.BaseURL}

	var out strings.Builder
	if err := run(t.Context(), []string{"demo", "--url", cfg.BaseURL, "--data", dir}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	// One refused token request, so the failure counter has a series.
	if st, _ := tg.postToken("not-a-jwt", ""); st != http.StatusUnauthorized {
		t.Fatalf("bad assertion: %d", st)
	}

	st, body := tg.do("GET", "/metrics", "", nil)
	if st != http.StatusOK {
		t.Fatalf("/metrics: %d", st)
	}
	for _, name := range []string{
		"healthgw_http_requests_total",
		`healthgw_access_decisions_total{decision="permit"`,
		`healthgw_access_decisions_total{decision="deny"`,
		`healthgw_token_failures_total{reason="invalid_client"} 1`,
		`healthgw_record_bytes_total{direction="in"}`,
		`healthgw_record_bytes_total{direction="out"}`,
		`healthgw_ledger_append_duration_seconds_count{outcome="ok"}`,
		"healthgw_ledger_entries ",
		"healthgw_ledger_checkpoint_size ",
		"healthgw_ledger_checkpoint_age_seconds ",
		`healthgw_rate_limited_total{scope="token_backoff"} 0`,
		"process_resident_memory_bytes",
	} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	for _, zero := range []string{`healthgw_record_bytes_total{direction="in"} 0`, `healthgw_record_bytes_total{direction="out"} 0`, "healthgw_ledger_entries 0"} {
		if bytes.Contains(body, []byte(zero+"\n")) {
			t.Errorf("/metrics: %s after the demo", zero)
		}
	}

	// Every metric the Grafana dashboard queries exists.
	dash, err := os.ReadFile("../../deploy/grafana/healthgw.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`(?:healthgw|process|go)_[a-z_]+`).FindAllString(string(dash), -1) {
		if strings.HasPrefix(name, "healthgw_comet_") {
			continue // a consortium node's (TestCometMetrics)
		}
		if !bytes.Contains(body, []byte("\n"+name)) {
			t.Errorf("dashboard queries %s, which /metrics lacks", name)
		}
	}

	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(nil, 1<<20)
	lines, withRoute := 0, 0
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %d is not JSON: %v\n%s", lines+1, err, sc.Text())
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line %d lacks %q: %s", lines+1, k, sc.Text())
			}
		}
		if _, ok := rec["route"]; ok {
			withRoute++
			if id, _ := rec["request_id"].(string); id == "" {
				t.Errorf("request log line without request_id: %s", sc.Text())
			}
		}
		lines++
	}
	if lines == 0 || withRoute == 0 {
		t.Fatalf("%d log lines, %d about requests: want some of each", lines, withRoute)
	}
}

// TestServeOperationsSettings: the log format and rate limits are read
// from flags, the environment and the example configuration file, and bad
// values are refused with the flag's name.
func TestServeOperationsSettings(t *testing.T) {
	e := func(kv map[string]string) *env {
		return &env{getenv: func(k string) string { return kv[k] }, stdout: io.Discard, stderr: io.Discard}
	}
	cfg, _, err := loadServeConfig(e(nil), []string{"--config", "../../deploy/healthgw.conf.example"})
	if err != nil {
		t.Fatalf("example configuration: %v", err)
	}
	if cfg.LogFormat != "json" || !cfg.RateLimit || cfg.RateLimits.TokenPerOrg.String() != "5:50" || cfg.RateLimits.TokenFailures.Max != 5*time.Minute {
		t.Errorf("example configuration: %+v", cfg)
	}
	cfg, _, err = loadServeConfig(e(map[string]string{"HEALTHGW_RATE_LIMIT_API": "off"}), []string{"--rate-limit-token-org", "0.5:3", "--log-format", "text"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RateLimits.TokenPerOrg.String() != "0.5:3" || !cfg.RateLimits.PerPrincipal.Unlimited() || cfg.LogFormat != "text" {
		t.Errorf("flags and environment: %+v", cfg.RateLimits)
	}
	for _, bad := range [][]string{
		{"--log-format", "xml"},
		{"--rate-limit-token-org", "5"},
		{"--rate-limit-api", "-1:5"},
		{"--rate-limit-token-failures", "0"},
		{"--rate-limit-backoff", "1m", "--rate-limit-backoff-max", "1s"},
	} {
		if _, _, err := loadServeConfig(e(nil), bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
