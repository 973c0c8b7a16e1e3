package comet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/rpc/client/local"
	sm "github.com/cometbft/cometbft/state"
	cmtstore "github.com/cometbft/cometbft/store"
	"github.com/cometbft/cometbft/types"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"golang.org/x/mod/sumdb/note"
)

// Defaults.
const (
	// DefaultAppendTimeout is how long Append waits for its entry to be
	// committed before it gives up with ledger.ErrUnavailable.
	DefaultAppendTimeout = 30 * time.Second
	// appDBName is the application database under the node's data
	// directory, next to CometBFT's blockstore and state.
	appDBName = "healthgw-ledger"
)

// Config configures Open. Home is required; everything else has a
// default.
type Config struct {
	// Home is the CometBFT home directory: config/config.toml (optional;
	// CometBFT defaults otherwise), config/genesis.json,
	// config/node_key.json, config/priv_validator_key.json,
	// config/gateway_key.json and data/.
	Home string
	// Signer signs checkpoints with this node's own key. Required.
	Signer note.Signer
	// Origin is the checkpoint origin line. Default: Signer.Name().
	Origin string
	// GatewayKey is the key this gateway signs transactions with. If its
	// ID is empty it is read from Home/config/gateway_key.json; if that
	// file does not exist either, the node is a read-only replica (an
	// auditor's, say) and Append fails with ErrReadOnly.
	GatewayKey GatewayKey
	// AppendTimeout bounds how long Append waits for a commit. Default
	// DefaultAppendTimeout.
	AppendTimeout time.Duration
	// RetainBlocks, when positive, lets CometBFT prune all but the last
	// RetainBlocks blocks. The log itself is never pruned. Zero (the
	// default) keeps every block; at least one node should, so that new
	// or long-gone nodes can catch up by block sync.
	RetainBlocks int64
	// Logger receives the ledger's and CometBFT's messages (CometBFT's
	// per-block Info lines at Debug). Nil discards them.
	Logger *slog.Logger
	// Tune, if set, adjusts the CometBFT configuration after config.toml
	// was read (tests use it for ports and timeouts).
	Tune func(*cfg.Config)
}

// Open starts the CometBFT node in Home with the ledger application in
// the same process and returns the log once the node is running. The node
// replays any blocks the application has not committed before Open
// returns. Close stops it.
func Open(ctx context.Context, c Config) (*Log, error) {
	if c.Home == "" {
		return nil, errors.New("comet: Config.Home is required")
	}
	if c.Signer == nil {
		return nil, errors.New("comet: Config.Signer is required")
	}
	if c.AppendTimeout <= 0 {
		c.AppendTimeout = DefaultAppendTimeout
	}
	if c.Origin == "" {
		c.Origin = c.Signer.Name()
	}
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	home, err := filepath.Abs(c.Home)
	if err != nil {
		return nil, fmt.Errorf("comet home: %w", err)
	}
	conf, err := LoadNodeConfig(home)
	if err != nil {
		return nil, err
	}
	if c.Tune != nil {
		c.Tune(conf)
	}
	// The application answers the peer filter queries (see App.Query).
	conf.FilterPeers = true
	if conf.Mempool.MaxTxBytes < MaxTxSize {
		// A mempool that refused a well-formed entry would leave its
		// gateway unable to write it (a config.toml from an older
		// healthgw has a smaller limit).
		logger.Warn("raising mempool.max_tx_bytes to the largest ledger transaction",
			slog.Int("configured", conf.Mempool.MaxTxBytes), slog.Int("max_tx_size", MaxTxSize))
		conf.Mempool.MaxTxBytes = MaxTxSize
	}
	if err := conf.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("comet config: %w", err)
	}

	genDoc, genState, err := loadGenesis(conf.GenesisFile())
	if err != nil {
		return nil, err
	}
	gk := c.GatewayKey
	if gk.ID == "" {
		path := filepath.Join(home, GatewayKeyFile)
		if _, err := os.Stat(path); err == nil {
			if gk, err = LoadGatewayKey(path); err != nil {
				return nil, err
			}
		}
	}
	if gk.ID != "" {
		if err := checkGatewayInGenesis(gk, genState); err != nil {
			return nil, err
		}
	}
	nodeKey, err := p2p.LoadNodeKey(conf.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("read node key: %w", err)
	}
	_, statErr := os.Stat(filepath.Join(conf.DBDir(), "blockstore.db"))
	fresh := errors.Is(statErr, os.ErrNotExist)
	pv, err := loadPrivValidator(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile(), fresh)
	if err != nil {
		return nil, err
	}

	db, err := openAppDB(dbm.BackendType(conf.DBBackend), conf.DBDir())
	if err != nil {
		return nil, fmt.Errorf("open ledger database: %w", err)
	}
	app, err := NewApp(db, AppOptions{RetainBlocks: c.RetainBlocks, Logger: logger})
	if err != nil {
		db.Close()
		return nil, err
	}
	if !fresh {
		if err := checkChain(conf, app.Committed()); err != nil {
			db.Close()
			return nil, err
		}
	}
	halt := &haltState{onHalt: func(reason string) {
		logger.Error("consortium ledger halted: this node no longer serves the log or accepts writes",
			slog.String("reason", reason), slog.Int64("height", app.Height()))
	}}
	n, err := node.NewNodeWithContext(ctx, conf, pv, nodeKey,
		// One lock per ABCI connection, not one for all: CheckTx (the
		// mempool's connection) runs alongside PrepareProposal,
		// ProcessProposal and FinalizeBlock (consensus), so that
		// transactions arriving from clients and peers do not delay
		// blocks. App is safe for that (see App); CometBFT itself holds
		// the mempool's lock around Commit.
		proxy.NewConnSyncLocalClientCreator(app),
		func() (*types.GenesisDoc, error) { return genDoc, nil },
		closeTolerantDBProvider,
		node.DefaultMetricsProvider(conf.Instrumentation),
		newCometLogger(logger, halt),
	)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create comet node: %w", err)
	}
	if app.GenesisGateways() == nil {
		// The handshake in NewNode runs InitChain on a fresh node; the
		// gateway ledgers over this log need the genesis gateways.
		n.OnStop()
		db.Close()
		return nil, errors.New("comet: the chain was not initialised (no genesis gateways)")
	}
	if err := n.Start(); err != nil {
		// Start failed half-way (a port in use, say): release what
		// NewNode and OnStart opened, so the home can be opened again.
		n.OnStop()
		db.Close()
		return nil, fmt.Errorf("start comet node: %w", err)
	}
	l := &Log{
		app:           app,
		node:          n,
		rpc:           local.New(n),
		chainID:       genDoc.ChainID,
		gateway:       gk,
		signer:        c.Signer,
		origin:        c.Origin,
		appendTimeout: c.AppendTimeout,
		logger:        logger,
		halt:          halt,
		done:          make(chan struct{}),
	}
	logger.Info("consortium ledger node started",
		slog.String("chain_id", genDoc.ChainID),
		slog.String("gateway", gk.ID),
		slog.String("node_id", string(nodeKey.ID())),
		slog.String("p2p", conf.P2P.ListenAddress),
		slog.String("rpc", conf.RPC.ListenAddress),
		slog.Int64("height", app.Height()),
		slog.Uint64("size", app.Committed().Size))
	return l, nil
}

// LoadNodeConfig returns CometBFT's configuration for home: the defaults,
// overridden by home/config/config.toml when it exists.
func LoadNodeConfig(home string) (*cfg.Config, error) {
	conf := cfg.DefaultConfig().SetRoot(home)
	path := filepath.Join(home, cfg.DefaultConfigDir, cfg.DefaultConfigFileName)
	if err := readConfigFile(path, conf); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("comet config: %w", err)
	}
	return conf.SetRoot(home), nil
}

func checkGatewayInGenesis(gk GatewayKey, gs GenesisState) error {
	if len(gk.PrivateKey) != ed25519.PrivateKeySize {
		return fmt.Errorf("comet: gateway %q: key must be an Ed25519 private key", gk.ID)
	}
	pub := gk.PrivateKey.Public().(ed25519.PublicKey)
	for _, g := range gs.Gateways {
		if g.ID == gk.ID {
			if !g.PublicKey.Equal(pub) {
				return fmt.Errorf("comet: gateway %q: key does not match the public key in genesis", gk.ID)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %q is not in the genesis gateway set", ErrUnknownGateway, gk.ID)
}

// closeTolerantDBProvider opens CometBFT's databases like
// cfg.DefaultDBProvider (but goleveldb in strict mode, see openDB),
// wrapped in closeTolerantDB.
func closeTolerantDBProvider(ctx *cfg.DBContext) (dbm.DB, error) {
	db, err := openDB(ctx.ID, dbm.BackendType(ctx.Config.DBBackend), ctx.Config.DBDir())
	if err != nil {
		return nil, err
	}
	return &closeTolerantDB{DB: db}, nil
}

// openDB opens a database; goleveldb in strict mode (opt.StrictAll): a
// torn or corrupt journal, manifest or table is an error at open instead
// of being "recovered" by silently dropping what it held, which would
// lose committed entries and later halt consensus on a replayed
// transaction.
func openDB(name string, backend dbm.BackendType, dir string) (dbm.DB, error) {
	if backend == dbm.GoLevelDBBackend {
		db, err := dbm.NewGoLevelDBWithOpts(name, dir, &opt.Options{Strict: opt.StrictAll})
		if err != nil {
			return nil, fmt.Errorf("%w: database %s in %s: %w", ErrCorrupt, name, dir, err)
		}
		return db, nil
	}
	return dbm.NewDB(name, backend, dir)
}

// openAppDB opens the application database: as openDB, and on goleveldb
// with a Bloom filter (10 bits a key, about 1% false positives) on its
// tables. Most of the application's reads are of keys that do not exist
// (a transaction or an entry not committed yet: CheckTx, PrepareProposal,
// FinalizeBlock and every waiting Append ask), and without a filter each
// such read searches every level's table index. The filter changes no
// answer; tables written before it was set are read as before.
func openAppDB(backend dbm.BackendType, dir string) (dbm.DB, error) {
	if backend == dbm.GoLevelDBBackend {
		db, err := dbm.NewGoLevelDBWithOpts(appDBName, dir, appDBOptions())
		if err != nil {
			return nil, fmt.Errorf("%w: database %s in %s: %w", ErrCorrupt, appDBName, dir, err)
		}
		return db, nil
	}
	return openDB(appDBName, backend, dir)
}

// appDBOptions are the goleveldb options of the application database:
// strict (see openDB), a Bloom filter (see openAppDB), and a larger
// memtable and tables than goleveldb's defaults (4 MiB and 2 MiB). The
// application writes every committed transaction's envelope, leaf and
// index entries, far more bytes per block than CometBFT's own stores,
// and with the defaults the background compactions that rewrite them
// grew with the log until they were the largest single cost of a
// committed transaction. Bigger flushes and tables rewrite the same
// data fewer times. Durability is unchanged: every write still goes
// through the journal first.
func appDBOptions() *opt.Options {
	return &opt.Options{
		Strict:              opt.StrictAll,
		Filter:              filter.NewBloomFilter(10),
		WriteBuffer:         32 * opt.MiB,
		CompactionTableSize: 8 * opt.MiB,
		CompactionTotalSize: 80 * opt.MiB,
		BlockCacheCapacity:  32 * opt.MiB,
	}
}

// CloseTolerant wraps db in closeTolerantDB, for other CometBFT networks
// run in the same process (the kvstore benchmark's).
func CloseTolerant(db dbm.DB) dbm.DB { return &closeTolerantDB{DB: db} }

// closeTolerantDB works around a CometBFT shutdown race: per-peer
// goroutines (consensus queryMaj23Routine, block sync) can outlive
// Node.Stop and read the block store after it was closed, and the store
// panics on the read error ("leveldb: closed"). Once closed, reads here
// report "not found", which those goroutines already handle.
type closeTolerantDB struct {
	dbm.DB
	closed atomic.Bool
}

func (d *closeTolerantDB) Get(key []byte) ([]byte, error) {
	v, err := d.DB.Get(key)
	if err != nil && d.closed.Load() {
		return nil, nil
	}
	return v, err
}

func (d *closeTolerantDB) Has(key []byte) (bool, error) {
	ok, err := d.DB.Has(key)
	if err != nil && d.closed.Load() {
		return false, nil
	}
	return ok, err
}

func (d *closeTolerantDB) Close() error {
	d.closed.Store(true)
	return d.DB.Close()
}

// checkChain checks the application's committed root against the
// application hash CometBFT recorded for the same height: the state
// store's (the hash after its last block) when the heights are equal, or
// the next stored block header's (each header carries the hash after the
// block before it) when the application is behind and CometBFT will
// replay blocks into it.
func checkChain(conf *cfg.Config, st State) error {
	open := func(name string) (dbm.DB, error) {
		return openDB(name, dbm.BackendType(conf.DBBackend), conf.DBDir())
	}
	sdb, err := open("state")
	if err != nil {
		return err
	}
	defer sdb.Close()
	cs, err := sm.NewStore(sdb, sm.StoreOptions{}).Load()
	if err != nil {
		return fmt.Errorf("%w: read consensus state: %w", ErrCorrupt, err)
	}
	if cs.IsEmpty() || cs.LastBlockHeight == 0 {
		if st.Height != 0 {
			return fmt.Errorf("%w: the ledger is at height %d but CometBFT has no committed block", ErrCorrupt, st.Height)
		}
		return nil
	}
	switch {
	case st.Height == cs.LastBlockHeight:
		if !bytes.Equal(st.Root[:], cs.AppHash) {
			return fmt.Errorf("%w: height %d: the ledger's root %x is not the application hash %x the consortium committed", ErrCorrupt, st.Height, st.Root[:], cs.AppHash)
		}
	case st.Height > cs.LastBlockHeight:
		return fmt.Errorf("%w: the ledger is at height %d, ahead of CometBFT's last block %d", ErrCorrupt, st.Height, cs.LastBlockHeight)
	default:
		bdb, err := open("blockstore")
		if err != nil {
			return err
		}
		defer bdb.Close()
		if m := cmtstore.NewBlockStore(bdb).LoadBlockMeta(st.Height + 1); m != nil && !bytes.Equal(st.Root[:], m.Header.AppHash) {
			return fmt.Errorf("%w: height %d: the ledger's root %x is not the application hash %x in block %d", ErrCorrupt, st.Height, st.Root[:], []byte(m.Header.AppHash), st.Height+1)
		}
	}
	return nil
}
