// Package ledgertest is the conformance suite for ledger backends. A
// backend's test opens a ledger.Node over a fresh store and runs it:
//
//	func TestConformance(t *testing.T) {
//		ledgertest.RunBackend(t, ledgertest.Backend{Open: ..., Reopen: ..., Verifier: v, Identity: id})
//	}
//
// The suite is backend-agnostic: it does not assume that Entry.Time is the
// wall clock, that appends are fast, that a checkpoint appears at once (it
// waits up to Backend.Timeout), or that a new log is empty (an embedded
// gateway registers itself as entry 0; a store with a genesis does not).
// Entries are compared in the domain view (Log.Read), leaves as the
// public v2 leaves (ledger.DecodeLeaf: the time set by the log, the seal
// that of the entry's header). Tree hashes and proofs are checked with an
// implementation independent of golang.org/x/mod/sumdb/tlog
// (transparency-dev/merkle).
package ledgertest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
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
	// Open returns a gateway's log (a ledger.Node) over a new, empty
	// store. The suite closes it; Open registers cleanups for anything
	// else (databases, nodes) with t.Cleanup.
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
	// Identity, if its NodeKey is set, is the identity of the gateway
	// whose node Open returns. The store tests (Envelopes,
	// RefusesBadEnvelopes) sign envelopes as it and append them to the
	// store directly (the log must implement Store() ledger.Store, as
	// ledger.Node does); they are skipped without it.
	Identity ledger.Identity
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
		{"Envelopes", s.testEnvelopes},
		{"RefusesBadEnvelopes", s.testBadEnvelopes},
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

// open opens a new log, registers Org on it and returns the log and the
// index of the first entry the test appends (everything before is the
// log's own registrations).
func (s *suite) open(t *testing.T) (ledger.Log, uint64) {
	t.Helper()
	l := s.b.Open(t)
	t.Cleanup(func() { _ = l.Close() })
	return l, s.register(t, l)
}

// register appends Org's registration to a new log and returns the size
// after it.
func (s *suite) register(t *testing.T, l ledger.Log) uint64 {
	t.Helper()
	return s.append(t, l, OrgEntry(Org)) + 1
}

// Org is the organisation Entry's bodies are written for (the holder of
// the records and the decider of the reads). The suite registers it on
// every new log: in a log whose gateways come from a genesis an org must
// be registered (and so homed at a gateway) before entries are written
// for it.
const Org = "org-a"

// OrgEntry returns the org.registered entry of a hospital with ID id (its
// home left empty: the appending gateway fills in itself).
func OrgEntry(id string) ledger.Entry {
	e, err := ledger.NewEntry(id, &ledger.OrgRegistered{
		ID: id, Name: "Hospital " + id, Kind: "hospital", Scopes: []string{"system/records.read"},
		JWKS: `{"keys":[]}`,
	})
	if err != nil {
		panic(err)
	}
	return e
}

// Pseudonym returns a patient pseudonym for tests (the form
// ledger.Pseudonymizer gives, no real patient's).
func Pseudonym(n int) string {
	return "ps_" + strings.Repeat(fmt.Sprintf("%02x", 0xa0+n%16), 32)
}

// Entry returns a distinct, valid test entry for n in the domain view, as
// Log.Read returns it once appended (bodies of several types; apart from
// Time and Author, which the log sets). Records and reads are Org's,
// consents the patient's. Backends may use it in their own tests.
func Entry(n int) ledger.Entry {
	var org string
	var body any
	switch n % 4 {
	case 0:
		org = Org
		body = &ledger.AccessDecided{
			Requester: "org-b", RecordID: fmt.Sprintf("rec-%d", n), Patient: Pseudonym(0),
			Category: "lab", Purpose: "TREAT", Decision: ledger.DecisionPermit, Reason: "permit.grant",
			GrantID: fmt.Sprintf("c-%d", n), RequestID: fmt.Sprintf("req-%d", n),
		}
	case 1:
		org = ledger.PatientOrg(Pseudonym(1))
		body = &ledger.ConsentGranted{
			ConsentID: fmt.Sprintf("c-%d", n), Patient: Pseudonym(1),
			Grantee: ledger.Grantee{Org: "org-b"}, Decision: ledger.DecisionPermit, Actions: []string{"read"},
			Purposes: []string{"TREAT"}, NotBefore: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
			NotAfter: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		}
	case 2:
		org = Org
		body = &ledger.RecordRegistered{
			RecordID: fmt.Sprintf("rec-%d", n), Holder: Org, Patient: Pseudonym(2),
			Category: "lab", Commitment: strings.Repeat("0", 64),
		}
	default:
		org = ledger.PatientOrg(Pseudonym(1))
		body = &ledger.ConsentRevoked{ConsentID: fmt.Sprintf("c-%d", n), Patient: Pseudonym(1)}
	}
	e, err := ledger.NewEntry(org, body)
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
// (Backend.Pending) it waits for e to show up in the log (read in the
// domain view) instead of appending it again.
func (s *suite) appendOrAwait(t *testing.T, l ledger.Log, e ledger.Entry) (uint64, error) {
	i, err := l.Append(t.Context(), e)
	if err == nil || s.b.Pending == nil || !s.b.Pending(err) {
		return i, err
	}
	t.Logf("append outcome unknown (%v); waiting for the entry to be committed", err)
	want := sameEntry(e)
	deadline := time.Now().Add(s.b.Timeout)
	var seen uint64
	for {
		size, serr := l.Size(t.Context())
		if serr == nil && size > seen {
			got, rerr := l.Read(t.Context(), seen, size)
			if rerr == nil {
				for j, g := range got {
					if cmp.Equal(sameEntry(g), want) {
						return seen + uint64(j), nil
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

// sameEntry strips what the log sets (time, author) from e.
func sameEntry(e ledger.Entry) ledger.Entry {
	e.Time, e.Author, e.Commitment = time.Time{}, "", ledger.Digest{}
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

func (s *suite) read(t *testing.T, l ledger.Log, start, end uint64) []ledger.Entry {
	t.Helper()
	got, err := l.Read(t.Context(), start, end)
	if err != nil {
		t.Fatalf("Read(%d, %d): %v", start, end, err)
	}
	if uint64(len(got)) != end-start {
		t.Fatalf("Read(%d, %d) returned %d entries", start, end, len(got))
	}
	return got
}

// storeOf returns the store behind l, if l exposes it (ledger.Node).
func storeOf(l ledger.Log) (ledger.Store, bool) {
	n, ok := l.(interface{ Store() ledger.Store })
	if !ok {
		return nil, false
	}
	return n.Store(), true
}

// gatewayOf returns the gateway ID of l's node, if l exposes it.
func gatewayOf(l ledger.Log) string {
	if n, ok := l.(interface{ Gateway() string }); ok {
		return n.Gateway()
	}
	return ""
}

// checkEntries checks the entries at the given indices: each reads (Log.Read)
// as want[index] with a time the log set, and its leaf (Entries) is the
// entry's public v2 leaf: same type, same time, and, when the store is at
// hand, the seal of the envelope's header.
func (s *suite) checkEntries(t *testing.T, l ledger.Log, want map[uint64]ledger.Entry) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	lo, hi := uint64(1<<63), uint64(0)
	for i := range want {
		lo, hi = min(lo, i), max(hi, i+1)
	}
	got := s.read(t, l, lo, hi)
	leaves := s.entries(t, l, lo, hi)
	var envs []ledger.Envelope
	if st, ok := storeOf(l); ok {
		var err error
		if envs, err = st.Envelopes(t.Context(), lo, hi); err != nil {
			t.Fatalf("Envelopes(%d, %d): %v", lo, hi, err)
		}
	}
	gw := gatewayOf(l)
	for i := lo; i < hi; i++ {
		w, ok := want[i]
		if !ok {
			continue
		}
		g := got[i-lo]
		if g.Time.IsZero() || g.Time.Equal(callerTime) {
			t.Errorf("entry %d: Time = %v; the log must assign it", i, g.Time)
		}
		if g.Time.Location() != time.UTC {
			t.Errorf("entry %d: Time %v not in UTC", i, g.Time)
		}
		if g.Author == "" || (gw != "" && g.Author != gw) {
			t.Errorf("entry %d: Author = %q, want the appending gateway %q", i, g.Author, gw)
		}
		if g.Commitment.IsZero() {
			t.Errorf("entry %d: no commitment in the domain view", i)
		}
		w.Time, w.Author, w.Commitment = g.Time, g.Author, g.Commitment
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("entry %d mismatch (-want +got):\n%s", i, diff)
		}
		leaf, err := ledger.DecodeLeaf(leaves[i-lo])
		if err != nil {
			t.Errorf("entry %d: leaf does not decode as a v2 leaf: %v", i, err)
			continue
		}
		if leaf.Type != w.Type || !leaf.Time.Equal(g.Time) {
			t.Errorf("entry %d: leaf %s at %v, entry %s at %v", i, leaf.Type, leaf.Time, w.Type, g.Time)
		}
		if envs != nil && ledger.Seal(envs[i-lo].Header) != leaf.Seal {
			t.Errorf("entry %d: the leaf's seal is not the seal of the stored header", i)
		}
	}
}

func (s *suite) checkEntry(t *testing.T, l ledger.Log, index uint64, want ledger.Entry) {
	t.Helper()
	s.checkEntries(t, l, map[uint64]ledger.Entry{index: want})
}

func (s *suite) testEmpty(t *testing.T) {
	l := s.b.Open(t)
	t.Cleanup(func() { _ = l.Close() })
	// A new log holds nothing but its gateways' registrations (an
	// embedded gateway registers itself as entry 0).
	n := s.size(t, l)
	for i, e := range s.read(t, l, 0, n) {
		if e.Type != ledger.TypeGatewayRegistered {
			t.Errorf("entry %d of a new log is %s; want only gateway registrations", i, e.Type)
		}
	}
	if got := s.entries(t, l, n, n); len(got) != 0 {
		t.Errorf("Entries(%d, %d) = %d entries, want 0", n, n, len(got))
	}
	if _, err := l.Entries(t.Context(), n, n+1); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Entries(%d, %d) on a new log: err = %v, want ErrNotFound", n, n+1, err)
	}
	if _, err := l.Read(t.Context(), n, n+1); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Read(%d, %d) on a new log: err = %v, want ErrNotFound", n, n+1, err)
	}
	raw, err := l.Checkpoint(t.Context())
	switch {
	case errors.Is(err, ledger.ErrNotFound):
	case err != nil:
		t.Errorf("Checkpoint on a new log: %v", err)
	default:
		c := s.openCheckpoint(t, raw)
		if c.Size > n {
			t.Errorf("checkpoint of a new log has size %d, the log %d", c.Size, n)
		}
		if c.Size == 0 && c.Hash != tlog.Hash(rfc6962.DefaultHasher.EmptyRoot()) {
			t.Errorf("empty checkpoint %+v, want the empty root", c)
		}
	}
	base := s.register(t, l)
	want := OrgEntry(Org)
	if gw := gatewayOf(l); gw != "" {
		// The appending gateway is the org's home.
		got := s.read(t, l, base-1, base)[0]
		if h := got.Body.(*ledger.OrgRegistered).Home; h.Gateway != gw || h.BaseURL == "" {
			t.Errorf("registered org's home %+v, want the appending gateway %q", h, gw)
		}
		want.Body.(*ledger.OrgRegistered).Home = got.Body.(*ledger.OrgRegistered).Home
	}
	s.checkEntry(t, l, base-1, want)
}

func (s *suite) testAppendRead(t *testing.T) {
	l, base := s.open(t)
	const n = 5
	want := map[uint64]ledger.Entry{}
	for i := range n {
		if got := s.append(t, l, Entry(i)); got != base+uint64(i) {
			t.Fatalf("Append #%d returned index %d, want %d", i, got, base+uint64(i))
		}
		if size := s.size(t, l); size < base+uint64(i)+1 {
			t.Fatalf("after Append returned %d, Size = %d", base+uint64(i), size)
		}
		want[base+uint64(i)] = Entry(i)
	}
	s.checkEntries(t, l, want)
	var last time.Time
	for i, e := range s.read(t, l, 0, base+n) {
		if e.Time.Before(last) {
			t.Errorf("entry %d: Time %v before entry %d's %v", i, e.Time, i-1, last)
		}
		last = e.Time
	}
}

func (s *suite) testRejectsInvalid(t *testing.T) {
	l, _ := s.open(t)
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
	huge.Body.(*ledger.AccessDecided).RequestID = strings.Repeat("x", ledger.MaxEntrySize)
	notPointer := good
	notPointer.Body = ledger.AccessDecided{}
	badReason := Entry(4)
	badReason.Body.(*ledger.AccessDecided).Reason = "deny.no-grant" // with decision permit
	holderNotOrg := Entry(6)
	holderNotOrg.Body.(*ledger.RecordRegistered).Holder = "Org A"
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
		{"reason of the other decision", badReason},
		{"holder not an org ID", holderNotOrg},
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
	s.checkEntry(t, l, n, good)
}

func (s *suite) testConcurrent(t *testing.T) {
	l, base := s.open(t)
	const n = 200
	idx := s.appendN(t, l, 0, n)
	sorted := slices.Clone(idx)
	slices.Sort(sorted)
	for i, x := range sorted {
		if x != base+uint64(i) {
			t.Fatalf("indices of %d concurrent appends are not %d..%d: sorted[%d] = %d", n, base, base+n-1, i, x)
		}
	}
	if size := s.size(t, l); size != base+n {
		t.Fatalf("Size = %d, want %d", size, base+n)
	}
	want := map[uint64]ledger.Entry{}
	for i, x := range idx {
		want[x] = Entry(i)
	}
	s.checkEntries(t, l, want)
}

func (s *suite) testEntriesRanges(t *testing.T) {
	l, base := s.open(t)
	const n = 10
	s.appendN(t, l, 0, n)
	end := base + n
	all := s.entries(t, l, 0, end)
	allRead := s.read(t, l, 0, end)
	for _, r := range [][2]uint64{{0, 1}, {base + 3, base + 7}, {end - 1, end}, {end, end}, {0, end}} {
		if diff := cmp.Diff(all[r[0]:r[1]], s.entries(t, l, r[0], r[1])); diff != "" {
			t.Errorf("Entries(%d, %d) differs from the full read (-want +got):\n%s", r[0], r[1], diff)
		}
		if diff := cmp.Diff(allRead[r[0]:r[1]], s.read(t, l, r[0], r[1])); diff != "" {
			t.Errorf("Read(%d, %d) differs from the full read (-want +got):\n%s", r[0], r[1], diff)
		}
	}
	if _, err := l.Entries(t.Context(), base+5, end+1); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Entries past the end: err = %v, want ErrNotFound", err)
	}
	if _, err := l.Entries(t.Context(), base+6, base+5); err == nil {
		t.Errorf("Entries(%d, %d) succeeded, want an error", base+6, base+5)
	}
	if _, err := l.Read(t.Context(), base+5, end+1); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Read past the end: err = %v, want ErrNotFound", err)
	}
	if _, err := l.Read(t.Context(), base+6, base+5); err == nil {
		t.Errorf("Read(%d, %d) succeeded, want an error", base+6, base+5)
	}
}

// storeTest returns the log's store and the identity to sign envelopes as,
// or skips the test.
func (s *suite) storeTest(t *testing.T, l ledger.Log) ledger.Store {
	t.Helper()
	if s.b.Identity.NodeKey == nil {
		t.Skip("Backend.Identity not set")
	}
	st, ok := storeOf(l)
	if !ok {
		t.Skip("the log does not expose its store")
	}
	return st
}

// testEnvelopes appends envelopes to the store directly and through the
// node: Envelopes returns what was appended, byte for byte, and the leaf
// the store made commits to the header with a time it set.
func (s *suite) testEnvelopes(t *testing.T) {
	l, base := s.open(t)
	st := s.storeTest(t, l)
	ctx := t.Context()
	s.appendN(t, l, 0, 4) // through the node
	var sent []ledger.Envelope
	for i := 4; i < 8; i++ {
		env, err := SignEnvelope(s.b.Identity, Entry(i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, env)
	}
	sent = append(sent, mustSign(t, s.b.Identity, OrgEntry("org-c"))) // in clear
	want := map[uint64]ledger.Entry{}
	first := s.size(t, l)
	for j, env := range sent {
		idx, err := st.AppendEnvelope(ctx, env)
		if err != nil {
			t.Fatalf("AppendEnvelope #%d: %v", j, err)
		}
		if idx != first+uint64(j) {
			t.Fatalf("AppendEnvelope #%d returned %d, want %d", j, idx, first+uint64(j))
		}
		if j < 4 {
			want[idx] = Entry(4 + j)
		} else {
			e := OrgEntry("org-c")
			e.Body.(*ledger.OrgRegistered).Home = ledger.GatewayHome{Gateway: s.b.Identity.Gateway, BaseURL: s.b.Identity.BaseURL}
			want[idx] = e
		}
	}
	end := first + uint64(len(sent))
	got, err := st.Envelopes(ctx, first, end)
	if err != nil {
		t.Fatalf("Envelopes(%d, %d): %v", first, end, err)
	}
	if len(got) != len(sent) {
		t.Fatalf("Envelopes(%d, %d) returned %d", first, end, len(got))
	}
	for j := range sent {
		if !sameEnvelope(got[j], sent[j]) {
			t.Errorf("envelope %d: stored %+v, appended %+v", first+uint64(j), got[j], sent[j])
		}
	}
	// Every envelope, through the node or not, checks and is sealed by
	// its leaf; the node reads the directly appended ones as it does its
	// own.
	all, err := st.Envelopes(ctx, 0, end)
	if err != nil {
		t.Fatal(err)
	}
	leaves := s.entries(t, l, 0, end)
	for i, env := range all {
		h, err := ledger.CheckEnvelope(env)
		if err != nil {
			t.Errorf("envelope %d does not check: %v", i, err)
			continue
		}
		leaf, err := ledger.DecodeLeaf(leaves[i])
		if err != nil {
			t.Errorf("leaf %d: %v", i, err)
			continue
		}
		if err := ledger.CheckLeaf(leaf, h); err != nil {
			t.Errorf("leaf %d does not seal its header: %v", i, err)
		}
		if leaf.Time.IsZero() {
			t.Errorf("leaf %d has no time", i)
		}
	}
	s.checkEntries(t, l, want)
	for _, r := range [][2]uint64{{base, end + 1}, {end + 1, end + 2}} {
		if _, err := st.Envelopes(ctx, r[0], r[1]); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("Envelopes(%d, %d) past the end: err = %v, want ErrNotFound", r[0], r[1], err)
		}
	}
	if _, err := st.Envelopes(ctx, base+2, base+1); err == nil {
		t.Errorf("Envelopes(%d, %d) succeeded, want an error", base+2, base+1)
	}
	if e, err := st.Envelopes(ctx, end, end); err != nil || len(e) != 0 {
		t.Errorf("Envelopes(%d, %d) = %d, %v; want none", end, end, len(e), err)
	}
}

func sameEnvelope(a, b ledger.Envelope) bool {
	return bytes.Equal(a.Header, b.Header) && bytes.Equal(a.Sealed, b.Sealed) && bytes.Equal(a.Clear, b.Clear)
}

func mustSign(t *testing.T, id ledger.Identity, e ledger.Entry) ledger.Envelope {
	t.Helper()
	env, err := SignEnvelope(id, e)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// testBadEnvelopes: an envelope that does not check (without any key: a
// header that is not the one its opening is bound to, a missing or extra
// opening, an opening in clear that must be sealed or the reverse,
// malformed bytes) is refused by the store and nothing is appended.
func (s *suite) testBadEnvelopes(t *testing.T) {
	l, _ := s.open(t)
	st := s.storeTest(t, l)
	id := s.b.Identity
	consent := mustSign(t, id, Entry(1))
	revoke := mustSign(t, id, Entry(3))
	reg := mustSign(t, id, OrgEntry("org-y"))
	reg2 := mustSign(t, id, OrgEntry("org-z"))
	o, err := ledger.OpenSealed(consent.Sealed, id.SealKey)
	if err != nil {
		t.Fatal(err)
	}
	clearConsent, err := ledger.EncodeOpening(o.WithoutSubject())
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(consent.Header)
	flipped[len(flipped)/2] ^= 1
	cases := []struct {
		name string
		env  ledger.Envelope
	}{
		{"header of another entry", ledger.Envelope{Header: revoke.Header, Sealed: consent.Sealed}},
		{"clear opening of another entry", ledger.Envelope{Header: reg.Header, Clear: reg2.Clear}},
		{"no opening", ledger.Envelope{Header: consent.Header}},
		{"sealed and clear", ledger.Envelope{Header: reg.Header, Sealed: consent.Sealed, Clear: reg.Clear}},
		{"sealed entry in clear", ledger.Envelope{Header: consent.Header, Clear: clearConsent}},
		{"registry entry sealed", ledger.Envelope{Header: reg.Header, Sealed: consent.Sealed}},
		{"header byte flipped", ledger.Envelope{Header: flipped, Sealed: consent.Sealed}},
		{"header not canonical", ledger.Envelope{Header: append(bytes.Clone(consent.Header), ' '), Sealed: consent.Sealed}},
		{"no header", ledger.Envelope{Sealed: consent.Sealed}},
		{"sealed not a JWE", ledger.Envelope{Header: consent.Header, Sealed: []byte(`{"protected":"x"}`)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.size(t, l)
			if i, err := st.AppendEnvelope(t.Context(), tc.env); err == nil {
				t.Fatalf("AppendEnvelope accepted it at index %d", i)
			}
			if after := s.size(t, l); after != before {
				t.Errorf("Size %d -> %d after a refused AppendEnvelope", before, after)
			}
		})
	}
	n := s.size(t, l)
	i, err := st.AppendEnvelope(t.Context(), consent)
	if err != nil || i != n {
		t.Fatalf("AppendEnvelope of the good envelope after the refusals: %d, %v; want %d", i, err, n)
	}
	s.checkEntry(t, l, n, Entry(1))
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
	l, base := s.open(t)
	const n = 37
	s.appendN(t, l, 0, n)
	end := int(base) + n
	raws := s.entries(t, l, 0, uint64(end))
	xs := make([]int64, end)
	for i := range xs {
		xs[i] = tlog.StoredHashIndex(0, int64(i))
	}
	leaves, err := l.ReadHashes(xs)
	if err != nil {
		t.Fatalf("ReadHashes(leaves): %v", err)
	}
	if len(leaves) != end {
		t.Fatalf("ReadHashes returned %d hashes, want %d", len(leaves), end)
	}
	for i, raw := range raws {
		if want := tlog.Hash(rfc6962.DefaultHasher.HashLeaf(raw)); leaves[i] != want {
			t.Errorf("leaf hash %d = %v, want %v", i, leaves[i], want)
		}
	}
	for _, size := range []int{1, 2, 3, 8, 13, 32, end} {
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
	l, base := s.open(t)
	const n = 21
	s.appendN(t, l, 0, n)
	raw, c := s.waitCheckpoint(t, l, base+n)
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
		raw, err := w.WaitCheckpoint(t.Context(), base+n+3)
		if err != nil {
			t.Fatalf("WaitCheckpoint: %v", err)
		}
		if c := s.openCheckpoint(t, raw); c.Size < base+n+3 {
			t.Errorf("WaitCheckpoint(%d) returned size %d", base+n+3, c.Size)
		}
		if _, err := w.WaitCheckpoint(t.Context(), 1000); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("WaitCheckpoint beyond Size: err = %v, want ErrNotFound", err)
		}
	}
}

func (s *suite) testProofs(t *testing.T) {
	l, base := s.open(t)
	const n = 70
	s.appendN(t, l, 0, n)
	_, c := s.waitCheckpoint(t, l, base+n)
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
	l, base := s.open(t)
	idx := s.appendN(t, l, 0, 12)
	a := &fakeApplier{applied: map[uint64]ledger.Entry{}}
	late := &fakeApplier{next: base + 7, applied: map[uint64]ledger.Entry{}}
	f := ledger.NewFollower(l, a, late)
	if err := f.Sync(t.Context(), base+5); err != nil {
		t.Fatalf("Sync(%d): %v", base+5, err)
	}
	if a.next != base+5 || uint64(len(a.applied)) != base+5 {
		t.Fatalf("after Sync(%d): next = %d, applied %d", base+5, a.next, len(a.applied))
	}
	i := s.append(t, l, Entry(100))
	if err := f.Sync(t.Context(), i+1); err != nil {
		t.Fatalf("Sync(%d): %v", i+1, err)
	}
	if a.next != i+1 || late.next != i+1 {
		t.Fatalf("after Sync(%d): next = %d and %d", i+1, a.next, late.next)
	}
	read := s.read(t, l, 0, i+1)
	for x, e := range a.applied {
		if diff := cmp.Diff(read[x], e); diff != "" {
			t.Errorf("entry %d applied differs from Read (-read +applied):\n%s", x, diff)
		}
	}
	want := map[uint64]ledger.Entry{i: Entry(100)}
	for j, x := range idx {
		if _, ok := a.applied[x]; !ok {
			t.Errorf("entry %d not applied", x)
		}
		want[x] = Entry(j)
	}
	s.checkEntries(t, l, want)
	if _, ok := late.applied[base+6]; ok {
		t.Errorf("a projection starting at %d was given entry %d", base+7, base+6)
	}
	if err := f.SyncAll(t.Context()); err != nil {
		t.Fatalf("SyncAll: %v", err)
	}
}

func (s *suite) testAppendAfterClose(t *testing.T) {
	l := s.b.Open(t)
	s.register(t, l)
	i := s.append(t, l, Entry(0))
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := l.Append(t.Context(), Entry(1)); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("Append after Close: err = %v, want ErrClosed", err)
	}
	// Reads of durable entries stay correct after a flush.
	if got, err := l.Read(t.Context(), i, i+1); err == nil {
		if diff := cmp.Diff(sameEntry(Entry(0)), sameEntry(got[0])); diff != "" {
			t.Errorf("entry %d read after Close (-want +got):\n%s", i, diff)
		}
	}
}

func (s *suite) testRestart(t *testing.T) {
	if s.b.Reopen == nil {
		t.Skip("backend has no Reopen")
	}
	l := s.b.Open(t)
	base := s.register(t, l)
	const n = 9
	s.appendN(t, l, 0, n)
	end := base + n
	before := s.entries(t, l, 0, end)
	beforeRead := s.read(t, l, 0, end)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := l.Append(t.Context(), Entry(99)); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("Append after Close: err = %v, want ErrClosed", err)
	}
	l = s.b.Reopen(t, l)
	t.Cleanup(func() { _ = l.Close() })
	if size := s.size(t, l); size != end {
		t.Fatalf("Size after restart = %d, want %d (a restart appends nothing)", size, end)
	}
	if diff := cmp.Diff(before, s.entries(t, l, 0, end)); diff != "" {
		t.Errorf("leaves changed across a restart (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(beforeRead, s.read(t, l, 0, end)); diff != "" {
		t.Errorf("entries read differently across a restart (-before +after):\n%s", diff)
	}
	raw, err := l.Checkpoint(t.Context())
	if err != nil {
		t.Fatalf("Checkpoint after restart: %v", err)
	}
	if c := s.openCheckpoint(t, raw); c.Size != end {
		t.Errorf("checkpoint after Close and restart has size %d, want %d (Close publishes a final checkpoint)", c.Size, end)
	}
	if got := s.append(t, l, Entry(n)); got != end {
		t.Errorf("first Append after restart returned %d, want %d", got, end)
	}
	s.checkEntry(t, l, end, Entry(n))
	_, c := s.waitCheckpoint(t, l, end+1)
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
	base := s.register(t, l)
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
	got := s.read(t, l, 0, size)
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
		if diff := cmp.Diff(sameEntry(Entry(i)), sameEntry(got[idx[i]])); diff != "" {
			t.Errorf("acknowledged entry %d (-want +got):\n%s", idx[i], diff)
		}
	}
	if uint64(acked) > size-base {
		t.Errorf("%d appends acknowledged but the log holds %d entries after its registrations", acked, size-base)
	}
	// Whatever else is in the log must be one of the entries sent, once.
	seen := map[int]bool{}
	for x := base; x < size; x++ {
		known := -1
		for i := range n {
			if cmp.Equal(sameEntry(got[x]), sameEntry(Entry(i))) {
				known = i
				break
			}
		}
		switch {
		case known < 0:
			t.Errorf("entry %d was never appended: %+v", x, got[x])
		case seen[known]:
			t.Errorf("entry %d appended twice", x)
		}
		seen[known] = true
	}
}

// OrgKey returns a fresh private ES256 signing JWK (kid, alg and use set)
// and the public JWK Set of it, as an org registers it.
func OrgKey(kid string) (jwk.Key, string) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	k, err := jwk.Import(raw)
	if err != nil {
		panic(err)
	}
	for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: jwa.ES256(), jwk.KeyUsageKey: jwk.ForSignature} {
		if err := k.Set(name, v); err != nil {
			panic(err)
		}
	}
	pub, err := k.PublicKey()
	if err != nil {
		panic(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		panic(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(err)
	}
	return k, string(b)
}

// KeyedOrgEntry is an org.registered for id with the inline JWK Set jwks.
func KeyedOrgEntry(id, jwks string) ledger.Entry {
	e, err := ledger.NewEntry(id, &ledger.OrgRegistered{
		ID: id, Name: "Hospital " + id, Kind: "hospital", Scopes: []string{"system/records.read"}, JWKS: jwks,
	})
	if err != nil {
		panic(err)
	}
	return e
}

// RotationEntry is an org.keys_rotated of org to the inline JWK Set jwks,
// following the keys set at index previous, signed with key (unsigned if
// key is nil).
func RotationEntry(org, jwks string, previous uint64, key jwk.Key) ledger.Entry {
	b := &ledger.OrgKeysRotated{Org: org, JWKS: jwks, Previous: previous}
	if key != nil {
		if err := ledger.SignRotation(b, key); err != nil {
			panic(err)
		}
	}
	e, err := ledger.NewEntry(org, b)
	if err != nil {
		panic(err)
	}
	return e
}
