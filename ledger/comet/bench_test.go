package comet_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthgw/healthgw/ledger/comet/comettest"
)

// BenchmarkAppend4Validators measures committed entries per second and
// commit latency (Append call to return: sign and seal to the four
// gateways, broadcast, block, commit on the submitting node) on four
// in-process validators, with concurrent
// appenders spread over the four nodes so that blocks fill, for two block
// intervals (timeout_commit). Each appender waits for its commit before
// the next append, so with long blocks throughput follows the number of
// appenders. Run with a fixed count, e.g.
//
//	go test -run '^$' -bench Append4 -benchtime 4000x ./ledger/comet/
func BenchmarkAppend4Validators(b *testing.B) {
	for _, bc := range []struct {
		timeoutCommit time.Duration
		appenders     int
	}{
		{100 * time.Millisecond, 256},
		{time.Second, 256},
		{time.Second, 1024},
	} {
		tc, appenders := bc.timeoutCommit, bc.appenders
		b.Run(fmt.Sprintf("timeout_commit=%v/appenders=%d", tc, appenders), func(b *testing.B) {
			net := comettest.NewNetwork(b, 4, comettest.Options{Gateways: true, TimeoutCommit: tc, AppendTimeout: time.Minute})
			// Warm up: the first block needs every peer connected.
			if _, err := net.Ledger(0).Append(b.Context(), entry(b, -1)); err != nil {
				b.Fatal(err)
			}
			startHeight := net.Log(0).Status().Height
			var next atomic.Int64
			lat := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			var failed atomic.Int64
			b.ResetTimer()
			start := time.Now()
			for w := range appenders {
				l := net.Ledger(w % 4)
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if _, err := l.Append(b.Context(), entry(b, int(i))); err != nil {
							failed.Add(1)
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if failed.Load() > 0 {
				return
			}
			blocks := net.Log(0).Status().Height - startHeight
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			if blocks > 0 {
				b.ReportMetric(float64(b.N)/float64(blocks), "entries/block")
			}
		})
	}
}
