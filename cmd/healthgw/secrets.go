package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// loadOrCreateSecret returns the n-byte secret in path, creating it (mode
// 0600, parent 0700) on first use. The file is written to a temporary
// name and renamed, so a crash never leaves a half-written secret.
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
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// writeFileAtomic writes data to path via a temporary file and rename,
// fsyncing the file first.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	return nil
}
