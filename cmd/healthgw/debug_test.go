package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDebugAddr: --debug-addr takes a loopback address only, and the
// handler serves the runtime profiles.
func TestDebugAddr(t *testing.T) {
	e := &env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}
	for _, ok := range []string{"127.0.0.1:6060", "[::1]:0", "localhost:6060"} {
		if _, _, err := loadServeConfig(e, []string{"--debug-addr", ok}); err != nil {
			t.Errorf("--debug-addr %s: %v", ok, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:6060", ":6060", "192.0.2.1:6060", "6060"} {
		if _, _, err := loadServeConfig(e, []string{"--debug-addr", bad}); err == nil || !strings.Contains(err.Error(), "--debug-addr") {
			t.Errorf("--debug-addr %s: %v, want a refusal naming the flag", bad, err)
		}
	}
	srv := httptest.NewServer(debugHandler())
	defer srv.Close()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes", path, resp.StatusCode, len(body))
		}
	}
}
