package comet

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/healthgw/healthgw/ledger"
)

// TestConsensusFailureMarksHalt: CometBFT's consensus failure message
// (logged by the consensus state when it stops on a panic, such as a
// wrong application hash) is logged at Error, without the stack, and
// marks the node halted with the reason; routine CometBFT errors stay at
// Warn and do not.
func TestConsensusFailureMarksHalt(t *testing.T) {
	var buf bytes.Buffer
	var reasons []string
	h := &haltState{onHalt: func(r string) { reasons = append(reasons, r) }}
	l := newCometLogger(slog.New(slog.NewTextHandler(&buf, nil)), h).With("module", "consensus")

	l.Error("Stopping peer for error", "err", "EOF")
	if err := h.err(); err != nil {
		t.Fatalf("after a routine error: %v", err)
	}
	if !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("routine error not at Warn: %s", buf.String())
	}
	buf.Reset()

	cause := "+2/3 committed an invalid block: wrong Block.Header.AppHash.  Expected 01, got 02"
	l.Error("CONSENSUS FAILURE!!!", "err", cause, "stack", "goroutine 1 [running]")
	l.Error("CONSENSUS FAILURE!!!", "err", "second")
	out := buf.String()
	if !strings.Contains(out, "level=ERROR") || strings.Contains(out, "goroutine 1") {
		t.Errorf("consensus failure logged as %q, want Error without the stack", out)
	}
	err := h.err()
	if !errors.Is(err, ErrHalted) || !errors.Is(err, ledger.ErrUnavailable) || !strings.Contains(err.Error(), "wrong Block.Header.AppHash") {
		t.Fatalf("halt error = %v, want ErrHalted (ledger.ErrUnavailable) with the cause", err)
	}
	if len(reasons) != 1 {
		t.Errorf("onHalt called %d times, want once", len(reasons))
	}
	// A halted Log neither serves nor appends.
	lg := &Log{halt: h, done: make(chan struct{})}
	for name, err := range map[string]error{
		"Ready": lg.Ready(t.Context()),
		"Size":  func() error { _, err := lg.Size(t.Context()); return err }(),
		"Entries": func() error {
			_, err := lg.Entries(t.Context(), 0, 1)
			return err
		}(),
		"Checkpoint": func() error { _, err := lg.Checkpoint(t.Context()); return err }(),
		"Head":       func() error { _, err := lg.Head(t.Context()); return err }(),
		"Append":     func() error { _, err := lg.AppendEnvelope(t.Context(), ledger.Envelope{}); return err }(),
		"Envelopes": func() error {
			_, err := lg.Envelopes(t.Context(), 0, 1)
			return err
		}(),
	} {
		if !errors.Is(err, ErrHalted) {
			t.Errorf("%s on a halted node = %v, want ErrHalted", name, err)
		}
	}
}
