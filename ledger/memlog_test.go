package ledger

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// memLog is an in-memory log for tests of this package: tlog's stored
// hashes in a slice, a checkpoint signed on demand.
type memLog struct {
	mu      sync.Mutex
	entries [][]byte
	hashes  []tlog.Hash
	signer  note.Signer
	cpSize  uint64 // size of the published checkpoint
	// served, if set, receives the size of every checkpoint Checkpoint
	// serves (without blocking), so a test can tell that a poller has
	// looked.
	served chan uint64
}

func (m *memLog) add(data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	hs, err := tlog.StoredHashes(int64(len(m.entries)), data, tlog.HashReaderFunc(m.readLocked))
	if err != nil {
		panic(err)
	}
	m.hashes = append(m.hashes, hs...)
	m.entries = append(m.entries, data)
}

func (m *memLog) readLocked(xs []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(xs))
	for i, x := range xs {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("hash %d: %w", x, ErrNotFound)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memLog) ReadHashes(xs []int64) ([]tlog.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readLocked(xs)
}

func (m *memLog) Size(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.entries)), nil
}

func (m *memLog) Entries(_ context.Context, start, end uint64) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if start > end {
		return nil, ErrInvalidRange
	}
	if end > uint64(len(m.entries)) {
		return nil, ErrNotFound
	}
	return m.entries[start:end], nil
}

// publish makes the checkpoint cover every entry.
func (m *memLog) publish() {
	m.mu.Lock()
	m.cpSize = uint64(len(m.entries))
	m.mu.Unlock()
}

func (m *memLog) Checkpoint(ctx context.Context) ([]byte, error) {
	m.mu.Lock()
	size := m.cpSize
	m.mu.Unlock()
	root, err := TreeHash(ctx, m, size)
	if err != nil {
		return nil, err
	}
	cp, err := SignCheckpoint(Checkpoint{Origin: m.signer.Name(), Size: size, Hash: root}, m.signer)
	if err == nil && m.served != nil {
		select {
		case m.served <- size:
		default:
		}
	}
	return cp, err
}

var _ ReceiptLog = (*memLog)(nil)
