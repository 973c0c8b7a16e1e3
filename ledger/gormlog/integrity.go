package gormlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/verify"
)

// ErrInconsistent is returned (wrapped, with ErrCorrupt) by Open when the
// stored tree does not match the log's latest signed checkpoint, and by
// Append, WaitCheckpoint and Ready once the log refused to sign a
// checkpoint that is not consistent with its previous one, or that would
// cover an entry its node's check refuses (see Log.Vouch). errors.As with
// a *verify.Failure (or, for a refused entry, a *ledger.VerifyError) names
// the first bad entry.
var ErrInconsistent = errors.New("gormlog: stored log is not consistent with its signed checkpoints")

// ErrOriginMismatch is returned by Open when Options.Origin differs from
// the origin the log was created with. The origin never changes.
var ErrOriginMismatch = errors.New("gormlog: the log was created with another origin")

// resignVerifier verifies signatures made by an Ed25519 note signer by
// signing again: Ed25519 signatures are deterministic (RFC 8032), so the
// signer's own signature of msg is the only one it would make. It serves
// when Options.Verifier is not given.
type resignVerifier struct{ s note.Signer }

func (v resignVerifier) Name() string    { return v.s.Name() }
func (v resignVerifier) KeyHash() uint32 { return v.s.KeyHash() }
func (v resignVerifier) Verify(msg, sig []byte) bool {
	want, err := v.s.Sign(msg)
	return err == nil && bytes.Equal(want, sig)
}

// resolveOrigin fixes the log's origin: the one stored with the log, or,
// for a new log, Options.Origin (default: the signer's key name). A log
// created before origins were stored adopts its latest checkpoint's.
func (l *Log) resolveOrigin(ctx context.Context, want string) error {
	stored, err := l.storedOrigin(ctx)
	if err != nil {
		return err
	}
	if stored == "" {
		stored = want
		if stored == "" && l.signer != nil {
			stored = l.signer.Name()
		}
		if cp, err := l.latestCheckpoint(ctx); err == nil {
			c, err := ledger.ParseCheckpoint(cp.Note)
			if err != nil {
				return fmt.Errorf("%w: %w: latest checkpoint: %v", ErrCorrupt, ErrInconsistent, err)
			}
			stored = c.Origin // verified by the start-up check
		} else if !errors.Is(err, ledger.ErrNotFound) {
			return err
		}
		if stored == "" {
			return errors.New("gormlog: the log has no origin: set Options.Origin or Options.Signer")
		}
		if err := l.db.WithContext(ctx).Exec("UPDATE ledger_head SET origin = ? WHERE id = ? AND origin = ''", stored, headID).Error; err != nil {
			return fmt.Errorf("store ledger origin: %w", err)
		}
		if stored, err = l.storedOrigin(ctx); err != nil { // another process may have won
			return err
		}
	}
	if want != "" && want != stored {
		return fmt.Errorf("%w: it is %q, not %q (the origin is chosen when the log is created)", ErrOriginMismatch, stored, want)
	}
	l.origin = stored
	return nil
}

func (l *Log) storedOrigin(ctx context.Context) (string, error) {
	var origins []string
	if err := l.db.WithContext(ctx).Raw("SELECT origin FROM ledger_head WHERE id = ?", headID).Scan(&origins).Error; err != nil {
		return "", fmt.Errorf("read ledger origin: %w", err)
	}
	if len(origins) != 1 {
		return "", fmt.Errorf("read ledger origin: %w: no head row", ErrCorrupt)
	}
	return origins[0], nil
}

// checkStored replays the stored log and checks it against every stored
// checkpoint, signed with the log's own key for its origin.
func (l *Log) checkStored(ctx context.Context) error {
	_, err := verify.Local(ctx, l, verify.Options{Verifier: l.verifier, Origin: l.origin})
	var f *verify.Failure
	if errors.As(err, &f) {
		return fmt.Errorf("%w: %w: %w", ErrCorrupt, ErrInconsistent, err)
	}
	if err != nil {
		return fmt.Errorf("check stored log: %w", err)
	}
	return nil
}

// checkConsistent proves that the tree of size with root extends the
// latest signed checkpoint prev (which must verify with the log's own
// key): the log never signs a fork of itself.
func (l *Log) checkConsistent(ctx context.Context, prev checkpointRow, size uint64, root ledger.Checkpoint) error {
	old, err := ledger.OpenCheckpoint(prev.Note, l.verifier, l.origin)
	if err != nil {
		return fmt.Errorf("previous checkpoint (size %d): %w", prev.Size, err)
	}
	if old.Size != uint64(prev.Size) || old.Size > size {
		return fmt.Errorf("previous checkpoint claims size %d, stored as %d, log size %d", old.Size, prev.Size, size)
	}
	if old.Size == 0 || old.Size == size {
		return ledger.VerifyConsistency(old, root, nil)
	}
	p, err := ledger.ConsistencyProof(ctx, l.storedReader(ctx), old.Size, size)
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ledger.ErrNotFound) {
		return &transientError{err}
	}
	if err != nil {
		return err
	}
	return ledger.VerifyConsistency(old, root, p)
}

// setFault records that the log refused to sign: it is no longer ready
// and accepts no appends until an operator investigates.
func (l *Log) setFault(err error) {
	err = fmt.Errorf("%w: %w", ErrInconsistent, err)
	if l.fault.CompareAndSwap(nil, &err) {
		l.logger.Error("ledger refuses to sign a checkpoint (the tree is not consistent with the previous one, or an entry fails its checks); the gateway is not ready",
			slog.String("origin", l.origin), slog.String("err", err.Error()))
	}
}

// Ready reports whether the log can serve and append: an error once it
// refused to sign an inconsistent checkpoint (or its database is down).
func (l *Log) Ready(ctx context.Context) error {
	if p := l.fault.Load(); p != nil {
		return *p
	}
	_, err := l.latestCheckpoint(ctx)
	return err
}

func (l *Log) faultErr() error {
	if p := l.fault.Load(); p != nil {
		return fmt.Errorf("%w: %w", ledger.ErrUnavailable, *p)
	}
	return nil
}

// StoredHashCounts returns how many tree hashes the rows of entries
// [start, end) hold (verify.Local checks that each holds exactly those its
// index completes).
func (l *Log) StoredHashCounts(ctx context.Context, start, end uint64) ([]int, error) {
	rows, err := l.db.WithContext(ctx).
		Raw("SELECT idx, length(hashes) FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx", int64(start), int64(end)).
		Rows()
	if err != nil {
		return nil, fmt.Errorf("read hash counts: %w", err)
	}
	defer rows.Close()
	out := make([]int, 0, end-start)
	for rows.Next() {
		var idx, n int64
		if err := rows.Scan(&idx, &n); err != nil {
			return nil, fmt.Errorf("read hash counts: %w", err)
		}
		if uint64(idx) != start+uint64(len(out)) {
			return nil, missingEntry(start + uint64(len(out)))
		}
		if n%32 != 0 {
			n = -1
		}
		out = append(out, int(n/32))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read hash counts: %w", err)
	}
	return out, nil
}

// transientError is a failure to read the stored tree (the database is
// down), not evidence against it.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// storedReader reads stored hashes from the database, bypassing the
// cache (publish: a hash edited in the database under the running log is
// then seen before anything is signed).
func (l *Log) storedReader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(xs []int64) ([]tlog.Hash, error) {
		for _, x := range xs {
			if x < 0 {
				return nil, fmt.Errorf("read hash %d: %w", x, ledger.ErrInvalidRange)
			}
		}
		got, err := loadStored(ctx, l.db, xs)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(xs))
		for i, x := range xs {
			out[i] = got[x]
		}
		return out, nil
	})
}
