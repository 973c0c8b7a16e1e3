package registry_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/healthgw/healthgw/ledger"
)

// memLog is an in-memory ledger.Appender and ledger.Reader for tests.
type memLog struct {
	mu      sync.Mutex
	entries [][]byte
	now     time.Time
}

func (l *memLog) Append(_ context.Context, e ledger.Entry) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = l.now.Add(time.Second)
	e.Time = l.now
	b, err := ledger.Encode(e)
	if err != nil {
		return 0, err
	}
	l.entries = append(l.entries, b)
	return uint64(len(l.entries) - 1), nil
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
		return nil, fmt.Errorf("%w: [%d,%d)", ledger.ErrNotFound, start, end)
	}
	return append([][]byte(nil), l.entries[start:end]...), nil
}
