package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/ledger"
)

// DefaultMaxJSONBody bounds JSON request bodies unless a route says
// otherwise.
const DefaultMaxJSONBody = 1 << 20

// Principal is who a request comes from (see auth.Principal).
type Principal = auth.Principal

// Authenticator turns a bearer token into a Principal. It returns an error
// for any token it does not accept; the error is logged, never sent.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// Checker reports whether a dependency is ready (for /readyz).
type Checker interface {
	Check(ctx context.Context) error
}

// CheckerFunc adapts a function to Checker.
type CheckerFunc func(ctx context.Context) error

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context) error { return f(ctx) }

// Config holds the API's settings. Zero values take the documented defaults.
type Config struct {
	// BaseURL is the gateway's public URL, e.g. http://127.0.0.1:8080.
	BaseURL string
	// MaxJSONBody bounds JSON bodies (default DefaultMaxJSONBody).
	MaxJSONBody int64
	// StreamIdleTimeout is how long a streamed upload or download may go
	// without moving a byte (default DefaultStreamIdleTimeout). While it
	// moves, each read or write pushes the connection's deadline this far
	// ahead, past the server's whole-request ReadTimeout and WriteTimeout.
	StreamIdleTimeout time.Duration
}

// Server is the HTTP API. Build it with New; serve Handler().
type Server struct {
	cfg      Config
	log      *slog.Logger
	auth     Authenticator
	ready    map[string]Checker
	engine   *gin.Engine
	registry *prometheus.Registry
	metrics  *metrics
	// zkRules are the zero-knowledge error rules, tried after errorTable.
	zkRules []errorRule
	clock   atomic.Pointer[func() time.Time]
	ledger  LedgerReader
	tokens  TokenService
	vault   Vault
	gate    Gate
	encKeys EncryptionKeys
	// fed and fedHolder, when set, are federated reads (MountFederation).
	fed       Federation
	fedHolder FederationHolder
	consent   ConsentDeps
	verified  tokenCache
	zk        ZKDeps
	// projections is the follower the query routes catch up first.
	projections Syncer
	// trustedProxies may set the client address by X-Forwarded-For.
	trustedProxies []netip.Prefix
	// limits, when set, rate-limits the token endpoint and principals.
	limits RateLimiter
	// observer, when set, is told of token failures and record bytes.
	observer Observer
	// idem keeps the state-changing routes' idempotency keys.
	idem IdempotencyKeys
}

// Option configures a Server.
type Option func(*Server)

// WithReadiness adds a named readiness check.
func WithReadiness(name string, c Checker) Option {
	return func(s *Server) { s.ready[name] = c }
}

// WithClock replaces time.Now (tests that build a Server directly).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.SetClock(now) } }

// SetClock replaces the server's clock, also while it serves (tests).
func (s *Server) SetClock(now func() time.Time) { s.clock.Store(&now) }

func (s *Server) now() time.Time { return (*s.clock.Load())() }

// New builds the API. Routes of the capabilities whose dependencies are
// given are mounted with Mount… methods before Handler is called.
func New(cfg Config, logger *slog.Logger, authn Authenticator, opts ...Option) *Server {
	if cfg.MaxJSONBody <= 0 {
		cfg.MaxJSONBody = DefaultMaxJSONBody
	}
	if cfg.StreamIdleTimeout <= 0 {
		cfg.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		log:      logger,
		auth:     authn,
		ready:    map[string]Checker{},
		registry: prometheus.NewRegistry(),
	}
	s.SetClock(time.Now)
	for _, o := range opts {
		o(s)
	}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newMetrics(s.registry)

	e := gin.New()
	s.trustProxies(e)
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = false
	e.Use(s.requestIDMiddleware, s.recoverMiddleware, s.metricsMiddleware)
	if s.observer != nil {
		e.Use(s.observeMiddleware)
	}
	if s.limits != nil {
		e.Use(s.tokenRateLimit)
	}
	e.NoRoute(func(c *gin.Context) { s.fail(c, errNotFound) })
	e.NoMethod(func(c *gin.Context) {
		s.fail(c, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "Method not allowed."})
	})
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})))
	e.GET("/v1/whoami", s.authenticate, s.whoami)
	e.GET("/openapi.json", serveOpenAPI)
	s.engine = e
	s.mountFHIRBase()
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.engine }

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	status := http.StatusOK
	checks := map[string]string{}
	for name, chk := range s.ready {
		if err := chk.Check(ctx); err != nil {
			status = http.StatusServiceUnavailable
			checks[name] = "unavailable"
			if errors.Is(err, ledger.ErrHalted) {
				// Not a transient outage: the node needs its operator.
				checks[name] = "halted"
			}
			s.log.LogAttrs(ctx, slog.LevelWarn, "readiness check failed", slog.String("check", name), slog.String("err", err.Error()))
			continue
		}
		checks[name] = "ok"
	}
	state := "ready"
	if status != http.StatusOK {
		state = "not_ready"
	}
	c.JSON(status, gin.H{"status": state, "checks": checks})
}

// errAuth marks authentication failures for the error boundary.
var errAuth = errors.New("authentication failed")

// whoamiResponse describes the caller's principal.
type whoamiResponse = client.Whoami

// whoami answers who the token belongs to; it reads nothing else.
func (s *Server) whoami(c *gin.Context) {
	p := principal(c)
	r := whoamiResponse{Org: p.Org, Kind: string(p.Kind), Patient: p.Patient}
	for _, sc := range p.Scopes {
		r.Scopes = append(r.Scopes, string(sc))
	}
	c.JSON(http.StatusOK, r)
}
