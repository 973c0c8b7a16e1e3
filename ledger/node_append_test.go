package ledger_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// countingStore counts the envelopes a node reads back from its store:
// each one read is an entry the node checks and opens again.
type countingStore struct {
	*ledgertest.MemStore
	envelopes atomic.Int64
}

func (s *countingStore) Envelopes(ctx context.Context, start, end uint64) ([]ledger.Envelope, error) {
	s.envelopes.Add(int64(end - start))
	return s.MemStore.Envelopes(ctx, start, end)
}

// collector is an Applier that keeps what it was given.
type collector struct {
	mu      sync.Mutex
	next    uint64
	entries []ledger.Entry
}

func (c *collector) Name() string { return "collector" }

func (c *collector) Next(context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next, nil
}

func (c *collector) Apply(_ context.Context, first uint64, entries []ledger.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, entries...)
	c.next = first + uint64(len(entries))
	return nil
}

// TestOwnAppendsKeepAuthorityCurrent: a node's own appends advance its
// registry as they are acknowledged, so that nothing later (a read, the
// store's check before it signs a checkpoint) re-checks them from the
// store, even after they have left the node's cache. Appenders that
// finish out of order are applied in order.
func TestOwnAppendsKeepAuthorityCurrent(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{MemStore: &ledgertest.MemStore{}}
	n, err := ledger.OpenNode(ctx, store, ledgertest.Identity("gw-a"))
	if err != nil {
		t.Fatal(err)
	}
	const appenders, each = 8, 6
	var wg sync.WaitGroup
	errs := make(chan error, appenders)
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := n.Append(ctx, ledgertest.Entry(a*each+i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	size, err := n.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if size != 1+appenders*each {
		t.Fatalf("size %d", size)
	}
	if got := n.Authority().Next(); got != size {
		t.Errorf("the registry is at %d after %d entries were appended here, want %d", got, size, size)
	}
	if got := store.envelopes.Load(); got != 0 {
		t.Errorf("the node read %d envelopes back from its store while appending", got)
	}
}

// TestFollowerAfterAppendsOpensNothing: a gateway appends and syncs its
// projections after each append (and in bursts); the projections get
// every entry in the domain view, from the node's cache: no envelope is
// read back and opened again.
func TestFollowerAfterAppendsOpensNothing(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{MemStore: &ledgertest.MemStore{}}
	id := ledgertest.Identity("gw-a")
	n, err := ledger.OpenNode(ctx, store, id)
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	f := ledger.NewFollower(n, c)
	want := []ledger.Entry{}
	for i := range 40 {
		e := ledgertest.Entry(i)
		idx, err := n.Append(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
		if i%8 == 7 { // a burst of appends, then one sync
			continue
		}
		if err := f.Sync(ctx, idx+1); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := store.envelopes.Load(); got != 0 {
		t.Errorf("catching up after its own appends the node read %d envelopes back", got)
	}
	if len(c.entries) != 1+len(want) {
		t.Fatalf("%d entries applied, want %d", len(c.entries), 1+len(want))
	}
	for i, e := range want {
		got := c.entries[i+1]
		if got.Type != e.Type || got.Org != e.Org || got.Author != "gw-a" || got.Body == nil || got.Time.IsZero() {
			t.Errorf("entry %d: %+v, want %+v", i+1, got, e)
		}
	}
	// A node opening the same store (a restart) checks and opens every
	// entry from the store: its domain view is the one the appending
	// node served from its cache.
	again, err := ledger.OpenNode(ctx, store, id)
	if err != nil {
		t.Fatal(err)
	}
	if store.envelopes.Load() == 0 {
		t.Fatal("the restarted node read no envelope")
	}
	reread, err := again.Read(ctx, 0, uint64(len(c.entries)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(reread, c.entries) {
		for i := range reread {
			if !reflect.DeepEqual(reread[i], c.entries[i]) {
				t.Errorf("entry %d: opened from the store %+v, from the appending node %+v", i, reread[i], c.entries[i])
			}
		}
	}
}

// BenchmarkNodeAppend measures Node.Append over an in-memory store (no
// database): translate, sign, seal to the gateway's own key, check the
// envelope and cache the entry. Parallel with GOMAXPROCS appenders.
func BenchmarkNodeAppend(b *testing.B) {
	ctx := context.Background()
	n, err := ledger.OpenNode(ctx, &ledgertest.MemStore{}, ledgertest.Identity("gw-bench"))
	if err != nil {
		b.Fatal(err)
	}
	e := ledgertest.Entry(0)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := n.Append(ctx, e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

// cpuTime returns the CPU time the process has used (user and system):
// on a shared machine, CPU per operation varies less than time per
// operation.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkNodeAppendSync is a gateway's write path: append, then bring a
// projection up to the entry (Follower.Sync), one appender at a time.
func BenchmarkNodeAppendSync(b *testing.B) {
	ctx := context.Background()
	n, err := ledger.OpenNode(ctx, &ledgertest.MemStore{}, ledgertest.Identity("gw-bench"))
	if err != nil {
		b.Fatal(err)
	}
	f := ledger.NewFollower(n, &discard{})
	e := ledgertest.Entry(0)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		idx, err := n.Append(ctx, e)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(ctx, idx+1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

// discard is an Applier that only advances.
type discard struct{ next uint64 }

func (d *discard) Name() string                         { return "discard" }
func (d *discard) Next(context.Context) (uint64, error) { return d.next, nil }
func (d *discard) Apply(_ context.Context, first uint64, entries []ledger.Entry) error {
	d.next = first + uint64(len(entries))
	return nil
}

// tamperingStore changes one envelope's sealed opening as it is read.
type tamperingStore struct {
	*countingStore
	on atomic.Bool
	at uint64
}

func (s *tamperingStore) Envelopes(ctx context.Context, start, end uint64) ([]ledger.Envelope, error) {
	envs, err := s.countingStore.Envelopes(ctx, start, end)
	if err != nil || !s.on.Load() || s.at < start || s.at >= end {
		return envs, err
	}
	envs = append([]ledger.Envelope(nil), envs...)
	e := envs[s.at-start]
	sealed := append([]byte(nil), e.Sealed...)
	sealed[len(sealed)/2] ^= 1
	e.Sealed = sealed
	envs[s.at-start] = e
	return envs, nil
}

// TestReopenBatch: entries no longer in the node's cache are opened again
// from the store, many at once (on every CPU, outside the node's lock),
// and give exactly the domain view the appending node served; an altered
// envelope in the batch is refused naming its index, even with good
// entries opened around it.
func TestReopenBatch(t *testing.T) {
	ctx := context.Background()
	count := 8 * ledger.MinParallelOpens
	store := &countingStore{MemStore: &ledgertest.MemStore{}}
	tampered := &tamperingStore{countingStore: store, at: uint64(count / 2)}
	n, err := ledger.OpenNode(ctx, tampered, ledgertest.Identity("gw-a"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range count {
		if _, err := n.Append(ctx, ledgertest.Entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	size, err := n.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cached, err := n.Read(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	if store.envelopes.Load() != 0 {
		t.Fatalf("the appending node read %d envelopes back", store.envelopes.Load())
	}
	n.ForgetOpened()
	var wg sync.WaitGroup
	reads := make([][]ledger.Entry, 4)
	errs := make([]error, len(reads))
	for r := range reads { // concurrent readers of the same batch
		wg.Go(func() { reads[r], errs[r] = n.Read(ctx, 0, size) })
	}
	wg.Wait()
	if store.envelopes.Load() < int64(size)-1 {
		t.Fatalf("%d envelopes read back, want the batch (%d) opened again", store.envelopes.Load(), size)
	}
	for r := range reads {
		if errs[r] != nil {
			t.Fatalf("reader %d: %v", r, errs[r])
		}
		if !reflect.DeepEqual(reads[r], cached) {
			for i := range cached {
				if !reflect.DeepEqual(reads[r][i], cached[i]) {
					t.Errorf("reader %d, entry %d: opened again %+v, served from the cache %+v", r, i, reads[r][i], cached[i])
				}
			}
		}
	}

	tampered.on.Store(true)
	n.ForgetOpened()
	_, err = n.Read(ctx, 0, size)
	var ve *ledger.VerifyError
	if !errors.As(err, &ve) || ve.Index != tampered.at {
		t.Fatalf("an altered envelope at %d: %v, want a VerifyError naming it", tampered.at, err)
	}
}

// TestNodeSealsToItselfInSelfSlot: an embedded node (its own gateway the
// only recipient) seals each entry in the A256KW self slot alone (the
// flattened serialization with {"alg":"A256KW","enc":"A256GCM"}), which
// its sealing key opens and nobody else's.
func TestNodeSealsToItselfInSelfSlot(t *testing.T) {
	ctx := context.Background()
	store := &ledgertest.MemStore{}
	id := ledgertest.Identity("gw-self")
	n, err := ledger.OpenNode(ctx, store, id)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	idx, err := n.Append(ctx, ledgertest.Entry(0))
	if err != nil {
		t.Fatal(err)
	}
	envs, err := store.Envelopes(ctx, idx, idx+1)
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		Protected  string            `json:"protected"`
		Recipients []json.RawMessage `json:"recipients"`
	}
	if err := json.Unmarshal(envs[0].Sealed, &w); err != nil {
		t.Fatal(err)
	}
	prot, err := base64.RawURLEncoding.DecodeString(w.Protected)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"alg":"A256KW","enc":"A256GCM"}`; string(prot) != want || w.Recipients != nil {
		t.Fatalf("protected header %s with %d recipients, want %s alone", prot, len(w.Recipients), want)
	}
	if _, err := ledger.OpenSealed(envs[0].Sealed, id.SealKey); err != nil {
		t.Errorf("the node's key does not open its entry: %v", err)
	}
	other := ledgertest.Identity("gw-other")
	if _, err := ledger.OpenSealed(envs[0].Sealed, other.SealKey); !errors.Is(err, ledger.ErrNotRecipient) {
		t.Errorf("another gateway's key: %v, want ErrNotRecipient", err)
	}
	// A node opened again on the store reads the entry back.
	again, err := ledger.OpenNode(ctx, store, id)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got, err := again.Read(ctx, idx, idx+1)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Body == nil {
		t.Error("the reopened node reads its entry with no body")
	}
}
