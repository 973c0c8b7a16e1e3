package comet

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// AppVersion is the application protocol version reported to CometBFT.
// Change it whenever the state transition changes. 2: transactions carry
// v2 entry envelopes, checked against the registry (ledger.Authority).
// 3: a transaction whose entry is already in the log is refused
// (CodeDuplicateEntry), which an AppVersion 2 node appends again; every
// node of a consortium moves to 3 at once.
const AppVersion uint64 = 3

// Result codes of CheckTx and of each transaction in FinalizeBlock.
const (
	CodeOK             uint32 = abci.CodeTypeOK
	CodeBadTx          uint32 = 1
	CodeUnknownGateway uint32 = 2
	CodeBadSignature   uint32 = 3
	CodeDuplicate      uint32 = 4
	CodeNotReady       uint32 = 5
	CodeNotFound       uint32 = 6 // Query only
	CodeRefused        uint32 = 7
	// CodeDuplicateEntry: the transaction's entry is already in the log
	// (ErrDuplicateEntry); the log says at which index.
	CodeDuplicateEntry uint32 = 8
)

// codeOf maps a transaction error to its result code.
func codeOf(err error) uint32 {
	switch {
	case err == nil:
		return CodeOK
	case errors.Is(err, ErrUnknownGateway):
		return CodeUnknownGateway
	case errors.Is(err, ErrBadSignature):
		return CodeBadSignature
	case errors.Is(err, ErrDuplicateEntry):
		return CodeDuplicateEntry
	case errors.Is(err, ErrDuplicate):
		return CodeDuplicate
	case errors.Is(err, errNotReady):
		return CodeNotReady
	case errors.Is(err, ErrRefused):
		return CodeRefused
	default:
		return CodeBadTx
	}
}

// errOfCode is the inverse of codeOf, for Append.
func errOfCode(code uint32) error {
	switch code {
	case CodeUnknownGateway:
		return ErrUnknownGateway
	case CodeBadSignature:
		return ErrBadSignature
	case CodeDuplicate:
		return ErrDuplicate
	case CodeDuplicateEntry:
		return ErrDuplicateEntry
	case CodeNotReady:
		return errNotReady
	case CodeRefused:
		return ErrRefused
	default:
		return ErrBadTx
	}
}

var errNotReady = errors.New("comet: chain not initialised")

// App is the ledger's deterministic ABCI 2.0 application. Its state is the
// log: leaves, the tlog stored hashes, each entry's transaction (its
// envelope) and the IDs of applied transactions; and, derived from the
// log, the registry (ledger.Authority) that says who may author what.
// CometBFT calls it through a local client with one lock per ABCI
// connection (proxy.NewConnSyncLocalClientCreator): the consensus calls
// (InitChain, PrepareProposal, ProcessProposal, FinalizeBlock, Commit)
// are serialised, and CheckTx (the mempool's connection; CometBFT holds
// the mempool lock around Commit) and Query may run alongside them, as
// may the read methods used by Log (Size, Entries, Envelopes,
// ReadHashes): those read only the committed state (under mu, or the
// database, which Commit writes in one batch before it moves the
// committed size) and the transaction cache (its own lock). A CheckTx
// that runs during FinalizeBlock checks against the state before the
// block, as it would have just before it.
//
// Where each rule is checked:
//   - CheckTx (a new transaction): everything, against the committed
//     state: ParseTx (canonical, signed by a genesis gateway, a
//     well-formed envelope authored by that gateway), neither the
//     transaction nor its entry (its header's seal: another transaction
//     carrying the same envelope) committed yet, and the registry's
//     rules and the entry's signature at the next index, so that a
//     refused entry is answered at once to its submitter. A recheck
//     (off by default, see ConsortiumDefaults) only drops transactions
//     that were committed: the rules are checked again, at the entry's
//     own index, in FinalizeBlock.
//   - PrepareProposal keeps what ParseTx accepts, not yet committed, once
//     each, within the block's byte limit; ProcessProposal rejects a
//     proposal only if it holds a transaction ParseTx refuses (no honest
//     proposer includes one). Neither checks the registry: whether an
//     entry is admitted depends on the entries before it in the block.
//   - FinalizeBlock applies the transactions in order: duplicates (a
//     transaction already applied, CodeDuplicate, or one whose entry is
//     already in the log or earlier in the block, CodeDuplicateEntry,
//     whose log names the entry's index), and entries the registry
//     refuses at their index (ErrRefused, CodeRefused) append nothing;
//     the rest are appended. The entry index ("c" + seal, see store) is
//     persisted with each block and checked against the log, or
//     rebuilt from it, at start, so the refusal is exact and its memory
//     bounded. Every node
//     derives the same registry from the same log (headers and clear
//     registry openings only), so every node refuses the same
//     transactions and computes the same application hash.
type App struct {
	abci.BaseApplication

	store        store
	logger       *slog.Logger
	retainBlocks int64

	// Set by InitChain or loaded at start; immutable afterwards.
	chainID  string
	gateways map[string]ed25519.PublicKey
	keys     gatewayKeys // gateways, expanded for verification
	// newGenesis is written with the first Commit after InitChain.
	newGenesis *genesisRecord

	// staged is the block FinalizeBlock built and Commit persists.
	staged *stagedBlock
	// parsed caches ParseTx's results.
	parsed txCache

	// closing makes the P2P filter refuse new connections while the node
	// stops (see Query).
	closing atomic.Bool
	// dbMu and dbClosed let Close wait for the ABCI call in progress
	// before it closes the database (see useDB).
	dbMu     sync.RWMutex
	dbClosed bool

	mu        sync.RWMutex
	committed State
	commitCh  chan struct{} // closed (and replaced) by every Commit
	// last is what the last committed block appended, for the appenders
	// waiting on commitCh (see Log.waitCommitted).
	last committedBlock
	// auth is the registry as of the committed size.
	auth *ledger.Authority
	// refused remembers, for the appenders waiting on this node, the
	// transactions of recently committed blocks that the registry
	// refused: they are in a block, appended nothing and never will. It
	// is a report, not state (not in the application hash).
	refused refusals
}

// refusals is a bounded map of refused transaction IDs to the reason,
// evicting the oldest.
type refusals struct {
	m    map[TxID]string
	ring []TxID
	next int
}

// maxRefusals bounds the refusals an App remembers: far more than the
// appenders that wait at once.
const maxRefusals = 4096

func (r *refusals) add(id TxID, reason string) {
	if r.m == nil {
		r.m = make(map[TxID]string)
	}
	if _, ok := r.m[id]; ok {
		return
	}
	if len(r.ring) < maxRefusals {
		r.ring = append(r.ring, id)
	} else {
		delete(r.m, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % maxRefusals
	}
	r.m[id] = reason
}

// committedBlock is what one committed block appended: the entry indexes
// of its transactions and of its entries' seals. The maps are not changed
// after Commit.
type committedBlock struct {
	height int64
	txs    map[TxID]uint64
	seals  map[ledger.Digest]uint64
}

// stagedBlock is the effect of one block, held between FinalizeBlock and
// Commit.
type stagedBlock struct {
	state   State // position after the block
	first   uint64
	entries [][]byte // leaves
	rawTxs  [][]byte // their transactions, stored as submitted
	hashes  map[int64]tlog.Hash
	txs     map[TxID]uint64
	seals   map[ledger.Digest]uint64 // the entries' seals
	auth    *ledger.Authority        // after the block
	refused map[TxID]string          // refused by the registry in this block
}

var _ abci.Application = (*App)(nil)

// AppOptions configure an App.
type AppOptions struct {
	// RetainBlocks, when positive, asks CometBFT to prune blocks older than
	// the last RetainBlocks (ResponseCommit.RetainHeight). Zero keeps every
	// block, which new nodes need to join by block sync.
	RetainBlocks int64
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
}

// NewApp returns the application backed by db, at the state it last
// committed. It checks everything it loads (see store.checkTree and
// checkStored) and rebuilds the registry from the log in the same pass;
// any mismatch is ErrCorrupt naming the first bad index.
func NewApp(db dbm.DB, opts AppOptions) (*App, error) {
	if opts.RetainBlocks < 0 {
		return nil, fmt.Errorf("comet: retain blocks must not be negative")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &App{
		store:        store{db: db},
		logger:       logger,
		retainBlocks: opts.RetainBlocks,
		commitCh:     make(chan struct{}),
	}
	m, haveMeta, err := a.store.loadMeta()
	if err != nil {
		return nil, err
	}
	g, haveGenesis, err := a.store.loadGenesis()
	if err != nil {
		return nil, err
	}
	if haveGenesis {
		if err := a.setGenesis(g); err != nil {
			return nil, err
		}
	}
	switch {
	case haveMeta && !haveGenesis:
		// The first Commit writes both, in one batch.
		return nil, fmt.Errorf("%w: a committed state (height %d) without its genesis record", ErrCorrupt, m.Height)
	case haveMeta:
		auth := a.genesisAuthority()
		seals := newSealRebuild(a.store)
		if err := a.store.checkTree(m, func(i uint64, leaf, tx []byte) error {
			seal, err := a.checkStored(auth, i, leaf, tx)
			if err != nil {
				return err
			}
			return seals.check(seal, i)
		}); err != nil {
			return nil, err
		}
		if err := seals.finish(m.Size); err != nil {
			return nil, err
		}
		if seals.rebuilt > 0 || seals.legacy > 0 {
			logger.Info("ledger entry index rebuilt", slog.Int("entries", seals.rebuilt), slog.Int("duplicates_before_the_index", seals.legacy))
		}
		a.committed, a.auth = m, auth
	default:
		a.committed.Root, _ = tlog.TreeHash(0, nil)
		if haveGenesis {
			a.auth = a.genesisAuthority()
		}
	}
	return a, nil
}

// checkStored checks committed entry i at start and applies it to auth
// (the registry as of i): its stored transaction passes ParseTx (so not
// one byte of its envelope, a sealed opening's ciphertext included, has
// changed since its author signed it), its header is the one the leaf
// seals, the transaction index names entry i (else a replay of it would
// be admitted), and the entry keeps the registry's rules at i. The
// header's own signature, verified when the block was finalized, is not
// verified again: the transaction signature is the same author's over
// the same header bytes.
func (a *App) checkStored(auth *ledger.Authority, i uint64, leaf, raw []byte) (ledger.Digest, error) {
	l, err := ledger.DecodeLeaf(leaf)
	if err != nil {
		if _, v1 := ledger.Decode(leaf); v1 == nil {
			return ledger.Digest{}, fmt.Errorf("%w: entry %d is a v1 entry: this ledger was written by an older healthgw, whose format this one does not read; the consortium starts a new chain", ErrCorrupt, i)
		}
		return ledger.Digest{}, fmt.Errorf("%w: entry %d: its leaf: %w", ErrCorrupt, i, err)
	}
	t, err := parseTx(a.chainID, a.keys, raw, parseMode{noHeader: true})
	if err != nil {
		return ledger.Digest{}, fmt.Errorf("%w: entry %d: its stored transaction (the envelope its author signed) does not verify: %w", ErrCorrupt, i, err)
	}
	if t.Seal != l.Seal || l.Type != t.Header.Type {
		return ledger.Digest{}, fmt.Errorf("%w: entry %d: its envelope is not the one its leaf seals", ErrCorrupt, i)
	}
	if idx, ok, err := a.store.txIndex(t.ID); err != nil {
		return ledger.Digest{}, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, err)
	} else if !ok || idx != i {
		return ledger.Digest{}, fmt.Errorf("%w: entry %d: the transaction index does not name it", ErrCorrupt, i)
	}
	if err := auth.Check(t.Header, t.Statement); err != nil {
		return ledger.Digest{}, fmt.Errorf("%w: entry %d breaks the registry's rules: %w", ErrCorrupt, i, err)
	}
	if err := auth.Apply(i, t.Header, t.Statement); err != nil {
		return ledger.Digest{}, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, err)
	}
	return l.Seal, nil
}

// sealRebuild checks the entry index ("c" + seal, see store) against the
// entries NewApp verifies, in index order, and writes what is missing
// (a database from before the index, or one whose index was damaged):
// the index is derived from the verified log, and must be exact, since
// FinalizeBlock refuses a transaction whose entry it names.
type sealRebuild struct {
	store   store
	pending map[ledger.Digest]uint64 // missing, to be written
	rebuilt int
	legacy  int // later copies of an entry, committed before the index
	seals   uint64
}

// maxPendingSeals bounds the index records sealRebuild holds before it
// writes them.
const maxPendingSeals = 1 << 14

func newSealRebuild(s store) *sealRebuild {
	return &sealRebuild{store: s, pending: make(map[ledger.Digest]uint64)}
}

// check takes committed entry i, sealed seal.
func (r *sealRebuild) check(seal ledger.Digest, i uint64) error {
	if _, ok := r.pending[seal]; ok {
		r.legacy++
		return nil
	}
	j, ok, err := r.store.sealIndex(seal)
	switch {
	case err != nil:
		return fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, err)
	case !ok:
		r.pending[seal] = i
		r.seals++
		r.rebuilt++
		if len(r.pending) >= maxPendingSeals {
			return r.flush()
		}
		return nil
	case j == i:
		r.seals++
		return nil
	case j < i:
		// Entry i repeats entry j, committed before duplicates were
		// refused: the index names the first, as FinalizeBlock would.
		first, err := r.store.entries(j, j+1)
		if err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrCorrupt, j, err)
		}
		if l, err := ledger.DecodeLeaf(first[0]); err != nil || l.Seal != seal {
			return fmt.Errorf("%w: the entry index names entry %d for entry %d's seal", ErrCorrupt, j, i)
		}
		r.legacy++
		return nil
	default:
		return fmt.Errorf("%w: the entry index names entry %d for entry %d's seal", ErrCorrupt, j, i)
	}
}

func (r *sealRebuild) flush() error {
	if len(r.pending) == 0 {
		return nil
	}
	batch := r.store.db.NewBatch()
	defer batch.Close()
	for seal, i := range r.pending {
		if err := batch.Set(sealKey(seal), binary.BigEndian.AppendUint64(nil, i)); err != nil {
			return fmt.Errorf("rebuild the entry index: %w", err)
		}
	}
	if err := batch.WriteSync(); err != nil {
		return fmt.Errorf("rebuild the entry index: %w", err)
	}
	clear(r.pending)
	return nil
}

// finish writes what is pending and checks that the index holds no other
// record: one per distinct entry, each naming an entry below size.
func (r *sealRebuild) finish(size uint64) error {
	if err := r.flush(); err != nil {
		return err
	}
	it, err := r.store.db.Iterator([]byte{sealPrefix}, []byte{sealPrefix + 1})
	if err != nil {
		return fmt.Errorf("%w: read the entry index: %w", ErrCorrupt, err)
	}
	defer it.Close()
	var n uint64
	for ; it.Valid(); it.Next() {
		if v := it.Value(); len(v) != 8 || binary.BigEndian.Uint64(v) >= size {
			return fmt.Errorf("%w: the entry index holds a record past the committed size %d", ErrCorrupt, size)
		}
		n++
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("%w: read the entry index: %w", ErrCorrupt, err)
	}
	if n != r.seals {
		return fmt.Errorf("%w: the entry index holds %d records for %d distinct entries", ErrCorrupt, n, r.seals)
	}
	return nil
}

// admit checks the registry's rules for t's entry at index idx of the
// log whose registry is auth (ParseTx verified the entry's signature): the
// part of ledger.Authority.Verify that depends on the log.
func admit(auth *ledger.Authority, idx uint64, t Tx) error {
	if idx != auth.Next() {
		return fmt.Errorf("comet: registry at %d, entry at %d", auth.Next(), idx)
	}
	if err := auth.Check(t.Header, t.Statement); err != nil {
		return fmt.Errorf("%w: entry %d: %w", ErrRefused, idx, err)
	}
	return nil
}

// txCache remembers the transactions ParseTx accepted, by their bytes'
// hash, so that each is parsed and its signatures verified once per node
// rather than in CheckTx, PrepareProposal, ProcessProposal and
// FinalizeBlock each: ParseTx is a function of the transaction and the
// genesis alone, so a cached result is the result. It is bounded by the
// bytes it holds, evicting the oldest.
type txCache struct {
	mu    sync.Mutex
	m     map[TxID]Tx
	order []TxID
	bytes int
}

// maxTxCacheBytes bounds the transactions txCache holds: a few blocks'
// worth of typical ones, and at least a few hundred of the largest.
const maxTxCacheBytes = 64 << 20

func txSize(t Tx) int {
	return len(t.Envelope.Header) + len(t.Envelope.Sealed) + len(t.Envelope.Clear) + 256
}

// parse returns ParseTx's result for tx, from the cache when it has it.
func (c *txCache) parse(chainID string, keys gatewayKeys, tx []byte) (Tx, error) {
	return c.parseMode(chainID, keys, tx, parseFull)
}

// parseMode is parse, verifying what mode says when tx is not cached
// (see parseTx; a result is cached only when it holds for every mode).
func (c *txCache) parseMode(chainID string, keys gatewayKeys, tx []byte, mode parseMode) (Tx, error) {
	id := TxID(sha256.Sum256(tx))
	c.mu.Lock()
	t, ok := c.m[id]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := parseTx(chainID, keys, tx, mode)
	if err != nil {
		return Tx{}, err
	}
	c.add(id, t)
	return t, nil
}

// warm parses, on every CPU, the transactions of txs the cache does not
// hold (a block's, proposed by another node before they reached this
// one's mempool), so that the block's sequential pass finds them all:
// ParseTx's result does not depend on the order.
func (c *txCache) warm(chainID string, keys gatewayKeys, txs [][]byte) {
	var missing [][]byte
	c.mu.Lock()
	for _, tx := range txs {
		if _, ok := c.m[TxID(sha256.Sum256(tx))]; !ok {
			missing = append(missing, tx)
		}
	}
	c.mu.Unlock()
	workers := min(runtime.GOMAXPROCS(0), len(missing))
	if workers < 2 {
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(missing)) {
					return
				}
				// A refused transaction is not cached: the sequential
				// pass parses it again and reports why.
				_, _ = c.parse(chainID, keys, missing[i])
			}
		})
	}
	wg.Wait()
}

func (c *txCache) add(id TxID, t Tx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[TxID]Tx)
	}
	if _, ok := c.m[id]; ok {
		return
	}
	c.m[id] = t
	c.order = append(c.order, id)
	c.bytes += txSize(t)
	for c.bytes > maxTxCacheBytes && len(c.order) > 1 {
		old := c.order[0]
		c.order = c.order[1:]
		c.bytes -= txSize(c.m[old])
		delete(c.m, old)
	}
}

// genesisAuthority returns the authority of the empty log of the current
// genesis gateways.
func (a *App) genesisAuthority() *ledger.Authority {
	return ledger.NewAuthority(a.GenesisGateways())
}

// GenesisGateways returns the genesis gateways' node keys (no sealing
// keys: each gateway registers its own with gateway.registered).
func (a *App) GenesisGateways() map[string]ledger.GatewayKeys {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.gateways == nil {
		return nil
	}
	g := make(map[string]ledger.GatewayKeys, len(a.gateways))
	for id, pub := range a.gateways {
		g[id] = ledger.GatewayKeys{Public: pub}
	}
	return g
}

// Unregistered returns the genesis gateways that have not registered
// their sealing key (gateway.registered) in the committed log, sorted:
// entries cannot be sealed to them yet.
func (a *App) Unregistered() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.auth == nil {
		return nil
	}
	return a.auth.Unregistered()
}

// refusal reports whether transaction id was refused by the registry in
// a recently committed block, and why.
func (a *App) refusal(id TxID) (string, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	r, ok := a.refused.m[id]
	return r, ok
}

func (a *App) setGenesis(g genesisRecord) error {
	gs, err := ParseAppState(g.AppState)
	if err != nil {
		return err
	}
	gw, err := gs.gatewayMap()
	if err != nil {
		return err
	}
	keys, err := newGatewayKeys(gw)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.chainID, a.gateways, a.keys = g.ChainID, gw, keys
	a.mu.Unlock()
	return nil
}

// Info reports the last committed height and application hash (the log
// root), so that CometBFT replays exactly the blocks the application has
// not committed.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	m := a.Committed()
	res := &abci.ResponseInfo{
		Data:            fmt.Sprintf("healthgw ledger: size %d", m.Size),
		Version:         "healthgw-comet/1",
		AppVersion:      AppVersion,
		LastBlockHeight: m.Height,
	}
	if m.Height > 0 {
		res.LastBlockAppHash = append([]byte(nil), m.Root[:]...)
	}
	return res, nil
}

// InitChain takes the gateway set from the genesis app_state and returns
// the root of the empty log as the initial application hash.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	m := a.Committed()
	if m.Height != 0 || m.Size != 0 {
		return nil, fmt.Errorf("comet: InitChain on a non-empty application (height %d)", m.Height)
	}
	g := genesisRecord{ChainID: req.ChainId, AppState: append([]byte(nil), req.AppStateBytes...)}
	if err := a.setGenesis(g); err != nil {
		return nil, fmt.Errorf("init chain: %w", err)
	}
	a.newGenesis = &g
	auth := a.genesisAuthority()
	a.mu.Lock()
	a.auth = auth
	a.mu.Unlock()
	a.logger.Info("ledger chain initialised", slog.String("chain_id", req.ChainId), slog.Int("gateways", len(a.gateways)))
	return &abci.ResponseInitChain{AppHash: append([]byte(nil), m.Root[:]...)}, nil
}

// gatewayQueryPrefix is the Query path of a registered gateway:
// /gateway/<id>.
const gatewayQueryPrefix = "/gateway/"

// gatewayInfo is the answer to a gateway query.
type gatewayInfo struct {
	ID      string `json:"id"`
	BaseURL string `json:"base_url"`
	Index   uint64 `json:"index"` // of its gateway.registered
}

// Query answers CometBFT's peer filter (with filter_peers on, every new
// connection and peer is checked with /p2p/filter/addr/… and
// /p2p/filter/id/…), "/state", which returns the committed height, log
// size and root as JSON, "/tx/<hex TxID>", which returns the 8-byte
// big-endian index of a committed transaction's entry (code
// CodeNotFound if it is not committed, CodeRefused with the reason if the
// registry refused it in a recent block), and "/gateway/<id>", which
// returns a registered gateway's base URL and registration index as JSON
// (CodeNotFound until it registered). The filter admits every peer except while the
// node is stopping: CometBFT stops its peers before its listener, and a
// peer that reconnects in between would otherwise be left half-open.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	switch {
	case strings.HasPrefix(req.Path, "/p2p/filter/"):
		if a.closing.Load() {
			return &abci.ResponseQuery{Code: CodeNotReady, Log: "node is stopping"}, nil
		}
		return &abci.ResponseQuery{Code: CodeOK}, nil
	case strings.HasPrefix(req.Path, "/tx/"):
		id, ok := parseTxQuery(req.Path)
		if !ok {
			return &abci.ResponseQuery{Code: CodeBadTx, Log: "bad transaction ID"}, nil
		}
		st := a.Committed()
		idx, found, err := a.store.txIndex(id)
		if err != nil {
			return nil, err
		}
		if !found || idx >= st.Size {
			if reason, refused := a.refusal(id); refused {
				return &abci.ResponseQuery{Code: CodeRefused, Log: reason, Height: st.Height}, nil
			}
			return &abci.ResponseQuery{Code: CodeNotFound, Log: "not committed", Height: st.Height}, nil
		}
		return &abci.ResponseQuery{Code: CodeOK, Value: binary.BigEndian.AppendUint64(nil, idx), Height: st.Height}, nil
	case strings.HasPrefix(req.Path, gatewayQueryPrefix):
		// A registered gateway, as the committed registry has it.
		id := strings.TrimPrefix(req.Path, gatewayQueryPrefix)
		a.mu.RLock()
		auth, st := a.auth, a.committed
		a.mu.RUnlock()
		if auth == nil {
			return &abci.ResponseQuery{Code: CodeNotReady, Log: "chain not initialised"}, nil
		}
		g, ok := auth.Gateway(id)
		if !ok || g.Seal == nil {
			return &abci.ResponseQuery{Code: CodeNotFound, Log: fmt.Sprintf("gateway %q has not registered", id), Height: st.Height}, nil
		}
		v, err := json.Marshal(gatewayInfo{ID: id, BaseURL: g.BaseURL, Index: g.Index})
		if err != nil {
			return nil, err
		}
		return &abci.ResponseQuery{Code: CodeOK, Value: v, Height: st.Height}, nil
	case req.Path == "/state":
		m := a.Committed()
		v, err := json.Marshal(struct {
			Height int64  `json:"height"`
			Size   uint64 `json:"size"`
			Root   []byte `json:"root"`
		}{m.Height, m.Size, m.Root[:]})
		if err != nil {
			return nil, err
		}
		return &abci.ResponseQuery{Code: CodeOK, Value: v, Height: m.Height}, nil
	}
	return &abci.ResponseQuery{Code: CodeBadTx, Log: fmt.Sprintf("unknown query path %q", req.Path)}, nil
}

// useDB holds the database open for one ABCI call. Once closeDB ran it
// never returns: CometBFT's block sync can outlive Node.Stop and still
// apply blocks (cometbft#1878), and an error here would make it panic,
// while a block left unapplied is simply replayed at the next start.
func (a *App) useDB() (release func()) {
	a.dbMu.RLock()
	if a.dbClosed {
		a.dbMu.RUnlock()
		select {}
	}
	return a.dbMu.RUnlock
}

// closeDB waits for the ABCI call in progress and closes the database.
func (a *App) closeDB() error {
	a.dbMu.Lock()
	defer a.dbMu.Unlock()
	if a.dbClosed {
		return nil
	}
	a.dbClosed = true
	return a.store.db.Close()
}

// parseNew parses and verifies tx (ParseTx) against the genesis and checks
// that it is not committed yet.
func (a *App) parseNew(tx []byte) (Tx, error) {
	a.mu.RLock()
	chainID, keys := a.chainID, a.keys
	a.mu.RUnlock()
	if keys == nil {
		return Tx{}, errNotReady
	}
	t, err := a.parsed.parse(chainID, keys, tx)
	if err != nil {
		return Tx{}, err
	}
	if err := a.notCommitted(t.ID); err != nil {
		return Tx{}, err
	}
	return t, nil
}

// parseOwn is parseNew for a transaction this node has just signed
// (SignTx, in Log.AppendEnvelope), run on the appender's goroutine rather
// than in CheckTx: it verifies the entry's header signature (whoever
// built the envelope made it) but not the transaction's own, right by
// construction, and caches the result, so that this node's CheckTx,
// PrepareProposal, ProcessProposal and FinalizeBlock parse and verify
// nothing again.
func (a *App) parseOwn(tx []byte) (Tx, error) {
	a.mu.RLock()
	chainID, keys := a.chainID, a.keys
	a.mu.RUnlock()
	if keys == nil {
		return Tx{}, errNotReady
	}
	return a.parsed.parseMode(chainID, keys, tx, parseMode{ownTx: true})
}

// notCommitted returns ErrDuplicate if transaction id is committed.
func (a *App) notCommitted(id TxID) error {
	_, dup, err := a.store.txIndex(id)
	if err != nil {
		return err
	}
	if dup {
		return fmt.Errorf("%w: %s", ErrDuplicate, id)
	}
	return nil
}

// entryNotCommitted returns ErrDuplicateEntry if the entry sealed seal
// is committed.
func (a *App) entryNotCommitted(seal ledger.Digest) error {
	idx, dup, err := a.store.sealIndex(seal)
	if err != nil {
		return err
	}
	if dup {
		return fmt.Errorf("%w: it is entry %d", ErrDuplicateEntry, idx)
	}
	return nil
}

// txNotCommitted returns ErrDuplicate if transaction t is committed and
// ErrDuplicateEntry if another transaction carrying its entry is, as
// notCommitted and then entryNotCommitted would, with one database read
// for a new transaction instead of two: a transaction is indexed only
// with its entry (FinalizeBlock; NewApp rebuilds the entry index of
// every committed entry), so a transaction whose entry is not committed
// is not committed either.
func (a *App) txNotCommitted(t Tx) error {
	err := a.entryNotCommitted(t.Seal)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrDuplicateEntry) {
		return err
	}
	if err := a.notCommitted(t.ID); err != nil {
		return err
	}
	return err
}

// checkTx is CheckTx for a new transaction: ParseTx, neither it nor its
// entry committed (txNotCommitted), then the registry's rules and the
// entry's signature at the next index of the committed log.
func (a *App) checkTx(tx []byte) (Tx, error) {
	a.mu.RLock()
	chainID, keys := a.chainID, a.keys
	a.mu.RUnlock()
	if keys == nil {
		return Tx{}, errNotReady
	}
	t, err := a.parsed.parse(chainID, keys, tx)
	if err != nil {
		return Tx{}, err
	}
	if err := a.txNotCommitted(t); err != nil {
		return Tx{}, err
	}
	a.mu.RLock()
	auth := a.auth
	a.mu.RUnlock()
	if auth == nil {
		return Tx{}, errNotReady
	}
	if err := admit(auth, auth.Next(), t); err != nil {
		return Tx{}, err
	}
	return t, nil
}

// CheckTx admits a new transaction to the mempool if checkTx accepts it:
// the submitter learns at once of an entry the registry refuses. A
// recheck only drops a transaction once it is committed (see App).
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	defer a.useDB()()
	var err error
	if req.Type == abci.CheckTxType_Recheck {
		err = a.notCommitted(sha256.Sum256(req.Tx))
	} else {
		_, err = a.checkTx(req.Tx)
	}
	if err != nil {
		return &abci.ResponseCheckTx{Code: codeOf(err), Log: err.Error()}, nil
	}
	return &abci.ResponseCheckTx{Code: CodeOK}, nil
}

// PrepareProposal keeps, in mempool order and within the block's byte
// limit, the transactions ParseTx accepts that are not committed, once
// each. It leaves the registry's rules to FinalizeBlock: the one to
// register an org first wins there, and the others are refused in the
// same block, so their appenders learn it (a transaction left out would
// wait in the mempool until its appender gave up, outcome unknown).
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	defer a.useDB()()
	txs := make([][]byte, 0, len(req.Txs))
	seen := make(map[TxID]bool, len(req.Txs))
	var total int64
	for _, tx := range req.Txs {
		t, err := a.parseNew(tx)
		if err != nil || seen[t.ID] {
			continue
		}
		if total+int64(len(tx)) > req.MaxTxBytes {
			break
		}
		total += int64(len(tx))
		seen[t.ID] = true
		txs = append(txs, tx)
	}
	return &abci.ResponsePrepareProposal{Txs: txs}, nil
}

// ProcessProposal rejects a proposal that carries a transaction no honest
// proposer would include: one ParseTx refuses (malformed, from an unknown
// gateway, badly signed, an envelope that is not well-formed or not
// authored by its submitter). Duplicates and entries the registry refuses
// are left to FinalizeBlock, which appends nothing for them: whether the
// registry admits an entry depends on the block's earlier entries, and an
// honest proposer does not simulate them (see PrepareProposal).
func (a *App) ProcessProposal(_ context.Context, req *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	a.mu.RLock()
	chainID, keys := a.chainID, a.keys
	a.mu.RUnlock()
	a.parsed.warm(chainID, keys, req.Txs)
	for _, tx := range req.Txs {
		if _, err := a.parsed.parse(chainID, keys, tx); err != nil {
			a.logger.Warn("rejecting proposal", slog.Int64("height", req.Height), slog.String("err", err.Error()))
			return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_REJECT}, nil
		}
	}
	return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
}

// FinalizeBlock applies the block's transactions in order: each valid,
// not yet applied transaction whose entry the registry admits at its
// index appends its leaf (Time set to the block time) at the next index.
// It returns the log root after the block as the application hash.
// Nothing is persisted until Commit.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	defer a.useDB()()
	base := a.Committed()
	if base.Height != 0 && req.Height != base.Height+1 {
		return nil, fmt.Errorf("comet: finalize block %d after committed height %d", req.Height, base.Height)
	}
	a.mu.RLock()
	chainID, keys, auth := a.chainID, a.keys, a.auth
	a.mu.RUnlock()
	if keys == nil || auth == nil {
		return nil, errNotReady
	}
	b := &stagedBlock{
		state:   State{Height: req.Height, Size: base.Size},
		first:   base.Size,
		hashes:  make(map[int64]tlog.Hash),
		txs:     make(map[TxID]uint64),
		seals:   make(map[ledger.Digest]uint64),
		auth:    auth.Clone(),
		refused: make(map[TxID]string),
	}
	reader := a.stagedReader(b, base.Size)
	a.parsed.warm(chainID, keys, req.Txs)
	results := make([]*abci.ExecTxResult, len(req.Txs))
	for i, raw := range req.Txs {
		idx, err := a.apply(chainID, keys, b, reader, raw, req)
		if err != nil {
			if !errors.Is(err, ErrBadTx) && !errors.Is(err, ErrUnknownGateway) &&
				!errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrDuplicate) && !errors.Is(err, ErrRefused) {
				// ErrDuplicate covers ErrDuplicateEntry.
				return nil, fmt.Errorf("finalize block %d: tx %d: %w", req.Height, i, err)
			}
			results[i] = &abci.ExecTxResult{Code: codeOf(err), Log: err.Error()}
			continue
		}
		data := make([]byte, 8)
		binary.BigEndian.PutUint64(data, idx)
		results[i] = &abci.ExecTxResult{Code: CodeOK, Data: data}
	}
	root, err := tlog.TreeHash(int64(b.state.Size), reader)
	if err != nil {
		return nil, fmt.Errorf("finalize block %d: tree hash: %w", req.Height, err)
	}
	b.state.Root = root
	a.staged = b
	return &abci.ResponseFinalizeBlock{TxResults: results, AppHash: append([]byte(nil), root[:]...)}, nil
}

// apply stages one transaction and returns the index it was given.
func (a *App) apply(chainID string, keys gatewayKeys, b *stagedBlock, reader tlog.HashReader, raw []byte, req *abci.RequestFinalizeBlock) (uint64, error) {
	t, err := a.parsed.parse(chainID, keys, raw)
	if err != nil {
		return 0, err
	}
	// The transaction, then its entry, earlier in this block or
	// committed (b.txs and b.seals, like the indexes, hold a
	// transaction only with its entry; see txNotCommitted).
	if _, dup := b.txs[t.ID]; dup {
		return 0, fmt.Errorf("%w: %s", ErrDuplicate, t.ID)
	}
	if first, dup := b.seals[t.Seal]; dup {
		return 0, fmt.Errorf("%w: it is entry %d, earlier in this block", ErrDuplicateEntry, first)
	}
	if err := a.txNotCommitted(t); err != nil {
		return 0, err
	}
	// ledger.NewLeafFor(t.Envelope.Header, req.Time), from the header
	// and seal parseTx decoded.
	data, err := ledger.EncodeLeaf(ledger.Leaf{Version: ledger.VersionV2, Type: t.Header.Type, Time: req.Time.UTC(), Seal: t.Seal})
	if err != nil {
		// CheckEnvelope accepted the header, so this cannot happen for a
		// well-formed block time; refuse the transaction rather than halt.
		return 0, fmt.Errorf("%w: entry: %w", ErrBadTx, err)
	}
	idx := b.state.Size
	if err := admit(b.auth, idx, t); err != nil {
		b.refused[t.ID] = err.Error()
		return 0, err
	}
	hashes, err := tlog.StoredHashes(int64(idx), data, reader)
	if err != nil {
		return 0, fmt.Errorf("stored hashes for %d: %w", idx, err)
	}
	// Verify admitted the entry, so Apply cannot fail; if it did, the
	// registry would no longer follow the log, and halting is right.
	if err := b.auth.Apply(idx, t.Header, t.Statement); err != nil {
		return 0, fmt.Errorf("apply entry %d to the registry: %w", idx, err)
	}
	base := tlog.StoredHashIndex(0, int64(idx))
	for k, h := range hashes {
		b.hashes[base+int64(k)] = h
	}
	b.entries = append(b.entries, data)
	b.rawTxs = append(b.rawTxs, raw)
	b.txs[t.ID] = idx
	b.seals[t.Seal] = idx
	b.state.Size++
	return idx, nil
}

// stagedReader reads hashes from the staged block, falling back to the
// committed store for the hashes of the first committedSize entries.
func (a *App) stagedReader(b *stagedBlock, committedSize uint64) tlog.HashReader {
	committedHashes := tlog.StoredHashCount(int64(committedSize))
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < committedHashes {
				h, err := a.store.hash(x)
				if err != nil {
					return nil, err
				}
				out[i] = h
				continue
			}
			h, ok := b.hashes[x]
			if !ok {
				return nil, fmt.Errorf("comet: hash %d not staged", x)
			}
			out[i] = h
		}
		return out, nil
	})
}

// Commit persists the staged block (leaves, transactions, hashes,
// transaction IDs and the new height) in one synchronous write, then makes
// it visible to readers, with the registry after it and the block's
// refusals.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	defer a.useDB()()
	b := a.staged
	if b == nil {
		return nil, errors.New("comet: commit without finalize block")
	}
	if err := a.store.commit(b, a.newGenesis); err != nil {
		return nil, err
	}
	a.staged, a.newGenesis = nil, nil
	a.mu.Lock()
	a.committed = b.state
	a.last = committedBlock{height: b.state.Height, txs: b.txs, seals: b.seals}
	a.auth = b.auth
	for id, reason := range b.refused {
		a.refused.add(id, reason)
	}
	close(a.commitCh)
	a.commitCh = make(chan struct{})
	a.mu.Unlock()
	res := &abci.ResponseCommit{}
	if a.retainBlocks > 0 && b.state.Height > a.retainBlocks {
		res.RetainHeight = b.state.Height - a.retainBlocks + 1
	}
	return res, nil
}

// Committed returns the last committed height, log size and root.
func (a *App) Committed() State {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.committed
}

// committedAndNext returns the committed position and a channel that is
// closed by the next Commit.
func (a *App) committedAndNext() (State, <-chan struct{}) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.committed, a.commitCh
}

// lastCommitted is committedAndNext with what the last committed block
// appended.
func (a *App) lastCommitted() (State, committedBlock, <-chan struct{}) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.committed, a.last, a.commitCh
}

// ChainID returns the chain ID from InitChain ("" before it).
func (a *App) ChainID() string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.chainID
}

// AppHash returns the committed application hash: the log root.
func (a *App) AppHash() []byte {
	m := a.Committed()
	return append([]byte(nil), m.Root[:]...)
}

// Height returns the last committed height.
func (a *App) Height() int64 { return a.Committed().Height }
