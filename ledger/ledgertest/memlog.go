package ledgertest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// MemLog is the one in-memory ledger log for tests: a ledger.Node (it
// signs, seals and checks entries as a gateway does) over a MemStore,
// which keeps leaves, envelopes and tlog's stored hashes (for proofs and
// tiles) and signs a checkpoint on demand when Signer is set. It is safe
// for concurrent use. The zero value is an empty log whose entries get
// the wall-clock time, written by a gateway with fresh keys (Identity).
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

	once  sync.Once
	store *MemStore
	node  *ledger.Node
	err   error
}

var (
	_ ledger.Log        = (*MemLog)(nil)
	_ ledger.ReceiptLog = (*MemLog)(nil)
	_ ledger.Store      = (*MemStore)(nil)
)

func (m *MemLog) init() error {
	m.once.Do(func() {
		id := Identity("test-gateway")
		m.store = &MemStore{
			Clock: func() time.Time {
				if m.Clock != nil {
					return m.Clock()
				}
				return time.Now().UTC()
			},
			Genesis: map[string]ledger.GatewayKeys{id.Gateway: {
				Public: id.NodeKey.Public().(ed25519.PublicKey), Seal: id.SealKey.PublicKey(), BaseURL: id.BaseURL,
			}},
		}
		m.store.signer = func() note.Signer { return m.Signer }
		m.store.onCheckpoint = func(size uint64) {
			if m.OnCheckpoint != nil {
				m.OnCheckpoint(size)
			}
		}
		m.node, m.err = ledger.OpenNode(context.Background(), m.store, id)
	})
	return m.err
}

// Node returns the gateway node behind m.
func (m *MemLog) Node() *ledger.Node {
	if err := m.init(); err != nil {
		panic(err)
	}
	return m.node
}

// MemStore returns the store behind m (to tamper with in tests).
func (m *MemLog) MemStore() *MemStore {
	if err := m.init(); err != nil {
		panic(err)
	}
	return m.store
}

// Identity returns a gateway identity with fresh keys and a fresh
// pseudonym secret, for tests.
func Identity(gateway string) ledger.Identity {
	_, nodeKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	sealKey, err := ledger.NewSealKey()
	if err != nil {
		panic(err)
	}
	secret := make([]byte, ledger.PseudonymKeySize)
	if _, err := rand.Read(secret); err != nil {
		panic(err)
	}
	ps, err := ledger.NewPseudonymizer(secret)
	if err != nil {
		panic(err)
	}
	return ledger.Identity{Gateway: gateway, BaseURL: "http://" + gateway + ".test", NodeKey: nodeKey, SealKey: sealKey, Pseudonyms: ps}
}

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

// Append implements ledger.Appender: Fail, then the node's Append.
func (m *MemLog) Append(ctx context.Context, e ledger.Entry) (uint64, error) {
	if m.Fail != nil {
		if err := m.Fail(e); err != nil {
			return 0, err
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := m.init(); err != nil {
		return 0, err
	}
	return m.node.Append(ctx, e)
}

// Read implements ledger.Source.
func (m *MemLog) Read(ctx context.Context, start, end uint64) ([]ledger.Entry, error) {
	if err := m.init(); err != nil {
		return nil, err
	}
	return m.node.Read(ctx, start, end)
}

// ReadHashes implements tlog.HashReader.
func (m *MemLog) ReadHashes(xs []int64) ([]tlog.Hash, error) {
	if err := m.init(); err != nil {
		return nil, err
	}
	return m.store.ReadHashes(xs)
}

// Size implements ledger.Reader.
func (m *MemLog) Size(ctx context.Context) (uint64, error) {
	if err := m.init(); err != nil {
		return 0, err
	}
	return m.store.Size(ctx)
}

// Entries implements ledger.Reader: the leaves.
func (m *MemLog) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	if err := m.init(); err != nil {
		return nil, err
	}
	return m.store.Entries(ctx, start, end)
}

// Decoded returns every entry in the domain view.
func (m *MemLog) Decoded() ([]ledger.Entry, error) {
	ctx := context.Background()
	n, err := m.Size(ctx)
	if err != nil {
		return nil, err
	}
	return m.Read(ctx, 0, n)
}

// Publish makes the checkpoint cover every entry.
func (m *MemLog) Publish() {
	if err := m.init(); err != nil {
		panic(err)
	}
	m.store.Publish()
}

// Checkpoint implements ledger.Prover: the last published size, signed
// with Signer.
func (m *MemLog) Checkpoint(ctx context.Context) ([]byte, error) {
	if err := m.init(); err != nil {
		return nil, err
	}
	return m.store.Checkpoint(ctx)
}

// Close implements ledger.Log.
func (m *MemLog) Close() error { return nil }

// MemStore is an in-memory ledger.Store.
type MemStore struct {
	// Clock gives each leaf its time (called with the store's lock
	// held); nil is the wall clock in UTC.
	Clock func() time.Time
	// Genesis, if set, are the store's genesis gateways.
	Genesis map[string]ledger.GatewayKeys
	// Signer signs the checkpoints of a MemStore used on its own (a
	// MemLog's store uses the MemLog's).
	Signer note.Signer

	signer       func() note.Signer
	onCheckpoint func(uint64)

	mu        sync.Mutex
	leaves    [][]byte
	envelopes []ledger.Envelope
	hashes    []tlog.Hash
	cpSize    uint64 // size of the published checkpoint
}

// GenesisGateways implements ledger.GenesisGateways when Genesis is set.
func (m *MemStore) GenesisGateways() map[string]ledger.GatewayKeys { return m.Genesis }

// AppendEnvelope implements ledger.Store.
func (m *MemStore) AppendEnvelope(ctx context.Context, env ledger.Envelope) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if _, err := ledger.CheckEnvelope(env); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := time.Now().UTC()
	if m.Clock != nil {
		t = m.Clock()
	}
	leaf, err := ledger.NewLeafFor(env.Header, t)
	if err != nil {
		return 0, err
	}
	return m.addLocked(leaf, env)
}

// AppendRaw adds a leaf and an envelope as the next entry without checking
// them (for tests of readers that must cope with any bytes) and returns
// its index.
func (m *MemStore) AppendRaw(leaf []byte, env ledger.Envelope) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addLocked(append([]byte(nil), leaf...), env)
}

// Tamper replaces the envelope at index (the stored hashes are not
// changed: the envelope is not in the tree).
func (m *MemStore) Tamper(index uint64, env ledger.Envelope) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.envelopes[index] = env
}

func (m *MemStore) addLocked(leaf []byte, env ledger.Envelope) (uint64, error) {
	n := int64(len(m.leaves))
	hs, err := tlog.StoredHashes(n, leaf, tlog.HashReaderFunc(m.readLocked))
	if err != nil {
		return 0, fmt.Errorf("memlog: hash entry %d: %w", n, err)
	}
	m.hashes = append(m.hashes, hs...)
	m.leaves = append(m.leaves, leaf)
	m.envelopes = append(m.envelopes, env)
	return uint64(n), nil
}

func (m *MemStore) readLocked(xs []int64) ([]tlog.Hash, error) {
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
func (m *MemStore) ReadHashes(xs []int64) ([]tlog.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readLocked(xs)
}

// Size implements ledger.Reader.
func (m *MemStore) Size(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.leaves)), nil
}

func (m *MemStore) check(start, end uint64) error {
	if start > end {
		return fmt.Errorf("entries [%d,%d): %w", start, end, ledger.ErrInvalidRange)
	}
	if end > uint64(len(m.leaves)) {
		return fmt.Errorf("entries [%d,%d) of %d: %w", start, end, len(m.leaves), ledger.ErrNotFound)
	}
	return nil
}

// Entries implements ledger.Reader: the leaves.
func (m *MemStore) Entries(_ context.Context, start, end uint64) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(start, end); err != nil {
		return nil, err
	}
	return append([][]byte(nil), m.leaves[start:end]...), nil
}

// Envelopes implements ledger.Store.
func (m *MemStore) Envelopes(_ context.Context, start, end uint64) ([]ledger.Envelope, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(start, end); err != nil {
		return nil, err
	}
	return append([]ledger.Envelope(nil), m.envelopes[start:end]...), nil
}

// Publish makes the checkpoint cover every entry.
func (m *MemStore) Publish() {
	m.mu.Lock()
	m.cpSize = uint64(len(m.leaves))
	m.mu.Unlock()
}

// Checkpoint implements ledger.Prover: the last published size, signed
// with the MemLog's Signer.
func (m *MemStore) Checkpoint(ctx context.Context) ([]byte, error) {
	s := m.Signer
	if m.signer != nil {
		s = m.signer()
	}
	if s == nil {
		return nil, fmt.Errorf("memlog: no signer: %w", ledger.ErrNotFound)
	}
	m.mu.Lock()
	size := m.cpSize
	m.mu.Unlock()
	root, err := ledger.TreeHash(ctx, m, size)
	if err != nil {
		return nil, err
	}
	cp, err := ledger.SignCheckpoint(ledger.Checkpoint{Origin: s.Name(), Size: size, Hash: root}, s)
	if err == nil && m.onCheckpoint != nil {
		m.onCheckpoint(size)
	}
	return cp, err
}

// Close implements ledger.Store.
func (m *MemStore) Close() error { return nil }

// Open implements ledger.Opener.
func (m *MemLog) Open(ctx context.Context, index uint64) (ledger.Opened, error) {
	if err := m.init(); err != nil {
		return ledger.Opened{}, err
	}
	return m.node.Open(ctx, index)
}
