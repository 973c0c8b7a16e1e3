package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/healthgw/healthgw/internal/atomicfile"
)

// loadOrCreateSecret returns the n-byte secret in path, creating it (mode
// 0600, parent 0700) on first use (atomicfile.LoadOrCreate: a crash never
// leaves a half-written secret, and of two processes creating it at once
// both end up with the one that was written first).
func loadOrCreateSecret(path string, n int) ([]byte, bool, error) {
	b, fresh, err := atomicfile.LoadOrCreate(path, func() ([]byte, error) {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		return b, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("secret: %w", err)
	}
	if len(b) != n {
		return nil, false, fmt.Errorf("secret %s: want %d bytes, have %d", path, n, len(b))
	}
	return b, fresh, nil
}

// writeFileAtomic writes data to path atomically (replacing any file
// there), creating the parent directory (0700) if needed.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	return atomicfile.Replace(path, data, mode)
}
