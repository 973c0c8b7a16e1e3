// Command healthgw is the healthgw gateway and its operator, client and
// regulator tooling: one binary with subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode is the process status for run's error, which it reports on
// stderr: 0 for none and for -h (help was asked for and printed), the
// exitError's code, else 1.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case !errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "healthgw:", err)
	}
	var ex exitError
	if errors.As(err, &ex) {
		return ex.code
	}
	return 1
}

// env is what every subcommand gets from the process: nothing else is
// global.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

// command is one subcommand. Subcommands with their own subcommands
// (org, token, ledger, zk, …) dispatch again with subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands is the table of top-level subcommands.
func commands() []command {
	return []command{
		{"serve", "run the gateway", cmdServe},
		{"consortium", "lay out a local consortium of hospital gateways, each a CometBFT validator", cmdConsortium},
		{"ledger", "verify and inspect the tamper-evident ledger (regulator tools)", cmdLedger},
		{"keys", "record key-encryption keys: init, rotate, status", cmdKeys},
		{"demo", "tell the whole story against a running gateway, step by step", cmdDemo},
		{"bench", "load and soak a running gateway with a realistic mix; throughput, p50/p99, errors, memory", cmdBench},
		{"version", "print the version", cmdVersion},
		{"org", "register and list organisations, make demo client keys", cmdOrg},
		{"token", "mint patient tokens (development), get client access tokens", cmdToken},
		{"zk", "zero-knowledge credentials, setup, proving and verification", cmdZK},
		{"witness", "run a witness that cosigns gateways' checkpoints (C2SP tlog-witness)", cmdWitness},
	}
}

var errUsage = errors.New("usage")

// exitError carries a specific exit status (for example 2 for a failed
// verification).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func cmdVersion(_ context.Context, e *env, _ []string) error {
	fmt.Fprintln(e.stdout, "healthgw", version)
	return nil
}

// run is the whole program; tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version" || args[0] == "-v") {
		return cmdVersion(ctx, e, args[1:])
	}
	return dispatch(ctx, e, "healthgw", commands(), args)
}

// dispatch runs the subcommand named by args[0] from cmds.
func dispatch(ctx context.Context, e *env, prog string, cmds []command, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(e.stderr, prog, cmds)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	printUsage(e.stderr, prog, cmds)
	return fmt.Errorf("%s: unknown command %q", prog, args[0])
}

func printUsage(w io.Writer, prog string, cmds []command) {
	fmt.Fprintf(w, "usage: %s <command> [flags]\n\ncommands:\n", prog)
	sorted := append([]command(nil), cmds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
}

// newFlags returns a FlagSet that writes its usage to e.stderr.
func newFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args into fs, then fills every flag that was not given
// on the command line from the environment variable HEALTHGW_<FLAG> (upper
// case, '-' as '_'). Flags win over the environment; both win over
// defaults. Positional arguments are refused.
func parseFlags(e *env, fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		key := "HEALTHGW_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := e.getenv(key); v != "" {
			if perr := fs.Set(f.Name, v); perr != nil {
				err = fmt.Errorf("%s: %w", key, perr)
			}
		}
	})
	return err
}
