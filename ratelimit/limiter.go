package ratelimit

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults. A hospital's system asks for an access token every few
// minutes (tokens live at most 5) and makes tens of API calls a second at
// most; a credential-stuffing or enumeration client makes hundreds.
const (
	// DefaultTokenPerAddress bounds token requests from one source address
	// (an IPv6 /64 counts as one address).
	DefaultTokenPerAddress = "20:100"
	// DefaultTokenPerOrg bounds token requests naming one client org, from
	// anywhere.
	DefaultTokenPerOrg = "5:50"
	// DefaultPerPrincipal bounds authenticated API requests of one
	// principal (an org, or a patient).
	DefaultPerPrincipal = "100:200"
	// DefaultFailureThreshold consecutive failed token requests of one org
	// from one address start the back-off.
	DefaultFailureThreshold = 20
	// DefaultBackoffBase is the first back-off; it doubles with each
	// further failure up to DefaultBackoffMax.
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = 5 * time.Minute
	// DefaultMaxKeys bounds each keyed table.
	DefaultMaxKeys = 10000
	// DefaultLogInterval is how often one kind of refusal is logged.
	DefaultLogInterval = time.Minute
)

// Config is the set of limits. Zero Limit fields are no limit; use
// DefaultConfig for the documented defaults.
type Config struct {
	TokenPerAddress Limit   // POST /oauth2/token per source address
	TokenPerOrg     Limit   // POST /oauth2/token per client org named
	TokenFailures   Backoff // back-off per (client org, source address) after failures
	PerPrincipal    Limit   // authenticated API requests per principal
	MaxKeys         int     // keys per table (default DefaultMaxKeys)
	LogInterval     time.Duration
}

// DefaultConfig is the documented defaults.
func DefaultConfig() Config {
	c := Config{
		TokenFailures: Backoff{Threshold: DefaultFailureThreshold, Base: DefaultBackoffBase, Max: DefaultBackoffMax},
		MaxKeys:       DefaultMaxKeys,
		LogInterval:   DefaultLogInterval,
	}
	for _, p := range []struct {
		l *Limit
		s string
	}{{&c.TokenPerAddress, DefaultTokenPerAddress}, {&c.TokenPerOrg, DefaultTokenPerOrg}, {&c.PerPrincipal, DefaultPerPrincipal}} {
		if err := p.l.Set(p.s); err != nil {
			panic(err) // the constants above parse
		}
	}
	return c
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	for name, l := range map[string]Limit{"token per address": c.TokenPerAddress, "token per org": c.TokenPerOrg, "per principal": c.PerPrincipal} {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidConfig, name, err)
		}
	}
	if err := c.TokenFailures.Validate(); err != nil {
		return fmt.Errorf("%w: token failures: %w", ErrInvalidConfig, err)
	}
	if c.MaxKeys < 0 || c.LogInterval < 0 {
		return fmt.Errorf("%w: negative key bound or log interval", ErrInvalidConfig)
	}
	return nil
}

// Scope names which limit refused a request (the metric's label).
type Scope string

const (
	ScopeTokenAddress Scope = "token_address"
	ScopeTokenOrg     Scope = "token_org"
	ScopeTokenBackoff Scope = "token_backoff"
	ScopePrincipal    Scope = "principal"
	ScopeAuthBackoff  Scope = "auth_backoff"
)

// Decision is a limiter's answer. RetryAfter is set when refused.
type Decision struct {
	Allowed    bool
	RetryAfter time.Duration
	Scope      Scope
}

var allowed = Decision{Allowed: true}

// Limiter applies a Config. It is safe for concurrent use.
type Limiter struct {
	cfg       Config
	addr      *Buckets
	org       *Buckets
	principal *Buckets
	failures  *backoffs // per (org, address)
	addrFails *backoffs // per address, whatever the org: AddressFailureFactor × the threshold
	authFails *backoffs // bearer-token failures per address, as addrFails
	logs      *LogLimiter
	refused   *prometheus.CounterVec
	clock     atomic.Pointer[func() time.Time]
}

// New builds a Limiter from cfg (which should have passed Validate;
// unusable limits are treated as off) and registers its refusal counter,
// healthgw_rate_limited_total{scope}, with reg (nil: not registered).
func New(cfg Config, reg prometheus.Registerer) *Limiter {
	off := func(l Limit) Limit {
		if l.Validate() != nil {
			return Limit{}
		}
		return l
	}
	if cfg.TokenFailures.Validate() != nil {
		cfg.TokenFailures = Backoff{}
	}
	l := &Limiter{
		cfg:       cfg,
		addr:      NewBuckets(off(cfg.TokenPerAddress), cfg.MaxKeys),
		org:       NewBuckets(off(cfg.TokenPerOrg), cfg.MaxKeys),
		principal: NewBuckets(off(cfg.PerPrincipal), cfg.MaxKeys),
		failures:  newBackoffs(cfg.TokenFailures, cfg.MaxKeys),
		addrFails: newBackoffs(addressBackoff(cfg.TokenFailures), cfg.MaxKeys),
		authFails: newBackoffs(addressBackoff(cfg.TokenFailures), cfg.MaxKeys),
		logs:      NewLogLimiter(cfg.LogInterval, cfg.MaxKeys),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "healthgw_rate_limited_total",
			Help: "Requests refused with 429 by the rate limits, by the limit that refused them.",
		}, []string{"scope"}),
	}
	for _, s := range []Scope{ScopeTokenAddress, ScopeTokenOrg, ScopeTokenBackoff, ScopePrincipal, ScopeAuthBackoff} {
		l.refused.WithLabelValues(string(s))
	}
	if reg != nil {
		reg.MustRegister(l.refused)
	}
	l.SetClock(time.Now)
	return l
}

// SetClock replaces time.Now (tests).
func (l *Limiter) SetClock(now func() time.Time) { l.clock.Store(&now) }

func (l *Limiter) now() time.Time { return (*l.clock.Load())() }

func (l *Limiter) refuse(s Scope, wait time.Duration) Decision {
	l.refused.WithLabelValues(string(s)).Inc()
	return Decision{RetryAfter: wait, Scope: s}
}

// AddressFailureFactor scales the failure threshold for the back-off of a
// source address as a whole, which catches a client that names a new org
// with every failed request.
const AddressFailureFactor = 5

func addressBackoff(b Backoff) Backoff {
	if b != (Backoff{}) {
		b.Threshold *= AddressFailureFactor
	}
	return b
}

// failureKey is the back-off's key: a client org as seen from one address,
// so that a third party sending bad assertions in an org's name slows
// itself, not the org.
func failureKey(addr, org string) string { return org + "\x00" + addr }

// TokenRequest decides a token request from addr naming client org (""
// when the request names none). The back-off is checked first: a blocked
// client spends no tokens.
func (l *Limiter) TokenRequest(addr, org string) Decision {
	now := l.now()
	if d := max(l.failures.blocked(failureKey(addr, org), now), l.addrFails.blocked(addr, now)); d > 0 {
		return l.refuse(ScopeTokenBackoff, d)
	}
	if ok, d := l.addr.Allow(addr, now); !ok {
		return l.refuse(ScopeTokenAddress, d)
	}
	if org != "" {
		if ok, d := l.org.Allow(org, now); !ok {
			return l.refuse(ScopeTokenOrg, d)
		}
	}
	return allowed
}

// TokenResult records how a token request that TokenRequest allowed
// ended: a success forgets earlier failures, a failure counts toward the
// back-off.
func (l *Limiter) TokenResult(addr, org string, ok bool) {
	key := failureKey(addr, org)
	if ok {
		l.failures.success(key)
		l.addrFails.success(addr)
		return
	}
	now := l.now()
	l.failures.failure(key, now)
	l.addrFails.failure(addr, now)
}

// Credentials decides a request to an authenticated route from addr
// before its bearer token is checked: an address whose last
// AddressFailureFactor × threshold requests all failed authentication
// backs off, so a client guessing or replaying tokens slows down.
func (l *Limiter) Credentials(addr string) Decision {
	if d := l.authFails.blocked(addr, l.now()); d > 0 {
		return l.refuse(ScopeAuthBackoff, d)
	}
	return allowed
}

// CredentialsResult records whether a request from addr authenticated.
func (l *Limiter) CredentialsResult(addr string, ok bool) {
	if ok {
		l.authFails.success(addr)
		return
	}
	l.authFails.failure(addr, l.now())
}

// Principal decides an authenticated request of principal key.
func (l *Limiter) Principal(key string) Decision {
	if ok, d := l.principal.Allow(key, l.now()); !ok {
		return l.refuse(ScopePrincipal, d)
	}
	return allowed
}

// LogAllowed reports whether a refusal line for key may be logged now,
// and how many were held back since the last one.
func (l *Limiter) LogAllowed(key string) (bool, int) { return l.logs.Allow(key, l.now()) }
