// Package ledgertest is the conformance suite for ledger.Log backends.
// Every backend runs it from a test:
//
//	func TestConformance(t *testing.T) {
//		ledgertest.RunBackend(t, ledgertest.Backend{Open: ..., Reopen: ..., Verifier: v})
//	}
//
// The suite is backend-agnostic: it does not assume that Entry.Time is the
// wall clock, that appends are fast, or that a checkpoint appears at once
// (it waits up to Backend.Timeout). Tree hashes and proofs are checked with
// an implementation independent of golang.org/x/mod/sumdb/tlog
// (transparency-dev/merkle).
package ledgertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// DefaultTimeout bounds how long the suite waits for a checkpoint.
const DefaultTimeout = 30 * time.Second

// Backend describes the backend under test.
type Backend struct {
	// Open returns a new, empty log. The suite closes it; Open registers
	// cleanups for anything else (databases, nodes) with t.Cleanup.
	Open func(t *testing.T) ledger.Log
	// Reopen, if not nil, restarts a log: the suite has already closed
	// old; Reopen returns a log over the same storage. The restart tests
	// are skipped without it.
	Reopen func(t *testing.T, old ledger.Log) ledger.Log
	// Verifier, if not nil, must verify every checkpoint's signature.
	Verifier note.Verifier
	// Origin, if not empty, must be every checkpoint's origin line.
	Origin string
	// Timeout bounds waits for checkpoints. Default DefaultTimeout.
	Timeout time.Duration
	// Pending, if not nil, reports whether a failed Append left its
	// outcome unknown: the entry may still be committed (a replicated
	// backend that timed out waiting for consensus answers
	// ledger.ErrUnavailable while the entry sits in a mempool). The suite
	// then does not append it again (that could duplicate it) but waits,
	// up to Timeout, for the entry to appear and takes its index; only if
	// it never does is the append a failure. Nil: every error fails.
	Pending func(err error) bool
}

// RunBackend runs the whole suite against b.
func RunBackend(t *testing.T, b Backend) {
	if b.Timeout <= 0 {
		b.Timeout = DefaultTimeout
	}
	s := &suite{b: b}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Empty", s.testEmpty},
		{"AppendRead", s.testAppendRead},
		{"RejectsInvalid", s.testRejectsInvalid},
		{"ConcurrentAppends", s.testConcurrent},
		{"EntriesRanges", s.testEntriesRanges},
		{"Hashes", s.testHashes},
		{"Checkpoint", s.testCheckpoint},
		{"Proofs", s.testProofs},
		{"Follower", s.testFollower},
		{"AppendAfterClose", s.testAppendAfterClose},
		{"Restart", s.testRestart},
		{"CloseFlushes", s.testCloseFlushes},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	b Backend
}

func (s *suite) open(t *testing.T) ledger.Log {
	t.Helper()
	l := s.b.Open(t)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// Entry returns a distinct, valid test entry for n (bodies of several
// types). Backends may use it in their own tests.
func Entry(n int) ledger.Entry {
	var body any
	switch n % 4 {
	case 0:
		body = &ledger.AccessDecided{
			Requester: "org-b", RecordID: fmt.Sprintf("rec-%d", n), Patient: "ps_" + strings.Repeat("ab", 32),
			Category: "lab", Purpose: "TREAT", Decision: "permit", Reason: "consent", RequestID: fmt.Sprintf("req-%d", n),
		}
	case 1:
		body = &ledger.ConsentGranted{
			ConsentID: fmt.Sprintf("c-%d", n), Patient: "ps_" + strings.Repeat("cd", 32),
			Grantee: ledger.Grantee{Org: "org-b"}, Decision: "permit", Actions: []string{"read"},
			Purposes: []string{"TREAT"}, NotBefore: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
			NotAfter: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		}
	case 2:
		body = &ledger.RecordRegistered{
			RecordID: fmt.Sprintf("rec-%d", n), Holder: "org-a", Patient: "ps_" + strings.Repeat("ef", 32),
			Category: "lab", Commitment: strings.Repeat("0", 64),
		}
	default:
		body = &ledger.ConsentRevoked{ConsentID: fmt.Sprintf("c-%d", n), Patient: "ps_" + strings.Repeat("cd", 32)}
	}
	e, err := ledger.NewEntry(fmt.Sprintf("org-%d", n), body)
	if err != nil {
		panic(err)
	}
	return e
}

// callerTime is set on appended entries; the log must replace it.
var callerTime = time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)

func (s *suite) append(t *testing.T, l ledger.Log, e ledger.Entry) uint64 {
	t.Helper()
	e.Time = callerTime
	i, err := s.appendOrAwait(t, l, e)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return i
}

// appendOrAwait appends e; when the backend says the outcome is unknown
// (Backend.Pending) it waits for e to show up in the log instead of
// appending it again.
func (s *suite) appendOrAwait(t *testing.T, l ledger.Log, e ledger.Entry) (uint64, error) {
	i, err := l.Append(t.Context(), e)
	if err == nil || s.b.Pending == nil || !s.b.Pending(err) {
		return i, err
	}
	t.Logf("append outcome unknown (%v); waiting for the entry to be committed", err)
	want, werr := ledger.Encode(withTime(e, time.Time{}))
	if werr != nil {
		return 0, werr
	}
	deadline := time.Now().Add(s.b.Timeout)
	var seen uint64
	for {
		size, serr := l.Size(t.Context())
		if serr == nil && size > seen {
			raws, rerr := l.Entries(t.Context(), seen, size)
			if rerr == nil {
				for j, raw := range raws {
					if got, derr := ledger.Decode(raw); derr == nil {
						if b, _ := ledger.Encode(withTime(got, time.Time{})); bytes.Equal(b, want) {
							return seen + uint64(j), nil
						}
					}
				}
				seen = size
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%w; the entry was still not in the log after %v", err, s.b.Timeout)
		}
		// Poll: the suite has no portable way to wait for the next block.
		select {
		case <-t.Context().Done():
			return 0, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func withTime(e ledger.Entry, at time.Time) ledger.Entry {
	e.Time = at
	return e
}

// appendN appends Entry(first)…Entry(first+n-1) concurrently and returns
// their indices.
func (s *suite) appendN(t *testing.T, l ledger.Log, first, n int) []uint64 {
	t.Helper()
	idx := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := Entry(first + i)
			e.Time = callerTime
			idx[i], errs[i] = s.appendOrAwait(t, l, e)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return idx
}

func (s *suite) size(t *testing.T, l ledger.Log) uint64 {
	t.Helper()
	n, err := l.Size(t.Context())
	if err != nil {
		t.Fatalf("Size: %v", err)
	}
	return n
}

func (s *suite) entries(t *testing.T, l ledger.Log, start, end uint64) [][]byte {
	t.Helper()
	got, err := l.Entries(t.Context(), start, end)
	if err != nil {
		t.Fatalf("Entries(%d, %d): %v", start, end, err)
	}
	if uint64(len(got)) != end-start {
		t.Fatalf("Entries(%d, %d) returned %d entries", start, end, len(got))
	}
	return got
}

// checkEntry checks that raw is the canonical encoding of want with a
// log-assigned time.
func checkEntry(t *testing.T, index uint64, raw []byte, want ledger.Entry) {
	t.Helper()
	got, err := ledger.Decode(raw)
	if err != nil {
		t.Fatalf("entry %d does not decode: %v", index, err)
	}
	if got.Time.IsZero() || got.Time.Equal(callerTime) {
		t.Errorf("entry %d: Time = %v; the log must assign it", index, got.Time)
	}
	want.Time = got.Time
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entry %d mismatch (-want +got):\n%s", index, diff)
	}
}

func (s *suite) testEmpty(t *testing.T) {
	l := s.open(t)
	if n := s.size(t, l); n != 0 {
		t.Fatalf("Size of a new log = %d, want 0", n)
	}
	if got := s.entries(t, l, 0, 0); len(got) != 0 {
		t.Errorf("Entries(0, 0) = %d entries, want 0", len(got))
	}
	if _, err := l.Entries(t.Context(), 0, 1); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Entries(0, 1) on empty log: err = %v, want ErrNotFound", err)
	}
	raw, err := l.Checkpoint(t.Context())
	switch {
	case errors.Is(err, ledger.ErrNotFound):
	case err != nil:
		t.Errorf("Checkpoint on empty log: %v", err)
	default:
		c := s.openCheckpoint(t, raw)
		if c.Size != 0 || c.Hash != tlog.Hash(rfc6962.DefaultHasher.EmptyRoot()) {
			t.Errorf("empty log checkpoint = %+v, want size 0 and the empty root", c)
		}
	}
}

func (s *suite) testAppendRead(t *testing.T) {
	l := s.open(t)
	const n = 5
	for i := range n {
		if got := s.append(t, l, Entry(i)); got != uint64(i) {
			t.Fatalf("Append #%d returned index %d", i, got)
		}
		if size := s.size(t, l); size < uint64(i)+1 {
			t.Fatalf("after Append returned %d, Size = %d", i, size)
		}
	}
	raws := s.entries(t, l, 0, n)
	var last time.Time
	for i, raw := range raws {
		checkEntry(t, uint64(i), raw, Entry(i))
		e, _ := ledger.Decode(raw)
		if e.Time.Before(last) {
			t.Errorf("entry %d: Time %v before entry %d's %v", i, e.Time, i-1, last)
		}
		last = e.Time
		if e.Time.Location() != time.UTC {
			t.Errorf("entry %d: Time not UTC", i)
		}
	}
}

func (s *suite) testRejectsInvalid(t *testing.T) {
	l := s.open(t)
	s.append(t, l, Entry(0))
	good := Entry(1)
	wrongVersion := good
	wrongVersion.Version = 99
	wrongType := good
	wrongType.Type = ledger.TypeConsentRevoked
	unknownType := good
	unknownType.Type = "bogus.type"
	nilBody := good
	nilBody.Body = nil
	huge := Entry(4)
	huge.Body.(*ledger.AccessDecided).Reason = strings.Repeat("x", ledger.MaxEntrySize)
	notPointer := good
	notPointer.Body = ledger.AccessDecided{}
	cases := []struct {
		name string
		e    ledger.Entry
	}{
		{"wrong version", wrongVersion},
		{"type does not match body", wrongType},
		{"unknown type", unknownType},
		{"nil body", nilBody},
		{"body not a pointer", notPointer},
		{"too large", huge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.size(t, l)
			if i, err := l.Append(t.Context(), tc.e); err == nil {
				t.Fatalf("Append accepted an invalid entry at index %d", i)
			}
			if after := s.size(t, l); after != before {
				t.Errorf("Size %d -> %d after a rejected Append", before, after)
			}
		})
	}
	n := s.size(t, l)
	if got := s.append(t, l, good); got != n {
		t.Errorf("Append after rejections returned %d, want %d", got, n)
	}
	checkEntry(t, n, s.entries(t, l, n, n+1)[0], good)
}

func (s *suite) testConcurrent(t *testing.T) {
	l := s.open(t)
	const n = 200
	idx := s.appendN(t, l, 0, n)
	sorted := slices.Clone(idx)
	slices.Sort(sorted)
	for i, x := range sorted {
		if x != uint64(i) {
			t.Fatalf("indices of %d concurrent appends are not 0..%d: sorted[%d] = %d", n, n-1, i, x)
		}
	}
	if size := s.size(t, l); size != n {
		t.Fatalf("Size = %d, want %d", size, n)
	}
	raws := s.entries(t, l, 0, n)
	for i, x := range idx {
		checkEntry(t, x, raws[x], Entry(i))
	}
}

func (s *suite) testEntriesRanges(t *testing.T) {
	l := s.open(t)
	const n = 10
	s.appendN(t, l, 0, n)
	all := s.entries(t, l, 0, n)
	for _, r := range [][2]uint64{{0, 1}, {3, 7}, {9, 10}, {n, n}, {0, n}} {
		got := s.entries(t, l, r[0], r[1])
		if diff := cmp.Diff(all[r[0]:r[1]], got); diff != "" {
			t.Errorf("Entries(%d, %d) differs from the full read (-want +got):\n%s", r[0], r[1], diff)
		}
	}
	if _, err := l.Entries(t.Context(), 5, n+1); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Entries past the end: err = %v, want ErrNotFound", err)
	}
	if _, err := l.Entries(t.Context(), 6, 5); err == nil {
		t.Errorf("Entries(6, 5) succeeded, want an error")
	}
}

// rootOf computes the RFC 6962 root of entries with transparency-dev/merkle.
func rootOf(t *testing.T, entries [][]byte) tlog.Hash {
	t.Helper()
	if len(entries) == 0 {
		return tlog.Hash(rfc6962.DefaultHasher.EmptyRoot())
	}
	f := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := f.NewEmptyRange(0)
	for _, e := range entries {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(e), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return tlog.Hash(root)
}

func (s *suite) testHashes(t *testing.T) {
	l := s.open(t)
	const n = 37
	s.appendN(t, l, 0, n)
	raws := s.entries(t, l, 0, n)
	xs := make([]int64, n)
	for i := range xs {
		xs[i] = tlog.StoredHashIndex(0, int64(i))
	}
	leaves, err := l.ReadHashes(xs)
	if err != nil {
		t.Fatalf("ReadHashes(leaves): %v", err)
	}
	if len(leaves) != n {
		t.Fatalf("ReadHashes returned %d hashes, want %d", len(leaves), n)
	}
	for i, raw := range raws {
		if want := tlog.Hash(rfc6962.DefaultHasher.HashLeaf(raw)); leaves[i] != want {
			t.Errorf("leaf hash %d = %v, want %v", i, leaves[i], want)
		}
	}
	for _, size := range []int{1, 2, 3, 8, 13, 32, n} {
		got, err := tlog.TreeHash(int64(size), l)
		if err != nil {
			t.Fatalf("TreeHash(%d): %v", size, err)
		}
		if want := rootOf(t, raws[:size]); got != want {
			t.Errorf("TreeHash(%d) = %v, want %v", size, got, want)
		}
	}
}

func (s *suite) openCheckpoint(t *testing.T, raw []byte) ledger.Checkpoint {
	t.Helper()
	var c ledger.Checkpoint
	var err error
	if s.b.Verifier != nil {
		c, err = ledger.OpenCheckpoint(raw, s.b.Verifier, s.b.Origin)
	} else {
		c, err = ledger.ParseCheckpoint(raw)
		if err == nil && s.b.Origin != "" && c.Origin != s.b.Origin {
			err = fmt.Errorf("origin %q, want %q", c.Origin, s.b.Origin)
		}
	}
	if err != nil {
		t.Fatalf("checkpoint %q: %v", raw, err)
	}
	return c
}

// waitCheckpoint polls Checkpoint until one covers size entries.
func (s *suite) waitCheckpoint(t *testing.T, l ledger.Log, size uint64) ([]byte, ledger.Checkpoint) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), s.b.Timeout)
	defer cancel()
	for {
		raw, err := l.Checkpoint(ctx)
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("Checkpoint: %v", err)
		}
		if err == nil {
			if c := s.openCheckpoint(t, raw); c.Size >= size {
				return raw, c
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no checkpoint covering %d entries within %v", size, s.b.Timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *suite) testCheckpoint(t *testing.T) {
	l := s.open(t)
	const n = 21
	s.appendN(t, l, 0, n)
	raw, c := s.waitCheckpoint(t, l, n)
	size := s.size(t, l)
	if c.Size > size {
		t.Fatalf("checkpoint size %d exceeds Size %d", c.Size, size)
	}
	if want := rootOf(t, s.entries(t, l, 0, c.Size)); c.Hash != want {
		t.Errorf("checkpoint root %v, want %v", c.Hash, want)
	}
	if h, ok := l.(ledger.CheckpointHistory); ok {
		got, err := h.CheckpointAt(t.Context(), c.Size)
		if err != nil {
			t.Fatalf("CheckpointAt(%d): %v", c.Size, err)
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("CheckpointAt(%d) = %q, want the latest %q", c.Size, got, raw)
		}
		if _, err := h.CheckpointAt(t.Context(), c.Size+1000); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("CheckpointAt(beyond) err = %v, want ErrNotFound", err)
		}
	}
	if w, ok := l.(ledger.CheckpointWaiter); ok {
		s.appendN(t, l, n, 3)
		raw, err := w.WaitCheckpoint(t.Context(), n+3)
		if err != nil {
			t.Fatalf("WaitCheckpoint: %v", err)
		}
		if c := s.openCheckpoint(t, raw); c.Size < n+3 {
			t.Errorf("WaitCheckpoint(%d) returned size %d", n+3, c.Size)
		}
		if _, err := w.WaitCheckpoint(t.Context(), 1000); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("WaitCheckpoint beyond Size: err = %v, want ErrNotFound", err)
		}
	}
}

func (s *suite) testProofs(t *testing.T) {
	l := s.open(t)
	const n = 70
	s.appendN(t, l, 0, n)
	_, c := s.waitCheckpoint(t, l, n)
	raws := s.entries(t, l, 0, c.Size)
	ctx := t.Context()
	h := rfc6962.DefaultHasher
	sizes := []uint64{1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 63, 64, 65, c.Size}
	for _, size := range sizes {
		if size > c.Size {
			continue
		}
		root := rootOf(t, raws[:size])
		for index := uint64(0); index < size; index += 1 + index/3 {
			p, err := ledger.InclusionProof(ctx, l, index, size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", index, size, err)
			}
			if err := proof.VerifyInclusion(h, index, size, h.HashLeaf(raws[index]), hashes(p), root[:]); err != nil {
				t.Errorf("inclusion proof %d@%d does not verify: %v", index, size, err)
			}
		}
		for _, from := range sizes {
			if from > size {
				continue
			}
			p, err := ledger.ConsistencyProof(ctx, l, from, size)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", from, size, err)
			}
			old := rootOf(t, raws[:from])
			if err := proof.VerifyConsistency(h, from, size, hashes(p), old[:], root[:]); err != nil {
				t.Errorf("consistency proof %d -> %d does not verify: %v", from, size, err)
			}
		}
	}
	for _, bad := range [][2]uint64{{c.Size, c.Size}, {5, 3}} {
		if _, err := ledger.InclusionProof(ctx, l, bad[0], bad[1]); !errors.Is(err, ledger.ErrInvalidRange) {
			t.Errorf("InclusionProof(%d, %d): err = %v, want ErrInvalidRange", bad[0], bad[1], err)
		}
	}
	if _, err := ledger.ConsistencyProof(ctx, l, 5, 3); !errors.Is(err, ledger.ErrInvalidRange) {
		t.Errorf("ConsistencyProof(5, 3): err = %v, want ErrInvalidRange", err)
	}
	// Hashes beyond the log must not be served.
	if _, err := l.ReadHashes([]int64{tlog.StoredHashIndex(0, int64(s.size(t, l))+5)}); err == nil {
		t.Errorf("ReadHashes beyond the log succeeded")
	}
}

func hashes[T ~[]tlog.Hash](p T) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// fakeApplier records what a Follower applies.
type fakeApplier struct {
	mu      sync.Mutex
	next    uint64
	applied map[uint64]ledger.Entry
}

func (a *fakeApplier) Name() string { return "fake" }

func (a *fakeApplier) Next(context.Context) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.next, nil
}

func (a *fakeApplier) Apply(_ context.Context, first uint64, entries []ledger.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if first != a.next {
		return fmt.Errorf("Apply(%d) but next is %d", first, a.next)
	}
	for i, e := range entries {
		a.applied[first+uint64(i)] = e
	}
	a.next = first + uint64(len(entries))
	return nil
}

func (s *suite) testFollower(t *testing.T) {
	l := s.open(t)
	idx := s.appendN(t, l, 0, 12)
	a := &fakeApplier{applied: map[uint64]ledger.Entry{}}
	late := &fakeApplier{next: 7, applied: map[uint64]ledger.Entry{}}
	f := ledger.NewFollower(l, a, late)
	if err := f.Sync(t.Context(), 5); err != nil {
		t.Fatalf("Sync(5): %v", err)
	}
	if a.next != 5 || len(a.applied) != 5 {
		t.Fatalf("after Sync(5): next = %d, applied %d", a.next, len(a.applied))
	}
	i := s.append(t, l, Entry(100))
	if err := f.Sync(t.Context(), i+1); err != nil {
		t.Fatalf("Sync(%d): %v", i+1, err)
	}
	if a.next != i+1 || late.next != i+1 {
		t.Fatalf("after Sync(%d): next = %d and %d", i+1, a.next, late.next)
	}
	for j, x := range idx {
		if e, ok := a.applied[x]; !ok {
			t.Errorf("entry %d not applied", x)
		} else {
			checkEntry(t, x, mustEncode(t, e), Entry(j))
		}
	}
	checkEntry(t, i, mustEncode(t, a.applied[i]), Entry(100))
	if _, ok := late.applied[6]; ok {
		t.Errorf("a projection starting at 7 was given entry 6")
	}
	if err := f.SyncAll(t.Context()); err != nil {
		t.Fatalf("SyncAll: %v", err)
	}
}

func mustEncode(t *testing.T, e ledger.Entry) []byte {
	t.Helper()
	b, err := ledger.Encode(e)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

func (s *suite) testAppendAfterClose(t *testing.T) {
	l := s.b.Open(t)
	i := s.append(t, l, Entry(0))
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := l.Append(t.Context(), Entry(1)); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("Append after Close: err = %v, want ErrClosed", err)
	}
	// Reads of durable entries stay correct after a flush.
	if raws, err := l.Entries(t.Context(), i, i+1); err == nil {
		checkEntry(t, i, raws[0], Entry(0))
	}
}

func (s *suite) testRestart(t *testing.T) {
	if s.b.Reopen == nil {
		t.Skip("backend has no Reopen")
	}
	l := s.b.Open(t)
	const n = 9
	s.appendN(t, l, 0, n)
	before := s.entries(t, l, 0, n)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := l.Append(t.Context(), Entry(99)); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("Append after Close: err = %v, want ErrClosed", err)
	}
	l = s.b.Reopen(t, l)
	t.Cleanup(func() { _ = l.Close() })
	if size := s.size(t, l); size != n {
		t.Fatalf("Size after restart = %d, want %d", size, n)
	}
	if diff := cmp.Diff(before, s.entries(t, l, 0, n)); diff != "" {
		t.Errorf("entries changed across a restart (-before +after):\n%s", diff)
	}
	raw, err := l.Checkpoint(t.Context())
	if err != nil {
		t.Fatalf("Checkpoint after restart: %v", err)
	}
	if c := s.openCheckpoint(t, raw); c.Size != n {
		t.Errorf("checkpoint after Close and restart has size %d, want %d (Close publishes a final checkpoint)", c.Size, n)
	}
	if got := s.append(t, l, Entry(n)); got != n {
		t.Errorf("first Append after restart returned %d, want %d", got, n)
	}
	_, c := s.waitCheckpoint(t, l, n+1)
	if want := rootOf(t, s.entries(t, l, 0, c.Size)); c.Hash != want {
		t.Errorf("checkpoint root after restart %v, want %v", c.Hash, want)
	}
}

// testCloseFlushes closes the log while appends are in flight: every
// append that returned an index must survive, and none may be half-done.
func (s *suite) testCloseFlushes(t *testing.T) {
	if s.b.Reopen == nil {
		t.Skip("backend has no Reopen")
	}
	l := s.b.Open(t)
	const n = 64
	idx := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx[i], errs[i] = l.Append(t.Context(), Entry(i))
		}()
	}
	closeErr := l.Close()
	wg.Wait()
	if closeErr != nil {
		t.Fatalf("Close: %v", closeErr)
	}
	l = s.b.Reopen(t, l)
	t.Cleanup(func() { _ = l.Close() })
	size := s.size(t, l)
	raws := s.entries(t, l, 0, size)
	acked := 0
	for i := range n {
		if errs[i] != nil {
			if !errors.Is(errs[i], ledger.ErrClosed) {
				t.Errorf("Append racing Close: err = %v, want nil or ErrClosed", errs[i])
			}
			continue
		}
		acked++
		if idx[i] >= size {
			t.Errorf("acknowledged index %d lost: size after restart %d", idx[i], size)
			continue
		}
		checkEntry(t, idx[i], raws[idx[i]], Entry(i))
	}
	if uint64(acked) > size {
		t.Errorf("%d appends acknowledged but the log holds %d entries", acked, size)
	}
	// Whatever else is in the log must be one of the entries sent, once.
	seen := map[string]bool{}
	for x, raw := range raws {
		e, err := ledger.Decode(raw)
		if err != nil {
			t.Fatalf("entry %d does not decode: %v", x, err)
		}
		e.Time = time.Time{}
		key := string(mustEncode(t, e))
		if seen[key] {
			t.Errorf("entry %d appended twice", x)
		}
		seen[key] = true
		known := false
		for i := range n {
			if key == string(mustEncode(t, Entry(i))) {
				known = true
				break
			}
		}
		if !known {
			t.Errorf("entry %d was never appended", x)
		}
	}
}
