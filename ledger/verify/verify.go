// Package verify audits a ledger end to end. There are two audits, by
// what the auditor holds.
//
// The public audit (no credentials: the tiles and the checkpoint key)
// checks the tree: the signed checkpoints, the consistency of the latest
// one with a checkpoint the auditor already trusts, witness cosignatures,
// and then replays every leaf, recomputing the RFC 6962 tree with an
// implementation independent of the one that built it
// (transparency-dev/merkle/compact; the log is built with
// golang.org/x/mod/sumdb/tlog) and comparing the roots. Every leaf must be
// a canonical v2 leaf; the audit learns the number of entries, their kinds
// and times, nothing else (docs/design/ledger-privacy.md).
//
// The regulator's audit (Options.Envelopes) also checks every entry's
// envelope, in index order, against the registry as of that index
// (ledger.Authority): the signed header is the one its leaf seals, the
// author's signature verifies under the node key registered for it, the
// author may write the entry (an org's entries only by its home gateway;
// issuer key IDs recomputed and never overwritten), and every opening it
// can open (registry entries are in clear; sealed ones with Keys.SealKey)
// opens the signed commitment, its subject being the patient its body
// refers to (Keys.Pseudonyms).
//
// Remote audits a log over its C2SP tlog-tiles API (every tile is
// authenticated against the signed checkpoint with tlog.TileHashReader),
// and with Options.Bodies the bodies a regulator's API token reads. Local
// audits a log's storage directly (for example a gormlog database),
// additionally comparing every stored tree hash with the recomputed one
// and checking every stored checkpoint, and with Options.Envelopes the
// stored envelopes.
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
	// KindEnvelope: an entry's signed header is not the one its leaf
	// seals, or its envelope is malformed or not bound to the header.
	KindEnvelope Kind = "envelope"
	// KindEntrySignature: an entry's signature does not verify under its
	// author's node key as registered at its index: it was not written by
	// the gateway it names (a forged entry).
	KindEntrySignature Kind = "entry-signature"
	// KindAuthorship: the registry as of the entry's index refuses its
	// author: an unregistered gateway, an org written for by a gateway
	// that is not its home, a re-registration, an issuer key ID that is
	// not its key's or already taken.
	KindAuthorship Kind = "authorship"
	// KindBody: an entry's opening does not open its signed commitment
	// (another statement, attestations, justification or patient).
	KindBody Kind = "body"
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

	// Envelopes makes the audit check every entry's envelope (the
	// regulator's audit, see the package doc): Local reads them from the
	// source, which must be an EnvelopeSource; Remote needs Bodies.
	Envelopes bool
	// Keys open and check sealed bodies (Local with Envelopes).
	Keys Keys
	// Bodies serves the headers and openings a regulator's API token
	// reads (Remote with Envelopes).
	Bodies BodySource
	// Genesis are the log's genesis gateways (a consortium's). Nil: an
	// embedded log, whose entry 0 registers its one gateway.
	Genesis map[string]ledger.GatewayKeys
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

	// Envelopes reports whether entry envelopes were checked (the
	// regulator's audit); the counts below are of those entries.
	Envelopes bool
	// EntrySignatures is the number of entries whose signature verified
	// under their author's registered node key, with their authorship.
	EntrySignatures uint64
	// Opened is the number of entries whose opening was opened and
	// checked against its signed commitment (registry entries, in clear,
	// and the sealed ones Keys.SealKey opens or the API served);
	// Unopened the number of sealed ones that could not be opened (no
	// key, or not sealed to it): their bodies were not checked.
	Opened, Unopened uint64
	// Subjects is the number of openings whose patient was checked
	// against the body's patient reference (Keys.Pseudonyms).
	Subjects uint64
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
