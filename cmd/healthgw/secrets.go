package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/healthgw/healthgw/internal/atomicfile"
)

// loadOrCreateSecret returns the n-byte secret in path, creating it (mode
// 0600, parent 0700) on first use. A crash never leaves a half-written
// secret, and of two processes creating it at once both end up with the
// one that was written first.
func loadOrCreateSecret(path string, n int) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != n {
			return nil, false, fmt.Errorf("secret %s: want %d bytes, have %d", path, n, len(b))
		}
		return b, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("read secret: %w", err)
	}
	b = make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, false, err
	}
	if err := createFileAtomic(path, b, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadOrCreateSecret(path, n)
		}
		return nil, false, err
	}
	return b, true, nil
}

// writeFileAtomic writes data to path atomically (replacing any file
// there), creating the parent directory (0700) if needed.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	return atomicfile.Replace(path, data, mode)
}

// createFileAtomic is writeFileAtomic for a file that must not exist yet:
// it fails with fs.ErrExist rather than replace a key or secret.
func createFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	return atomicfile.Create(path, data, mode)
}
