package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/witness"
)

// witnessKeyFile is the witness's cosigning key under its data directory.
const witnessKeyFile = "keys/witness.key"

func cmdWitness(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "healthgw witness", []command{
		{"serve", "run a C2SP tlog-witness that cosigns the checkpoints of the logs it follows", cmdWitnessServe},
	}, args)
}

// listFlag is a repeatable flag; each value may also hold several items
// separated by commas (as HEALTHGW_* variables do).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// parseWitnessLog parses a --log value: "<origin>=<verifier key>", or a
// verifier key alone (the origin is then its name).
func parseWitnessLog(s string) (witness.Log, error) {
	origin, vkey, ok := strings.Cut(s, "=")
	if !ok || strings.Contains(origin, "+") {
		origin, vkey = "", s
	}
	v, err := loadVerifier(vkey)
	if err != nil {
		return witness.Log{}, fmt.Errorf("--log %q: %w", s, err)
	}
	if origin == "" {
		origin = v.Name()
	}
	return witness.Log{Origin: origin, Verifier: v}, nil
}

func cmdWitnessServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "witness serve")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	data := fs.String("data", "witness-data", "data directory (state database, key)")
	dsn := fs.String("db", "", "state database: a SQLite path or postgres://… (default <data>/witness.db)")
	name := fs.String("name", "", "key name of a NEW witness key (default witness/<hostname>)")
	var logs listFlag
	fs.Var(&logs, "log", "a log to witness: <origin>=<checkpoint verifier key> or the key alone (origin = key name); repeatable")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if len(logs) == 0 {
		return errors.New("witness serve: give at least one --log")
	}
	var follow []witness.Log
	for _, s := range logs {
		l, err := parseWitnessLog(s)
		if err != nil {
			return err
		}
		follow = append(follow, l)
	}
	if *name == "" {
		host, _ := os.Hostname()
		*name = "witness/" + strings.Map(func(r rune) rune {
			if r == '+' || r == ' ' || r < 0x21 {
				return '-'
			}
			return r
		}, host)
	}
	keyPath := filepath.Join(*data, witnessKeyFile)
	if _, _, err := ledger.LoadOrCreateCheckpointKey(keyPath, *name); err != nil {
		return fmt.Errorf("witness key: %w", err)
	}
	skey, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("witness key: %w", err)
	}
	vkey, err := witness.VerifierKey(strings.TrimSpace(string(skey)))
	if err != nil {
		return err
	}
	if *dsn == "" {
		*dsn = filepath.Join(*data, "witness.db")
	}
	db, err := database.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer database.Close(db)
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	w, err := witness.New(ctx, db, strings.TrimSpace(string(skey)), follow, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           w.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(e.stdout, "healthgw witness listening on http://%s\n  witness key  %s\n", ln.Addr(), vkey)
	for _, l := range follow {
		fmt.Fprintf(e.stdout, "  log          %s (key %s+%08x)\n", l.Origin, l.Verifier.Name(), l.Verifier.KeyHash())
	}
	fmt.Fprintf(e.stdout, "Gateways submit with: --witness '%s@http://%s'\n", vkey, ln.Addr())
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	shCtx, cancel := context.WithTimeout(context.Background(), defaultServeConfig().Shutdown)
	defer cancel()
	return srv.Shutdown(shCtx)
}

// loadWitnessVerifier reads a witness's cosignature verifier key: a file,
// or the key text itself.
func loadWitnessVerifier(arg string) (note.Verifier, error) {
	text := arg
	if b, err := os.ReadFile(arg); err == nil {
		text = string(b)
	} else if strings.Count(arg, "+") < 2 {
		return nil, fmt.Errorf("witness key %q: %w", arg, err)
	}
	return witness.NewVerifier(strings.TrimSpace(text))
}
