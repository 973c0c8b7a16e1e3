package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/witness"
)

func TestLoadServeConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "healthgw.conf")
	if err := os.WriteFile(file, []byte(`# comment
addr = 127.0.0.1:9001
data = /srv/from-file
max-record-bytes = 1048576
shutdown-timeout = "7s"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(kv map[string]string) *env {
		return &env{getenv: func(k string) string { return kv[k] }, stdout: io.Discard, stderr: io.Discard}
	}

	t.Run("defaults", func(t *testing.T) {
		cfg, _, err := loadServeConfig(env(nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Addr != "127.0.0.1:8080" || cfg.BaseURL != "http://127.0.0.1:8080" || cfg.DB != filepath.Join("data", "healthgw.db") ||
			cfg.Ledger != "gormlog" || !cfg.DevIdP || cfg.MaxRecord != 16<<20 || cfg.MaxStreamRecord != 1<<30 {
			t.Errorf("defaults: %+v", cfg)
		}
	})
	t.Run("flags over environment over file", func(t *testing.T) {
		cfg, _, err := loadServeConfig(env(map[string]string{"HEALTHGW_DATA": "/srv/from-env", "HEALTHGW_ADDR": "127.0.0.1:9002"}),
			[]string{"--config", file, "--addr", "127.0.0.1:9003"})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Addr != "127.0.0.1:9003" { // flag
			t.Errorf("addr %s, want the flag's", cfg.Addr)
		}
		if cfg.DataDir != "/srv/from-env" || cfg.DB != "/srv/from-env/healthgw.db" { // environment
			t.Errorf("data %s, db %s, want the environment's", cfg.DataDir, cfg.DB)
		}
		if cfg.MaxRecord != 1<<20 || cfg.Shutdown != 7*time.Second { // file
			t.Errorf("max record %d, shutdown %v, want the file's", cfg.MaxRecord, cfg.Shutdown)
		}
		if cfg.BaseURL != "http://127.0.0.1:9003" {
			t.Errorf("base URL %s, want derived from the address", cfg.BaseURL)
		}
	})
	_, wkey, err := witness.GenerateKey("w.example")
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _, err := loadServeConfig(env(nil), []string{"--witness", wkey + "@https://w.example", "--witness-threshold", "1"}); err != nil || cfg.WitnessThreshold != 1 {
		t.Errorf("one witness, threshold 1: %+v, %v", cfg.WitnessThreshold, err)
	}
	if cfg, _, err := loadServeConfig(env(nil), nil); err != nil || cfg.CometUnsettled != ledger.DefaultUnsettled {
		t.Errorf("default kept writes: %d, %v", cfg.CometUnsettled, err)
	}
	if cfg, _, err := loadServeConfig(env(map[string]string{"HEALTHGW_COMET_UNSETTLED_LIMIT": "64"}), nil); err != nil || cfg.CometUnsettled != 64 {
		t.Errorf("HEALTHGW_COMET_UNSETTLED_LIMIT=64: %d, %v", cfg.CometUnsettled, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(bad, []byte("colour = blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown flag", nil, []string{"--colour", "blue"}, "not defined"},
		{"positional argument", nil, []string{"now"}, "unexpected argument"},
		{"bad environment value", map[string]string{"HEALTHGW_MAX_RECORD_BYTES": "lots"}, nil, "HEALTHGW_MAX_RECORD_BYTES"},
		{"unknown setting in the file", nil, []string{"--config", bad}, "unknown setting"},
		{"missing config file", nil, []string{"--config", "/nonexistent.conf"}, "config file"},
		{"bad address", nil, []string{"--addr", "nowhere"}, "--addr"},
		{"bad ledger", nil, []string{"--ledger", "paper"}, "--ledger"},
		{"comet without a home", nil, []string{"--ledger", "comet"}, "--comet-home"},
		{"no kept writes", nil, []string{"--comet-unsettled-limit", "0"}, "--comet-unsettled-limit"},
		{"record limit too large", nil, []string{"--max-record-bytes", "9999999999"}, "--max-record-bytes"},
		{"stream limit below the record limit", nil, []string{"--max-record-bytes", "1048576", "--max-stream-record-bytes", "1048575"}, "--max-stream-record-bytes"},
		{"stream limit too large", nil, []string{"--max-stream-record-bytes", "1099511627777"}, "--max-stream-record-bytes"},
		{"stream limit zero", map[string]string{"HEALTHGW_MAX_STREAM_RECORD_BYTES": "0"}, nil, "--max-stream-record-bytes"},
		{"no patient IdP at all", nil, []string{"--dev-idp=false"}, "identity provider"},
		{"issuer without JWKS", nil, []string{"--patient-issuer", "https://idp.example"}, "go together"},
		{"unknown break-glass kind", nil, []string{"--break-glass-kinds", "janitor"}, "--break-glass-kinds"},
		{"bad log level", nil, []string{"--log-level", "loud"}, "--log-level"},
		{"witness threshold without witnesses", nil, []string{"--witness-threshold", "1"}, "--witness-threshold"},
		{"witness threshold above the witnesses", nil, []string{"--witness", wkey + "@https://w.example", "--witness-threshold", "2"}, "--witness-threshold 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadServeConfig(env(tt.env), tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}
