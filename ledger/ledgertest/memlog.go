package ledgertest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// MemLog is the one in-memory ledger log for tests: it appends canonical
// encodings as a real backend does, keeps tlog's stored hashes (for
// proofs and tiles) and signs a checkpoint on demand when Signer is set.
// It is safe for concurrent use. The zero value is an empty log whose
// entries get the wall-clock time.
type MemLog struct {
	// Clock gives each appended entry its time (called with the log's
	// lock held); nil is the wall clock in UTC. See StepClock.
	Clock func() time.Time
	// Fail, if set, is called (without the lock held) before each
	// append; a non-nil error fails the append.
	Fail func(e ledger.Entry) error
	// Signer signs checkpoints (Checkpoint needs it).
	Signer note.Signer
	// OnCheckpoint, if set, is called with the size of every checkpoint
	// Checkpoint serves, so a test can tell that a poller has looked.
	OnCheckpoint func(size uint64)

	mu      sync.Mutex
	entries [][]byte
	hashes  []tlog.Hash
	cpSize  uint64 // size of the published checkpoint
}

var (
	_ ledger.Appender   = (*MemLog)(nil)
	_ ledger.ReceiptLog = (*MemLog)(nil)
)

// StepClock returns a clock that starts one step after start and moves
// one step per call.
func StepClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	t := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(step)
		return t
	}
}

// Append implements ledger.Appender: it stamps e with the clock, encodes
// it canonically and adds it.
func (m *MemLog) Append(ctx context.Context, e ledger.Entry) (uint64, error) {
	if m.Fail != nil {
		if err := m.Fail(e); err != nil {
			return 0, err
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Clock != nil {
		e.Time = m.Clock()
	} else {
		e.Time = time.Now().UTC()
	}
	b, err := ledger.Encode(e)
	if err != nil {
		return 0, err
	}
	return m.addLocked(b)
}

// AppendRaw adds data as the next entry without decoding it (for tests of
// readers that must cope with any bytes) and returns its index.
func (m *MemLog) AppendRaw(data []byte) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addLocked(append([]byte(nil), data...))
}

func (m *MemLog) addLocked(data []byte) (uint64, error) {
	n := int64(len(m.entries))
	hs, err := tlog.StoredHashes(n, data, tlog.HashReaderFunc(m.readLocked))
	if err != nil {
		return 0, fmt.Errorf("memlog: hash entry %d: %w", n, err)
	}
	m.hashes = append(m.hashes, hs...)
	m.entries = append(m.entries, data)
	return uint64(n), nil
}

func (m *MemLog) readLocked(xs []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(xs))
	for i, x := range xs {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("hash %d: %w", x, ledger.ErrNotFound)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

// ReadHashes implements tlog.HashReader.
func (m *MemLog) ReadHashes(xs []int64) ([]tlog.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readLocked(xs)
}

// Size implements ledger.Reader.
func (m *MemLog) Size(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.entries)), nil
}

// Entries implements ledger.Reader.
func (m *MemLog) Entries(_ context.Context, start, end uint64) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if start > end {
		return nil, fmt.Errorf("entries [%d,%d): %w", start, end, ledger.ErrInvalidRange)
	}
	if end > uint64(len(m.entries)) {
		return nil, fmt.Errorf("entries [%d,%d) of %d: %w", start, end, len(m.entries), ledger.ErrNotFound)
	}
	return append([][]byte(nil), m.entries[start:end]...), nil
}

// Decoded returns every entry, decoded.
func (m *MemLog) Decoded() ([]ledger.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ledger.Entry, len(m.entries))
	for i, b := range m.entries {
		e, err := ledger.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		out[i] = e
	}
	return out, nil
}

// Publish makes the checkpoint cover every entry.
func (m *MemLog) Publish() {
	m.mu.Lock()
	m.cpSize = uint64(len(m.entries))
	m.mu.Unlock()
}

// Checkpoint implements ledger.Prover: the last published size, signed
// with Signer.
func (m *MemLog) Checkpoint(ctx context.Context) ([]byte, error) {
	if m.Signer == nil {
		return nil, fmt.Errorf("memlog: no signer: %w", ledger.ErrNotFound)
	}
	m.mu.Lock()
	size := m.cpSize
	m.mu.Unlock()
	root, err := ledger.TreeHash(ctx, m, size)
	if err != nil {
		return nil, err
	}
	cp, err := ledger.SignCheckpoint(ledger.Checkpoint{Origin: m.Signer.Name(), Size: size, Hash: root}, m.Signer)
	if err == nil && m.OnCheckpoint != nil {
		m.OnCheckpoint(size)
	}
	return cp, err
}
