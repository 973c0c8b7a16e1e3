package circuits

import (
	"fmt"
	"io"
	"time"
)

// Step reports one long step on a progress writer (nil for silence):
// "compiling age … done (0.4s)".
type Step struct {
	w     io.Writer
	start time.Time
}

// StartStep prints the step's description and starts its clock.
func StartStep(w io.Writer, format string, args ...any) Step {
	if w != nil {
		fmt.Fprintf(w, format+" …", args...)
	}
	return Step{w: w, start: time.Now()}
}

// Done ends the step: "done (1.2s)" or "failed".
func (s Step) Done(err error) {
	if s.w == nil {
		return
	}
	if err != nil {
		fmt.Fprintln(s.w, " failed")
		return
	}
	fmt.Fprintf(s.w, " done (%.1fs)\n", time.Since(s.start).Seconds())
}
