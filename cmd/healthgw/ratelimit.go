package main

import (
	"flag"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/ratelimit"
)

// rateLimitFlags adds serve's rate-limit settings (defaults in
// ratelimit.DefaultConfig; limits are RATE:BURST in requests a second and
// requests at once, or off).
func (c *serveConfig) rateLimitFlags(fs *flag.FlagSet) {
	rl := &c.RateLimits
	fs.BoolVar(&c.RateLimit, "rate-limit", c.RateLimit, "rate-limit the token endpoint and API callers (429 with Retry-After)")
	fs.Var(&rl.TokenPerAddress, "rate-limit-token-address", "POST /oauth2/token limit per source address, RATE:BURST or off")
	fs.Var(&rl.TokenPerOrg, "rate-limit-token-org", "POST /oauth2/token limit per client org, RATE:BURST or off")
	fs.Var(&rl.PerPrincipal, "rate-limit-api", "authenticated API limit per principal (org or patient), RATE:BURST or off")
	fs.IntVar(&rl.TokenFailures.Threshold, "rate-limit-token-failures", rl.TokenFailures.Threshold, "consecutive failed token requests of one org from one address before the back-off")
	fs.DurationVar(&rl.TokenFailures.Base, "rate-limit-backoff", rl.TokenFailures.Base, "first back-off after the failure threshold; doubles with each further failure")
	fs.DurationVar(&rl.TokenFailures.Max, "rate-limit-backoff-max", rl.TokenFailures.Max, "longest back-off")
}

// rateLimitOptions builds the limiter serve's settings ask for (nil when
// off) and the API options that apply it, on the registry /metrics serves.
func rateLimitOptions(cfg serveConfig, reg *prometheus.Registry) (*ratelimit.Limiter, []api.Option) {
	opts := []api.Option{api.WithRegistry(reg)}
	if !cfg.RateLimit {
		return nil, opts
	}
	l := ratelimit.New(cfg.RateLimits, reg)
	return l, append(opts, api.WithRateLimits(l))
}
