package comettest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	"github.com/cometbft/cometbft/abci/example/kvstore"
	cfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/rpc/client/local"
	"github.com/cometbft/cometbft/types"

	"github.com/healthgw/healthgw/internal/testscale"
	"github.com/healthgw/healthgw/ledger/comet"
)

// KVStoreNetwork is a reference network for benchmarks: n validators
// running CometBFT's own example application (abci/example/kvstore,
// persistent, on goleveldb) in the test process, with the homes
// comet.InitHomes writes and the same consensus configuration as a
// Network with the same Options (tuneConfig), so that the two differ
// only in their application.
type KVStoreNetwork struct {
	t     testing.TB
	nodes []*kvNode
}

type kvNode struct {
	node *node.Node
	app  *kvstore.Application
	rpc  *local.Local

	mu      sync.Mutex
	waiters map[[sha256.Size]byte]chan struct{}
	done    chan struct{}
}

// NewKVStoreNetwork creates and starts an n-validator kvstore network.
// Options' TimeoutCommit and Tune apply as for NewNetwork; the other
// fields are ignored.
func NewKVStoreNetwork(t testing.TB, n int, opts Options) *KVStoreNetwork {
	t.Helper()
	if opts.TimeoutCommit <= 0 {
		opts.TimeoutCommit = 50 * time.Millisecond
	}
	dir := t.TempDir()
	specs := make([]comet.NodeSpec, n)
	ports := freePorts(t, n)
	for i := range specs {
		name := fmt.Sprintf("kvstore-%d", i+1)
		specs[i] = comet.NodeSpec{
			Name:       name,
			Home:       filepath.Join(dir, name),
			P2PListen:  "tcp://" + ports[i],
			P2PAddress: ports[i],
		}
	}
	if _, _, err := comet.InitHomes(ChainID, specs, comet.InitOptions{}); err != nil {
		t.Fatalf("init homes: %v", err)
	}
	net := &KVStoreNetwork{t: t}
	t.Cleanup(net.Close)
	for i, s := range specs {
		kn, err := startKVNode(s.Home, tuneConfig(opts, i))
		if err != nil {
			t.Fatalf("start kvstore node %d: %v", i, err)
		}
		net.nodes = append(net.nodes, kn)
	}
	return net
}

func startKVNode(home string, tune func(*cfg.Config)) (*kvNode, error) {
	conf, err := comet.LoadNodeConfig(home)
	if err != nil {
		return nil, err
	}
	tune(conf)
	// comet.Open sets FilterPeers (healthgw's application refuses peers
	// while it stops); the kvstore has no such rule, and its Query on a
	// closed database panics. The filter runs once per connection, not
	// per transaction.
	conf.FilterPeers = false
	if err := conf.ValidateBasic(); err != nil {
		return nil, err
	}
	nodeKey, err := p2p.LoadNodeKey(conf.NodeKeyFile())
	if err != nil {
		return nil, err
	}
	pv := privval.LoadFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
	app := kvstore.NewPersistentApplication(filepath.Join(conf.DBDir(), "kvstore-app"))
	n, err := node.NewNode(conf, pv, nodeKey, proxy.NewLocalClientCreator(app),
		node.DefaultGenesisDocProviderFunc(conf), closeTolerantDBProvider,
		node.DefaultMetricsProvider(conf.Instrumentation), cmtlog.NewNopLogger())
	if err != nil {
		return nil, err
	}
	if err := n.Start(); err != nil {
		_ = app.Close()
		return nil, err
	}
	kn := &kvNode{node: n, app: app, rpc: local.New(n), waiters: make(map[[sha256.Size]byte]chan struct{}), done: make(chan struct{})}
	// One subscription to the node's committed blocks (fired after the
	// application's Commit) wakes every submitter whose transaction is in
	// the block: the equivalent of broadcast_tx_commit without one
	// subscription per transaction (which the RPC limits to 100 clients).
	sub, err := n.EventBus().Subscribe(context.Background(), "kvstore-bench", types.EventQueryNewBlock, 1024)
	if err != nil {
		_ = n.Stop()
		return nil, err
	}
	go func() {
		defer close(kn.done)
		for {
			select {
			case msg := <-sub.Out():
				ev, ok := msg.Data().(types.EventDataNewBlock)
				if !ok {
					continue
				}
				kn.mu.Lock()
				for _, tx := range ev.Block.Txs {
					h := sha256.Sum256(tx)
					if ch, ok := kn.waiters[h]; ok {
						close(ch)
						delete(kn.waiters, h)
					}
				}
				kn.mu.Unlock()
			case <-sub.Canceled():
				return
			}
		}
	}()
	return kn, nil
}

// closeTolerantDBProvider is cfg.DefaultDBProvider with reads after Close
// answered "not found", as comet.Open does for its nodes: CometBFT's
// per-peer goroutines can outlive Node.Stop and read the block store,
// which panics on "leveldb: closed".
func closeTolerantDBProvider(ctx *cfg.DBContext) (dbm.DB, error) {
	db, err := cfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, err
	}
	return comet.CloseTolerant(db), nil
}

// ErrKVStoreRejected: the kvstore's CheckTx refused a transaction.
var ErrKVStoreRejected = errors.New("comettest: kvstore rejected the transaction")

// Submit broadcasts tx through node i (CheckTx there, then gossip) and
// returns once a block holding it is committed on that node, as
// comet.Log.AppendEnvelope does for a ledger transaction. tx must be a
// kvstore transaction ("key=value"), distinct from every earlier one.
func (net *KVStoreNetwork) Submit(ctx context.Context, i int, tx []byte) error {
	kn := net.nodes[i]
	h := sha256.Sum256(tx)
	ch := make(chan struct{})
	kn.mu.Lock()
	kn.waiters[h] = ch
	kn.mu.Unlock()
	forget := func() {
		kn.mu.Lock()
		delete(kn.waiters, h)
		kn.mu.Unlock()
	}
	res, err := kn.rpc.BroadcastTxSync(ctx, tx)
	if err != nil {
		forget()
		return fmt.Errorf("broadcast: %w", err)
	}
	if res.Code != 0 {
		forget()
		return fmt.Errorf("%w: code %d: %s", ErrKVStoreRejected, res.Code, res.Log)
	}
	select {
	case <-ch:
		return nil
	case <-kn.done:
		return errors.New("comettest: kvstore node stopped")
	case <-ctx.Done():
		forget()
		return fmt.Errorf("kvstore transaction not committed: %w", ctx.Err())
	}
}

// Len returns the number of validators.
func (net *KVStoreNetwork) Len() int { return len(net.nodes) }

// Height returns node i's last committed height.
func (net *KVStoreNetwork) Height(i int) int64 {
	return net.nodes[i].node.BlockStore().Height()
}

// Close stops every node, then closes their databases.
func (net *KVStoreNetwork) Close() {
	for i, kn := range net.nodes {
		if kn == nil || !kn.node.IsRunning() {
			continue
		}
		if err := kn.node.Stop(); err != nil {
			net.t.Errorf("stop kvstore node %d: %v", i, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testscale.Timeout(30*time.Second))
		select {
		case <-kn.done:
		case <-ctx.Done():
		}
		cancel()
		kn.node.Wait()
	}
	for i, kn := range net.nodes {
		if kn == nil || kn.app == nil {
			continue
		}
		if err := kn.app.Close(); err != nil {
			net.t.Errorf("close kvstore node %d's database: %v", i, err)
		}
		kn.app = nil
	}
}
