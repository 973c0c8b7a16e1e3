package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/bench/peers/harness"
)

func TestParseOpenSSLSpeed(t *testing.T) {
	out := `version: 3.5.1
built on: Mon Jan  1 00:00:00 2026 UTC
The 'numbers' are in 1000s of bytes per second processed.
type       1048576 bytes
AES-256-GCM    3690123.45k
`
	got, err := parseOpenSSLSpeed([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3690.12345; got != want {
		t.Errorf("parseOpenSSLSpeed = %v, want %v", got, want)
	}
	if _, err := parseOpenSSLSpeed([]byte("type 1048576 bytes\n")); err == nil {
		t.Error("no result line: no error")
	}
	if _, err := parseOpenSSLSpeed([]byte("AES-256-GCM  x.yk\n")); err == nil {
		t.Error("bad figure: no error")
	}
}

func TestParseBenchMBs(t *testing.T) {
	out := "goos: linux\nBenchmarkEncrypt/1MiB-2   \t    1000\t   1165432 ns/op\t 899.73 MB/s\nPASS\n"
	got, err := parseBenchMBs([]byte(out), "BenchmarkEncrypt/1MiB")
	if err != nil {
		t.Fatal(err)
	}
	if got != 899.73 {
		t.Errorf("parseBenchMBs = %v, want 899.73", got)
	}
	if _, err := parseBenchMBs([]byte("PASS\n"), "BenchmarkEncrypt/1MiB"); err == nil {
		t.Error("no benchmark line: no error")
	}
}

func TestParseProcStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 150 and 50 ticks; the command
	// holds a space and a parenthesis.
	stat := "4242 (health gw)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 50 0 0 20 0 12 0 100 0 0"
	got, err := parseProcStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * time.Second; got != want {
		t.Errorf("parseProcStatCPU = %v, want %v", got, want)
	}
	for _, bad := range []string{"4242 health S 1", "4242 (x) S 1 2 3"} {
		if _, err := parseProcStatCPU(bad); err == nil {
			t.Errorf("parseProcStatCPU(%q): no error", bad)
		}
	}
}

func TestParseR1CSConstraints(t *testing.T) {
	out := "[INFO]  snarkJS: Curve: bn-128\n[INFO]  snarkJS: # of Wires: 5519\n[INFO]  snarkJS: # of Constraints: 5509\n"
	got, err := parseR1CSConstraints([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if got != 5509 {
		t.Errorf("parseR1CSConstraints = %d, want 5509", got)
	}
	if _, err := parseR1CSConstraints([]byte("# of Wires: 1\n")); err == nil {
		t.Error("no constraint line: no error")
	}
}

func TestCometRows(t *testing.T) {
	out := "building\nPEER comet-vs-kvstore-4-validators 812 tx/s vs 1,630 tx/s ratio 0.50 [0.41, 0.62]\n  PEER comet-vs-kvstore-latency p50 1.2s\nnoise PEER x\n"
	want := []harness.Row{
		{Measure: "comet-vs-kvstore-4-validators", Healthgw: "812 tx/s vs 1,630 tx/s ratio 0.50 [0.41, 0.62]", Note: "as printed by make bench-peers-comet"},
		{Measure: "comet-vs-kvstore-latency", Healthgw: "p50 1.2s", Note: "as printed by make bench-peers-comet"},
	}
	if diff := cmp.Diff(want, cometRows([]byte(out))); diff != "" {
		t.Errorf("cometRows (-want +got):\n%s", diff)
	}
}

func TestParseConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	var sb strings.Builder
	c, err := parseConfig([]string{"-repo", "../../../..", "-only", "aes,zk"}, env(map[string]string{"BENCH_ROUNDS": "7", "BENCH_SECONDS": "1.5"}), &sb)
	if err != nil {
		t.Fatal(err)
	}
	if c.Rounds != 7 || c.Duration != 1500*time.Millisecond {
		t.Errorf("rounds, duration = %d, %v; want 7, 1.5s", c.Rounds, c.Duration)
	}
	if diff := cmp.Diff(map[string]bool{"aes": true, "zk": true}, c.Only); diff != "" {
		t.Errorf("only (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"-repo", "../../../..", "-rounds", "0"}, nil},
		{[]string{"-repo", "../../../..", "-only", "appends,bogus"}, nil},
		{[]string{"-repo", "../../../..", "-seconds", "1ms"}, nil},
		{[]string{"-repo", "../../../.."}, map[string]string{"BENCH_ROUNDS": "many"}},
		{[]string{"-repo", t.TempDir()}, nil},
	} {
		if _, err := parseConfig(tc.args, env(tc.env), &sb); err == nil {
			t.Errorf("parseConfig(%q, %v): no error", tc.args, tc.env)
		}
	}
}
