package records

import (
	"context"
	"time"
)

// Record is a record's metadata: what may be listed and shown to a caller
// allowed to see the record exists. It carries no content and no key
// material.
type Record struct {
	ID     string
	Holder string // the organisation that holds the record
	// Patient is the patient's ledger pseudonym (ledger.Pseudonymizer):
	// raw patient identifiers are never stored.
	Patient      string
	Category     Category
	ResourceType string // FHIR resource type, or empty
	ContentType  string
	Size         int64  // plaintext bytes
	Commitment   string // hex SHA-256 of the ciphertext, as on the ledger
	KeyVersion   int    // version of the holder's KEK the data key is wrapped under
	LedgerIndex  uint64 // index of the record.registered entry
	CreatedAt    time.Time
	Shredded     bool
	ShreddedAt   time.Time
}

// Stored is a record as a Store holds it.
type Stored struct {
	Record
	Format int // envelope format (FormatVersion or FormatStream)
	// Pieces is the number of pieces the sealed content is kept in
	// (PieceStore), 0 when it is kept whole in Ciphertext. A pending
	// record streamed in has 0 until its upload is finished (its
	// Commitment is empty until then).
	Pieces     int
	Ciphertext []byte // nil once shredded, and from Store.Meta
	WrappedKey []byte // nil once shredded, and from Store.Meta
	// Pending: written but its record.registered entry is not known to be
	// durable yet; invisible to readers.
	Pending bool
	// ShredLogged: the record.shredded entry is durable at ShredIndex.
	ShredLogged bool
	ShredIndex  uint64
}

// Store persists sealed records for a Vault. Implementations return
// errors wrapping ErrNotFound where documented. records/recordstore is the
// gorm implementation.
type Store interface {
	// Create inserts a new record (normally Pending). A duplicate ID is
	// an error. It must not keep s.Ciphertext after it returns (the
	// vault reuses its buffer).
	Create(ctx context.Context, s Stored) error
	// Publish makes a pending record visible with the index of its
	// record.registered entry and returns the index it is visible at: a
	// record published already (by the registration projection, see
	// recordstore.Store.Apply, which may have applied an earlier
	// registration of it) keeps its index, and that is returned.
	// ErrNotFound if there is no such record.
	Publish(ctx context.Context, id string, ledgerIndex uint64) (uint64, error)
	// DeletePending deletes a record that never became visible.
	// ErrNotFound if id is not pending.
	DeletePending(ctx context.Context, id string) error
	// DeletePendingBefore deletes pending records created before t and
	// returns how many.
	DeletePendingBefore(ctx context.Context, t time.Time) (int64, error)
	// CountPending counts the pending records.
	CountPending(ctx context.Context) (int64, error)
	// Meta returns a record without its sealed content (no ciphertext, no
	// wrapped key), whatever its state. It is what a read decides on, so
	// its work must depend neither on the record's size nor on whether
	// the record exists: a read of a missing record must cost what a
	// read of an existing one does (recordstore reads a decoy row).
	Meta(ctx context.Context, id string) (Stored, error)
	// Content returns the sealed content of a visible, unshredded record
	// (the ciphertext, the wrapped key, its key version and the format,
	// read together), and nothing else of it: what a read loads once it
	// is permitted. ErrNotFound if the record does not exist, is pending,
	// or is shredded (as it may have been since its metadata was read).
	// The ciphertext is the caller's to overwrite (the vault decrypts it
	// in place): a fresh copy, not a slice the store keeps.
	Content(ctx context.Context, id string) (SealedContent, error)
	// ListByPatient returns the visible, unshredded records of a patient
	// pseudonym, oldest first.
	ListByPatient(ctx context.Context, patient string) ([]Record, error)
	// Shred destroys a visible record's wrapped data key and ciphertext
	// (overwriting them where the database allows) and marks it shredded
	// at at. ErrNotFound unless the record is visible and not shredded.
	Shred(ctx context.Context, id string, at time.Time) error
	// LogShred records the index of a shredded record's record.shredded
	// entry.
	LogShred(ctx context.Context, id string, ledgerIndex uint64) error
	// UnloggedShreds returns shredded records whose record.shredded entry
	// is not known to be durable.
	UnloggedShreds(ctx context.Context) ([]Stored, error)
}

// PieceStore is a Store that also keeps sealed content in pieces, so that
// a record can be streamed in (Vault.PutStream) and out
// (Vault.ReadStream) without being held whole (recordstore.Store). A
// streamed record is created (Store.Create) pending, with no ciphertext
// and no commitment, its pieces appended in order, and its upload then
// finished with its size and commitment. Store.DeletePending,
// DeletePendingBefore and Shred delete a record's pieces with it.
type PieceStore interface {
	// AppendPieces stores pieces first, first+1, ... (in order, from 0)
	// of the sealed content of id, a pending record whose upload is not
	// finished, in one transaction. It must not keep data after it
	// returns. ErrNotFound if there is no such record.
	AppendPieces(ctx context.Context, id string, first int, data [][]byte) error
	// FinishPieces records the size, commitment and piece count of a
	// pending record whose pieces are all stored. ErrNotFound unless id
	// is a pending record whose upload is not finished.
	FinishPieces(ctx context.Context, id string, size int64, commitment string, pieces int) error
	// Piece appends piece seq of the sealed content of a visible,
	// unshredded record to dst (reusing its storage when it has the
	// capacity) and returns it. ErrNotFound if the record or the piece is
	// not there (shredded since, say).
	Piece(ctx context.Context, id string, seq int, dst []byte) ([]byte, error)
	// DeleteUnfinished deletes the pending records created before t whose
	// upload never finished, with their pieces, and returns how many.
	// (Their registration was never submitted: nothing can commit it.)
	DeleteUnfinished(ctx context.Context, before time.Time) (int64, error)
}

// WrappedKey is one record's wrapped data key, as rotation reads it.
type WrappedKey struct {
	ID         string
	Format     int
	KeyVersion int
	Wrapped    []byte
}

// Rewrapped replaces one record's wrapped data key.
type Rewrapped struct {
	ID          string
	FromVersion int // the version the key is wrapped under now
	ToVersion   int
	Wrapped     []byte // the data key wrapped under ToVersion
}

// RewrapStore is what Rotate needs from storage.
type RewrapStore interface {
	// KeyVersions counts holder's unshredded records (pending included)
	// per KEK version.
	KeyVersions(ctx context.Context, holder string) (map[int]int64, error)
	// WrappedKeys returns up to limit of holder's unshredded records
	// (pending included) whose key version is not except and whose ID
	// sorts after after, in ID order.
	WrappedKeys(ctx context.Context, holder string, except int, after string, limit int) ([]WrappedKey, error)
	// Rewrap applies rs in one transaction. Each replacement happens only
	// if the record still has FromVersion and is not shredded (so it is
	// safe against concurrent rotation and shredding); it returns how
	// many happened.
	Rewrap(ctx context.Context, rs []Rewrapped) (int, error)
}
