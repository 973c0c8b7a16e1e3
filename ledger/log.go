package ledger

import (
	"context"
	"errors"

	"golang.org/x/mod/sumdb/tlog"
)

// Errors of the Log contract. Backends wrap these; callers inspect them with
// errors.Is.
var (
	// ErrNotFound: the index or tree size is beyond the log's current size.
	ErrNotFound = errors.New("ledger: not found")
	// ErrInvalidRange: a proof was asked for with from > to, index >= size
	// or similar.
	ErrInvalidRange = errors.New("ledger: invalid range")
	// ErrUnavailable: the backend cannot append now (closed, no quorum,
	// timed out). Nothing was acknowledged.
	ErrUnavailable = errors.New("ledger: unavailable")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("ledger: closed")
	// ErrHalted: this node stopped following the consortium (a consensus
	// failure such as a wrong application hash). It serves no entries and
	// accepts no writes until its operator repairs it. Backends' halt
	// errors match ErrUnavailable as well.
	ErrHalted = errors.New("ledger: consensus halted on this node")
)

// Appender appends entries.
type Appender interface {
	// Append adds e to the log and returns its index.
	//
	// Append MUST NOT return an index before the entry, its leaf hash and
	// every tree hash it completes are durable: once Append returns nil, a
	// crash at any point MUST NOT lose the entry. Append MUST set Time
	// (the log's clock, or the block time) in UTC and MUST ignore the
	// caller's. Append MUST return an error, and MUST NOT have made the
	// entry visible, if the entry does not encode (see Encode). Indices
	// MUST be assigned densely from 0, in the order entries become
	// durable, even when several processes or nodes append. After Close,
	// Append MUST return ErrClosed. An Append that returns an error other
	// than an encoding error MAY still have appended the entry (its
	// context ended after it was queued); it MUST NOT be appended twice.
	Append(ctx context.Context, e Entry) (uint64, error)
}

// Reader reads entries in index order.
type Reader interface {
	// Size returns the number of durable entries. It MUST be monotonic.
	Size(ctx context.Context) (uint64, error)
	// Entries returns the canonical encodings of entries [start, end),
	// byte for byte as appended. It MUST return ErrNotFound if end > Size
	// and an error if start > end.
	Entries(ctx context.Context, start, end uint64) ([][]byte, error)
}

// Prover serves proofs and checkpoints.
type Prover interface {
	// Checkpoint returns the latest signed checkpoint (a C2SP signed note,
	// see SignCheckpoint). Its size MUST NOT exceed Size, every entry it
	// covers MUST be durable, and its root MUST be the RFC 6962 root of
	// the first size entries. A new checkpoint MUST be published at least
	// once a second while the log grows. It returns ErrNotFound only if
	// no checkpoint was ever published.
	Checkpoint(ctx context.Context) ([]byte, error)
	// HashReader reads the log's stored hashes (tlog storage indexes, see
	// tlog.StoredHashIndex) for proofs and tiles. It MUST only return
	// hashes of durable entries and MUST return an error for any other
	// index.
	tlog.HashReader
}

// Log is a gateway's ledger: a Node over a Store (node.go). Entries
// returns the public leaves; Read the entries in the domain view.
type Log interface {
	Appender
	Reader
	Prover
	// Read returns the entries [start, end) in the domain view (see
	// Source).
	Read(ctx context.Context, start, end uint64) ([]Entry, error)
	// Close flushes: every Append already accepted MUST be completed
	// (durable and acknowledged) or failed before Close returns. It then
	// publishes a final checkpoint covering every durable entry and
	// releases the log's resources (but not those it was given, such as
	// a database handle).
	Close() error
}

// Applier is a projection of the log: state derived only from entries, so
// that it can be dropped and rebuilt with the same result.
type Applier interface {
	// Name identifies the projection (for its cursor).
	Name() string
	// Next returns the index of the first entry not yet applied.
	Next(ctx context.Context) (uint64, error)
	// Apply applies entries[i] at index first+i and advances Next to
	// first+len(entries), atomically: either all of it happens or none.
	// Entries of types the projection does not care about are skipped.
	Apply(ctx context.Context, first uint64, entries []Entry) error
}
