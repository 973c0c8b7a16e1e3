package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
)

// consortiumPseudonymKey is where serve reads the pseudonym secret, under
// the data directory. Every member of a consortium must hold the same
// secret, so that one patient has one pseudonym on the shared ledger.
const consortiumPseudonymKey = "keys/pseudonym.key"

// consortiumEnvFile is each member's environment file: HEALTHGW_* settings
// for `healthgw serve`, one NAME=value per line (shell `set -a; .
// file` and compose `env_file` both read it).
const consortiumEnvFile = "healthgw.env"

func cmdConsortium(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "healthgw consortium", []command{
		{"init", "lay out a local or containerised consortium: one validator gateway per hospital", cmdConsortiumInit},
	}, args)
}

func cmdConsortiumInit(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "consortium init")
	o := comet.ConsortiumOptions{}
	fs.IntVar(&o.Validators, "validators", 4, "number of hospitals, each running a gateway and a validator")
	fs.StringVar(&o.Dir, "out", "", "output directory (required; one sub-directory per hospital)")
	fs.StringVar(&o.ChainID, "chain-id", comet.DefaultChainID, "CometBFT chain ID")
	fs.BoolVar(&o.Container, "container", false, "lay out for docker compose / Kubernetes: standard ports, peers by name, paths under "+comet.ContainerRoot)
	fs.IntVar(&o.HTTPPort, "http-port", comet.DefaultHTTPPort, "gateway HTTP port of hospital-1 (hospital-N: +N-1); in --container mode, the published port")
	fs.IntVar(&o.P2PPort, "p2p-port", comet.DefaultP2PPort, "CometBFT P2P port of hospital-1 on loopback (hospital-N: +10(N-1))")
	fs.IntVar(&o.RPCPort, "rpc-port", comet.DefaultRPCPort, "CometBFT RPC port of hospital-1 on loopback (hospital-N: +10(N-1))")
	fs.DurationVar(&o.TimeoutCommit, "timeout-commit", 0, "CometBFT pause after each block (default 1s)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if o.Dir == "" {
		return fmt.Errorf("consortium init: --out is required")
	}
	fmt.Fprintf(e.stderr, "creating %d hospital nodes in %s …\n", o.Validators, o.Dir)
	members, err := comet.InitConsortium(o)
	if err != nil {
		return fmt.Errorf("consortium init: %w", err)
	}
	secret := make([]byte, ledger.PseudonymKeySize)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	for _, m := range members {
		if err := writeFileAtomic(filepath.Join(m.Dir, "data", consortiumPseudonymKey), secret, 0o600); err != nil {
			return fmt.Errorf("consortium init: %w", err)
		}
		env := strings.Join([]string{
			"# healthgw consortium member " + m.Name + " (chain " + o.ChainID + ")",
			"HEALTHGW_LEDGER=comet",
			"HEALTHGW_COMET_HOME=" + m.Home,
			"HEALTHGW_DATA=" + m.Data,
			"HEALTHGW_ADDR=" + m.HTTPAddr,
			"HEALTHGW_BASE_URL=" + m.BaseURL,
			// Every member names the same custodian: the patient-facing
			// member (whose development IdP mints patient tokens in the
			// testnet), to which every patient's records and consents
			// are sealed (docs/design/ledger-privacy.md).
			"HEALTHGW_CUSTODIAN=" + members[0].Name,
		}, "\n") + "\n"
		if host, _, _ := net.SplitHostPort(m.HTTPAddr); !isLoopbackHost(host) {
			// In a container: it listens on all of the container's
			// interfaces, which compose publishes on the host's loopback
			// only. The development IdP and ZK setup stay on for the demo.
			env += "# development IdP and ZK setup behind compose's 127.0.0.1 port mapping; remove for production\nHEALTHGW_ALLOW_DEV_ON_PUBLIC=true\n"
		}
		if err := writeFileAtomic(filepath.Join(m.Dir, consortiumEnvFile), []byte(env), 0o644); err != nil {
			return fmt.Errorf("consortium init: %w", err)
		}
	}

	fmt.Fprintf(e.stdout, "consortium %s: %d validators in %s\n\n", o.ChainID, len(members), o.Dir)
	fmt.Fprintf(e.stdout, "%-12s %-24s %-22s %-28s %s\n", "member", "gateway", "p2p", "rpc", "node id")
	for _, m := range members {
		fmt.Fprintf(e.stdout, "%-12s %-24s %-22s %-28s %s\n", m.Name, m.BaseURL, m.P2P, m.RPC, m.NodeID)
	}
	fmt.Fprintln(e.stdout)
	if o.Container {
		fmt.Fprintf(e.stdout, "start them with deploy/consortium/docker-compose.yml (HEALTHGW_CONSORTIUM=%s)\n", filepath.Dir(members[0].Dir))
	} else {
		fmt.Fprintf(e.stdout, "start each with:  (set -a; . %s; healthgw serve)\n", filepath.Join(members[0].Dir, consortiumEnvFile))
		fmt.Fprintln(e.stdout, "or all of them with scripts/testnet.sh")
	}
	return nil
}

// openNode opens the gateway's ledger node over store. On a consortium
// store, a gateway's first start registers its sealing key, which needs a
// block, so a quorum of the members running: until there is one, the
// registration's outcome is unknown (ledger.ErrUnavailable) and it tries
// again, saying so, until ctx ends. Opening again is safe: it finds the
// registration committed, or registers again, and a second registration
// refused finds the first.
func openNode(ctx context.Context, store ledger.Store, id ledger.Identity, logger *slog.Logger) (*ledger.Node, error) {
	_, consortium := store.(ledger.RegistrationWaiter)
	for attempt := 1; ; attempt++ {
		n, err := ledger.OpenNode(ctx, store, id)
		if err == nil || !consortium || !errors.Is(err, ledger.ErrUnavailable) ||
			errors.Is(err, ledger.ErrClosed) || errors.Is(err, comet.ErrHalted) || ctx.Err() != nil {
			return n, err
		}
		logger.Warn("consortium: waiting for a quorum of the members to register this gateway on the ledger",
			slog.String("gateway", id.Gateway), slog.Int("attempt", attempt), slog.String("err", err.Error()))
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(registerRetry):
		}
	}
}

// registerRetry is the pause between a gateway's attempts to register on a
// consortium ledger without a quorum (each attempt waits for the append
// timeout first).
const registerRetry = time.Second
