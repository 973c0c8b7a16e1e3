package ledger_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/healthgw/healthgw/ledger"
)

// TestLoadOrCreateCheckpointKey: concurrent first starts agree on one
// key, the verifier key file matches it, and a second start loads it.
func TestLoadOrCreateCheckpointKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "checkpoint.key")
	const n = 8
	vkeys := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, vkey, err := ledger.LoadOrCreateCheckpointKey(path, "example.org/log")
			if err != nil {
				t.Error(err)
			}
			vkeys[i] = vkey
		}()
	}
	wg.Wait()
	for _, v := range vkeys {
		if v != vkeys[0] {
			t.Fatalf("concurrent starts disagree: %q and %q", vkeys[0], v)
		}
	}
	pub, err := os.ReadFile(path + ledger.VerifierKeySuffix)
	if err != nil || strings.TrimSpace(string(pub)) != vkeys[0] {
		t.Errorf("verifier key file %q, %v; want %q", pub, err, vkeys[0])
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("signer key file: %v, %v; want mode 0600", fi, err)
	}
	s, vkey, err := ledger.LoadOrCreateCheckpointKey(path, "another.origin/ignored")
	if err != nil || vkey != vkeys[0] || s.Name() != "example.org/log" {
		t.Errorf("second start: %v, %q, %v", s, vkey, err)
	}
}
