package ledger

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Retrying an append whose outcome is unknown (docs/design/idempotency.md,
// "The one race left"). An append to a consortium can fail after its
// transaction reached a mempool: the store answers ErrUnavailable, and
// the entry may still be committed. If the caller then appends the same
// entry again and the node sealed it afresh (a new salt, new ephemeral
// keys, a new header), both could be committed. A node over a store that
// answers a repeated envelope with its first index (RepeatAnswerer)
// therefore keeps the envelope of every append whose outcome is unknown,
// keyed by the entry's content, and submits it again, byte for byte,
// when the same entry is appended again.

// RepeatAnswerer is implemented by stores that recognise an envelope
// already appended (by the seal of its header) and answer its repeat
// with the index of the first instead of appending it twice, and that
// check signature and authorship themselves (the consortium:
// CodeDuplicateEntry). A Node over such a store resubmits the envelope of
// an append whose outcome is unknown when the same entry is appended
// again, instead of sealing a second one (see DefaultUnsettled).
type RepeatAnswerer interface {
	// AnswersRepeats is a marker: it does nothing.
	AnswersRepeats()
}

// DefaultUnsettled is how many envelopes of appends whose outcome is
// unknown a Node keeps. In memory only, the least recently used goes
// first out, and one pushed out makes a later retry of its entry seal a
// new envelope; with a keeper (KeepDurably, which keeps them across a
// restart) none is pushed out and a new write at the limit is refused
// (ErrUnsettledFull). An envelope leaves as soon as the outcome of an
// append of it is known (committed or refused).
const DefaultUnsettled = 1024

// OutcomeUnknown reports whether err, returned by an append, leaves the
// entry's outcome unknown: the store may have submitted it (it is
// unavailable, or the caller's context ended while it waited), so it may
// still be appended.
func OutcomeUnknown(err error) bool {
	return err != nil && (errors.Is(err, ErrUnavailable) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled))
}

// entryKey identifies an entry by its content, as the caller of Append
// gives it: type, version, org and body, without what the log and the
// node set (time, author, commitment, attestations). Two appends of the
// same key are the same write (an idempotency key fixes the IDs in the
// body, docs/design/idempotency.md).
func entryKey(e Entry) (Digest, bool) {
	e.Time, e.Author, e.Commitment, e.Attestations = time.Time{}, "", Digest{}, nil
	b, err := Encode(e)
	if err != nil {
		return Digest{}, false
	}
	h := sha256.New()
	h.Write([]byte("healthgw/ledger/retry-key\n"))
	h.Write(b)
	var d Digest
	copy(d[:], h.Sum(nil))
	return d, true
}

// unsettledEntry is an append whose outcome is unknown: the prepared
// statement, its attestations' digest and the envelope submitted, with
// the entry the node caches once it learns its index.
type unsettledEntry struct {
	key      Digest
	prepared Prepared
	att      Digest
	env      Envelope
	cached   cachedEntry
}

// unsettledSet is a bounded LRU of unsettled entries by key. With a
// keeper (KeepDurably) it is unbounded in memory: the keeper holds at
// most limit envelopes (kept), every unsettled entry's envelope is among
// them, and none is pushed out.
type unsettledSet struct {
	mu  sync.Mutex
	cap int
	m   map[Digest]*list.Element
	lru list.List // front: most recently used

	keeper EnvelopeKeeper
	finder EntryFinder // the store's, if it has one
	limit  int
	kept   map[Digest]Digest // seal → entry key, of the envelopes the keeper holds
	done   []Digest          // seals settled whose rows the keeper still holds
}

// enabled reports whether the node keeps unsettled entries at all: only
// over a store that answers repeats (RepeatAnswerer), which OpenNode
// decides once. Without it every method of the set does nothing, so an
// entry needs no retry key.
func (s *unsettledSet) enabled() bool { return s.cap > 0 }

func (s *unsettledSet) init(capacity int) {
	s.cap = capacity
	s.m = make(map[Digest]*list.Element)
}

func (s *unsettledSet) get(key Digest) (unsettledEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.m[key]
	if !ok {
		return unsettledEntry{}, false
	}
	s.lru.MoveToFront(el)
	return el.Value.(unsettledEntry), true
}

func (s *unsettledSet) put(u unsettledEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cap <= 0 {
		return
	}
	if el, ok := s.m[u.key]; ok {
		el.Value = u
		s.lru.MoveToFront(el)
		return
	}
	s.m[u.key] = s.lru.PushFront(u)
	for s.keeper == nil && s.lru.Len() > s.cap {
		old := s.lru.Back()
		s.lru.Remove(old)
		delete(s.m, old.Value.(unsettledEntry).key)
	}
}

// settle forgets the entry of key if its envelope is the one sealed seal:
// an append of it has a known outcome.
func (s *unsettledSet) settle(key, seal Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.m[key]
	if !ok || Seal(el.Value.(unsettledEntry).env.Header) != seal {
		return
	}
	s.lru.Remove(el)
	delete(s.m, key)
}

// forget forgets the entry of key.
func (s *unsettledSet) forget(key Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.m[key]; ok {
		s.lru.Remove(el)
		delete(s.m, key)
	}
}

func (s *unsettledSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// Unsettled returns how many envelopes of appends whose outcome is
// unknown the node keeps for a retry.
func (n *Node) Unsettled() int { return n.unsettled.len() }
