package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	gnarklog "github.com/consensys/gnark/logger"
	"github.com/gin-gonic/gin"
)

// loadServeConfig reads serve's settings: flags win over HEALTHGW_*
// environment variables, which win over a --config file, which wins over
// the defaults. The result is validated.
func loadServeConfig(e *env, args []string) (serveConfig, slog.Level, error) {
	cfg := defaultServeConfig()
	fs := newFlags(e, "serve")
	cfg.flags(fs)
	configFile := fs.String("config", "", "configuration file of `name = value` lines (see deploy/healthgw.conf.example)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	var level slog.Level
	if err := parseFlags(e, fs, args); err != nil {
		return cfg, level, err
	}
	if err := envAlias(e, fs, "trusted-proxy", "HEALTHGW_TRUSTED_PROXIES"); err != nil {
		return cfg, level, err
	}
	if *configFile != "" {
		explicit := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
		if err := applyConfigFile(fs, *configFile, explicit); err != nil {
			return cfg, level, err
		}
	}
	if err := cfg.finish(); err != nil {
		return cfg, level, err
	}
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, level, fmt.Errorf("--log-level: %w", err)
	}
	return cfg, level, nil
}

// envAlias fills flag name from the environment variable key when
// neither the flag nor its own variable was given.
func envAlias(e *env, fs *flag.FlagSet, name, key string) error {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	if v := e.getenv(key); v != "" && !set {
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// witnessInterval is how often serve submits a new checkpoint to its
// witnesses.
const witnessInterval = time.Second

// HTTP server limits. ReadTimeout and WriteTimeout bound a whole request
// and its answer: a JSON upload of 16 MiB on a slow link. The streamed
// record routes (POST /v1/records/upload, GET /v1/records/{id}/content)
// outlive them while they move: each read or write there pushes the
// connection's deadline api.DefaultStreamIdleTimeout ahead (see
// api.Config.StreamIdleTimeout), so an upload of a gigabyte is cut only
// if it stalls.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 32 << 10
)

func cmdServe(ctx context.Context, e *env, args []string) error {
	cfg, level, err := loadServeConfig(e, args)
	if err != nil {
		return err
	}
	logger := newLogger(e.stderr, cfg.LogFormat, level)
	gin.SetMode(gin.ReleaseMode)
	gnarklog.Disable() // gnark logs to stdout through a process-wide logger

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()

	g, err := openGateway(ctx, cfg, logger, e)
	if err != nil {
		return err
	}
	reloads, stopSIGHUP := sighupReloads()
	defer stopSIGHUP()
	ln, handler, stopTLS, err := serveTLS(cfg, ln, g.handler, reloads, logger, nil)
	if err != nil {
		return errors.Join(err, g.close())
	}
	defer stopTLS()
	stopDebug, err := startDebug(cfg.DebugAddr, logger)
	if err != nil {
		return errors.Join(err, g.close())
	}
	defer stopDebug()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	followCtx, stopFollow := context.WithCancel(context.Background())
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		if n, ok := g.store.(interface{ Committed() <-chan struct{} }); ok {
			g.follower.Watch(followCtx, n.Committed, logger) // notified by each commit
			return
		}
		g.follower.Run(followCtx, 0, logger)
	}()
	settleDone := make(chan struct{})
	go func() {
		defer close(settleDone)
		g.settleKept(followCtx, logger)
	}()
	zkCtx, stopZK := context.WithCancel(context.Background())
	zkDone := make(chan struct{})
	go func() {
		defer close(zkDone)
		if cfg.ZKDevSetup {
			setup := func(ctx context.Context) error { return g.zkKeys.DevSetup(ctx, e.stderr) }
			if err := devSetupWithBanner(zkCtx, cfg.ZKKeys, setup, e.stderr, time.Now); err != nil {
				if zkCtx.Err() == nil {
					logger.Error("development zero-knowledge setup failed", slog.String("err", err.Error()))
				}
				return
			}
		}
		if _, err := g.zkKeys.Verifier(zkCtx); err != nil {
			logger.Warn("zero-knowledge endpoints unavailable until keys are set up", slog.String("err", err.Error()))
		}
	}()
	witnessCtx, stopWitness := context.WithCancel(context.Background())
	witnessDone := make(chan struct{})
	go func() {
		defer close(witnessDone)
		if g.witnesses != nil {
			g.witnesses.Run(witnessCtx, witnessInterval)
		}
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	printWelcome(e, cfg, ln.Addr().String(), g.vkey, ledgerOrigin(g.store, cfg))
	logger.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("base_url", cfg.BaseURL),
		slog.String("db", dbKind(cfg.DB)), slog.String("ledger", cfg.Ledger), slog.String("origin", ledgerOrigin(g.store, cfg)))

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error("server failed", slog.String("err", err.Error()))
		}
	}
	// Shutdown order: stop accepting and drain requests, stop following,
	// then flush the ledger (final checkpoint) and close the database.
	shCtx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown)
	defer cancel()
	shErr := srv.Shutdown(shCtx)
	stopFollow()
	<-followDone
	<-settleDone
	stopZK()
	<-zkDone
	stopWitness()
	<-witnessDone
	closeErr := g.close()
	if shErr != nil || closeErr != nil {
		return errors.Join(shErr, closeErr)
	}
	logger.Info("stopped cleanly")
	return nil
}

func dbKind(dsn string) string {
	if d := dialectName(dsn); d == "postgres" {
		return "postgres"
	}
	return "sqlite:" + dsn
}

// ledgerOrigin is the origin the running log signs with (stored with the
// log, not derived from the configuration).
func ledgerOrigin(l backend, cfg serveConfig) string {
	if o, ok := l.(interface{ Origin() string }); ok {
		return o.Origin()
	}
	return cfg.Origin
}

func printWelcome(e *env, cfg serveConfig, addr, vkey, origin string) {
	scheme := "http"
	if cfg.tlsEnabled() {
		scheme = "https"
	}
	fmt.Fprintf(e.stdout, `healthgw %s listening on %s://%s (public URL %s)
  data directory  %s
  database        %s
  ledger          %s (origin %q)
  checkpoint key  %s

Get a first token (in another terminal):
  ./bin/healthgw org keygen --id hosp-a --name "Hospital A" --kind hospital --out keys
  TOKEN=$(./bin/healthgw token client --org hosp-a --key keys/hosp-a.jwk --url %s)
  curl -H "Authorization: Bearer $TOKEN" %s/v1/ledger/checkpoint

Patient app: %s/app/   Regulator console: %s/console/
`, version, scheme, addr, cfg.BaseURL, cfg.DataDir, dbKind(cfg.DB), cfg.Ledger, origin, vkey, cfg.BaseURL, cfg.BaseURL, cfg.BaseURL, cfg.BaseURL)
}
