package ledger

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Keeping the envelopes of outcome-unknown appends across a restart
// (docs/design/idempotency.md, "Across a restart"). In memory only, a
// retry after a gateway restart seals its entry afresh, and the first
// envelope, still in a peer's mempool, can be committed next to the
// second. A node given an EnvelopeKeeper (KeepDurably) therefore writes
// every envelope it is about to submit to the keeper first (a crash
// right after the broadcast, before any answer, is covered too), removes
// it once the append's outcome is known, and at start loads what is
// left: an envelope whose entry is in the log is settled, the others are
// kept for the retry to submit again, byte for byte.

// KeptEnvelope is an envelope kept for a retry: the key of its entry's
// content (see Node.Prepare; opaque to the keeper) and the envelope.
type KeptEnvelope struct {
	Key      Digest
	Envelope Envelope
}

// Seal returns the seal of the kept envelope's header: what identifies
// the entry in the log.
func (k KeptEnvelope) Seal() Digest { return Seal(k.Envelope.Header) }

// EnvelopeKeeper keeps envelopes durably (the gateway's database:
// ledger/unsettledstore). It is safe for concurrent use.
type EnvelopeKeeper interface {
	// Keep stores k; once it returns nil, k survives a crash. Keeping
	// an envelope kept already is a no-op.
	Keep(ctx context.Context, k KeptEnvelope) error
	// Settle removes the envelopes sealed seals (their outcome is
	// known). Seals not kept are ignored.
	Settle(ctx context.Context, seals ...Digest) error
	// Kept returns every kept envelope, oldest first.
	Kept(ctx context.Context) ([]KeptEnvelope, error)
}

// EntryFinder is implemented by stores that find a committed entry by
// the seal of its header (the consortium's index of seals). A node uses
// it at start to settle kept envelopes whose entries were committed
// while it was down; without it they are kept until a retry submits
// them (and the store, a RepeatAnswerer, answers with the index).
type EntryFinder interface {
	// FindEntry returns the index of the committed entry sealed seal,
	// and whether there is one.
	FindEntry(ctx context.Context, seal Digest) (uint64, bool, error)
}

// ErrUnsettledFull: the node keeps as many envelopes of appends whose
// outcome is unknown as its limit allows (KeepDurably) and refuses a new
// write rather than submit one a retry could not resubmit. Nothing was
// submitted. It wraps ErrUnavailable: the write can be repeated once
// earlier outcomes are known (the consortium is back and their retries
// came, or a restart found them committed).
var ErrUnsettledFull = fmt.Errorf("ledger: too many writes with an unknown outcome waiting for their retry: %w", ErrUnavailable)

// KeepStats says what KeepDurably found at start.
type KeepStats struct {
	// Committed is how many kept envelopes' entries were in the log
	// (settled); Kept how many are kept for a retry.
	Committed, Kept int
}

// KeepDurably makes the node keep the envelope of every append whose
// outcome could become unknown in k, at most limit of them (<= 0:
// DefaultUnsettled), and loads the envelopes k holds from an earlier run:
// those whose entry the store finds committed (EntryFinder) are settled,
// the others are kept, so that a retry of their entry submits them again.
// None is dropped, even beyond limit (new writes are refused with
// ErrUnsettledFull until fewer are kept). Kept envelopes are not
// resubmitted until their entry is appended again.
//
// Only over a store that answers repeats (RepeatAnswerer); over any
// other it does nothing. Call it once, after OpenNode and before the node
// serves appends. Appends of access decisions are not kept, in k or in
// memory: each carries its request's own random ID, so no retry appends
// the same entry again.
func (n *Node) KeepDurably(ctx context.Context, k EnvelopeKeeper, limit int) (KeepStats, error) {
	if _, ok := n.store.(RepeatAnswerer); !ok || k == nil {
		return KeepStats{}, nil
	}
	if limit <= 0 {
		limit = DefaultUnsettled
	}
	kept, err := k.Kept(ctx)
	if err != nil {
		return KeepStats{}, fmt.Errorf("ledger: load kept envelopes: %w", err)
	}
	finder, _ := n.store.(EntryFinder)
	var stats KeepStats
	var committed []Digest
	var restored []unsettledEntry
	for _, ke := range kept {
		seal := ke.Seal()
		if finder != nil {
			_, ok, err := finder.FindEntry(ctx, seal)
			if err != nil {
				return KeepStats{}, fmt.Errorf("ledger: look up kept envelope %x: %w", seal[:8], err)
			}
			if ok {
				committed = append(committed, seal)
				continue
			}
		}
		u, err := n.restoreUnsettled(ke)
		if err != nil {
			return KeepStats{}, fmt.Errorf("ledger: kept envelope %x: %w", seal[:8], err)
		}
		restored = append(restored, u)
	}
	if len(committed) > 0 {
		if err := k.Settle(ctx, committed...); err != nil {
			return KeepStats{}, fmt.Errorf("ledger: settle kept envelopes: %w", err)
		}
	}
	s := &n.unsettled
	s.mu.Lock()
	s.keeper, s.limit, s.kept, s.finder = k, limit, make(map[Digest]Digest, len(restored)), finder
	s.cap = math.MaxInt
	s.mu.Unlock()
	for _, u := range restored { // oldest first: of two for one entry, the later stays
		s.mu.Lock()
		s.kept[Seal(u.env.Header)] = u.key
		s.mu.Unlock()
		s.put(u)
	}
	stats.Committed, stats.Kept = len(committed), len(restored)
	return stats, nil
}

// restoreUnsettled rebuilds the unsettled entry of a kept envelope: it
// opens the envelope (in clear, or sealed: the author is always a
// recipient) and checks it against its header, as it was when sealed.
func (n *Node) restoreUnsettled(k KeptEnvelope) (unsettledEntry, error) {
	h, err := CheckEnvelope(k.Envelope)
	if err != nil {
		return unsettledEntry{}, err
	}
	if h.Author != n.id.Gateway {
		return unsettledEntry{}, fmt.Errorf("%w: authored by %q, not this gateway", ErrBadEnvelope, h.Author)
	}
	o, st, err := n.openEnvelope(0, h, k.Envelope)
	if err != nil {
		return unsettledEntry{}, err
	}
	if o == nil {
		return unsettledEntry{}, fmt.Errorf("%w: not sealed to this gateway", ErrBadEnvelope)
	}
	att, err := AttestationsDigest(o.Attestations)
	if err != nil {
		return unsettledEntry{}, err
	}
	dom, err := n.domain(0, h, *st, o.Subject)
	if err != nil {
		return unsettledEntry{}, err
	}
	dom.Attestations = o.Attestations
	c := cachedEntry{entry: dom, opening: *o, header: h, statement: registryStatement(h, st)}
	p := Prepared{entry: dom, subject: o.Subject, statement: o.Statement, st: *st, key: k.Key, keyed: true}
	return unsettledEntry{key: k.Key, prepared: p, att: att, env: k.Envelope, cached: c}, nil
}

// durablyKept reports whether appends of type t are kept by the keeper:
// all but access decisions (see KeepDurably).
func durablyKept(t Type) bool { return t != TypeAccessDecided }

// keep writes env, about to be submitted for the entry of key, to the
// keeper (if any, and if its type is kept): before it leaves the node,
// so that a crash at any later point leaves it kept. An envelope kept
// already (a retry) is not written again. ErrUnsettledFull at the limit.
func (s *unsettledSet) keep(ctx context.Context, key Digest, env Envelope, t Type) error {
	s.mu.Lock()
	if s.keeper == nil || !durablyKept(t) {
		s.mu.Unlock()
		return nil
	}
	seal := Seal(env.Header)
	if _, ok := s.kept[seal]; ok {
		s.mu.Unlock()
		return nil
	}
	if len(s.kept) >= s.limit {
		s.mu.Unlock()
		// Writes settled by a retry that found them in the log (the
		// use cases catch up before they append) left their
		// envelopes: settle those first.
		if _, err := s.settleCommitted(ctx); err != nil {
			return fmt.Errorf("ledger: settle kept envelopes: %w", err)
		}
		s.mu.Lock()
		if _, ok := s.kept[seal]; ok {
			s.mu.Unlock()
			return nil
		}
		if len(s.kept) >= s.limit {
			s.mu.Unlock()
			return ErrUnsettledFull
		}
	}
	s.kept[seal] = key // reserved: counts against the limit while written
	k := s.keeper
	s.mu.Unlock()
	if err := k.Keep(ctx, KeptEnvelope{Key: key, Envelope: env}); err != nil {
		s.mu.Lock()
		delete(s.kept, seal)
		s.mu.Unlock()
		// Not submitted: a known outcome, unless ctx ended (then the
		// caller says unknown, which is harmless).
		return fmt.Errorf("ledger: keep the envelope for a retry: %w", err)
	}
	return nil
}

// releaseBatch is how many envelopes of committed entries the keeper
// deletes at once. Their rows need not go at once: a row left by a crash
// is found committed at the next start (KeepDurably), and over a store
// without EntryFinder its retry is answered with the index. Deleting them
// in batches halves the keeper's synchronous writes per append (the
// insert before the submission must be durable).
const releaseBatch = 64

// release forgets, in the keeper, the envelopes whose outcome is known:
// those of key if committed is true (the entry is in the log: deleted
// with the next batch, see releaseBatch), else the one sealed seal (it
// was refused: deleted now, so that no retry after a crash submits it
// again). A failed deletion leaves the rows; the next batch, start or
// SettleCommitted deletes them. The append's outcome stands either way.
func (s *unsettledSet) release(ctx context.Context, key, seal Digest, committed bool) {
	s.mu.Lock()
	if s.keeper == nil {
		s.mu.Unlock()
		return
	}
	for sl, k := range s.kept {
		if (committed && k == key) || sl == seal {
			delete(s.kept, sl)
			s.done = append(s.done, sl)
		}
	}
	flush := !committed || len(s.done) >= releaseBatch
	s.mu.Unlock()
	if flush {
		_ = s.flush(context.WithoutCancel(ctx))
	}
}

// flush deletes the rows of the envelopes whose outcome is known.
func (s *unsettledSet) flush(ctx context.Context) error {
	s.mu.Lock()
	done, keeper := s.done, s.keeper
	s.done = nil
	s.mu.Unlock()
	if len(done) == 0 || keeper == nil {
		return nil
	}
	if err := keeper.Settle(ctx, done...); err != nil {
		s.mu.Lock()
		s.done = append(s.done, done...)
		s.mu.Unlock()
		return err
	}
	return nil
}

// outcomeUnknownOrClosed is OutcomeUnknown, or the store closed while the
// append waited for its answer (ErrClosed): the entry may have been
// submitted, so its envelope stays kept.
func outcomeUnknownOrClosed(err error) bool {
	return OutcomeUnknown(err) || errors.Is(err, ErrClosed)
}

// Kept returns how many envelopes the node's keeper holds for a retry
// (KeepDurably; 0 without one), including those being submitted.
func (n *Node) Kept() int {
	n.unsettled.mu.Lock()
	defer n.unsettled.mu.Unlock()
	return len(n.unsettled.kept)
}

// answered records the answer err to the submission of u's envelope: an
// unknown outcome keeps it for a retry; a known one forgets it, in
// memory and in the keeper. It is called before the node takes n.mu, so
// the keeper's I/O holds up no reader.
func (s *unsettledSet) answered(ctx context.Context, u unsettledEntry, err error) {
	seal := Seal(u.env.Header)
	switch {
	case outcomeUnknownOrClosed(err):
		if !durablyKept(u.cached.header.Type) && s.durable() {
			// Never retried (KeepDurably); with a keeper the set has no
			// bound of its own, so it holds only what the keeper holds.
			return
		}
		s.put(u)
	case err == nil:
		s.forget(u.key) // the write is in the log
		s.release(ctx, u.key, seal, true)
	default:
		s.settle(u.key, seal) // this envelope was refused
		s.release(ctx, u.key, seal, false)
	}
}

// SettleCommitted settles the kept envelopes whose entries the store
// finds in the log (EntryFinder) and returns how many; it also deletes
// the rows of envelopes settled since the last batch (releaseBatch). A retry that finds
// its write on the ledger (the use cases catch up first) answers without
// appending, so its envelope stays kept until this runs: at start, when
// the limit is reached, or when the gateway calls it (after its
// projections followed new commits).
func (n *Node) SettleCommitted(ctx context.Context) (int, error) {
	return n.unsettled.settleCommitted(ctx)
}

func (s *unsettledSet) settleCommitted(ctx context.Context) (int, error) {
	s.mu.Lock()
	if s.keeper == nil {
		s.mu.Unlock()
		return 0, nil
	}
	if s.finder == nil {
		s.mu.Unlock()
		return 0, s.flush(ctx)
	}
	kept := make(map[Digest]Digest, len(s.kept))
	for seal, key := range s.kept {
		kept[seal] = key
	}
	finder, keeper := s.finder, s.keeper
	s.mu.Unlock()
	if err := s.flush(ctx); err != nil {
		return 0, err
	}
	var found []Digest
	for seal, key := range kept {
		_, ok, err := finder.FindEntry(ctx, seal)
		if err != nil {
			return 0, err
		}
		if ok {
			found = append(found, seal)
			s.settle(key, seal)
		}
	}
	if len(found) == 0 {
		return 0, nil
	}
	if err := keeper.Settle(ctx, found...); err != nil {
		return 0, err
	}
	s.mu.Lock()
	for _, seal := range found {
		delete(s.kept, seal)
	}
	s.mu.Unlock()
	return len(found), nil
}

// durable reports whether the set has a keeper.
func (s *unsettledSet) durable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keeper != nil
}
