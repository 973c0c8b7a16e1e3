package comet

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/healthgw/healthgw/ledger"
)

// remotePoll is how often Remote.Append asks whether its entry is
// committed.
const remotePoll = 100 * time.Millisecond

// Remote appends entries through the RPC server of a node that runs in
// another process (the gateway), signed with that node's gateway key: for
// one-shot commands (registering an organisation, say) while the gateway
// holds the node's databases.
type Remote struct {
	client  *rpchttp.HTTP
	chainID string
	gateway GatewayKey
	// baseURL is set by SetBaseURL; envBaseURL is the member's
	// healthgw.env's.
	baseURL, envBaseURL string
}

// SetBaseURL sets the gateway's public base URL, named as the home of the
// orgs it registers. By default it is the base URL the gateway registered
// (its gateway.registered, asked of the node), or, before the gateway
// has registered, HEALTHGW_BASE_URL from the member's healthgw.env.
func (r *Remote) SetBaseURL(u string) { r.baseURL = u }

// OpenRemote reads the node home's config.toml (RPC address), genesis
// (chain ID) and gateway key, and returns a Remote for that node. The RPC
// server must be enabled; an address on all interfaces is reached on
// loopback.
func OpenRemote(home string) (*Remote, error) {
	conf, err := LoadNodeConfig(home)
	if err != nil {
		return nil, err
	}
	laddr := conf.RPC.ListenAddress
	if laddr == "" {
		return nil, errors.New("comet: the node's RPC server is disabled (rpc.laddr)")
	}
	host := strings.TrimPrefix(laddr, "tcp://")
	host = strings.Replace(host, "0.0.0.0:", "127.0.0.1:", 1)
	doc, _, err := loadGenesis(conf.GenesisFile())
	if err != nil {
		return nil, err
	}
	gk, err := LoadGatewayKey(filepath.Join(home, GatewayKeyFile))
	if err != nil {
		return nil, err
	}
	client, err := rpchttp.NewWithClient("http://"+host, "/websocket", &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("comet rpc client: %w", err)
	}
	return &Remote{client: client, chainID: doc.ChainID, gateway: gk, envBaseURL: memberBaseURL(home)}, nil
}

// homeBaseURL returns the base URL to name as the home of the orgs this
// gateway registers (see SetBaseURL).
func (r *Remote) homeBaseURL(ctx context.Context) (string, error) {
	if r.baseURL != "" {
		return r.baseURL, nil
	}
	q, err := r.client.ABCIQuery(ctx, gatewayQueryPrefix+r.gateway.ID, nil)
	if err != nil {
		return "", fmt.Errorf("%w: ask the node for gateway %q: %w", ledger.ErrUnavailable, r.gateway.ID, err)
	}
	if q.Response.Code == CodeOK {
		var g gatewayInfo
		if err := json.Unmarshal(q.Response.Value, &g); err != nil || g.BaseURL == "" {
			return "", fmt.Errorf("comet: the node's answer for gateway %q: %v", r.gateway.ID, err)
		}
		return g.BaseURL, nil
	}
	if r.envBaseURL != "" {
		return r.envBaseURL, nil
	}
	return "", fmt.Errorf("comet: the public base URL of gateway %q is unknown: it has not registered yet (start its gateway) and there is no HEALTHGW_BASE_URL in healthgw.env beside the node home", r.gateway.ID)
}

// memberBaseURL reads the gateway's public base URL from the member's
// environment file beside the node home (consortium init writes
// HEALTHGW_BASE_URL there), or returns "" if there is none.
func memberBaseURL(home string) string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(home), "healthgw.env"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "HEALTHGW_BASE_URL="); ok {
			return v
		}
	}
	return ""
}

// Append submits e, a registry entry (org, issuer or circuit
// registration; other entries are sealed and go through the gateway), and returns its index once the node has committed it,
// or an error wrapping ledger.ErrUnavailable when ctx ends first (bound
// it with a deadline).
func (r *Remote) Append(ctx context.Context, e ledger.Entry) (uint64, error) {
	signer, err := ledger.NewSigner(r.gateway.ID, r.gateway.PrivateKey)
	if err != nil {
		return 0, fmt.Errorf("append: %w", err)
	}
	base, err := r.homeBaseURL(ctx)
	if err != nil {
		return 0, fmt.Errorf("append: %w", err)
	}
	env, err := ledger.ClearEnvelope(signer, e, ledger.GatewayHome{Gateway: r.gateway.ID, BaseURL: base})
	if err != nil {
		return 0, fmt.Errorf("append: %w", err)
	}
	tx, id, err := SignTx(r.chainID, r.gateway.ID, r.gateway.PrivateKey, env)
	if err != nil {
		return 0, fmt.Errorf("append: %w", err)
	}
	res, err := r.client.BroadcastTxSync(ctx, tx)
	if err != nil && !strings.Contains(err.Error(), "tx already exists in cache") {
		return 0, fmt.Errorf("%w: submit to node: %w", ledger.ErrUnavailable, err)
	}
	if err == nil && res.Code != CodeOK && res.Code != CodeDuplicate {
		return 0, fmt.Errorf("append: rejected by the ledger application: %w (%s)", errOfCode(res.Code), res.Log)
	}
	t := time.NewTicker(remotePoll)
	defer t.Stop()
	for {
		q, err := r.client.ABCIQuery(ctx, txQueryPath(id), nil)
		if err == nil && q.Response.Code == CodeOK && len(q.Response.Value) == 8 {
			return binary.BigEndian.Uint64(q.Response.Value), nil
		}
		if err == nil && q.Response.Code == CodeRefused {
			return 0, fmt.Errorf("append: %w: the entry was not appended, and will not be: %s", ErrRefused, q.Response.Log)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: entry not committed: %w; it may still be committed later", ledger.ErrUnavailable, ctx.Err())
		case <-t.C:
		}
	}
}

// txQueryPath is the Query path that answers the index of a committed
// transaction.
func txQueryPath(id TxID) string { return "/tx/" + hex.EncodeToString(id[:]) }

// parseTxQuery parses a txQueryPath.
func parseTxQuery(path string) (TxID, bool) {
	h, ok := strings.CutPrefix(path, "/tx/")
	var id TxID
	if !ok || len(h) != 2*len(id) {
		return id, false
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return id, false
	}
	copy(id[:], b)
	return id, true
}
