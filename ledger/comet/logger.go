package comet

import (
	"context"
	"fmt"
	"log/slog"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// slogAdapter routes CometBFT's logger to slog. CometBFT logs every block
// at Info; those messages go to slog at Debug so that a gateway at Info
// level shows only CometBFT's errors. CometBFT's Error messages include
// routine ones (a peer that went away), so they go to slog at Warn.
type slogAdapter struct {
	l *slog.Logger
}

var _ cmtlog.Logger = slogAdapter{}

func newCometLogger(l *slog.Logger) cmtlog.Logger {
	if l == nil {
		return cmtlog.NewNopLogger()
	}
	return slogAdapter{l: l.With(slog.String("component", "cometbft"))}
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
func (a slogAdapter) Error(msg string, keyvals ...any) { a.log(slog.LevelWarn, msg, keyvals) }

func (a slogAdapter) With(keyvals ...any) cmtlog.Logger {
	return slogAdapter{l: a.l.With(attrs(keyvals)...)}
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
