// Package testscale scales test timeouts to the machine they run on, so
// that a test that waits for a condition (a block committed, a node caught
// up) does not fail on a loaded machine for no product reason. A timeout
// is the base multiplied by HEALTHGW_TEST_TIMEOUT_SCALE (default 1) and by
// the slowness measured once per process: how much longer than on an idle
// core a fixed piece of CPU work took. Timeouts bound waits for
// conditions; they are never assertions about speed.
package testscale

import (
	"crypto/sha256"
	"math"
	"os"
	"strconv"
	"sync"
	"time"
)

// EnvScale is the environment variable with an extra factor (a float).
const EnvScale = "HEALTHGW_TEST_TIMEOUT_SCALE"

// reference is how long probe takes on an idle, ordinary core; maxSlowness
// bounds the measured factor.
const (
	reference   = 20 * time.Millisecond
	maxSlowness = 10
)

var factor = sync.OnceValue(func() float64 { return envFactor(os.Getenv(EnvScale)) * Slowness() })

// envFactor parses the value of EnvScale: a positive finite float, else 1.
func envFactor(s string) float64 {
	if v, err := strconv.ParseFloat(s, 64); err == nil && v > 0 && !math.IsInf(v, 0) {
		return v
	}
	return 1
}

// Slowness is how many times longer than on an idle core a fixed CPU
// workload took here (at least 1, at most 10), measured once.
var Slowness = sync.OnceValue(func() float64 {
	// The best of three runs: a single unlucky descheduling does not count.
	best := time.Duration(math.MaxInt64)
	for range 3 {
		start := time.Now()
		probe()
		best = min(best, time.Since(start))
	}
	return min(max(float64(best)/float64(reference), 1), maxSlowness)
})

var sink [32]byte

// probe is a fixed amount of CPU work (~20 ms on an idle core).
func probe() {
	b := make([]byte, 1024)
	for range 8000 {
		sink = sha256.Sum256(b)
		b[0] = sink[0]
	}
}

// Timeout returns base scaled to this machine.
func Timeout(base time.Duration) time.Duration {
	return time.Duration(float64(base) * factor())
}
