//go:build !race

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTestnet is the local testnet as a new user runs it (issue: "`make
// testnet` then `healthgw demo` against any node passes"): the healthgw
// binary built as `make build` does, scripts/testnet.sh start (the same
// `consortium init`, shared IdP and ZK setup, four gateways), `healthgw
// demo` against hospital-2 and hospital-4 (neither is the custodian),
// a second start refused while the net runs, testnet.sh down leaving no
// gateway behind, a start refused while a port of the layout is taken, and
// a second start of the same layout that serves the demo again, at
// hospital-3.
//
// It runs the real binary as separate processes, so it is built !race
// (the race detector would make four gateways and a prover crawl on a
// small machine) and opt-in like the full ceremony: `make test` runs it
// on its own, without -race, with HEALTHGW_LONG_TESTS=1.
func TestTestnet(t *testing.T) {
	if testing.Short() || os.Getenv("HEALTHGW_LONG_TESTS") != "1" {
		t.Skip("starts four gateway processes and a ZK setup: set HEALTHGW_LONG_TESTS=1 (make test does) and leave out -short")
	}
	for _, tool := range []string{"bash", "curl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the testnet script needs %s: %v", tool, err)
		}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "scripts", "testnet.sh")
	// Every command ends a minute before go test's own timeout would
	// panic, which would skip the cleanup and leave the gateways running.
	base := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		base, cancel = context.WithDeadline(base, d.Add(-time.Minute))
		defer cancel()
	}
	bin := filepath.Join(t.TempDir(), "healthgw")
	build := exec.CommandContext(base, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	dir := filepath.Join(t.TempDir(), "testnet")
	httpPort, p2pPort, rpcPort := freeTestnetPorts(t, 4)
	ready := scaledTimeout(5 * time.Minute)
	// The script's and the gateways' settings are this test's alone: a
	// HEALTHGW_DB or TESTNET_RESET in the caller's environment would
	// change what the gateways open.
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "HEALTHGW_") && name != "HEALTHGW_TEST_TIMEOUT_SCALE",
			strings.HasPrefix(name, "TESTNET_"),
			slices.Contains([]string{"VALIDATORS", "HTTP_PORT", "P2P_PORT", "RPC_PORT", "TIMEOUT_COMMIT", "READY_TIMEOUT"}, name):
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"TESTNET_DIR="+dir, "HEALTHGW_BIN="+bin, "VALIDATORS=4",
		"HTTP_PORT="+strconv.Itoa(httpPort), "P2P_PORT="+strconv.Itoa(p2pPort), "RPC_PORT="+strconv.Itoa(rpcPort),
		"READY_TIMEOUT="+strconv.Itoa(int(ready/time.Second)))
	// testnet runs scripts/testnet.sh cmd (the first start includes the
	// ZK setup and the gateways' first registrations).
	testnet := func(parent context.Context, cmd string) (string, error) {
		ctx, cancel := context.WithTimeout(parent, ready+scaledTimeout(5*time.Minute))
		defer cancel()
		c := exec.CommandContext(ctx, "bash", script, cmd)
		c.Dir, c.Env = root, env
		out, err := c.CombinedOutput()
		return string(out), err
	}
	member := func(i int) string { return filepath.Join(dir, fmt.Sprintf("hospital-%d", i)) }
	url := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", httpPort+i-1) }

	// Whatever happens, nothing is left running: down (in a context of
	// its own: base may have ended), then any gateway this test saw still
	// alive is killed (and the test fails).
	var seen []int
	t.Cleanup(func() {
		if out, err := testnet(context.Background(), "down"); err != nil {
			t.Errorf("testnet.sh down: %v\n%s", err, out)
		}
		for _, pid := range seen {
			if alive(pid) {
				t.Errorf("gateway pid %d still runs after testnet.sh down; killing it", pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	start := func() []int {
		t.Helper()
		out, err := testnet(base, "start")
		pids := testnetPIDs(t, dir, 4)
		seen = append(seen, pids...)
		if err != nil {
			t.Fatalf("testnet.sh start: %v\n%s%s", err, out, testnetLogs(dir))
		}
		if !strings.Contains(out, "running in the background") {
			t.Fatalf("testnet.sh start did not say it left the net running:\n%s", out)
		}
		return pids
	}
	demo := func(i int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(base, scaledTimeout(5*time.Minute))
		defer cancel()
		// As the README has it: bin/healthgw demo --url <member> --comet-home <its comet> --data <its data>.
		c := exec.CommandContext(ctx, bin, "demo", "--url", url(i),
			"--comet-home", filepath.Join(member(i), "comet"), "--data", filepath.Join(member(i), "data"))
		c.Dir, c.Env = root, env
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Run(); err != nil {
			t.Fatalf("demo at hospital-%d: %v\n%s%s", i, err, out.String(), testnetLogs(dir))
		}
		if !strings.Contains(out.String(), "The story holds") {
			t.Fatalf("demo at hospital-%d succeeded without the story's end:\n%s", i, out.String())
		}
	}

	pids := start()
	demo(2)
	demo(4)

	// A second start while the net runs is refused and changes nothing.
	out, err := testnet(base, "start")
	if err == nil || !strings.Contains(out, "already runs") {
		t.Errorf("testnet.sh start while running: %v, want a refusal naming the running gateway:\n%s", err, out)
	}
	for i, pid := range pids {
		if !alive(pid) {
			t.Errorf("hospital-%d (pid %d) stopped after a refused second start", i+1, pid)
		}
	}

	if out, err := testnet(base, "down"); err != nil {
		t.Fatalf("testnet.sh down: %v\n%s", err, out)
	}
	for i, pid := range pids {
		if alive(pid) {
			t.Errorf("hospital-%d (pid %d) still runs after testnet.sh down", i+1, pid)
		}
		if _, err := os.Stat(filepath.Join(member(i+1), "gateway.pid")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("hospital-%d: gateway.pid left behind after down (%v)", i+1, err)
		}
	}
	for i := range 4 {
		a := fmt.Sprintf("127.0.0.1:%d", httpPort+i)
		if ln, err := net.Listen("tcp", a); err != nil {
			t.Errorf("hospital-%d's port %s is still taken after down: %v", i+1, a, err)
		} else {
			ln.Close()
		}
	}

	// A port of the layout in use (here hospital-3's P2P port): the start
	// is refused, naming it, and nothing is started.
	busy := fmt.Sprintf("127.0.0.1:%d", p2pPort+20)
	ln, err := net.Listen("tcp", busy)
	if err != nil {
		t.Fatal(err)
	}
	out, err = testnet(base, "start")
	ln.Close()
	if err == nil || !strings.Contains(out, "ports in use") || !strings.Contains(out, "hospital-3 "+busy) {
		t.Errorf("testnet.sh start with %s taken: %v, want a refusal naming it:\n%s", busy, err, out)
	}
	if pids := testnetPIDs(t, dir, 4); len(pids) != 0 {
		seen = append(seen, pids...)
		t.Errorf("testnet.sh start with a port taken started gateways %v", pids)
	}

	// The same layout starts again (no new setup) and still tells the story.
	start()
	demo(3)
}

// freeTestnetPorts finds bases for testnet.sh's ports: n consecutive
// gateway ports from http, and P2P and RPC ports p2p+10i and rpc+10i
// (rpc = p2p+1), all free on loopback now. They are below the kernel's
// ephemeral range, so that the gateways' own outgoing connections (the
// validators dial each other) cannot take one of them before it is bound,
// or between the down and the second start.
func freeTestnetPorts(t *testing.T, n int) (http, p2p, rpc int) {
	t.Helper()
	lo := 32768 // Linux's default ip_local_port_range starts here
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 12000 {
				lo = v
			}
		}
	}
	free := func(port int) bool {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		ln.Close()
		return true
	}
	span := 10*n + 2
	for try := 0; try < 100; try++ {
		base := lo - 10000 + rand.IntN(10000-span)
		http, p2p = base, base+n
		ok := true
		for i := range n {
			ok = ok && free(http+i) && free(p2p+10*i) && free(p2p+10*i+1)
		}
		if ok {
			return http, p2p, p2p + 1
		}
	}
	t.Fatal("no free ports for a testnet on loopback")
	return 0, 0, 0
}

// testnetPIDs reads the gateway.pid file of every member that has one.
func testnetPIDs(t *testing.T, dir string, n int) []int {
	t.Helper()
	var pids []int
	for i := 1; i <= n; i++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("hospital-%d", i), "gateway.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("hospital-%d/gateway.pid: %v", i, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// alive reports whether process pid exists and is not a zombie (the
// gateways are orphaned when the script exits; a zombie has exited).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state …: the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// testnetLogs is the end of every member's gateway log, for a failure
// message.
func testnetLogs(dir string) string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(dir, "hospital-*", "gateway.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "\n--- %s (end):\n%s", l, tail(string(data), 30))
	}
	return b.String()
}
