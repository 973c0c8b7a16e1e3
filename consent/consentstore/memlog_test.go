package consentstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/healthgw/healthgw/ledger"
)

// memLog is an in-memory ledger.Reader holding canonical encodings, as a
// real backend does.
type memLog struct {
	mu      sync.Mutex
	entries [][]byte
	clock   time.Time
}

var _ ledger.Reader = (*memLog)(nil)

func newMemLog() *memLog {
	return &memLog{clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// append encodes an entry with the log's clock (one second and a few
// nanoseconds per entry, so that times need their full precision) and
// returns its index.
func (l *memLog) append(t testing.TB, org string, body any) uint64 {
	t.Helper()
	e, err := ledger.NewEntry(org, body)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clock = l.clock.Add(time.Second + 7*time.Nanosecond)
	e.Time = l.clock
	b, err := ledger.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	l.entries = append(l.entries, b)
	return uint64(len(l.entries) - 1)
}

// timeOf returns the time the log gave entry i.
func (l *memLog) timeOf(t testing.TB, i uint64) time.Time {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, err := ledger.Decode(l.entries[i])
	if err != nil {
		t.Fatal(err)
	}
	return e.Time
}

func (l *memLog) Size(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.entries)), nil
}

func (l *memLog) Entries(_ context.Context, start, end uint64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if end > uint64(len(l.entries)) || start > end {
		return nil, fmt.Errorf("entries [%d,%d) of %d: %w", start, end, len(l.entries), ledger.ErrNotFound)
	}
	return append([][]byte(nil), l.entries[start:end]...), nil
}
