package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestConsensusCollector(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var st ConsensusStatus
	c := NewConsensusCollector(func() ConsensusStatus { return st })
	c.SetClock(func() time.Time { return now })
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	names := []string{"healthgw_comet_height", "healthgw_comet_peers", "healthgw_comet_last_block_age_seconds", "healthgw_comet_catching_up"}
	const help = `# HELP healthgw_comet_catching_up 1 while this consortium node is syncing blocks from its peers.
# TYPE healthgw_comet_catching_up gauge
healthgw_comet_catching_up %s
# HELP healthgw_comet_height Last block height this consortium node committed.
# TYPE healthgw_comet_height gauge
healthgw_comet_height %s
`
	const peers = `# HELP healthgw_comet_peers Peers this consortium node is connected to.
# TYPE healthgw_comet_peers gauge
healthgw_comet_peers %s
`
	const age = `# HELP healthgw_comet_last_block_age_seconds Seconds since the time of the last committed block (absent before the first block); idle consortia make a block every 30 s.
# TYPE healthgw_comet_last_block_age_seconds gauge
healthgw_comet_last_block_age_seconds %s
`
	for _, tc := range []struct {
		name string
		st   ConsensusStatus
		want string
	}{
		{"before the first block: no age", ConsensusStatus{CatchingUp: true},
			sprintf(help, "1", "0") + sprintf(peers, "0")},
		{"committing", ConsensusStatus{Height: 42, Peers: 3, LastBlockTime: now.Add(-1500 * time.Millisecond)},
			sprintf(help, "0", "42") + sprintf(age, "1.5") + sprintf(peers, "3")},
		{"stalled and alone", ConsensusStatus{Height: 42, LastBlockTime: now.Add(-5 * time.Minute)},
			sprintf(help, "0", "42") + sprintf(age, "300") + sprintf(peers, "0")},
		{"block time ahead of this clock", ConsensusStatus{Height: 43, Peers: 1, LastBlockTime: now.Add(time.Second)},
			sprintf(help, "0", "43") + sprintf(age, "0") + sprintf(peers, "1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st = tc.st
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tc.want), names...); err != nil {
				t.Error(err)
			}
		})
	}
}
