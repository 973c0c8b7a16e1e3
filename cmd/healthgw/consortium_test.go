package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/ledger/comet"
)

// readEnvFile reads a member's environment file into a map.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		out[k] = v
	}
	return out
}

func TestConsortiumInit(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "" }
	err := run(t.Context(), []string{"consortium", "init", "--validators", "4", "--out", dir, "--http-port", "9081"}, getenv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("consortium init: %v\n%s", err, stderr.String())
	}
	var secret []byte
	for i := 1; i <= 4; i++ {
		name := "hospital-" + string(rune('0'+i))
		member := filepath.Join(dir, name)
		got := readEnvFile(t, filepath.Join(member, consortiumEnvFile))
		want := map[string]string{
			"HEALTHGW_LEDGER":     "comet",
			"HEALTHGW_COMET_HOME": filepath.Join(member, "comet"),
			"HEALTHGW_DATA":       filepath.Join(member, "data"),
			"HEALTHGW_ADDR":       "127.0.0.1:908" + string(rune('0'+i)),
			"HEALTHGW_BASE_URL":   "http://127.0.0.1:908" + string(rune('0'+i)),
			"HEALTHGW_CUSTODIAN":  "hospital-1",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s env (-want +got):\n%s", name, diff)
		}
		s, err := os.ReadFile(filepath.Join(member, "data", consortiumPseudonymKey))
		if err != nil {
			t.Fatal(err)
		}
		if secret != nil && !bytes.Equal(s, secret) {
			t.Errorf("%s has a different pseudonym secret", name)
		}
		secret = s
		if _, err := comet.LoadNodeConfig(filepath.Join(member, "comet")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !strings.Contains(stdout.String(), "http://127.0.0.1:908"+string(rune('0'+i))) {
			t.Errorf("output does not list %s's URL:\n%s", name, stdout.String())
		}
	}

	err = run(t.Context(), []string{"consortium", "init", "--out", dir}, getenv, &stdout, &stderr)
	if err == nil {
		t.Error("consortium init over an existing consortium succeeded")
	}
	if err := run(t.Context(), []string{"consortium", "init"}, getenv, &stdout, &stderr); err == nil {
		t.Error("consortium init without --out succeeded")
	}
}
