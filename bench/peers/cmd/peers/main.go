// Command peers runs healthgw and its peers on the same work in
// interleaved rounds and prints a ratio table (see bench/peers/README.md):
//
//	go run ./cmd/peers [-rounds N] [-seconds S] [-only appends,read,zk,aes,comet]
//
// BENCH_ROUNDS and BENCH_SECONDS set the defaults of -rounds and -seconds;
// HEALTHGW_TEST_POSTGRES adds the PostgreSQL append pair. The table goes
// to stdout, progress to stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/consensys/gnark/logger"
	"k8s.io/klog/v2"

	"github.com/healthgw/healthgw/bench/peers/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "peer-server" {
		if err := peerServer(os.Args[2:], os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	// Tessera logs through klog: keep its lines out of the table.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	// gnark logs its compile steps; the suite reports its own progress.
	logger.Disable()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

// Config is the suite's configuration.
type Config struct {
	Rounds   int           // interleaved rounds per pair (default 5, BENCH_ROUNDS)
	Duration time.Duration // measured time per side and round (default 3s, BENCH_SECONDS)
	Only     map[string]bool
	Repo     string // the healthgw repository (default ../..)
	ZKDir    string // the npm project of the snarkjs peer (default ./zk)
	Postgres string // HEALTHGW_TEST_POSTGRES
	Out      string // also write the table here
}

var pairNames = []string{"appends", "read", "zk", "aes", "comet"}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := Config{Rounds: 5, Duration: 3 * time.Second, Repo: "../..", ZKDir: "zk", Postgres: getenv("HEALTHGW_TEST_POSTGRES")}
	if v := getenv("BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("BENCH_ROUNDS=%q: %w", v, err)
		}
		c.Rounds = n
	}
	if v := getenv("BENCH_SECONDS"); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return c, fmt.Errorf("BENCH_SECONDS=%q: %w", v, err)
		}
		c.Duration = time.Duration(s * float64(time.Second))
	}
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "interleaved rounds per pair")
	fs.DurationVar(&c.Duration, "seconds", c.Duration, "measured time per side and round (a duration: 3s)")
	only := fs.String("only", strings.Join(pairNames, ","), "pairs to run")
	fs.StringVar(&c.Repo, "repo", c.Repo, "the healthgw repository")
	fs.StringVar(&c.ZKDir, "zk", c.ZKDir, "the npm project of the circom2 + snarkjs peer")
	fs.StringVar(&c.Out, "out", "", "also write the table to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.Rounds < 1 || c.Rounds > 1000:
		return c, fmt.Errorf("-rounds %d: want 1 to 1000", c.Rounds)
	case c.Duration < 100*time.Millisecond || c.Duration > 10*time.Minute:
		return c, fmt.Errorf("-seconds %v: want 100ms to 10m", c.Duration)
	}
	c.Only = map[string]bool{}
	for p := range strings.SplitSeq(*only, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		known := false
		for _, n := range pairNames {
			known = known || n == p
		}
		if !known {
			return c, fmt.Errorf("-only: unknown pair %q (want some of %s)", p, strings.Join(pairNames, ","))
		}
		c.Only[p] = true
	}
	var err error
	if c.Repo, err = filepath.Abs(c.Repo); err != nil {
		return c, err
	}
	if c.ZKDir, err = filepath.Abs(c.ZKDir); err != nil {
		return c, err
	}
	if _, err := os.Stat(filepath.Join(c.Repo, "cmd", "healthgw")); err != nil {
		return c, fmt.Errorf("-repo %s is not the healthgw repository: %w", c.Repo, err)
	}
	return c, nil
}

// suite carries what the pairs share.
type suite struct {
	cfg    Config
	tmp    string
	stderr io.Writer
	rows   []harness.Row
	notes  []string
}

func (s *suite) logf(format string, args ...any) {
	fmt.Fprintf(s.stderr, "[%s] "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

func (s *suite) skip(measure, why string) {
	s.logf("%s: skipped: %s", measure, why)
	s.rows = append(s.rows, harness.Row{Measure: measure, Note: "skipped: " + why})
}

func (s *suite) fail(measure string, err error) {
	s.logf("%s: FAILED: %v", measure, err)
	s.rows = append(s.rows, harness.Row{Measure: measure, Note: "failed: " + firstLine(err.Error())})
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "healthgw-bench-peers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	s := &suite{cfg: cfg, tmp: tmp, stderr: stderr}
	load0 := uptime()
	start := time.Now()
	s.logf("bench-peers: %d rounds of %v per side; load before: %s", cfg.Rounds, cfg.Duration, load0)
	for _, p := range []struct {
		name string
		f    func(context.Context)
	}{
		{"appends", s.appends}, {"read", s.read}, {"zk", s.zk}, {"aes", s.aes}, {"comet", s.comet},
	} {
		if !cfg.Only[p.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		p.f(ctx)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "bench-peers: %d interleaved rounds of %v per side, %s\n", cfg.Rounds, cfg.Duration, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "load before: %s\nload after:  %s\n\n", load0, uptime())
	if err := harness.WriteTable(&b, s.rows); err != nil {
		return err
	}
	if len(s.notes) > 0 {
		b.WriteString("\n")
		for _, n := range s.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	fmt.Fprintf(&b, "\n(ratio: healthgw's rate over the peer's in the same round; > 1 means healthgw is faster; the suite took %v)\n", time.Since(start).Round(time.Second))
	if _, err := io.WriteString(stdout, b.String()); err != nil {
		return err
	}
	if cfg.Out != "" {
		if err := os.WriteFile(cfg.Out, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// uptime returns `uptime`'s line, or /proc/loadavg.
func uptime() string {
	if out, err := exec.Command("uptime").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		return "loadavg " + strings.TrimSpace(string(b))
	}
	return "unknown"
}

// goCmd runs `go args...` in the repository root.
func (s *suite) goCmd(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = s.cfg.Repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
