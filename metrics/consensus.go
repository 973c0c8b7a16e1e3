package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConsensusStatus is what the consensus collector reads of the node of a
// replicated ledger (ledger/comet's Log.Status, adapted in cmd).
type ConsensusStatus struct {
	// Height is the last block this node committed (0 before the first).
	Height int64
	// Peers is the number of connected peers.
	Peers int
	// LastBlockTime is the time of the last committed block (zero before
	// the first).
	LastBlockTime time.Time
	// CatchingUp is true while the node is syncing blocks from its peers.
	CatchingUp bool
}

// ConsensusSource returns the node's current status. It must be cheap and
// safe to call from a scrape at any time (also while the node stops).
type ConsensusSource func() ConsensusStatus

// ConsensusCollector exports, at each scrape, a consortium node's height,
// peer count, the age of its last block and whether it is catching up.
// The node makes a heartbeat block every 30 s when idle (comet's
// consortium defaults), so a last-block age well above that means the
// consortium is not committing: no quorum, or this node is cut off.
type ConsensusCollector struct {
	src ConsensusSource
	now func() time.Time

	height, peers, age, catchingUp *prometheus.Desc
}

// NewConsensusCollector reads src at each scrape; register it on a
// registry.
func NewConsensusCollector(src ConsensusSource) *ConsensusCollector {
	return &ConsensusCollector{
		src: src, now: time.Now,
		height:     prometheus.NewDesc("healthgw_comet_height", "Last block height this consortium node committed.", nil, nil),
		peers:      prometheus.NewDesc("healthgw_comet_peers", "Peers this consortium node is connected to.", nil, nil),
		age:        prometheus.NewDesc("healthgw_comet_last_block_age_seconds", "Seconds since the time of the last committed block (absent before the first block); idle consortia make a block every 30 s.", nil, nil),
		catchingUp: prometheus.NewDesc("healthgw_comet_catching_up", "1 while this consortium node is syncing blocks from its peers.", nil, nil),
	}
}

// SetClock replaces time.Now (tests).
func (c *ConsensusCollector) SetClock(now func() time.Time) { c.now = now }

// Describe implements prometheus.Collector.
func (c *ConsensusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.height
	ch <- c.peers
	ch <- c.age
	ch <- c.catchingUp
}

// Collect implements prometheus.Collector.
func (c *ConsensusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src()
	ch <- prometheus.MustNewConstMetric(c.height, prometheus.GaugeValue, float64(st.Height))
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(st.Peers))
	if !st.LastBlockTime.IsZero() {
		// Block times are the consortium's (BFT time); a clock skewed
		// behind them reads as age 0, not negative.
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, max(0, c.now().Sub(st.LastBlockTime).Seconds()))
	}
	catching := 0.0
	if st.CatchingUp {
		catching = 1
	}
	ch <- prometheus.MustNewConstMetric(c.catchingUp, prometheus.GaugeValue, catching)
}
