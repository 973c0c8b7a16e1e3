package comet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	cmtlog "github.com/cometbft/cometbft/libs/log"

	"github.com/healthgw/healthgw/ledger"
)

// slogAdapter routes CometBFT's logger to slog. CometBFT logs every block
// at Info; those messages go to slog at Debug so that a gateway at Info
// level shows only CometBFT's errors. CometBFT's Error messages include
// routine ones (a peer that went away), so they go to slog at Warn.
//
// CometBFT reports a consensus failure (a panic in the consensus state
// machine, such as a block whose application hash differs from this
// node's) only to its logger, and then stops consensus while the process
// keeps running. The adapter recognises those messages, logs them at
// Error and marks halt, which makes the node not ready and refuse writes.
type slogAdapter struct {
	l    *slog.Logger
	halt *haltState
}

// haltState records that consensus stopped on this node. It is shared by
// every logger derived from one adapter.
type haltState struct {
	reason atomic.Pointer[string]
	// onHalt, if set, is called once, with the first reason.
	onHalt func(reason string)
}

// set records reason (the first one wins) and reports whether it was
// the first.
func (h *haltState) set(reason string) {
	if h == nil {
		return
	}
	if h.reason.CompareAndSwap(nil, &reason) && h.onHalt != nil {
		h.onHalt(reason)
	}
}

// err returns ErrHalted with the reason, or nil while consensus runs.
func (h *haltState) err() error {
	if h == nil {
		return nil
	}
	if r := h.reason.Load(); r != nil {
		return &HaltError{Reason: *r}
	}
	return nil
}

// ErrHalted: consensus stopped on this node (a consensus failure, such as
// a wrong application hash). The node serves neither entries nor
// checkpoints and accepts no writes until an operator repairs it.
var ErrHalted = errors.New("comet: consensus halted on this node")

// HaltError is ErrHalted with CometBFT's reason.
type HaltError struct{ Reason string }

func (e *HaltError) Error() string { return ErrHalted.Error() + ": " + e.Reason }

// Is makes a HaltError match ErrHalted, ledger.ErrHalted and
// ledger.ErrUnavailable.
func (e *HaltError) Is(target error) bool {
	return target == ErrHalted || target == ledger.ErrHalted || target == ledger.ErrUnavailable
}

// consensusHalting reports whether a CometBFT error message means that
// consensus stopped on this node.
func consensusHalting(msg string) bool {
	return strings.HasPrefix(msg, "CONSENSUS FAILURE")
}

var _ cmtlog.Logger = slogAdapter{}

func newCometLogger(l *slog.Logger, halt *haltState) cmtlog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return slogAdapter{l: l.With(slog.String("component", "cometbft")), halt: halt}
}

func (a slogAdapter) log(level slog.Level, msg string, keyvals []any) {
	ctx := context.Background()
	if !a.l.Enabled(ctx, level) {
		return
	}
	a.l.Log(ctx, level, msg, attrs(keyvals)...)
}

func (a slogAdapter) Debug(msg string, keyvals ...any) { a.log(slog.LevelDebug-4, msg, keyvals) }
func (a slogAdapter) Info(msg string, keyvals ...any)  { a.log(slog.LevelDebug, msg, keyvals) }
func (a slogAdapter) Error(msg string, keyvals ...any) {
	if consensusHalting(msg) {
		a.log(slog.LevelError, msg, dropStack(keyvals))
		a.halt.set(haltReason(msg, keyvals))
		return
	}
	a.log(slog.LevelWarn, msg, keyvals)
}

func (a slogAdapter) With(keyvals ...any) cmtlog.Logger {
	return slogAdapter{l: a.l.With(attrs(keyvals)...), halt: a.halt}
}

// haltReason is the message and its "err" value.
func haltReason(msg string, keyvals []any) string {
	for i := 0; i+1 < len(keyvals); i += 2 {
		if fmt.Sprint(keyvals[i]) == "err" {
			return fmt.Sprintf("%s %v", strings.TrimRight(msg, "!"), keyvals[i+1])
		}
	}
	return strings.TrimRight(msg, "!")
}

// dropStack leaves out the goroutine stack CometBFT attaches, which is
// noise at Error in an operator's log (it stays at Debug).
func dropStack(keyvals []any) []any {
	out := make([]any, 0, len(keyvals))
	for i := 0; i+1 < len(keyvals); i += 2 {
		if fmt.Sprint(keyvals[i]) != "stack" {
			out = append(out, keyvals[i], keyvals[i+1])
		}
	}
	return out
}

// attrs turns CometBFT's alternating key/value list into slog attributes.
// Values are formatted lazily by slog; values such as errors and byte
// strings are rendered with %v.
func attrs(keyvals []any) []any {
	out := make([]any, 0, (len(keyvals)+1)/2)
	for i := 0; i < len(keyvals); i += 2 {
		key := fmt.Sprint(keyvals[i])
		if i+1 >= len(keyvals) {
			out = append(out, slog.String(key, "(missing)"))
			break
		}
		switch v := keyvals[i+1].(type) {
		case string:
			out = append(out, slog.String(key, v))
		case int:
			out = append(out, slog.Int(key, v))
		case int64:
			out = append(out, slog.Int64(key, v))
		case fmt.Stringer:
			out = append(out, slog.Any(key, v))
		default:
			out = append(out, slog.String(key, fmt.Sprintf("%v", v)))
		}
	}
	return out
}
