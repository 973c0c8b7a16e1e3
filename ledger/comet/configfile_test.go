package comet

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestConfigFileRoundTrip writes a non-default configuration with
// CometBFT's own template and reads it back into a default one: every
// setting the template carries must survive.
func TestConfigFileRoundTrip(t *testing.T) {
	home := t.TempDir()
	want := cfg.DefaultConfig().SetRoot(home)
	want.Moniker = "hospital-3"
	want.P2P.ListenAddress = "tcp://127.0.0.1:26676"
	want.P2P.PersistentPeers = "a@127.0.0.1:1,b@127.0.0.1:2"
	want.P2P.AddrBookStrict = false
	want.P2P.AllowDuplicateIP = true
	want.RPC.ListenAddress = "tcp://127.0.0.1:26677"
	want.RPC.CORSAllowedOrigins = []string{"https://a.example", "https://b.example"}
	want.Consensus.TimeoutCommit = 250 * time.Millisecond
	want.Consensus.CreateEmptyBlocksInterval = 30 * time.Second
	want.Mempool.Size = 1234
	want.StateSync.ChunkFetchers = 7
	want.TxIndex.Indexer = "null"
	want.Storage.DiscardABCIResponses = true

	path := filepath.Join(home, "config.toml")
	if err := writeConfigFile(path, want); err != nil {
		t.Fatal(err)
	}
	got := cfg.DefaultConfig().SetRoot(home)
	if err := readConfigFile(path, got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(cfg.BaseConfig{}, cfg.ConsensusConfig{}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("config after round trip (-want +got):\n%s", diff)
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, text string
	}{
		{"bad toml", "moniker = "},
		{"wrong type", "moniker = 3"},
		{"bad duration", "[consensus]\ntimeout_commit = \"soon\""},
		{"list of numbers", "[rpc]\ncors_allowed_origins = [1]"},
		{"overflow", "[statesync]\nchunk_fetchers = 99999999999999"},
		{"not a number", "[statesync]\nchunk_fetchers = \"four\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := readConfigFile(path, cfg.DefaultConfig()); err == nil {
				t.Error("readConfigFile succeeded")
			}
		})
	}
}
