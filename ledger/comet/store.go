package comet

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	dbm "github.com/cometbft/cometbft-db"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// Key layout of the application database. Every value is written only by
// Commit, in one batch per block.
//
//	"m"                 meta: height (8) | size (8) | root (32)
//	"g"                 genesis: JSON {chain_id, app_state}
//	"e" + be64(index)   the entry's public leaf
//	"v" + be64(index)   the transaction that appended it, as submitted: the
//	                    entry's envelope (signed header, sealed or clear
//	                    opening) under its author's transaction signature
//	"h" + be64(storage) tlog stored hash
//	"t" + TxID          be64(index) of the entry the transaction appended
//	"c" + seal          be64(index) of the entry whose header has this seal
//	                    (ledger.Seal): the entry index that refuses a
//	                    second transaction carrying the same entry
//	"s" + be64(size)    be64 of the first height after which the log had
//	                    size entries (for checkpoints of past sizes)
//
// The leaf binds the header (its seal); only the transaction signature
// binds a sealed opening's ciphertext, so the node keeps the transaction
// and checks it again at start.
var (
	metaKey    = []byte("m")
	genesisKey = []byte("g")
)

const (
	entryPrefix = 'e'
	hashPrefix  = 'h'
	txPrefix    = 't'
	envPrefix   = 'v'
	sizePrefix  = 's'
	sealPrefix  = 'c'
)

// sealKey is the key of the entry index entry of the entry sealed seal.
func sealKey(seal ledger.Digest) []byte {
	return append([]byte{sealPrefix}, seal[:]...)
}

// sealIndex returns the index of the committed entry whose header has
// the seal seal, if there is one.
func (s store) sealIndex(seal ledger.Digest) (uint64, bool, error) {
	b, err := s.db.Get(sealKey(seal))
	if err != nil {
		return 0, false, fmt.Errorf("read entry index: %w", err)
	}
	if b == nil {
		return 0, false, nil
	}
	if len(b) != 8 {
		return 0, false, fmt.Errorf("comet: corrupt entry index record for seal %s", seal)
	}
	return binary.BigEndian.Uint64(b), true, nil
}

// sizeKey is the key of the height at which the log reached size.
func sizeKey(size uint64) []byte {
	k := make([]byte, 1, 9)
	k[0] = sizePrefix
	return binary.BigEndian.AppendUint64(k, size)
}

// heightOf returns the first committed height after which the log had
// size entries, if the log reached exactly that size at a block's end.
func (s store) heightOf(size uint64) (int64, bool, error) {
	b, err := s.db.Get(sizeKey(size))
	if err != nil {
		return 0, false, fmt.Errorf("read height of size %d: %w", size, err)
	}
	if b == nil {
		return 0, false, nil
	}
	if len(b) != 8 {
		return 0, false, fmt.Errorf("comet: corrupt height record for size %d", size)
	}
	return int64(binary.BigEndian.Uint64(b)), true, nil
}

func entryKey(i uint64) []byte {
	k := make([]byte, 9)
	k[0] = entryPrefix
	binary.BigEndian.PutUint64(k[1:], i)
	return k
}

// envKey is the key of entry i's transaction (its envelope).
func envKey(i uint64) []byte {
	k := make([]byte, 1, 9)
	k[0] = envPrefix
	return binary.BigEndian.AppendUint64(k, i)
}

// envelopes reads the envelopes of entries [start, end) from their stored
// transactions (checked at start, see App.checkStored).
func (s store) envelopes(start, end uint64) ([]ledger.Envelope, error) {
	out := make([]ledger.Envelope, 0, end-start)
	it, err := s.db.Iterator(envKey(start), envKey(end))
	if err != nil {
		return nil, fmt.Errorf("read envelopes: %w", err)
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		e, err := decodeTxEnvelope(it.Value())
		if err != nil {
			return nil, fmt.Errorf("comet: stored transaction of entry %d: %w", start+uint64(len(out)), err)
		}
		out = append(out, e)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("read envelopes: %w", err)
	}
	if uint64(len(out)) != end-start {
		return nil, fmt.Errorf("comet: envelopes [%d,%d): found %d", start, end, len(out))
	}
	return out, nil
}

func hashKey(i int64) []byte {
	k := make([]byte, 9)
	k[0] = hashPrefix
	binary.BigEndian.PutUint64(k[1:], uint64(i))
	return k
}

func txKey(id TxID) []byte {
	return append([]byte{txPrefix}, id[:]...)
}

// State is the committed position of the application: the last committed
// height and the size and root of the log after it.
type State struct {
	Height int64
	Size   uint64
	Root   tlog.Hash
}

func (m State) marshal() []byte {
	b := make([]byte, 16+tlog.HashSize)
	binary.BigEndian.PutUint64(b, uint64(m.Height))
	binary.BigEndian.PutUint64(b[8:], m.Size)
	copy(b[16:], m.Root[:])
	return b
}

func unmarshalMeta(b []byte) (State, error) {
	if len(b) != 16+tlog.HashSize {
		return State{}, fmt.Errorf("comet: corrupt meta record (%d bytes)", len(b))
	}
	m := State{Height: int64(binary.BigEndian.Uint64(b)), Size: binary.BigEndian.Uint64(b[8:])}
	copy(m.Root[:], b[16:])
	if m.Height < 0 {
		return State{}, fmt.Errorf("comet: corrupt meta record (height %d)", m.Height)
	}
	return m, nil
}

// genesisRecord is what InitChain received, kept so that a restarted node
// knows its chain and gateways.
type genesisRecord struct {
	ChainID  string          `json:"chain_id"`
	AppState json.RawMessage `json:"app_state"`
}

// store reads and writes the application database.
type store struct {
	db dbm.DB
}

func (s store) loadMeta() (State, bool, error) {
	b, err := s.db.Get(metaKey)
	if err != nil {
		return State{}, false, fmt.Errorf("read meta: %w", err)
	}
	if b == nil {
		return State{}, false, nil
	}
	m, err := unmarshalMeta(b)
	return m, err == nil, err
}

func (s store) loadGenesis() (genesisRecord, bool, error) {
	b, err := s.db.Get(genesisKey)
	if err != nil {
		return genesisRecord{}, false, fmt.Errorf("read genesis: %w", err)
	}
	if b == nil {
		return genesisRecord{}, false, nil
	}
	var g genesisRecord
	if err := json.Unmarshal(b, &g); err != nil {
		return genesisRecord{}, false, fmt.Errorf("comet: corrupt genesis record: %w", err)
	}
	return g, true, nil
}

// txIndex returns the index of the entry appended by transaction id, if it
// is committed.
func (s store) txIndex(id TxID) (uint64, bool, error) {
	b, err := s.db.Get(txKey(id))
	if err != nil {
		return 0, false, fmt.Errorf("read tx: %w", err)
	}
	if b == nil {
		return 0, false, nil
	}
	if len(b) != 8 {
		return 0, false, fmt.Errorf("comet: corrupt tx record for %s", id)
	}
	return binary.BigEndian.Uint64(b), true, nil
}

// entries reads entries [start, end); the caller checks end against the
// committed size.
func (s store) entries(start, end uint64) ([][]byte, error) {
	out := make([][]byte, 0, end-start)
	it, err := s.db.Iterator(entryKey(start), entryKey(end))
	if err != nil {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		out = append(out, bytes.Clone(it.Value()))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	if uint64(len(out)) != end-start {
		return nil, fmt.Errorf("comet: entries [%d,%d): found %d", start, end, len(out))
	}
	return out, nil
}

// hash reads one stored hash.
func (s store) hash(i int64) (tlog.Hash, error) {
	b, err := s.db.Get(hashKey(i))
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("read hash %d: %w", i, err)
	}
	if len(b) != tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("comet: stored hash %d missing or corrupt", i)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h, nil
}

// commit writes a staged block and, when g is not nil, the genesis record,
// in one synchronous batch.
func (s store) commit(b *stagedBlock, g *genesisRecord) error {
	batch := s.db.NewBatch()
	defer batch.Close()
	if g != nil {
		gb, err := json.Marshal(g)
		if err != nil {
			return fmt.Errorf("encode genesis: %w", err)
		}
		if err := batch.Set(genesisKey, gb); err != nil {
			return err
		}
	}
	for i, e := range b.entries {
		if err := batch.Set(entryKey(b.first+uint64(i)), e); err != nil {
			return err
		}
	}
	for i, tx := range b.rawTxs {
		if err := batch.Set(envKey(b.first+uint64(i)), tx); err != nil {
			return err
		}
	}
	for i, h := range b.hashes {
		if err := batch.Set(hashKey(i), h[:]); err != nil {
			return err
		}
	}
	for id, idx := range b.txs {
		if err := batch.Set(txKey(id), binary.BigEndian.AppendUint64(nil, idx)); err != nil {
			return err
		}
	}
	for seal, idx := range b.seals {
		if err := batch.Set(sealKey(seal), binary.BigEndian.AppendUint64(nil, idx)); err != nil {
			return err
		}
	}
	if b.state.Size > b.first {
		if err := batch.Set(sizeKey(b.state.Size), binary.BigEndian.AppendUint64(nil, uint64(b.state.Height))); err != nil {
			return err
		}
	}
	if err := batch.Set(metaKey, b.state.marshal()); err != nil {
		return err
	}
	if err := batch.WriteSync(); err != nil {
		return fmt.Errorf("write block %d: %w", b.state.Height, err)
	}
	return nil
}

// ErrCorrupt is returned by NewApp and Open when what the node loads
// cannot be proven: an entry does not match its leaf hash, a stored hash
// does not match the hashes below it, the tree does not match the
// committed root, the root does not match the application hash CometBFT
// recorded, or the database itself is damaged. The node refuses to start.
var ErrCorrupt = errors.New("comet: stored log does not match the committed application hash")

// storedTx reads entry i's stored transaction.
func (s store) storedTx(i uint64) ([]byte, error) {
	b, err := s.db.Get(envKey(i))
	if err != nil {
		return nil, fmt.Errorf("%w: entry %d: read its transaction: %w", ErrCorrupt, i, err)
	}
	if b == nil {
		return nil, fmt.Errorf("%w: entry %d: its transaction (envelope) is missing", ErrCorrupt, i)
	}
	return b, nil
}

// checkTree verifies the whole committed state: every entry against its
// stored leaf hash, every stored hash against the hashes it covers
// (recomputed with tlog.StoredHashes), the tree of m.Size entries
// against m.Root, and that no entry is stored past m.Size; it calls
// check with each entry's leaf and stored transaction, in index order
// (the app checks the transaction and rebuilds its registry there). The
// error names the first index that fails.
func (s store) checkTree(m State, check func(i uint64, leaf, tx []byte) error) error {
	hr := tlog.HashReaderFunc(func(xs []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(xs))
		for i, x := range xs {
			h, err := s.hash(x)
			if err != nil {
				return nil, err
			}
			out[i] = h
		}
		return out, nil
	})
	it, err := s.db.Iterator(entryKey(0), entryKey(m.Size))
	if err != nil {
		return fmt.Errorf("%w: read entries: %w", ErrCorrupt, err)
	}
	defer it.Close()
	var i uint64
	for ; it.Valid(); it.Next() {
		if !bytes.Equal(it.Key(), entryKey(i)) {
			return fmt.Errorf("%w: entry %d is missing", ErrCorrupt, i)
		}
		want, err := tlog.StoredHashes(int64(i), it.Value(), hr)
		if err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, err)
		}
		base := tlog.StoredHashIndex(0, int64(i))
		for k, w := range want {
			got, err := s.hash(base + int64(k))
			if err != nil {
				return fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, err)
			}
			if got != w {
				if k == 0 {
					return fmt.Errorf("%w: entry %d: its bytes do not match its stored leaf hash", ErrCorrupt, i)
				}
				return fmt.Errorf("%w: entry %d: stored hash %d does not match the hashes below it", ErrCorrupt, i, base+int64(k))
			}
		}
		tx, err := s.storedTx(i)
		if err != nil {
			return err
		}
		if err := check(i, it.Value(), tx); err != nil {
			return err
		}
		i++
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("%w: read entry %d: %w", ErrCorrupt, i, err)
	}
	if i != m.Size {
		return fmt.Errorf("%w: entry %d is missing (committed size %d)", ErrCorrupt, i, m.Size)
	}
	if extra, err := s.db.Get(entryKey(m.Size)); err != nil {
		return fmt.Errorf("%w: read entry %d: %w", ErrCorrupt, m.Size, err)
	} else if extra != nil {
		return fmt.Errorf("%w: entry %d is stored past the committed size", ErrCorrupt, m.Size)
	}
	if extra, err := s.db.Get(envKey(m.Size)); err != nil {
		return fmt.Errorf("%w: read entry %d: %w", ErrCorrupt, m.Size, err)
	} else if extra != nil {
		return fmt.Errorf("%w: a transaction is stored for entry %d, past the committed size", ErrCorrupt, m.Size)
	}
	root, err := tlog.TreeHash(int64(m.Size), hr)
	if err != nil {
		return fmt.Errorf("%w: height %d, size %d: %w", ErrCorrupt, m.Height, m.Size, err)
	}
	if root != m.Root {
		return fmt.Errorf("%w: height %d: the stored tree of %d entries has another root", ErrCorrupt, m.Height, m.Size)
	}
	return nil
}
