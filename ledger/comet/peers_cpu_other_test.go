//go:build !unix

package comet_test

import (
	"testing"
	"time"
)

// cpuTime is not measured here: the CPU per transaction reads 0.
func cpuTime(*testing.B) time.Duration { return 0 }
