package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// recorder is a fake ledger.Applier with function fields for failures.
type recorder struct {
	mu      sync.Mutex
	name    string
	next    uint64
	applied []uint64 // indices, in the order applied
	calls   int
	failAt  func(first uint64) error
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Next(context.Context) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next, nil
}

func (r *recorder) Apply(_ context.Context, first uint64, entries []ledger.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.failAt != nil {
		if err := r.failAt(first); err != nil {
			return err
		}
	}
	if first != r.next {
		return fmt.Errorf("apply %d, want %d", first, r.next)
	}
	for i, e := range entries {
		want := fmt.Sprintf("c%d", first+uint64(i))
		if got := e.Body.(*ledger.ConsentRevoked).ConsentID; got != want {
			return fmt.Errorf("entry %d is %s, want %s", first+uint64(i), got, want)
		}
		r.applied = append(r.applied, first+uint64(i))
	}
	r.next = first + uint64(len(entries))
	return nil
}

func (r *recorder) state() (uint64, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next, len(r.applied)
}

func TestFollowerSync(t *testing.T) {
	const n = ledger.FollowBatch*2 + 10
	m, _ := filledLog(t, n)
	tests := []struct {
		name      string
		start     uint64
		syncTo    uint64
		wantNext  uint64
		wantCalls int
	}{
		{"nothing to do", 0, 0, 0, 0},
		{"one batch", 0, 5, 5, 1},
		{"several batches", 0, n, n, 3},
		{"from the middle", 1000, 1030, 1030, 1},
		{"already ahead", 20, 10, 20, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{name: "r", next: tc.start}
			f := ledger.NewFollower(m, r)
			if err := f.Sync(t.Context(), tc.syncTo); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			next, applied := r.state()
			if next != tc.wantNext || r.calls != tc.wantCalls {
				t.Errorf("next %d after %d calls, want %d after %d", next, r.calls, tc.wantNext, tc.wantCalls)
			}
			if want := int(tc.wantNext - min(tc.start, tc.wantNext)); applied != want {
				t.Errorf("applied %d entries, want %d", applied, want)
			}
			for i, x := range r.applied {
				if x != tc.start+uint64(i) {
					t.Fatalf("applied[%d] = %d: out of order", i, x)
				}
			}
		})
	}
}

func TestFollowerErrors(t *testing.T) {
	m, _ := filledLog(t, 10)
	boom := errors.New("boom")
	r := &recorder{name: "consent", failAt: func(uint64) error { return boom }}
	f := ledger.NewFollower(m, r)
	err := f.Sync(t.Context(), 10)
	if !errors.Is(err, boom) {
		t.Fatalf("Sync: err = %v, want boom", err)
	}
	if next, _ := r.state(); next != 0 {
		t.Errorf("a failed Apply advanced next to %d", next)
	}
	if err := ledger.NewFollower(m, &recorder{name: "x"}).Sync(t.Context(), 11); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Sync beyond the log: err = %v, want ledger.ErrNotFound", err)
	}
	// A corrupt entry stops the projection.
	bad := &ledgertest.MemLog{Signer: m.Signer}
	mustAdd(t, bad, []byte(`{"not":"an entry"}`))
	if err := ledger.NewFollower(bad, &recorder{name: "x"}).Sync(t.Context(), 1); !errors.Is(err, ledger.ErrMalformed) {
		t.Errorf("Sync over a corrupt entry: err = %v, want ledger.ErrMalformed", err)
	}
}

func TestFollowerRun(t *testing.T) {
	m, _ := filledLog(t, 3)
	a := &recorder{name: "a"}
	b := &recorder{name: "b"}
	f := ledger.NewFollower(m, a, b)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		f.Run(ctx, time.Millisecond, slog.New(slog.DiscardHandler))
		close(done)
	}()
	// Entries appended "elsewhere" reach both projections.
	for i := 3; i < 6; i++ {
		e, _ := ledger.NewEntry("org", &ledger.ConsentRevoked{ConsentID: fmt.Sprintf("c%d", i), Patient: "ps"})
		if _, err := m.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(30 * time.Second)
	for {
		na, _ := a.state()
		nb, _ := b.state()
		if na == 6 && nb == 6 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("Run did not catch up: a at %d, b at %d", na, nb)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	<-done
}

// countingSource counts the entries read from a log.
type countingSource struct {
	ledger.Source
	mu   sync.Mutex
	read uint64
}

func (c *countingSource) Read(ctx context.Context, start, end uint64) ([]ledger.Entry, error) {
	c.mu.Lock()
	c.read += end - start
	c.mu.Unlock()
	return c.Source.Read(ctx, start, end)
}

// TestFollowerReadsOnce: projections at different positions are each fed
// from their own next index, and every entry is read from the log once
// for all of them.
func TestFollowerReadsOnce(t *testing.T) {
	const n = ledger.FollowBatch*2 + 7
	m, _ := filledLog(t, n)
	src := &countingSource{Source: m}
	a := &recorder{name: "a"}
	b := &recorder{name: "b", next: ledger.FollowBatch / 2}
	c := &recorder{name: "c", next: n}
	f := ledger.NewFollower(src, a, b, c)
	if err := f.Sync(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*recorder{a, b, c} {
		if next, _ := r.state(); next != n {
			t.Errorf("%s at %d, want %d", r.name, next, n)
		}
	}
	if _, applied := b.state(); applied != n-ledger.FollowBatch/2 {
		t.Errorf("b applied %d entries, want %d", applied, n-ledger.FollowBatch/2)
	}
	if c.calls != 0 {
		t.Errorf("c, caught up, was called %d times", c.calls)
	}
	if src.read != n {
		t.Errorf("read %d entries from the log for %d entries and 3 projections, want each once", src.read, n)
	}
	if got, err := f.Applied(t.Context()); err != nil || got != n {
		t.Errorf("Applied = %d, %v; want %d", got, err, n)
	}
}

// TestFollowerSyncConcurrent: concurrent Syncs (a query's, the background
// follower's) apply every entry exactly once, in order.
func TestFollowerSyncConcurrent(t *testing.T) {
	const n = ledger.FollowBatch*2 + 3
	m, _ := filledLog(t, n)
	r := &recorder{name: "r"}
	f := ledger.NewFollower(m, r)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() { errs <- f.Sync(t.Context(), uint64(n-i*300)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	next, applied := r.state()
	if next != n || applied != n {
		t.Fatalf("next %d, applied %d; want %d, %d", next, applied, n, n)
	}
	for i, x := range r.applied {
		if x != uint64(i) {
			t.Fatalf("applied[%d] = %d: out of order or twice", i, x)
		}
	}
}
