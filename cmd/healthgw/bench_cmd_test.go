package main

import (
	"strings"
	"testing"
)

// TestBenchCommand runs `healthgw bench` for a few seconds against an
// in-process gateway: every operation of the mix runs, none fails, and the
// summary and memory samples are printed.
func TestBenchCommand(t *testing.T) {
	dir := t.TempDir()
	g := newTestGateway(t, func(c *serveConfig) { c.DataDir = dir })
	var out, errOut strings.Builder
	err := run(t.Context(), []string{"bench", "--url", g.url, "--data", dir, "--rate", "40", "--duration", "3s", "--progress", "1s", "--seed-records", "3"},
		func(string) string { return "" }, &out, &errOut)
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	t.Log(out.String())
	for _, want := range []string{" 0 errors", "operation", "p50", "p99", "memory (target RSS): 0s=", "MiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Every operation ran at least once (the mix is a weighted round
	// robin: all appear within the first 100 picks, and 40/s for 3 s is
	// 120).
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 7 && f[1] == "0" && f[0] != "operation" {
			t.Errorf("operation %s never ran", f[0])
		}
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{{"--rate", "0"}, {"--duration", "0s"}, {"--concurrency", "0"}, {"--progress", "-1s"}} {
		err := run(t.Context(), append([]string{"bench"}, args...), func(string) string { return "" }, &strings.Builder{}, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), "bench: --") {
			t.Errorf("bench %v: %v", args, err)
		}
	}
}

func TestBenchMixer(t *testing.T) {
	var m mixer
	got := map[string]int{}
	total := 0
	for _, op := range benchMix {
		total += op.weight
	}
	for range total {
		got[m.next()]++
	}
	for _, op := range benchMix {
		if got[op.name] != op.weight {
			t.Errorf("%s picked %d times in %d, want %d", op.name, got[op.name], total, op.weight)
		}
	}
}
