package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultFollowInterval is how often a Follower polls the log for entries
// appended elsewhere (by another process or another consortium node).
const DefaultFollowInterval = 200 * time.Millisecond

// followBatch bounds how many entries one Apply call receives.
const followBatch = 1024

// Follower keeps projections up to date with a log, in order.
type Follower struct {
	log      Source
	appliers []Applier
	mu       sync.Mutex // serialises catch-up
}

// NewFollower returns a Follower that feeds appliers from log.
func NewFollower(log Source, appliers ...Applier) *Follower {
	return &Follower{log: log, appliers: appliers}
}

// Sync applies every entry below size to every projection before it
// returns. Handlers call Sync(ctx, index+1) after Append so that the effect
// of an acknowledged entry is visible to the very next request.
func (f *Follower) Sync(ctx context.Context, size uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.appliers {
		if err := f.catchUp(ctx, a, size); err != nil {
			return err
		}
	}
	return nil
}

// SyncAll applies every durable entry.
func (f *Follower) SyncAll(ctx context.Context) error {
	n, err := f.log.Size(ctx)
	if err != nil {
		return fmt.Errorf("ledger size: %w", err)
	}
	return f.Sync(ctx, n)
}

func (f *Follower) catchUp(ctx context.Context, a Applier, size uint64) error {
	next, err := a.Next(ctx)
	if err != nil {
		return fmt.Errorf("projection %s: %w", a.Name(), err)
	}
	for next < size {
		end := min(size, next+followBatch)
		entries, err := f.log.Read(ctx, next, end)
		if err != nil {
			return fmt.Errorf("projection %s: read [%d,%d): %w", a.Name(), next, end, err)
		}
		if err := a.Apply(ctx, next, entries); err != nil {
			return fmt.Errorf("projection %s: apply [%d,%d): %w", a.Name(), next, end, err)
		}
		next = end
	}
	return nil
}

// Run polls the log every interval and applies new entries until ctx is
// done. Errors are logged and retried.
func (f *Follower) Run(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	if interval <= 0 {
		interval = DefaultFollowInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := f.SyncAll(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("ledger follower", slog.String("err", err.Error()))
			}
		}
	}
}

// Watch applies new entries each time next's channel is closed (a
// backend's commit notification, such as comet.Log.Committed) until ctx
// is done: other nodes' entries are projected as soon as this node
// commits them, without polling. Errors are logged and retried at the
// next notification.
func (f *Follower) Watch(ctx context.Context, next func() <-chan struct{}, logger *slog.Logger) {
	for {
		ch := next() // before syncing, so that no commit is missed
		if err := f.SyncAll(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("ledger follower", slog.String("err", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}
