package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// Source is a log's storage, read directly (gormlog.OpenReadOnly).
type Source interface {
	Size(ctx context.Context) (uint64, error)
	Entries(ctx context.Context, start, end uint64) ([][]byte, error)
	Checkpoint(ctx context.Context) ([]byte, error)
	// ReadHashes reads the stored tree hashes (tlog storage indexes).
	tlog.HashReader
}

// checkpointLister is implemented by sources that keep every checkpoint
// (gormlog): Local then checks all of them.
type checkpointLister interface {
	Checkpoints(ctx context.Context, from, to uint64, limit int) ([]uint64, error)
	CheckpointAt(ctx context.Context, size uint64) ([]byte, error)
}

// contextHashReader binds hash reads to ctx (gormlog).
type contextHashReader interface {
	HashReader(ctx context.Context) tlog.HashReader
}

// localChunk is how many entries Local reads at a time.
const localChunk = 1024

// checkpointPage is how many stored checkpoint sizes Local lists at once.
const checkpointPage = 4096

// Local audits a log's storage: every entry is replayed, every stored tree
// hash is compared with the recomputed one, and every stored checkpoint
// (or, if the source does not keep them, the latest) must be signed (when
// o.Verifier is set) and match the recomputed root at its size.
func Local(ctx context.Context, src Source, o Options) (*Result, error) {
	hr := tlog.HashReader(src)
	if c, ok := src.(contextHashReader); ok {
		hr = c.HashReader(ctx)
	}
	size, err := src.Size(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	raw, err := src.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: latest checkpoint: %w", err)
	}
	latest, err := openCheckpoint(raw, o, "latest checkpoint")
	if err != nil {
		return nil, err
	}
	res := &Result{Checkpoint: latest, Signed: o.Verifier != nil}
	if latest.Size > size {
		return nil, fail(KindMissing, int64(size), nil,
			"the latest checkpoint covers %d entries but the log holds %d: entries [%d, %d) are gone",
			latest.Size, size, size, latest.Size)
	}
	// Checkpoints to check, in size order, as the replay reaches them.
	type target struct {
		size uint64
		c    ledger.Checkpoint
		what string
	}
	var targets []target
	if o.Trusted != nil {
		tc, err := openCheckpoint(o.Trusted, o, "trusted checkpoint")
		if err != nil {
			return nil, err
		}
		res.Trusted = &tc
		if tc.Size > size {
			return nil, fail(KindMissing, int64(size), nil,
				"the log holds %d entries but the trusted checkpoint covers %d: entries [%d, %d) are gone",
				size, tc.Size, size, tc.Size)
		}
		targets = append(targets, target{tc.Size, tc, "trusted checkpoint"})
	}
	targets = append(targets, target{latest.Size, latest, "latest checkpoint"})
	lister, _ := src.(checkpointLister)
	var stored []uint64 // stored checkpoint sizes not yet listed into targets
	nextList := uint64(0)
	listMore := func() error {
		if lister == nil || nextList > latest.Size {
			return nil
		}
		sizes, err := lister.Checkpoints(ctx, nextList, latest.Size, checkpointPage)
		if err != nil {
			return fmt.Errorf("verify: list checkpoints: %w", err)
		}
		if len(sizes) < checkpointPage {
			nextList = latest.Size + 1
		} else {
			nextList = sizes[len(sizes)-1] + 1
		}
		stored = append(stored, sizes...)
		return nil
	}
	if err := listMore(); err != nil {
		return nil, err
	}
	goodUpTo := uint64(0) // entries below this matched a signed root
	rp := newReplay()
	// checkAt checks every checkpoint of the size replayed so far.
	checkAt := func() error {
		at := rp.size()
		for len(stored) > 0 && stored[0] <= at {
			s := stored[0]
			stored = stored[1:]
			if len(stored) == 0 {
				if err := listMore(); err != nil {
					return err
				}
			}
			raw, err := lister.CheckpointAt(ctx, s)
			if err != nil {
				return fmt.Errorf("verify: checkpoint %d: %w", s, err)
			}
			what := fmt.Sprintf("stored checkpoint of size %d", s)
			c, err := openCheckpoint(raw, o, what)
			if err != nil {
				return err
			}
			if c.Size != s {
				return fail(KindSignature, -1, nil, "%s claims size %d", what, c.Size)
			}
			if err := rp.checkRoot(c, what, goodUpTo); err != nil {
				return err
			}
			res.Checkpoints++
			goodUpTo = at
		}
		for _, t := range targets {
			if t.size != at {
				continue
			}
			if t.what == "trusted checkpoint" {
				if root, err := rp.root(); err != nil || root != t.c.Hash {
					return fail(KindConsistency, -1, err,
						"the log is not an extension of the trusted checkpoint: its tree of size %d has another root", at)
				}
				continue
			}
			if err := rp.checkRoot(t.c, t.what, goodUpTo); err != nil {
				return err
			}
			goodUpTo = at
		}
		return nil
	}
	// nextStop is the next size at which a checkpoint is checked.
	nextStop := func() uint64 {
		at, next := rp.size(), size
		if len(stored) > 0 && stored[0] > at {
			next = min(next, stored[0])
		}
		for _, t := range targets {
			if t.size > at {
				next = min(next, t.size)
			}
		}
		return next
	}
	if err := checkAt(); err != nil {
		return nil, err
	}
	for lo := uint64(0); lo < size; {
		// Chunks end at checkpoint sizes, so that a stored hash that does
		// not match (which names the exact entry) is found before a root
		// that does not match (which names a range).
		hi := min(lo+localChunk, nextStop())
		entries, err := src.Entries(ctx, lo, hi)
		if err != nil {
			if errors.Is(err, ledger.ErrNotFound) {
				return nil, firstMissingLocal(ctx, src, lo, hi)
			}
			return nil, fmt.Errorf("verify: entries [%d, %d): %w", lo, hi, err)
		}
		if uint64(len(entries)) != hi-lo {
			return nil, fail(KindMissing, int64(lo)+int64(len(entries)), nil, "entry missing")
		}
		var xs []int64
		var want []tlog.Hash
		visit := func(x int64, h tlog.Hash) {
			xs = append(xs, x)
			want = append(want, h)
		}
		for _, e := range entries {
			if _, err := rp.add(e, visit); err != nil {
				return nil, err
			}
		}
		got, err := hr.ReadHashes(xs)
		if err != nil {
			return nil, locateUnreadable(hr, xs, err)
		}
		for i := range xs {
			if got[i] != want[i] {
				return nil, hashMismatch(xs[i])
			}
		}
		if err := checkAt(); err != nil {
			return nil, err
		}
		if o.Progress != nil {
			o.Progress(hi, size)
		}
		lo = hi
	}
	res.Entries = rp.size()
	res.Types = rp.types
	return res, nil
}

// recordOf returns the entry whose append stored hash x.
func recordOf(x int64) (record int64, level int) {
	level, n := tlog.SplitStoredHashIndex(x)
	return (n+1)<<uint(level) - 1, level
}

func hashMismatch(x int64) error {
	rec, level := recordOf(x)
	if level == 0 {
		return fail(KindHash, rec, nil, "the stored leaf hash does not match the entry's bytes (the entry or its hash was edited)")
	}
	first := rec + 1 - 1<<uint(level)
	return fail(KindHash, rec, nil, "the stored hash of the subtree over entries [%d, %d] does not match them", first, rec)
}

// locateUnreadable finds the first stored hash that cannot be read.
func locateUnreadable(hr tlog.HashReader, xs []int64, cause error) error {
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	for _, x := range sorted {
		if _, err := hr.ReadHashes([]int64{x}); err != nil {
			rec, _ := recordOf(x)
			return fail(KindHash, rec, err, "a stored hash cannot be read")
		}
	}
	return fmt.Errorf("verify: read stored hashes: %w", cause)
}

// firstMissingLocal bisects [lo, hi) for the first entry the source
// cannot return.
func firstMissingLocal(ctx context.Context, src Source, lo, hi uint64) error {
	good, bad := lo, hi // [lo, good) reads; [lo, bad) does not
	for bad-good > 1 {
		mid := (good + bad) / 2
		if _, err := src.Entries(ctx, lo, mid); err == nil {
			good = mid
		} else if errors.Is(err, ledger.ErrNotFound) {
			bad = mid
		} else {
			return fmt.Errorf("verify: entries [%d, %d): %w", lo, mid, err)
		}
	}
	return fail(KindMissing, int64(good), nil, "the entry is missing from storage although the log's size covers it")
}
