package comet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/types"
	"github.com/google/go-cmp/cmp"
)

func TestInitConsortium(t *testing.T) {
	tests := []struct {
		name      string
		container bool
		wantP2P   []string
		wantHTTP  []string
	}{
		{"loopback", false,
			[]string{"127.0.0.1:26656", "127.0.0.1:26666", "127.0.0.1:26676", "127.0.0.1:26686"},
			[]string{"127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083", "127.0.0.1:8084"}},
		{"container", true,
			[]string{"hospital-1:26656", "hospital-2:26656", "hospital-3:26656", "hospital-4:26656"},
			[]string{"0.0.0.0:8080", "0.0.0.0:8080", "0.0.0.0:8080", "0.0.0.0:8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			members, err := InitConsortium(ConsortiumOptions{Dir: dir, Validators: 4, Container: tt.container, TimeoutCommit: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			var p2p, http []string
			for _, m := range members {
				p2p = append(p2p, m.P2P)
				http = append(http, m.HTTPAddr)
			}
			if diff := cmp.Diff(tt.wantP2P, p2p); diff != "" {
				t.Errorf("p2p addresses (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantHTTP, http); diff != "" {
				t.Errorf("http addresses (-want +got):\n%s", diff)
			}

			var genesis []byte
			for i, m := range members {
				home := filepath.Join(m.Dir, "comet")
				conf, err := LoadNodeConfig(home)
				if err != nil {
					t.Fatal(err)
				}
				if conf.Moniker != m.Name || conf.Consensus.TimeoutCommit != 300*time.Millisecond || conf.RPC.ListenAddress != m.RPC {
					t.Errorf("%s: moniker %q timeout_commit %v rpc %q", m.Name, conf.Moniker, conf.Consensus.TimeoutCommit, conf.RPC.ListenAddress)
				}
				var wantPeers []string
				for j, o := range members {
					if j != i {
						wantPeers = append(wantPeers, o.NodeID+"@"+o.P2P)
					}
				}
				if diff := cmp.Diff(wantPeers, strings.Split(conf.P2P.PersistentPeers, ",")); diff != "" {
					t.Errorf("%s: persistent peers (-want +got):\n%s", m.Name, diff)
				}
				g, err := os.ReadFile(conf.GenesisFile())
				if err != nil {
					t.Fatal(err)
				}
				if genesis != nil && string(g) != string(genesis) {
					t.Errorf("%s: genesis differs from hospital-1's", m.Name)
				}
				genesis = g
				doc, gs, err := loadGenesis(conf.GenesisFile())
				if err != nil {
					t.Fatal(err)
				}
				gk, err := LoadGatewayKey(filepath.Join(home, GatewayKeyFile))
				if err != nil {
					t.Fatal(err)
				}
				if err := checkGatewayInGenesis(gk, gs); err != nil {
					t.Errorf("%s: %v", m.Name, err)
				}
				if !slices.ContainsFunc(doc.Validators, func(v types.GenesisValidator) bool { return v.Name == m.Name }) {
					t.Errorf("%s is not a genesis validator", m.Name)
				}
				if _, err := loadPrivValidator(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile(), false); err != nil {
					t.Errorf("%s: %v", m.Name, err)
				}
				if fi, err := os.Stat(filepath.Join(m.Dir, "data")); err != nil || !fi.IsDir() {
					t.Errorf("%s: no data directory: %v", m.Name, err)
				}
			}

			if _, err := InitConsortium(ConsortiumOptions{Dir: dir, Validators: 4}); err == nil {
				t.Error("InitConsortium over an existing consortium succeeded")
			}
		})
	}
}

func TestInitConsortiumRejects(t *testing.T) {
	tests := []struct {
		name string
		o    ConsortiumOptions
	}{
		{"no validators", ConsortiumOptions{Validators: 0}},
		{"too many", ConsortiumOptions{Validators: 65}},
		{"bad chain id", ConsortiumOptions{Validators: 1, ChainID: "has space"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Dir = t.TempDir()
			if _, err := InitConsortium(tt.o); err == nil {
				t.Error("InitConsortium succeeded")
			}
		})
	}
}
