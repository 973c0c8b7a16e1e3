// Package verify audits a ledger end to end, the way a regulator does:
// it checks the signed checkpoints, the consistency of the latest one with
// a checkpoint the auditor already trusts, and then replays every entry,
// recomputing the RFC 6962 tree with an implementation independent of the
// one that built it (transparency-dev/merkle/compact; the log is built
// with golang.org/x/mod/sumdb/tlog) and comparing the roots.
//
// Remote audits a log over its C2SP tlog-tiles API (every tile is
// authenticated against the signed checkpoint with tlog.TileHashReader).
// Local audits a log's storage directly (for example a gormlog database),
// additionally comparing every stored tree hash with the recomputed one
// and checking every stored checkpoint.
//
// A log that fails verification yields a *Failure naming the first bad
// entry index where one can be named, or the proof that failed. Any other
// error (network, database) means the audit could not be completed.
package verify

import (
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// Kind classifies a verification failure.
type Kind string

// Failure kinds.
const (
	// KindSignature: a checkpoint is malformed, unsigned, forged, signed
	// by another key or for another origin.
	KindSignature Kind = "signature"
	// KindConsistency: the latest checkpoint's tree is not an extension of
	// the trusted one (a fork or a rewritten history).
	KindConsistency Kind = "consistency"
	// KindMissing: entries that a checkpoint covers are gone (Index is the
	// first missing one).
	KindMissing Kind = "missing"
	// KindEntry: an entry's bytes do not match the leaf hash the log
	// committed to, or are not a canonical entry.
	KindEntry Kind = "entry"
	// KindHash: a stored tree hash does not match the entries.
	KindHash Kind = "hash"
	// KindRoot: the tree recomputed from the entries does not have the
	// root a checkpoint signed.
	KindRoot Kind = "root"
	// KindWitness: the latest checkpoint carries fewer valid witness
	// cosignatures than required.
	KindWitness Kind = "witness"
)

// Failure is a verification failure: the log is not what its checkpoints
// claim.
type Failure struct {
	Kind Kind
	// Index is the first bad entry, or -1 when no single entry can be
	// named (a failed signature or consistency proof).
	Index int64
	// Msg says what failed, in words.
	Msg string
	// Err is the underlying error, if any.
	Err error
}

func (f *Failure) Error() string {
	s := "ledger verification failed: "
	if f.Index >= 0 {
		s += fmt.Sprintf("entry %d: ", f.Index)
	}
	s += f.Msg
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	return s
}

func (f *Failure) Unwrap() error { return f.Err }

func fail(kind Kind, index int64, err error, format string, args ...any) *Failure {
	return &Failure{Kind: kind, Index: index, Msg: fmt.Sprintf(format, args...), Err: err}
}

// Options configures an audit.
type Options struct {
	// Verifier checks checkpoint signatures. Remote requires it; without
	// it Local checks everything but signatures (Result.Signed is false).
	Verifier note.Verifier
	// Origin, if not empty, must be every checkpoint's origin line.
	Origin string
	// Trusted is a signed checkpoint the auditor already trusts (for
	// example saved from an earlier audit). The log must still contain
	// it: the latest checkpoint must be consistent with it.
	Trusted []byte
	// Progress, if not nil, is called now and then with the number of
	// entries verified and the total.
	Progress func(done, total uint64)
	// Witnesses are witness cosignature verifier keys (C2SP
	// tlog-cosignature/v1); the latest checkpoint must carry valid
	// cosignatures from at least WitnessThreshold of them.
	Witnesses        []note.Verifier
	WitnessThreshold int
}

// Result summarises a successful audit.
type Result struct {
	// Checkpoint is the latest checkpoint, verified.
	Checkpoint ledger.Checkpoint
	// Signed reports whether checkpoint signatures were checked.
	Signed bool
	// Trusted is the trusted checkpoint, if one was given.
	Trusted *ledger.Checkpoint
	// Entries is the number of entries replayed (Local also replays
	// durable entries not yet covered by a checkpoint).
	Entries uint64
	// Checkpoints is the number of stored checkpoints checked (Local).
	Checkpoints int
	// Types counts entries by type.
	Types map[ledger.Type]uint64
	// Cosigned is the number of configured witnesses whose cosignature
	// on the latest checkpoint verified.
	Cosigned int
}

// checkWitnesses counts the valid cosignatures of o.Witnesses on raw and
// requires o.WitnessThreshold of them.
func checkWitnesses(raw []byte, o Options) (int, error) {
	n := 0
	for _, v := range o.Witnesses {
		if nt, err := note.Open(raw, note.VerifierList(v)); err == nil && len(nt.Sigs) == 1 {
			n++
		}
	}
	if n < o.WitnessThreshold {
		return n, fail(KindWitness, -1, nil,
			"the latest checkpoint carries %d valid witness cosignatures, %d required", n, o.WitnessThreshold)
	}
	return n, nil
}

func openCheckpoint(raw []byte, o Options, what string) (ledger.Checkpoint, error) {
	var c ledger.Checkpoint
	var err error
	if o.Verifier != nil {
		c, err = ledger.OpenCheckpoint(raw, o.Verifier, o.Origin)
	} else {
		c, err = ledger.ParseCheckpoint(raw)
		if err == nil && o.Origin != "" && c.Origin != o.Origin {
			err = fmt.Errorf("%w: got %q, want %q", ledger.ErrWrongOrigin, c.Origin, o.Origin)
		}
	}
	if err != nil {
		return ledger.Checkpoint{}, fail(KindSignature, -1, err, "%s", what)
	}
	return c, nil
}

// replay recomputes the tree from entries, independently of tlog.
type replay struct {
	rng   *compact.Range
	types map[ledger.Type]uint64
}

func newReplay() *replay {
	f := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	return &replay{rng: f.NewEmptyRange(0), types: map[ledger.Type]uint64{}}
}

func (r *replay) size() uint64 { return r.rng.End() }

// add appends the next entry, checking that it is canonical. visit, if not
// nil, receives every tree node the entry completes (as tlog storage
// indexes), the leaf first.
func (r *replay) add(entry []byte, visit func(x int64, h tlog.Hash)) (tlog.Hash, error) {
	i := r.size()
	l, err := ledger.DecodeLeaf(entry)
	if err != nil {
		return tlog.Hash{}, fail(KindEntry, int64(i), err, "not a canonical v2 leaf")
	}
	r.types[l.Type]++
	leaf := tlog.Hash(rfc6962.DefaultHasher.HashLeaf(entry))
	var v compact.VisitFn
	if visit != nil {
		v = func(id compact.NodeID, h []byte) {
			visit(tlog.StoredHashIndex(int(id.Level), int64(id.Index)), tlog.Hash(h))
		}
	}
	if err := r.rng.Append(leaf[:], v); err != nil {
		return tlog.Hash{}, fmt.Errorf("replay entry %d: %w", i, err)
	}
	return leaf, nil
}

// root returns the root of the tree replayed so far.
func (r *replay) root() (tlog.Hash, error) {
	if r.size() == 0 {
		return tlog.Hash(rfc6962.DefaultHasher.EmptyRoot()), nil
	}
	h, err := r.rng.GetRootHash(nil)
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.Hash(h), nil
}

// checkRoot compares the replayed root with checkpoint c of the same size.
// goodUpTo is the largest size known good (for naming the first index
// that may be bad).
func (r *replay) checkRoot(c ledger.Checkpoint, what string, goodUpTo uint64) error {
	root, err := r.root()
	if err != nil {
		return err
	}
	if root != c.Hash {
		return fail(KindRoot, int64(goodUpTo), nil,
			"entries [%d, %d) do not hash to the root signed by the %s (size %d)", goodUpTo, c.Size, what, c.Size)
	}
	return nil
}
