package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultFollowInterval is how often a Follower polls the log for new
// entries (appended here, by another process or by another consortium
// node). A Follower that finds entries applies them all before it sleeps
// again, so its backlog stays within what a node keeps opened in memory.
const DefaultFollowInterval = 100 * time.Millisecond

// followBatch bounds how many entries one Apply call receives: each
// projection applies them in one transaction, and a Sync waits for at
// most one batch applied by another caller.
const followBatch = 2048

// Follower keeps projections up to date with a log, in order. Each batch
// of entries is read from the log once and applied to every projection
// behind it; batches are applied one at a time (under a lock held for one
// batch only, so that one long catch-up never holds up a short Sync for
// longer than a batch).
type Follower struct {
	log      Source
	appliers []Applier
	mu       sync.Mutex // serialises the application of a batch
}

// NewFollower returns a Follower that feeds appliers from log.
func NewFollower(log Source, appliers ...Applier) *Follower {
	return &Follower{log: log, appliers: appliers}
}

// Sync applies every entry below size to every projection before it
// returns. Handlers call Sync(ctx, index+1) after Append so that the effect
// of an acknowledged entry is visible to the very next request.
func (f *Follower) Sync(ctx context.Context, size uint64) error {
	for {
		done, err := f.step(ctx, size)
		if err != nil || done {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// SyncAll applies every durable entry.
func (f *Follower) SyncAll(ctx context.Context) error {
	_, err := f.syncAll(ctx)
	return err
}

// syncAll is SyncAll, reporting the log size it reached.
func (f *Follower) syncAll(ctx context.Context) (uint64, error) {
	n, err := f.log.Size(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger size: %w", err)
	}
	return n, f.Sync(ctx, n)
}

// step applies the next batch below size: the entries from the lowest
// projection's next index, read once, to each projection behind. done
// reports that every projection has reached size.
func (f *Follower) step(ctx context.Context, size uint64) (done bool, _ error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	nexts := make([]uint64, len(f.appliers))
	lo := size
	for i, a := range f.appliers {
		next, err := a.Next(ctx)
		if err != nil {
			return false, fmt.Errorf("projection %s: %w", a.Name(), err)
		}
		nexts[i], lo = next, min(lo, next)
	}
	if lo >= size {
		return true, nil
	}
	end := min(size, lo+followBatch)
	entries, err := f.log.Read(ctx, lo, end)
	if err != nil {
		return false, fmt.Errorf("read [%d,%d): %w", lo, end, err)
	}
	if len(entries) != int(end-lo) {
		return false, fmt.Errorf("read [%d,%d): %d entries", lo, end, len(entries))
	}
	for i, a := range f.appliers {
		next := nexts[i]
		if next >= end {
			continue
		}
		if err := a.Apply(ctx, next, entries[next-lo:]); err != nil {
			return false, fmt.Errorf("projection %s: apply [%d,%d): %w", a.Name(), next, end, err)
		}
	}
	return end >= size, nil
}

// Applied returns the index of the first entry some projection has not
// applied yet: every projection has applied every entry before it.
func (f *Follower) Applied(ctx context.Context) (uint64, error) {
	var lo uint64
	for i, a := range f.appliers {
		next, err := a.Next(ctx)
		if err != nil {
			return 0, fmt.Errorf("projection %s: %w", a.Name(), err)
		}
		if i == 0 || next < lo {
			lo = next
		}
	}
	return lo, nil
}

// Run follows the log in the background until ctx is done: every
// interval it applies every entry appended meanwhile (and, when that took
// a while, what was appended during it, without sleeping). Errors are
// logged and retried.
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
			f.drain(ctx, logger)
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
		f.drain(ctx, logger)
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// drain applies every durable entry, again as long as the log grew while
// it applied, so that a follower behind a fast appender does not sleep
// with a backlog. Errors are logged.
func (f *Follower) drain(ctx context.Context, logger *slog.Logger) {
	var reached uint64
	for {
		size, err := f.syncAll(ctx)
		if err != nil {
			if ctx.Err() == nil {
				logger.Warn("ledger follower", slog.String("err", err.Error()))
			}
			return
		}
		if size == reached {
			return
		}
		reached = size
		if n, err := f.log.Size(ctx); err != nil || n == size {
			return
		}
	}
}
