package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugFlags adds serve's profiling listener.
func (c *serveConfig) debugFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DebugAddr, "debug-addr", c.DebugAddr,
		"serve Go's runtime profiles (net/http/pprof, under /debug/pprof/) on this loopback address, e.g. 127.0.0.1:6060; off when empty")
}

// finishDebug validates --debug-addr: profiles show memory contents'
// shapes and call stacks, so they are served on a loopback address only,
// apart from the API.
func (c *serveConfig) finishDebug() error {
	if c.DebugAddr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(c.DebugAddr)
	if err != nil {
		return fmt.Errorf("--debug-addr %q: %w", c.DebugAddr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("--debug-addr %q: profiles are served on a loopback address only (127.0.0.1:PORT or [::1]:PORT)", c.DebugAddr)
	}
	return nil
}

// debugHandler serves net/http/pprof's pages.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// startDebug listens on addr and serves the profiles until the returned
// stop is called. An empty addr starts nothing.
func startDebug(addr string, logger *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-addr: %w", err)
	}
	srv := &http.Server{
		Handler:           debugHandler(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		// A CPU profile or trace runs for its ?seconds= (30 by default).
		WriteTimeout: 10 * time.Minute,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("debug listener stopped", slog.String("err", err.Error()))
		}
	}()
	logger.Info("serving runtime profiles", slog.String("addr", ln.Addr().String()), slog.String("path", "/debug/pprof/"))
	return func() { _ = srv.Close(); <-done }, nil
}
