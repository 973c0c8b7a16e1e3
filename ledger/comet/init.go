package comet

import (
	ed25519std "crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"

	"github.com/healthgw/healthgw/internal/atomicfile"
)

// DefaultValidatorPower is every consortium member's voting power: equal
// votes, so "more than two thirds" means more than two thirds of the
// hospitals.
const DefaultValidatorPower = 10

// NodeSpec describes one validator node of a consortium to create.
type NodeSpec struct {
	// Name is the node's moniker and its gateway's ID (e.g. "hospital-1").
	Name string
	// Home is the CometBFT home directory to create.
	Home string
	// P2PListen is the P2P listen address, e.g. "tcp://0.0.0.0:26656".
	P2PListen string
	// P2PAddress is the host:port other nodes dial to reach this one.
	P2PAddress string
	// RPCListen is the RPC listen address; "" disables the RPC server.
	RPCListen string
}

// NodeInfo is what InitHomes created for one node.
type NodeInfo struct {
	NodeSpec
	// NodeID is the P2P node ID (hex of the node key's address).
	NodeID string
	// Peer is NodeID@P2PAddress, as in persistent_peers.
	Peer string
}

// InitOptions tune InitHomes.
type InitOptions struct {
	// GenesisTime defaults to now.
	GenesisTime time.Time
	// Tune adjusts each node's configuration before it is written.
	Tune func(i int, c *cfg.Config)
	// GatewayKeys[i], if present, is node i's gateway key (tests that
	// need to know it in advance); other nodes get fresh ones.
	GatewayKeys []ed25519std.PrivateKey
}

// InitHomes creates a CometBFT home for each node: validator and node
// keys, a gateway key, one shared genesis (every node a validator with
// equal power; every gateway in the app_state) and a config.toml that
// lists all other nodes as persistent peers. Existing homes are refused,
// never overwritten.
func InitHomes(chainID string, nodes []NodeSpec, opts InitOptions) ([]NodeInfo, *types.GenesisDoc, error) {
	if err := checkChainID(chainID); err != nil {
		return nil, nil, err
	}
	if len(nodes) == 0 {
		return nil, nil, errors.New("comet: no nodes")
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		if err := checkGatewayID(n.Name); err != nil {
			return nil, nil, err
		}
		if seen[n.Name] {
			return nil, nil, fmt.Errorf("comet: node name %q used twice", n.Name)
		}
		seen[n.Name] = true
		if _, err := os.Stat(filepath.Join(n.Home, cfg.DefaultConfigDir)); err == nil {
			return nil, nil, fmt.Errorf("comet: %s already holds a node configuration", n.Home)
		}
	}
	genTime := opts.GenesisTime
	if genTime.IsZero() {
		genTime = time.Now()
	}
	genDoc := &types.GenesisDoc{
		ChainID:         chainID,
		GenesisTime:     genTime.UTC().Truncate(time.Millisecond),
		InitialHeight:   1,
		ConsensusParams: types.DefaultConsensusParams(),
	}
	var gs GenesisState
	infos := make([]NodeInfo, len(nodes))
	confs := make([]*cfg.Config, len(nodes))
	for i, n := range nodes {
		conf := cfg.DefaultConfig().SetRoot(n.Home)
		for _, dir := range []string{filepath.Join(n.Home, cfg.DefaultConfigDir), filepath.Join(n.Home, cfg.DefaultDataDir)} {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, nil, err
			}
		}
		nodeKey, err := p2p.LoadOrGenNodeKey(conf.NodeKeyFile())
		if err != nil {
			return nil, nil, fmt.Errorf("node key for %s: %w", n.Name, err)
		}
		pub, err := writePrivValidator(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
		if err != nil {
			return nil, nil, fmt.Errorf("validator key for %s: %w", n.Name, err)
		}
		gk, err := NewGatewayKey(n.Name)
		if err != nil {
			return nil, nil, err
		}
		if i < len(opts.GatewayKeys) {
			if len(opts.GatewayKeys[i]) != ed25519std.PrivateKeySize {
				return nil, nil, fmt.Errorf("comet: gateway key %d is not an Ed25519 private key", i)
			}
			gk.PrivateKey = opts.GatewayKeys[i]
		}
		if err := SaveGatewayKey(filepath.Join(n.Home, GatewayKeyFile), gk); err != nil {
			return nil, nil, fmt.Errorf("gateway key for %s: %w", n.Name, err)
		}
		gs.Gateways = append(gs.Gateways, gk.Public())
		genDoc.Validators = append(genDoc.Validators, types.GenesisValidator{
			Address: pub.Address(), PubKey: pub, Power: DefaultValidatorPower, Name: n.Name,
		})
		id := string(nodeKey.ID())
		infos[i] = NodeInfo{NodeSpec: n, NodeID: id, Peer: id + "@" + n.P2PAddress}
		confs[i] = conf
	}
	appState, err := gs.MarshalAppState()
	if err != nil {
		return nil, nil, err
	}
	genDoc.AppState = appState
	if err := genDoc.ValidateAndComplete(); err != nil {
		return nil, nil, fmt.Errorf("genesis: %w", err)
	}
	for i, conf := range confs {
		var peers []string
		for j, other := range infos {
			if j != i {
				peers = append(peers, other.Peer)
			}
		}
		ConsortiumDefaults(conf)
		conf.Moniker = nodes[i].Name
		conf.P2P.ListenAddress = nodes[i].P2PListen
		conf.P2P.PersistentPeers = strings.Join(peers, ",")
		conf.RPC.ListenAddress = nodes[i].RPCListen
		if opts.Tune != nil {
			opts.Tune(i, conf)
		}
		if err := conf.ValidateBasic(); err != nil {
			return nil, nil, fmt.Errorf("config for %s: %w", nodes[i].Name, err)
		}
		if err := genDoc.SaveAs(conf.GenesisFile()); err != nil {
			return nil, nil, fmt.Errorf("genesis for %s: %w", nodes[i].Name, err)
		}
		if err := writeConfigFile(filepath.Join(nodes[i].Home, cfg.DefaultConfigDir, cfg.DefaultConfigFileName), conf); err != nil {
			return nil, nil, fmt.Errorf("config for %s: %w", nodes[i].Name, err)
		}
	}
	return infos, genDoc, nil
}

// ConsortiumDefaults sets what InitHomes changes from CometBFT's defaults:
// peers on private networks are allowed, blocks are made when there are
// entries (and every 30s otherwise, as a heartbeat), the transaction
// indexer is off (the application keeps its own transaction → index map),
// the RPC server only answers on loopback unless told otherwise, and the
// mempool does not check its transactions again after every block
// (recheck = false).
//
// Recheck is not needed for correctness: what CheckTx checks against the
// state (the transaction and its entry not committed yet, the registry's
// rules at the next index) can only become stale, never wrongly admit
// anything, because FinalizeBlock checks all of it again at the entry's
// own index and refuses a stale transaction deterministically, with a
// result code its appender learns; and CometBFT removes every
// transaction of a committed block from every mempool, whatever its
// result, so none lingers. PrepareProposal keeps every transaction
// ParseTx accepts (a stateless check, the same after any block). A stale
// transaction costs a slot in one block; a recheck would cost a
// database read per waiting transaction after every block, under the
// mempool's lock.
func ConsortiumDefaults(c *cfg.Config) {
	c.P2P.AddrBookStrict = false
	c.P2P.AllowDuplicateIP = true
	c.Consensus.TimeoutCommit = time.Second
	c.Consensus.CreateEmptyBlocks = true
	c.Consensus.CreateEmptyBlocksInterval = 30 * time.Second
	c.TxIndex.Indexer = "null"
	c.Mempool.MaxTxBytes = MaxTxSize
	c.Mempool.Recheck = false
}

// writePrivValidator writes a fresh validator key and an empty last-sign
// state and returns the public key.
func writePrivValidator(keyFile, stateFile string) (ed25519.PubKey, error) {
	if _, err := os.Stat(keyFile); err == nil {
		return nil, fmt.Errorf("%s exists", keyFile)
	}
	priv := ed25519.GenPrivKey()
	pub := priv.PubKey().(ed25519.PubKey)
	kb, err := cmtjson.MarshalIndent(privval.FilePVKey{Address: pub.Address(), PubKey: pub, PrivKey: priv}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Replace(keyFile, kb, 0o600); err != nil {
		return nil, err
	}
	sb, err := cmtjson.MarshalIndent(privval.FilePVLastSignState{}, "", "  ")
	if err != nil {
		return nil, err
	}
	return pub, atomicfile.Replace(stateFile, sb, 0o600)
}

// checkChainID accepts 1 to 50 characters from [A-Za-z0-9._-].
func checkChainID(id string) error {
	if id == "" || len(id) > types.MaxChainIDLen {
		return fmt.Errorf("comet: chain id %q must be 1 to %d characters", id, types.MaxChainIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("comet: chain id %q: only letters, digits, '.', '_' and '-' are allowed", id)
		}
	}
	return nil
}

// InitObserver creates the home of a node that joins an existing
// consortium without being a validator and without a gateway key: a
// read-only replica (for an auditor, or a hospital's standby) that
// catches up by block sync from peers and then follows consensus.
func InitObserver(home, genesisFile, name, p2pListen string, peers []string) error {
	if err := checkGatewayID(name); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(home, cfg.DefaultConfigDir)); err == nil {
		return fmt.Errorf("comet: %s already holds a node configuration", home)
	}
	genDoc, _, err := loadGenesis(genesisFile)
	if err != nil {
		return err
	}
	conf := cfg.DefaultConfig().SetRoot(home)
	for _, dir := range []string{filepath.Join(home, cfg.DefaultConfigDir), filepath.Join(home, cfg.DefaultDataDir)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	if _, err := p2p.LoadOrGenNodeKey(conf.NodeKeyFile()); err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	if _, err := writePrivValidator(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile()); err != nil {
		return fmt.Errorf("validator key: %w", err)
	}
	if err := genDoc.SaveAs(conf.GenesisFile()); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	ConsortiumDefaults(conf)
	conf.Moniker = name
	conf.P2P.ListenAddress = p2pListen
	conf.P2P.PersistentPeers = strings.Join(peers, ",")
	conf.RPC.ListenAddress = ""
	return writeConfigFile(filepath.Join(home, cfg.DefaultConfigDir, cfg.DefaultConfigFileName), conf)
}

// NodeID returns the P2P node ID of the node in home.
func NodeID(home string) (string, error) {
	k, err := p2p.LoadNodeKey(filepath.Join(home, cfg.DefaultConfigDir, cfg.DefaultNodeKeyName))
	if err != nil {
		return "", fmt.Errorf("read node key: %w", err)
	}
	return string(k.ID()), nil
}

// Consortium layout defaults.
const (
	DefaultChainID  = "healthgw-local"
	DefaultHTTPPort = 8081
	DefaultP2PPort  = 26656
	DefaultRPCPort  = 26657
	// portStep separates the CometBFT ports of consecutive loopback
	// members: member i listens on DefaultP2PPort+portStep*i.
	portStep = 10
	// ContainerRoot is where the container image keeps its state.
	ContainerRoot = "/var/lib/healthgw"
)

// ConsortiumOptions describe the consortium InitConsortium lays out.
type ConsortiumOptions struct {
	// Dir receives one directory per member. It must not hold one yet.
	Dir string
	// Validators is the number of members (hospitals), each a validator.
	Validators int
	// ChainID defaults to DefaultChainID.
	ChainID string
	// Container lays members out for containers (compose, Kubernetes):
	// every member listens on all interfaces on the standard ports and
	// reaches the others by their names (hospital-1:26656, …); paths are
	// under ContainerRoot. Otherwise every member runs on loopback with
	// distinct ports (HTTPPort+i, P2PPort+10i, RPCPort+10i).
	Container bool
	// Base ports of the loopback layout; zero means the default.
	HTTPPort, P2PPort, RPCPort int
	// TimeoutCommit is the pause after each block (default 1s).
	TimeoutCommit time.Duration
}

// Member is one hospital of a consortium laid out by InitConsortium.
type Member struct {
	// Name is the member's moniker and gateway ID: hospital-1, ….
	Name string
	// Dir is the member's directory on this machine: Dir/comet is its
	// CometBFT home, Dir/data its gateway data directory.
	Dir string
	// Home and Data are those directories as the gateway process sees
	// them (container paths in the container layout).
	Home, Data string
	// HTTPAddr is the gateway's listen address, BaseURL its public URL.
	HTTPAddr, BaseURL string
	// P2P is the host:port other members dial; RPC the CometBFT RPC
	// listen address.
	P2P, RPC string
	// NodeID is the CometBFT node ID.
	NodeID string
}

// InitConsortium lays out a consortium of hospitals, each running a
// gateway with its own validator: CometBFT homes with one shared genesis,
// keys and persistent peers (see InitHomes), and an empty data directory
// per member.
func InitConsortium(o ConsortiumOptions) ([]Member, error) {
	if o.Validators < 1 || o.Validators > 64 {
		return nil, fmt.Errorf("comet: validators must be between 1 and 64, not %d", o.Validators)
	}
	if o.Dir == "" {
		return nil, errors.New("comet: no output directory")
	}
	if o.ChainID == "" {
		o.ChainID = DefaultChainID
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = DefaultHTTPPort
	}
	if o.P2PPort == 0 {
		o.P2PPort = DefaultP2PPort
	}
	if o.RPCPort == 0 {
		o.RPCPort = DefaultRPCPort
	}
	if o.TimeoutCommit <= 0 {
		o.TimeoutCommit = time.Second
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	members := make([]Member, o.Validators)
	specs := make([]NodeSpec, o.Validators)
	for i := range members {
		name := fmt.Sprintf("hospital-%d", i+1)
		m := Member{Name: name, Dir: filepath.Join(dir, name)}
		if _, err := os.Stat(m.Dir); err == nil {
			return nil, fmt.Errorf("comet: %s exists; choose an empty output directory", m.Dir)
		}
		spec := NodeSpec{Name: name, Home: filepath.Join(m.Dir, "comet")}
		if o.Container {
			m.Home, m.Data = ContainerRoot+"/comet", ContainerRoot+"/data"
			m.HTTPAddr = "0.0.0.0:8080"
			m.BaseURL = fmt.Sprintf("http://localhost:%d", o.HTTPPort+i)
			m.P2P = fmt.Sprintf("%s:%d", name, DefaultP2PPort)
			m.RPC = fmt.Sprintf("tcp://127.0.0.1:%d", DefaultRPCPort)
			spec.P2PListen = fmt.Sprintf("tcp://0.0.0.0:%d", DefaultP2PPort)
		} else {
			m.Home, m.Data = spec.Home, filepath.Join(m.Dir, "data")
			m.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", o.HTTPPort+i)
			m.BaseURL = "http://" + m.HTTPAddr
			m.P2P = fmt.Sprintf("127.0.0.1:%d", o.P2PPort+portStep*i)
			m.RPC = fmt.Sprintf("tcp://127.0.0.1:%d", o.RPCPort+portStep*i)
			spec.P2PListen = "tcp://" + m.P2P
		}
		spec.P2PAddress, spec.RPCListen = m.P2P, m.RPC
		members[i], specs[i] = m, spec
	}
	infos, _, err := InitHomes(o.ChainID, specs, InitOptions{Tune: func(_ int, c *cfg.Config) {
		c.Consensus.TimeoutCommit = o.TimeoutCommit
	}})
	if err != nil {
		return nil, err
	}
	for i := range members {
		members[i].NodeID = infos[i].NodeID
		if err := os.MkdirAll(filepath.Join(members[i].Dir, "data"), 0o700); err != nil {
			return nil, err
		}
	}
	return members, nil
}
