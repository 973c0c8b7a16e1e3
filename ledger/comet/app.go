package comet

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// AppVersion is the application protocol version reported to CometBFT.
// Change it whenever the state transition changes.
const AppVersion uint64 = 1

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
// log: entries, the tlog stored hashes and the IDs of applied transactions.
// CometBFT calls it through one local client, which serialises every ABCI
// call; the read methods used by Log (Size, Entries, ReadHashes) may run
// concurrently with them.
type App struct {
	abci.BaseApplication

	store        store
	logger       *slog.Logger
	retainBlocks int64

	// Set by InitChain or loaded at start; immutable afterwards.
	chainID  string
	gateways map[string]ed25519.PublicKey
	// newGenesis is written with the first Commit after InitChain.
	newGenesis *genesisRecord

	// staged is the block FinalizeBlock built and Commit persists.
	staged *stagedBlock

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
	// auth is the registry (ledger.Authority) as of the committed size:
	// who may author what. It is derived from headers and clear
	// registry openings only, so every node derives the same.
	auth *ledger.Authority
}

// stagedBlock is the effect of one block, held between FinalizeBlock and
// Commit.
type stagedBlock struct {
	state     State // position after the block
	first     uint64
	entries   [][]byte // leaves
	envelopes []ledger.Envelope
	hashes    map[int64]tlog.Hash
	txs       map[TxID]uint64
	auth      *ledger.Authority // after the block
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
// committed.
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
	m, ok, err := a.store.loadMeta()
	if err != nil {
		return nil, err
	}
	if ok {
		if err := a.store.checkTree(m); err != nil {
			return nil, err
		}
		a.committed = m
	} else {
		a.committed.Root, _ = tlog.TreeHash(0, nil)
	}
	g, ok, err := a.store.loadGenesis()
	if err != nil {
		return nil, err
	}
	if ok {
		if err := a.setGenesis(g); err != nil {
			return nil, err
		}
		if err := a.loadAuthority(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// genesisAuthority returns the authority of the empty log of the current
// genesis gateways.
func (a *App) genesisAuthority() *ledger.Authority {
	g := make(map[string]ledger.GatewayKeys, len(a.gateways))
	for id, pub := range a.gateways {
		g[id] = ledger.GatewayKeys{Public: pub}
	}
	return ledger.NewAuthority(g)
}

// GenesisGateways returns the genesis gateways' node keys (no sealing
// keys: each gateway registers its own with gateway.registered).
func (a *App) GenesisGateways() map[string]ledger.GatewayKeys {
	a.mu.RLock()
	defer a.mu.RUnlock()
	g := make(map[string]ledger.GatewayKeys, len(a.gateways))
	for id, pub := range a.gateways {
		g[id] = ledger.GatewayKeys{Public: pub}
	}
	return g
}

// loadAuthority rebuilds the registry from the committed entries (checked
// against the app hash by checkTree).
func (a *App) loadAuthority() error {
	auth := a.genesisAuthority()
	size := a.committed.Size
	for start := uint64(0); start < size; start += 1024 {
		end := min(size, start+1024)
		envs, err := a.store.envelopes(start, end)
		if err != nil {
			return err
		}
		for i, env := range envs {
			h, st, err := envelopeStatement(env)
			if err != nil {
				return fmt.Errorf("%w: entry %d: %w", ErrCorrupt, start+uint64(i), err)
			}
			if err := auth.Apply(start+uint64(i), h, st); err != nil {
				return fmt.Errorf("%w: entry %d: %w", ErrCorrupt, start+uint64(i), err)
			}
		}
	}
	a.mu.Lock()
	a.auth = auth
	a.mu.Unlock()
	return nil
}

// envelopeStatement returns env's header and, for a clear (registry)
// entry, its checked statement.
func envelopeStatement(env ledger.Envelope) (ledger.Header, *ledger.Statement, error) {
	h, err := ledger.CheckEnvelope(env)
	if err != nil {
		return ledger.Header{}, nil, err
	}
	if len(env.Clear) == 0 {
		return h, nil, nil
	}
	o, err := ledger.DecodeOpening(env.Clear)
	if err != nil {
		return ledger.Header{}, nil, err
	}
	st, err := ledger.CheckOpening(o, h)
	if err != nil {
		return ledger.Header{}, nil, err
	}
	return h, &st, nil
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
	a.mu.Lock()
	a.chainID, a.gateways = g.ChainID, gw
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
	a.mu.Lock()
	a.auth = a.genesisAuthority()
	a.mu.Unlock()
	a.logger.Info("ledger chain initialised", slog.String("chain_id", req.ChainId), slog.Int("gateways", len(a.gateways)))
	return &abci.ResponseInitChain{AppHash: append([]byte(nil), m.Root[:]...)}, nil
}

// Query answers CometBFT's peer filter (with filter_peers on, every new
// connection and peer is checked with /p2p/filter/addr/… and
// /p2p/filter/id/…), "/state", which returns the committed height, log
// size and root as JSON, and "/tx/<hex TxID>", which returns the 8-byte
// big-endian index of a committed transaction's entry (code
// CodeNotFound if it is not committed). The filter admits every peer except while the
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
			return &abci.ResponseQuery{Code: CodeNotFound, Log: "not committed", Height: st.Height}, nil
		}
		return &abci.ResponseQuery{Code: CodeOK, Value: binary.BigEndian.AppendUint64(nil, idx), Height: st.Height}, nil
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

// checkTx parses and verifies tx against the genesis and the committed
// transaction IDs.
func (a *App) checkTx(tx []byte) (Tx, error) {
	a.mu.RLock()
	chainID, gateways := a.chainID, a.gateways
	a.mu.RUnlock()
	if gateways == nil {
		return Tx{}, errNotReady
	}
	t, err := ParseTx(chainID, gateways, tx)
	if err != nil {
		return Tx{}, err
	}
	_, dup, err := a.store.txIndex(t.ID)
	if err != nil {
		return Tx{}, err
	}
	if dup {
		return Tx{}, fmt.Errorf("%w: %s", ErrDuplicate, t.ID)
	}
	// Refuse early what the registry refuses now (FinalizeBlock checks
	// again, at the entry's index).
	a.mu.RLock()
	auth := a.auth
	a.mu.RUnlock()
	if auth != nil {
		if err := checkAuthorship(auth, auth.Next(), t, false); err != nil {
			return Tx{}, err
		}
	}
	return t, nil
}

// checkAuthorship checks t's entry at index against auth (the registry
// as of index) and, if apply, applies it to auth.
func checkAuthorship(auth *ledger.Authority, index uint64, t Tx, apply bool) error {
	h, st, err := envelopeStatement(t.Envelope)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadTx, err)
	}
	if err := auth.Verify(index, h, st); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if !apply {
		return nil
	}
	return auth.Apply(index, h, st)
}

// CheckTx admits a transaction to the mempool if it is well formed, signed
// by a genesis gateway and not already in the log. It changes no state.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	defer a.useDB()()
	if _, err := a.checkTx(req.Tx); err != nil {
		return &abci.ResponseCheckTx{Code: codeOf(err), Log: err.Error()}, nil
	}
	return &abci.ResponseCheckTx{Code: CodeOK}, nil
}

// PrepareProposal keeps the transactions that would be applied, in mempool
// order, within the block's byte limit.
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	defer a.useDB()()
	txs := make([][]byte, 0, len(req.Txs))
	seen := make(map[TxID]bool, len(req.Txs))
	var total int64
	for _, tx := range req.Txs {
		t, err := a.checkTx(tx)
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
// proposer would include: malformed, from an unknown gateway or badly
// signed. Duplicates are left to FinalizeBlock, which skips them.
func (a *App) ProcessProposal(_ context.Context, req *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	a.mu.RLock()
	chainID, gateways := a.chainID, a.gateways
	a.mu.RUnlock()
	for _, tx := range req.Txs {
		if _, err := ParseTx(chainID, gateways, tx); err != nil {
			a.logger.Warn("rejecting proposal", slog.Int64("height", req.Height), slog.String("err", err.Error()))
			return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_REJECT}, nil
		}
	}
	return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
}

// FinalizeBlock applies the block's transactions in order: each valid,
// not yet applied transaction appends its entry with Time set to the block
// time, at the next index. It returns the log root after the block as the
// application hash. Nothing is persisted until Commit.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	defer a.useDB()()
	base := a.Committed()
	if base.Height != 0 && req.Height != base.Height+1 {
		return nil, fmt.Errorf("comet: finalize block %d after committed height %d", req.Height, base.Height)
	}
	a.mu.RLock()
	chainID, gateways := a.chainID, a.gateways
	a.mu.RUnlock()
	if gateways == nil {
		return nil, errNotReady
	}
	a.mu.RLock()
	auth := a.auth
	a.mu.RUnlock()
	if auth == nil {
		return nil, errNotReady
	}
	b := &stagedBlock{
		state:  State{Height: req.Height, Size: base.Size},
		first:  base.Size,
		hashes: make(map[int64]tlog.Hash),
		txs:    make(map[TxID]uint64),
		auth:   auth.Clone(),
	}
	reader := a.stagedReader(b, base.Size)
	results := make([]*abci.ExecTxResult, len(req.Txs))
	for i, raw := range req.Txs {
		idx, err := a.apply(chainID, gateways, b, reader, raw, req)
		if err != nil {
			if !errors.Is(err, ErrBadTx) && !errors.Is(err, ErrUnknownGateway) &&
				!errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrDuplicate) && !errors.Is(err, ErrRefused) {
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
func (a *App) apply(chainID string, gateways map[string]ed25519.PublicKey, b *stagedBlock, reader tlog.HashReader, raw []byte, req *abci.RequestFinalizeBlock) (uint64, error) {
	t, err := ParseTx(chainID, gateways, raw)
	if err != nil {
		return 0, err
	}
	if _, dup := b.txs[t.ID]; dup {
		return 0, fmt.Errorf("%w: %s", ErrDuplicate, t.ID)
	}
	_, dup, err := a.store.txIndex(t.ID)
	if err != nil {
		return 0, err
	}
	if dup {
		return 0, fmt.Errorf("%w: %s", ErrDuplicate, t.ID)
	}
	idx := b.state.Size
	if err := checkAuthorship(b.auth, idx, t, true); err != nil {
		return 0, err
	}
	data, err := ledger.NewLeafFor(t.Envelope.Header, req.Time)
	if err != nil {
		// CheckEnvelope accepted the header, so this cannot happen for a
		// well-formed block time; reject rather than halt.
		return 0, fmt.Errorf("%w: entry: %w", ErrBadTx, err)
	}
	hashes, err := tlog.StoredHashes(int64(idx), data, reader)
	if err != nil {
		return 0, fmt.Errorf("stored hashes for %d: %w", idx, err)
	}
	base := tlog.StoredHashIndex(0, int64(idx))
	for k, h := range hashes {
		b.hashes[base+int64(k)] = h
	}
	b.entries = append(b.entries, data)
	b.envelopes = append(b.envelopes, t.Envelope)
	b.txs[t.ID] = idx
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

// Commit persists the staged block (entries, hashes, transaction IDs and
// the new height) in one synchronous write, then makes it visible to
// readers.
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
	a.auth = b.auth
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
