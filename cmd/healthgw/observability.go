package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
	"github.com/healthgw/healthgw/metrics"
	"github.com/healthgw/healthgw/ratelimit"
)

// operationsFlags adds serve's log format and rate-limit settings
// (defaults in ratelimit.DefaultConfig; limits are RATE:BURST in requests
// a second and requests at once, or off).
func (c *serveConfig) operationsFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json (one JSON object a line)")
	rl := &c.RateLimits
	fs.BoolVar(&c.RateLimit, "rate-limit", c.RateLimit, "rate-limit the token endpoint and API callers (429 with Retry-After)")
	fs.Var(&rl.TokenPerAddress, "rate-limit-token-address", "POST /oauth2/token limit per source address, RATE:BURST or off")
	fs.Var(&rl.TokenPerOrg, "rate-limit-token-org", "POST /oauth2/token limit per client org, RATE:BURST or off")
	fs.Var(&rl.PerPrincipal, "rate-limit-api", "authenticated API limit per principal (org or patient), RATE:BURST or off")
	fs.IntVar(&rl.TokenFailures.Threshold, "rate-limit-token-failures", rl.TokenFailures.Threshold, "consecutive failed token requests of one org from one address before the back-off")
	fs.DurationVar(&rl.TokenFailures.Base, "rate-limit-backoff", rl.TokenFailures.Base, "first back-off after the failure threshold; doubles with each further failure")
	fs.DurationVar(&rl.TokenFailures.Max, "rate-limit-backoff-max", rl.TokenFailures.Max, "longest back-off")
	fs.Var(&c.TrustedProxies, "trusted-proxy", "reverse proxies (CIDR or address, comma-separated, repeatable; environment HEALTHGW_TRUSTED_PROXIES) whose X-Forwarded-For names the client for rate limits and logs; from any other peer the header is ignored (default: none)")
}

// operations is the gateway's operability wiring: one Prometheus registry
// for /metrics, the rate limiter (nil when off), the metrics, and the API
// options that install them.
type operations struct {
	reg     *prometheus.Registry
	limits  *ratelimit.Limiter
	metrics *metrics.Gateway
	opts    []api.Option
}

func newOperations(cfg serveConfig, l ledger.Log, store ledger.Store) *operations {
	o := &operations{reg: prometheus.NewRegistry()}
	o.metrics = metrics.New(o.reg)
	o.reg.MustRegister(metrics.NewLedgerCollector(l, checkpointSize))
	if n, ok := store.(cometStatus); ok {
		o.reg.MustRegister(metrics.NewConsensusCollector(func() metrics.ConsensusStatus {
			st := n.Status()
			return metrics.ConsensusStatus{Height: st.Height, Peers: st.Peers, LastBlockTime: st.LastBlockTime, CatchingUp: st.CatchingUp}
		}))
	}
	o.opts = []api.Option{api.WithRegistry(o.reg), api.WithObserver(o.metrics), api.WithTrustedProxies(cfg.TrustedProxies)}
	if cfg.RateLimit {
		o.limits = ratelimit.New(cfg.RateLimits, o.reg)
		o.opts = append(o.opts, api.WithRateLimits(o.limits))
	}
	return o
}

// cometStatus is a consortium ledger node (comet.Log): the consensus
// collector reads its height, peers and last block.
type cometStatus interface{ Status() comet.Status }

var _ cometStatus = (*comet.Log)(nil)

func checkpointSize(note []byte) (uint64, error) {
	cp, err := ledger.ParseCheckpoint(note)
	return cp.Size, err
}

// appender times a's appends and counts the access decisions appended
// through it.
func (o *operations) appender(a ledger.Appender) ledger.Appender {
	return &observedAppender{Appender: a, m: o.metrics}
}

// log is l with its appends observed as appender's are; it keeps
// WaitCheckpoint where l has it, so receipts still publish on demand.
func (o *operations) log(l ledger.Log) ledger.Log {
	ol := observedLog{Log: l, a: &observedAppender{Appender: l, m: o.metrics}}
	if w, ok := l.(ledger.CheckpointWaiter); ok {
		return &waitingObservedLog{observedLog: ol, w: w}
	}
	return &ol
}

type observedLog struct {
	ledger.Log
	a *observedAppender
}

func (l *observedLog) Append(ctx context.Context, e ledger.Entry) (uint64, error) {
	return l.a.Append(ctx, e)
}

// Open keeps the log's ledger.Opener (the node's), so that receipts made
// through the observed log carry the entry's header and opening.
func (l *observedLog) Open(ctx context.Context, index uint64) (ledger.Opened, error) {
	if o, ok := l.Log.(ledger.Opener); ok {
		return o.Open(ctx, index)
	}
	return ledger.Opened{}, ledger.ErrNotRecipient
}

type waitingObservedLog struct {
	observedLog
	w ledger.CheckpointWaiter
}

func (l *waitingObservedLog) WaitCheckpoint(ctx context.Context, size uint64) ([]byte, error) {
	return l.w.WaitCheckpoint(ctx, size)
}

type observedAppender struct {
	ledger.Appender
	m *metrics.Gateway
}

func (a *observedAppender) Append(ctx context.Context, e ledger.Entry) (uint64, error) {
	start := time.Now()
	idx, err := a.Appender.Append(ctx, e)
	a.m.ObserveAppend(time.Since(start), err)
	if d, ok := e.Body.(*ledger.AccessDecided); ok && err == nil {
		a.m.Decisions.WithLabelValues(d.Decision, d.Reason).Inc()
	}
	return idx, err
}

// newLogger is serve's logger: slog's text or JSON handler at level, with
// the request ID of the request being served on every line logged with
// its context.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(api.RequestIDHandler(h))
}
