package records

import (
	"context"
	"errors"
	"fmt"
)

// DefaultRotateBatch is how many data keys Rotate re-wraps per
// transaction.
const DefaultRotateBatch = 256

// maxRotatePasses bounds the passes Rotate makes over the records: a
// second pass only picks up records written under an older version while
// the first ran.
const maxRotatePasses = 3

// RotateOptions configure Rotate.
type RotateOptions struct {
	// BatchSize is the number of data keys re-wrapped per transaction
	// (DefaultRotateBatch).
	BatchSize int
	// Progress, if set, is called after every batch.
	Progress func(RotateProgress)
}

// RotateProgress reports a rotation under way.
type RotateProgress struct {
	Org       string
	To        int   // the version data keys are moved to
	Rewrapped int   // data keys moved so far by this call
	Failed    int   // data keys that could not be unwrapped so far
	Total     int64 // data keys not under To when the call started
}

// RotateResult reports a finished (or interrupted) rotation.
type RotateResult struct {
	Org       string
	To        int  // the current version, that every data key is now under
	Created   bool // this call created version To
	Rewrapped int  // data keys moved to To by this call
	// Failed lists records whose data key could not be unwrapped with the
	// version it is recorded under (tampered, or the key is missing); they
	// are left as they are.
	Failed []string
}

// Rotate makes a new KEK version current for org and re-wraps every data
// key of org's records under it, batch by batch; record content is never
// re-encrypted.
//
// Rotate is idempotent and resumable. If some of org's records are still
// under a version other than the current one — because an earlier
// rotation was interrupted, or because a new version was added to the
// environment — Rotate finishes moving them to the current version
// without creating another. Only when every data key is already under the
// current version does it create a new one, which needs keys to be a
// KeyCreator (ErrCannotCreateKey otherwise).
//
// If ctx is cancelled or a batch fails, Rotate returns the error with the
// progress so far; the batches already committed stay re-wrapped, and
// running Rotate again resumes. Data keys that do not unwrap are listed in
// the result and reported as an error wrapping the cause (ErrDecrypt or
// ErrNoKey) after all the others are done.
func Rotate(ctx context.Context, store RewrapStore, keys KeyProvider, org string, opts RotateOptions) (RotateResult, error) {
	res := RotateResult{Org: org}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultRotateBatch
	}
	to, err := keys.Current(ctx, org)
	if err != nil {
		return res, fmt.Errorf("records: rotate %s: %w", org, err)
	}
	counts, err := store.KeyVersions(ctx, org)
	if err != nil {
		return res, fmt.Errorf("records: rotate %s: %w", org, err)
	}
	stale := staleCount(counts, to.Version())
	if stale == 0 {
		kc, ok := keys.(KeyCreator)
		if !ok {
			return res, fmt.Errorf("records: rotate %s: every data key is under v%d already; add version %d (%s): %w",
				org, to.Version(), to.Version()+1, EnvKeyName(org, to.Version()+1), ErrCannotCreateKey)
		}
		if to, err = kc.Create(ctx, org); err != nil {
			return res, fmt.Errorf("records: rotate %s: create key: %w", org, err)
		}
		res.Created = true
		stale = staleCount(counts, to.Version())
	}
	res.To = to.Version()

	from := map[int]KEK{}
	var firstErr error
	failed := map[string]bool{}
	for pass := 0; pass < maxRotatePasses; pass++ {
		moved := 0
		after := ""
		for {
			if err := ctx.Err(); err != nil {
				return res, fmt.Errorf("records: rotate %s: %w", org, err)
			}
			batch, err := store.WrappedKeys(ctx, org, to.Version(), after, opts.BatchSize)
			if err != nil {
				return res, fmt.Errorf("records: rotate %s: %w", org, err)
			}
			if len(batch) == 0 {
				break
			}
			after = batch[len(batch)-1].ID
			rs := make([]Rewrapped, 0, len(batch))
			for _, w := range batch {
				nw, err := rewrapOne(ctx, keys, from, to, w)
				if err != nil {
					if !failed[w.ID] {
						failed[w.ID] = true
						res.Failed = append(res.Failed, w.ID)
						if firstErr == nil {
							firstErr = err
						}
					}
					continue
				}
				rs = append(rs, Rewrapped{ID: w.ID, FromVersion: w.KeyVersion, ToVersion: to.Version(), Wrapped: nw})
			}
			if len(rs) > 0 {
				n, err := store.Rewrap(ctx, rs)
				if err != nil {
					return res, fmt.Errorf("records: rotate %s: %w", org, err)
				}
				res.Rewrapped += n
				moved += n
			}
			if opts.Progress != nil {
				opts.Progress(RotateProgress{Org: org, To: to.Version(), Rewrapped: res.Rewrapped, Failed: len(res.Failed), Total: stale})
			}
		}
		if moved == 0 {
			break
		}
	}
	if firstErr != nil {
		return res, fmt.Errorf("records: rotate %s: %d data keys could not be re-wrapped (first %s): %w",
			org, len(res.Failed), res.Failed[0], firstErr)
	}
	return res, nil
}

// rewrapOne re-wraps one data key under to, loading the version it is
// under now (cached in from).
func rewrapOne(ctx context.Context, keys KeyProvider, from map[int]KEK, to KEK, w WrappedKey) ([]byte, error) {
	if !supportedFormat(w.Format) {
		return nil, fmt.Errorf("%w: unsupported format %d", ErrDecrypt, w.Format)
	}
	old, ok := from[w.KeyVersion]
	if !ok {
		k, err := keys.Key(ctx, to.Org(), w.KeyVersion)
		if err != nil {
			if errors.Is(err, ErrNoKey) {
				return nil, err
			}
			return nil, fmt.Errorf("load v%d: %w", w.KeyVersion, err)
		}
		from[w.KeyVersion], old = k, k
	}
	return rewrap(old, to, w.Format, w.ID, w.Wrapped)
}

func staleCount(counts map[int]int64, current int) int64 {
	var n int64
	for v, c := range counts {
		if v != current {
			n += c
		}
	}
	return n
}
