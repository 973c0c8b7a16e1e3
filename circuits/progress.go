package circuits

import (
	"fmt"
	"io"
	"time"
)

// step reports one long step on a progress writer (nil for silence):
// "compiling age … done (0.4s)".
type step struct {
	w     io.Writer
	start time.Time
}

func startStep(w io.Writer, format string, args ...any) step {
	if w != nil {
		fmt.Fprintf(w, format+" …", args...)
	}
	return step{w: w, start: time.Now()}
}

func (s step) done(err error) {
	if s.w == nil {
		return
	}
	if err != nil {
		fmt.Fprintln(s.w, " failed")
		return
	}
	fmt.Fprintf(s.w, " done (%.1fs)\n", time.Since(s.start).Seconds())
}
