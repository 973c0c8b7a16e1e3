// Package comettest runs consortium ledger networks for tests: n CometBFT
// validators (ledger/comet nodes) in the test process, on free loopback
// ports, in t.TempDir() homes, with fast consensus timeouts. Nodes can be
// stopped, restarted, wiped and added, for fault tests.
//
// A comet.Log is a ledger store: it keeps and replicates envelopes, but
// signs, seals and opens nothing. With Options.Gateways every validator
// also gets its gateway's view of the log (Network.Ledger, a ledger.Node
// with the node's gateway key, a sealing key of its own and the
// consortium's shared pseudonym secret), which registers the gateway when
// first opened, as a gateway does.
package comettest

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/internal/testscale"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
)

// ChainID is the chain ID of test networks.
const ChainID = "healthgw-test"

// Options tune a network. The zero value is a good default.
type Options struct {
	// TimeoutCommit is CometBFT's pause after each block. Default 50ms.
	TimeoutCommit time.Duration
	// AppendTimeout bounds each Append. Default 15s.
	AppendTimeout time.Duration
	// RetainBlocks is passed to every node (block pruning).
	RetainBlocks int64
	// Logger receives every node's messages. Default: discarded, unless
	// HEALTHGW_COMETTEST_LOG is set (then debug output to stderr).
	Logger *slog.Logger
	// Tune adjusts node i's CometBFT configuration on every start.
	Tune func(i int, c *cfg.Config)
	// RPC enables every node's CometBFT RPC server on a free loopback
	// port (for comet.OpenRemote); off by default.
	RPC bool
	// CheckpointKeys[i], if present, is node i's checkpoint signer key
	// (see ledger.GenerateCheckpointKey), so that a gateway built on the
	// node can publish its verifier key. Other nodes get fresh keys named
	// "<node name>.test".
	CheckpointKeys []string
	// Gateways opens every validator's gateway ledger (Network.Ledger)
	// when the network starts, and waits until every gateway's
	// registration is committed on every node: the log then starts with
	// one gateway.registered per validator, in some order.
	Gateways bool
	// PseudonymSecret is the consortium's pseudonym secret, shared by
	// the gateways (Network.Ledger). Default: a fixed test secret.
	PseudonymSecret []byte
	// Identities[i], if present, is node i's gateway identity (its
	// Gateway must be the node's name, hospital-<i+1>; its NodeKey an
	// ed25519.PrivateKey), for tests that sign as the gateway
	// themselves; other nodes get fresh keys and PseudonymSecret.
	Identities []ledger.Identity
}

// Network is a running test consortium.
type Network struct {
	t     testing.TB
	opts  Options
	dir   string
	mu    sync.Mutex
	nodes []*Node
}

// Node is one member of a Network.
type Node struct {
	// Name is the node's moniker and gateway ID.
	Name string
	// Home is its CometBFT home.
	Home string
	// Signer and Verifier are its checkpoint key.
	Signer   note.Signer
	Verifier note.Verifier
	// SealKey is its gateway's sealing key (Network.Ledger), kept
	// across restarts.
	SealKey *ecdh.PrivateKey

	index  int
	log    *comet.Log
	ledger *ledger.Node // over log, opened by Network.Ledger
}

// NewNetwork creates and starts an n-validator network.
func NewNetwork(t testing.TB, n int, opts Options) *Network {
	t.Helper()
	if opts.TimeoutCommit <= 0 {
		opts.TimeoutCommit = 50 * time.Millisecond
	}
	if opts.AppendTimeout <= 0 {
		// Scaled to the machine: on a loaded one a block takes longer.
		opts.AppendTimeout = testscale.Timeout(15 * time.Second)
	}
	if opts.Logger == nil {
		if os.Getenv("HEALTHGW_COMETTEST_LOG") != "" {
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		} else {
			opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
	}
	net := &Network{t: t, opts: opts, dir: t.TempDir()}
	specs := make([]comet.NodeSpec, n)
	ports := freePorts(t, 2*n)
	for i := range specs {
		name := fmt.Sprintf("hospital-%d", i+1)
		p2p := ports[2*i]
		specs[i] = comet.NodeSpec{
			Name:       name,
			Home:       filepath.Join(net.dir, name),
			P2PListen:  "tcp://" + p2p,
			P2PAddress: p2p,
		}
		if opts.RPC {
			specs[i].RPCListen = "tcp://" + ports[2*i+1]
		}
	}
	var gatewayKeys []ed25519.PrivateKey
	for i, id := range opts.Identities {
		k, ok := id.NodeKey.(ed25519.PrivateKey)
		if !ok || id.Gateway != specs[i].Name {
			t.Fatalf("identity %d: gateway %q with a %T node key, want %s with an ed25519.PrivateKey", i, id.Gateway, id.NodeKey, specs[i].Name)
		}
		gatewayKeys = append(gatewayKeys, k)
	}
	if _, _, err := comet.InitHomes(ChainID, specs, comet.InitOptions{GatewayKeys: gatewayKeys}); err != nil {
		t.Fatalf("init homes: %v", err)
	}
	for i, s := range specs {
		net.nodes = append(net.nodes, net.newNode(i, s.Name, s.Home))
	}
	t.Cleanup(net.Close)
	for i := range net.nodes {
		net.StartNode(i)
	}
	if opts.Gateways {
		net.openGateways()
	}
	return net
}

// openGateways opens every validator's gateway ledger at once (each
// registers its gateway and waits for the registration to commit) and
// waits until every node has committed every registration.
func (net *Network) openGateways() {
	t := net.t
	t.Helper()
	errs := make(chan error, net.Len())
	var wg sync.WaitGroup
	for i := range net.Len() {
		wg.Go(func() {
			if _, err := net.openLedger(i); err != nil {
				errs <- fmt.Errorf("gateway %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testscale.Timeout(time.Minute))
	defer cancel()
	for i, l := range net.Logs() {
		if err := l.WaitRegistered(ctx); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
}

// defaultPseudonymSecret is the test consortium's pseudonym secret.
var defaultPseudonymSecret = func() []byte {
	b := make([]byte, ledger.PseudonymKeySize)
	for i := range b {
		b[i] = byte(0xa5 ^ i)
	}
	return b
}()

// Identity returns node n's gateway identity: its gateway key from the
// home (ReadOnly, without keys, for an observer), its sealing key and the
// network's pseudonym secret.
func (net *Network) Identity(i int) (ledger.Identity, error) {
	if i < len(net.opts.Identities) {
		return net.opts.Identities[i], nil
	}
	n := net.Node(i)
	secret := net.opts.PseudonymSecret
	if secret == nil {
		secret = defaultPseudonymSecret
	}
	ps, err := ledger.NewPseudonymizer(secret)
	if err != nil {
		return ledger.Identity{}, err
	}
	path := filepath.Join(n.Home, comet.GatewayKeyFile)
	if _, err := os.Stat(path); err != nil {
		return ledger.Identity{Gateway: n.Name, ReadOnly: true}, nil
	}
	gk, err := comet.LoadGatewayKey(path)
	if err != nil {
		return ledger.Identity{}, err
	}
	return ledger.Identity{
		Gateway: gk.ID, BaseURL: "http://" + gk.ID + ".test", NodeKey: gk.PrivateKey,
		SealKey: n.SealKey, Pseudonyms: ps,
	}, nil
}

// Ledger returns node i's gateway ledger: a ledger.Node over its log with
// its gateway identity (Identity), opened on first use after each start
// (the first open registers the gateway). Nil while the node is stopped.
// Open it once the node has caught up, after a restart with a wiped disk.
func (net *Network) Ledger(i int) *ledger.Node {
	net.t.Helper()
	n, err := net.openLedger(i)
	if err != nil {
		net.t.Fatalf("gateway ledger %d: %v", i, err)
	}
	return n
}

func (net *Network) openLedger(i int) (*ledger.Node, error) {
	net.mu.Lock()
	n := net.nodes[i]
	l, ln := n.log, n.ledger
	net.mu.Unlock()
	if l == nil || ln != nil {
		return ln, nil
	}
	id, err := net.Identity(i)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), testscale.Timeout(time.Minute))
	defer cancel()
	for {
		// The gateway's registration waits for a block, which a network
		// that just started (or a short append timeout) may not make in
		// time: its outcome is then unknown, and opening again finds it
		// committed, or registers again (and a second registration
		// refused finds the first), as a gateway started again would.
		ln, err = ledger.OpenNode(ctx, l, id)
		if err == nil {
			break
		}
		if !errors.Is(err, ledger.ErrUnavailable) || errors.Is(err, ledger.ErrClosed) || ctx.Err() != nil {
			return nil, err
		}
	}
	net.mu.Lock()
	defer net.mu.Unlock()
	if n.log != l {
		return nil, fmt.Errorf("node %d restarted while its ledger opened", i)
	}
	if n.ledger == nil {
		n.ledger = ln
	}
	return n.ledger, nil
}

func (net *Network) newNode(i int, name, home string) *Node {
	t := net.t
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name+".test")
	if err != nil {
		t.Fatal(err)
	}
	if i < len(net.opts.CheckpointKeys) {
		skey = net.opts.CheckpointKeys[i]
		if vkey, err = ledger.VerifierKey(skey); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	seal, err := ledger.NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	return &Node{Name: name, Home: home, Signer: signer, Verifier: verifier, SealKey: seal, index: i}
}

// tune applies the test network settings: fast consensus, no empty
// blocks, no RPC server unless Options.RPC.
func (net *Network) tune(i int) func(*cfg.Config) {
	return tuneConfig(net.opts, i)
}

// tuneConfig is the test network configuration of node i under opts,
// shared by Network and KVStoreNetwork so that both run consensus alike.
func tuneConfig(opts Options, i int) func(*cfg.Config) {
	return func(c *cfg.Config) {
		if !opts.RPC {
			c.RPC.ListenAddress = ""
		}
		c.P2P.FlushThrottleTimeout = 10 * time.Millisecond
		c.P2P.PexReactor = false
		c.P2P.PersistentPeersMaxDialPeriod = time.Second
		c.Consensus.TimeoutPropose = 400 * time.Millisecond
		c.Consensus.TimeoutProposeDelta = 100 * time.Millisecond
		c.Consensus.TimeoutPrevote = 100 * time.Millisecond
		c.Consensus.TimeoutPrevoteDelta = 50 * time.Millisecond
		c.Consensus.TimeoutPrecommit = 100 * time.Millisecond
		c.Consensus.TimeoutPrecommitDelta = 50 * time.Millisecond
		c.Consensus.TimeoutCommit = opts.TimeoutCommit
		c.Consensus.CreateEmptyBlocks = false
		c.Consensus.PeerGossipSleepDuration = 10 * time.Millisecond
		c.Consensus.PeerQueryMaj23SleepDuration = 250 * time.Millisecond
		if opts.Tune != nil {
			opts.Tune(i, c)
		}
	}
}

// Logs returns every node's log (nil for a stopped node).
func (net *Network) Logs() []*comet.Log {
	net.mu.Lock()
	defer net.mu.Unlock()
	out := make([]*comet.Log, len(net.nodes))
	for i, n := range net.nodes {
		out[i] = n.log
	}
	return out
}

// Log returns node i's log, nil while it is stopped.
func (net *Network) Log(i int) *comet.Log {
	net.mu.Lock()
	defer net.mu.Unlock()
	return net.nodes[i].log
}

// Node returns node i.
func (net *Network) Node(i int) *Node {
	net.mu.Lock()
	defer net.mu.Unlock()
	return net.nodes[i]
}

// Len returns the number of nodes, validators and observers.
func (net *Network) Len() int {
	net.mu.Lock()
	defer net.mu.Unlock()
	return len(net.nodes)
}

// StartNode starts (or restarts) node i from its home.
func (net *Network) StartNode(i int) *comet.Log {
	net.t.Helper()
	net.mu.Lock()
	n := net.nodes[i]
	net.mu.Unlock()
	if n.log != nil {
		net.t.Fatalf("node %d already running", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testscale.Timeout(time.Minute))
	defer cancel()
	l, err := comet.Open(ctx, comet.Config{
		Home:          n.Home,
		Signer:        n.Signer,
		AppendTimeout: net.opts.AppendTimeout,
		RetainBlocks:  net.opts.RetainBlocks,
		Logger:        net.opts.Logger.With(slog.String("node", n.Name)),
		Tune:          net.tune(i),
	})
	if err != nil {
		net.t.Fatalf("start node %d: %v", i, err)
	}
	net.mu.Lock()
	n.log = l
	net.mu.Unlock()
	return l
}

// StopNode stops node i; its home is kept.
func (net *Network) StopNode(i int) {
	net.t.Helper()
	net.mu.Lock()
	n := net.nodes[i]
	l := n.log
	n.log, n.ledger = nil, nil
	net.mu.Unlock()
	if l == nil {
		return
	}
	if err := l.Close(); err != nil {
		net.t.Errorf("stop node %d: %v", i, err)
	}
}

// WipeNode deletes stopped node i's blocks, state and ledger (keeping its
// keys and its validator's last-sign state), as if its disk were replaced:
// started again, it must rebuild everything from its peers.
func (net *Network) WipeNode(i int) {
	net.t.Helper()
	n := net.Node(i)
	if n.log != nil {
		net.t.Fatalf("wipe node %d: still running", i)
	}
	data := filepath.Join(n.Home, cfg.DefaultDataDir)
	entries, err := os.ReadDir(data)
	if err != nil {
		net.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == cfg.DefaultPrivValStateName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(data, e.Name())); err != nil {
			net.t.Fatal(err)
		}
	}
}

// AddObserver starts a new non-validator node with no gateway key (a
// read-only replica) that joins from the running nodes, and returns its
// index.
func (net *Network) AddObserver() int {
	net.t.Helper()
	net.mu.Lock()
	i := len(net.nodes)
	net.mu.Unlock()
	name := fmt.Sprintf("observer-%d", i+1)
	home := filepath.Join(net.dir, name)
	if err := comet.InitObserver(home, filepath.Join(net.nodes[0].Home, "config", "genesis.json"), name, "tcp://"+freePort(net.t), net.peers()); err != nil {
		net.t.Fatalf("init observer: %v", err)
	}
	net.mu.Lock()
	net.nodes = append(net.nodes, net.newNode(i, name, home))
	net.mu.Unlock()
	net.StartNode(i)
	return i
}

// peers returns the persistent-peer list of the validators.
func (net *Network) peers() []string {
	var out []string
	for _, n := range net.nodes {
		conf, err := comet.LoadNodeConfig(n.Home)
		if err != nil {
			net.t.Fatal(err)
		}
		id, err := comet.NodeID(n.Home)
		if err != nil {
			net.t.Fatal(err)
		}
		out = append(out, id+"@"+conf.P2P.ListenAddress[len("tcp://"):])
	}
	return out
}

// Close stops every node.
func (net *Network) Close() {
	for i := range net.Len() {
		net.StopNode(i)
	}
}

// WaitSize waits until every running node's log has at least size
// entries, or fails the test after timeout (scaled to the machine,
// internal/testscale). It waits on the nodes' commits, never a clock.
func (net *Network) WaitSize(size uint64, timeout time.Duration) {
	net.t.Helper()
	timeout = testscale.Timeout(timeout)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		behind := ""
		var next <-chan struct{} // the next commit of a node behind
		for i, l := range net.Logs() {
			if l == nil {
				continue
			}
			ch := l.NextCommit() // before the status, so no commit is missed
			if s := l.Status(); s.Size < size {
				behind += " " + strconv.Itoa(i) + ":" + strconv.FormatUint(s.Size, 10)
				if next == nil {
					next = ch
				}
			}
		}
		if behind == "" {
			return
		}
		select {
		case <-next:
		case <-deadline.C:
			net.t.Fatalf("nodes still below size %d after %v:%s", size, timeout, behind)
		}
	}
}

// freePort returns a loopback host:port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n distinct loopback host:ports that were free a
// moment ago: each is held until all are chosen, so the kernel cannot
// hand out one twice.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out[i] = l.Addr().String()
	}
	return out
}
