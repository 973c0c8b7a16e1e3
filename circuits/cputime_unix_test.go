//go:build unix

package circuits_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the process has used so
// far: on a shared machine it is a steadier measure of a benchmark's work
// than wall time.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
