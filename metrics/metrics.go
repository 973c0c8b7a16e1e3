// Package metrics holds the gateway's Prometheus collectors beyond the
// HTTP ones: access decisions, token-endpoint failures, record bytes,
// ledger append latency, and the ledger's size and checkpoint age. The
// collectors are plain prometheus types on one struct; components take the
// struct (or one of its fields) and observe, and cmd registers it on the
// registry /metrics serves. Labels never carry IDs, tokens or PHI.
package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Gateway is the set of collectors.
type Gateway struct {
	// Decisions counts access decisions by decision (permit, deny) and
	// reason (the consent.Reason code).
	Decisions *prometheus.CounterVec
	// TokenFailures counts refused token requests by reason (the RFC 6749
	// error code, or rate_limited).
	TokenFailures *prometheus.CounterVec
	// RecordBytesTotal counts record payload bytes by direction: in (uploaded)
	// or out (returned by gated reads), as sent over HTTP.
	RecordBytesTotal *prometheus.CounterVec
	// AppendLatency is how long a ledger append took until durable.
	AppendLatency *prometheus.HistogramVec
}

// New creates the collectors and registers them with reg (nil: not
// registered).
func New(reg prometheus.Registerer) *Gateway {
	g := &Gateway{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "healthgw_access_decisions_total",
			Help: "Access decisions applied from the ledger, by decision and reason.",
		}, []string{"decision", "reason"}),
		TokenFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "healthgw_token_failures_total",
			Help: "Refused POST /oauth2/token requests, by RFC 6749 error code (or rate_limited).",
		}, []string{"reason"}),
		RecordBytesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "healthgw_record_bytes_total",
			Help: "Record bytes over HTTP: in (uploads), out (gated reads).",
		}, []string{"direction"}),
		AppendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "healthgw_ledger_append_duration_seconds",
			Help:    "Ledger append latency until the entry is durable, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"outcome"}),
	}
	for _, d := range []string{"in", "out"} {
		g.RecordBytesTotal.WithLabelValues(d)
	}
	for _, o := range []string{"ok", "error"} {
		g.AppendLatency.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(g.Decisions, g.TokenFailures, g.RecordBytesTotal, g.AppendLatency)
	}
	return g
}

// ObserveAppend records one append of duration d that ended with err.
func (g *Gateway) ObserveAppend(d time.Duration, err error) {
	o := "ok"
	if err != nil {
		o = "error"
	}
	g.AppendLatency.WithLabelValues(o).Observe(d.Seconds())
}

// LedgerSource is what the ledger collector reads (ledger.Log has it).
type LedgerSource interface {
	Size(ctx context.Context) (uint64, error)
	Checkpoint(ctx context.Context) ([]byte, error)
}

// CheckpointSizer reads the tree size a signed checkpoint covers
// (ledger.ParseCheckpoint or a verifier's; the collector does not verify).
type CheckpointSizer func(note []byte) (uint64, error)

// LedgerCollector exports, at each scrape, the ledger's size, the tree
// size of its latest checkpoint, and the checkpoint's age: 0 while the
// checkpoint covers every entry, else the time since this process first
// saw the ledger ahead of that checkpoint. (Checkpoints carry no time; an
// idle ledger's checkpoint is current, not old.) The resolution is the
// scrape interval: checkpoints are published at least once a second while
// there are new entries, so an age above a few seconds is an alert.
type LedgerCollector struct {
	src     LedgerSource
	sizeOf  CheckpointSizer
	now     func() time.Time
	timeout time.Duration

	size, cpSize, cpAge, up *prometheus.Desc

	mu          sync.Mutex
	lastSize    uint64
	behindSince time.Time
}

// NewLedgerCollector reads src at each scrape; register it on a registry.
func NewLedgerCollector(src LedgerSource, sizeOf CheckpointSizer) *LedgerCollector {
	return &LedgerCollector{
		src: src, sizeOf: sizeOf, now: time.Now, timeout: 2 * time.Second,
		size:   prometheus.NewDesc("healthgw_ledger_entries", "Entries in the ledger.", nil, nil),
		cpSize: prometheus.NewDesc("healthgw_ledger_checkpoint_size", "Tree size of the latest signed checkpoint.", nil, nil),
		cpAge:  prometheus.NewDesc("healthgw_ledger_checkpoint_age_seconds", "Seconds the latest signed checkpoint has been behind the ledger (0 when it covers every entry; scrape resolution).", nil, nil),
		up:     prometheus.NewDesc("healthgw_ledger_up", "1 if the ledger answered the last scrape.", nil, nil),
	}
}

// SetClock replaces time.Now (tests).
func (c *LedgerCollector) SetClock(now func() time.Time) { c.now = now }

// Describe implements prometheus.Collector.
func (c *LedgerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.cpSize
	ch <- c.cpAge
	ch <- c.up
}

// Collect implements prometheus.Collector.
func (c *LedgerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	n, err := c.src.Size(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(n))
	note, err := c.src.Checkpoint(ctx)
	var cp uint64
	if err == nil {
		cp, err = c.sizeOf(note)
	}
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	now := c.now()
	c.mu.Lock()
	var age time.Duration
	switch {
	case cp >= n:
		c.behindSince = time.Time{}
	case c.behindSince.IsZero() || cp != c.lastSize:
		c.behindSince = now
	default:
		age = now.Sub(c.behindSince)
	}
	c.lastSize = cp
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.cpSize, prometheus.GaugeValue, float64(cp))
	ch <- prometheus.MustNewConstMetric(c.cpAge, prometheus.GaugeValue, age.Seconds())
}

// TokenFailure counts a refused token request (api.Observer).
func (g *Gateway) TokenFailure(reason string) { g.TokenFailures.WithLabelValues(reason).Inc() }

// RecordBytes counts record bytes in a direction (api.Observer).
func (g *Gateway) RecordBytes(direction string, n int64) {
	g.RecordBytesTotal.WithLabelValues(direction).Add(float64(n))
}
