package main

import (
	"strings"
	"testing"
)

// TestDemo runs `healthgw demo` against a gateway on a fresh data
// directory, as `make demo` does against `make run`.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	keys := devZKKeys(t)
	g := newTestGateway(t, func(c *serveConfig) { c.DataDir = dir; c.ZKKeys = keys })
	var out, errOut strings.Builder
	err := run(t.Context(), []string{"demo", "--url", g.url, "--data", dir}, func(string) string { return "" }, &out, &errOut)
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"denied", "permitted", "revokes", "OK: ", "valid: over 18", "refused: ", "The story holds"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	// A second run against the same gateway works too (fresh patient, keys
	// re-registered).
	out.Reset()
	if err := run(t.Context(), []string{"demo", "--url", g.url, "--data", dir}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("second demo run: %v\n%s", err, out.String())
	}
}
