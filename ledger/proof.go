package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// maxTreeSize bounds tree sizes accepted from callers: tlog works in int64.
const maxTreeSize = 1 << 62

// TreeHash returns the RFC 6962 root hash of the first size entries.
func TreeHash(ctx context.Context, hr tlog.HashReader, size uint64) (tlog.Hash, error) {
	if err := ctx.Err(); err != nil {
		return tlog.Hash{}, err
	}
	if size > maxTreeSize {
		return tlog.Hash{}, fmt.Errorf("%w: size %d", ErrInvalidRange, size)
	}
	h, err := tlog.TreeHash(int64(size), hr)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("tree hash %d: %w", size, err)
	}
	return h, nil
}

// InclusionProof returns the proof that entry index is in the tree of
// size entries (RFC 6962 audit path, tlog.ProveRecord). The caller checks
// that size does not exceed the log's size (or its latest checkpoint);
// it returns ErrInvalidRange unless index < size.
func InclusionProof(ctx context.Context, hr tlog.HashReader, index, size uint64) (tlog.RecordProof, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if index >= size || size > maxTreeSize {
		return nil, fmt.Errorf("%w: index %d in tree of size %d", ErrInvalidRange, index, size)
	}
	p, err := tlog.ProveRecord(int64(size), int64(index), hr)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof %d@%d: %w", index, size, err)
	}
	return p, nil
}

// ConsistencyProof returns the proof that the tree of size from is a
// prefix of the tree of size to (RFC 6962 consistency proof,
// tlog.ProveTree). It returns ErrInvalidRange unless 0 < from <= to.
func ConsistencyProof(ctx context.Context, hr tlog.HashReader, from, to uint64) (tlog.TreeProof, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if from == 0 || from > to || to > maxTreeSize {
		return nil, fmt.Errorf("%w: consistency %d -> %d", ErrInvalidRange, from, to)
	}
	p, err := tlog.ProveTree(int64(to), int64(from), hr)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d -> %d: %w", from, to, err)
	}
	return p, nil
}

// VerifyInclusion checks that entry (its canonical encoding) is at index
// in the tree that c commits to.
func VerifyInclusion(c Checkpoint, index uint64, entry []byte, p tlog.RecordProof) error {
	if index >= c.Size {
		return fmt.Errorf("%w: index %d in tree of size %d", ErrInvalidRange, index, c.Size)
	}
	if err := tlog.CheckRecord(p, int64(c.Size), c.Hash, int64(index), tlog.RecordHash(entry)); err != nil {
		return fmt.Errorf("inclusion of %d in %d: %w", index, c.Size, err)
	}
	return nil
}

// VerifyConsistency checks that older is a prefix of newer.
func VerifyConsistency(older, newer Checkpoint, p tlog.TreeProof) error {
	if older.Size > newer.Size {
		return fmt.Errorf("%w: consistency %d -> %d", ErrInvalidRange, older.Size, newer.Size)
	}
	if older.Size == newer.Size {
		if older.Hash != newer.Hash {
			return fmt.Errorf("consistency %d -> %d: roots differ", older.Size, newer.Size)
		}
		return nil
	}
	if older.Size == 0 {
		return nil
	}
	if err := tlog.CheckTree(p, int64(newer.Size), newer.Hash, int64(older.Size), older.Hash); err != nil {
		return fmt.Errorf("consistency %d -> %d: %w", older.Size, newer.Size, err)
	}
	return nil
}

// Receipt is what a writer gets back for an entry: the entry, a signed
// checkpoint that covers it, and the proof that ties them together.
type Receipt struct {
	Index uint64
	Entry []byte // the public leaf
	// Header and Opening are the entry's signed header and its opening
	// (canonical, without the subject) when the log could open it: the
	// body, checked against the leaf by VerifyReceipt.
	Header     []byte
	Opening    []byte
	Checkpoint []byte // signed note; its size is TreeSize
	TreeSize   uint64
	Proof      tlog.RecordProof
}

// ReceiptLog is what MakeReceipt needs from a log.
type ReceiptLog interface {
	Reader
	Prover
}

// receiptPoll is how often MakeReceipt polls a log that cannot publish on
// demand.
const receiptPoll = 50 * time.Millisecond

// MakeReceipt waits (bounded by ctx) for a checkpoint that covers index
// and returns the receipt. Logs that implement CheckpointWaiter publish
// one at once; others are polled until their next periodic checkpoint.
func MakeReceipt(ctx context.Context, l ReceiptLog, index uint64) (Receipt, error) {
	var raw []byte
	var err error
	if w, ok := l.(CheckpointWaiter); ok {
		raw, err = w.WaitCheckpoint(ctx, index+1)
		if err != nil {
			return Receipt{}, fmt.Errorf("receipt %d: %w", index, err)
		}
	} else {
		t := time.NewTicker(receiptPoll)
		defer t.Stop()
		for {
			raw, err = l.Checkpoint(ctx)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return Receipt{}, fmt.Errorf("receipt %d: %w", index, err)
			}
			if err == nil {
				c, perr := ParseCheckpoint(raw)
				if perr != nil {
					return Receipt{}, fmt.Errorf("receipt %d: %w", index, perr)
				}
				if c.Size > index {
					break
				}
			}
			select {
			case <-ctx.Done():
				return Receipt{}, fmt.Errorf("receipt %d: %w", index, ctx.Err())
			case <-t.C:
			}
		}
	}
	c, err := ParseCheckpoint(raw)
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt %d: %w", index, err)
	}
	entries, err := l.Entries(ctx, index, index+1)
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt %d: %w", index, err)
	}
	p, err := InclusionProof(ctx, l, index, c.Size)
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt %d: %w", index, err)
	}
	r := Receipt{Index: index, Entry: entries[0], Checkpoint: raw, TreeSize: c.Size, Proof: p}
	if err := addOpening(ctx, l, &r); err != nil {
		return Receipt{}, fmt.Errorf("receipt %d: %w", index, err)
	}
	return r, nil
}

// addOpening adds the entry's header and opening (without the subject)
// to r when l can open it.
func addOpening(ctx context.Context, l any, r *Receipt) error {
	o, ok := l.(Opener)
	if !ok {
		return nil
	}
	op, err := o.Open(ctx, r.Index)
	switch {
	case errors.Is(err, ErrNotRecipient):
		return nil
	case err != nil:
		return err
	}
	r.Header = op.Header
	r.Opening, err = EncodeOpening(op.Opening.WithoutSubject())
	return err
}

// latestCheckpoint returns the log's latest checkpoint, raw and parsed.
func latestCheckpoint(ctx context.Context, l Prover) ([]byte, Checkpoint, error) {
	raw, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	c, err := ParseCheckpoint(raw)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	return raw, c, nil
}

// ProveEntry serves GET /v1/ledger/entries/{index}?tree_size=: the entry
// at index with its inclusion proof in the tree of treeSize entries.
//
// treeSize 0 means the latest checkpoint; if that does not cover index yet
// but the entry is durable, ProveEntry waits (bounded by ctx) for one that
// does, like MakeReceipt. Otherwise treeSize must not exceed the latest
// checkpoint (ErrNotFound) and must exceed index (ErrInvalidRange); the
// receipt carries the checkpoint of exactly treeSize when the log keeps it
// (CheckpointHistory) and nil otherwise.
func ProveEntry(ctx context.Context, l ReceiptLog, index, treeSize uint64) (Receipt, error) {
	if treeSize == 0 {
		return MakeReceipt(ctx, l, index)
	}
	_, latest, err := latestCheckpoint(ctx, l)
	if err != nil {
		return Receipt{}, fmt.Errorf("prove entry %d: %w", index, err)
	}
	if treeSize > latest.Size {
		return Receipt{}, fmt.Errorf("prove entry %d: tree size %d beyond the latest checkpoint (%d): %w", index, treeSize, latest.Size, ErrNotFound)
	}
	if index >= treeSize {
		return Receipt{}, fmt.Errorf("prove entry %d: %w: not in a tree of size %d", index, ErrInvalidRange, treeSize)
	}
	var raw []byte
	if h, ok := l.(CheckpointHistory); ok {
		raw, err = h.CheckpointAt(ctx, treeSize)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Receipt{}, fmt.Errorf("prove entry %d: %w", index, err)
		}
	}
	entries, err := l.Entries(ctx, index, index+1)
	if err != nil {
		return Receipt{}, fmt.Errorf("prove entry %d: %w", index, err)
	}
	p, err := InclusionProof(ctx, l, index, treeSize)
	if err != nil {
		return Receipt{}, err
	}
	r := Receipt{Index: index, Entry: entries[0], Checkpoint: raw, TreeSize: treeSize, Proof: p}
	if err := addOpening(ctx, l, &r); err != nil {
		return Receipt{}, fmt.Errorf("prove entry %d: %w", index, err)
	}
	return r, nil
}

// Opener is implemented by logs that can open their entries (Node).
type Opener interface {
	Open(ctx context.Context, index uint64) (Opened, error)
}

// ProveConsistency serves GET /v1/ledger/proofs/consistency?from=&to=:
// the proof that the tree of size from is a prefix of the tree of size
// to. to 0 means the latest checkpoint's size. It returns ErrNotFound if
// to exceeds the latest checkpoint and ErrInvalidRange unless
// 0 < from <= to. It also returns the to size it used.
func ProveConsistency(ctx context.Context, l Prover, from, to uint64) (tlog.TreeProof, uint64, error) {
	_, latest, err := latestCheckpoint(ctx, l)
	if err != nil {
		return nil, 0, fmt.Errorf("prove consistency: %w", err)
	}
	if to == 0 {
		to = latest.Size
	}
	if to > latest.Size {
		return nil, 0, fmt.Errorf("prove consistency: size %d beyond the latest checkpoint (%d): %w", to, latest.Size, ErrNotFound)
	}
	p, err := ConsistencyProof(ctx, l, from, to)
	if err != nil {
		return nil, 0, err
	}
	return p, to, nil
}

// VerifyReceipt checks a receipt against the log's verifier key: the
// checkpoint's signature (and origin, if not empty), the inclusion proof
// of the leaf, the header's seal in the leaf and the opening against the
// header. It returns the opened statement. (The header's signature is
// checked against the author's node key by VerifyHeader, for whoever has
// the registry.)
func VerifyReceipt(r Receipt, v note.Verifier, origin string) (Statement, error) {
	c, err := OpenCheckpoint(r.Checkpoint, v, origin)
	if err != nil {
		return Statement{}, err
	}
	if c.Size != r.TreeSize {
		return Statement{}, fmt.Errorf("%w: receipt tree size %d, checkpoint %d", ErrBadCheckpoint, r.TreeSize, c.Size)
	}
	if err := VerifyInclusion(c, r.Index, r.Entry, r.Proof); err != nil {
		return Statement{}, err
	}
	if len(r.Header) == 0 || len(r.Opening) == 0 {
		return Statement{}, fmt.Errorf("%w: receipt without the entry's header and opening", ErrMalformed)
	}
	o, err := DecodeOpening(r.Opening)
	if err != nil {
		return Statement{}, err
	}
	return CheckEntry(r.Index, r.Entry, r.Header, nil, &o)
}
