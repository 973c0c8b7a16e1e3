// Package atomicfile writes files so that a crash never leaves a partial
// one: the data goes to a synced temporary file in the same directory,
// which then takes the final name in one step, and the directory is
// synced. Keys, secrets, manifests and transcripts are written this way.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Create writes data to a new file at path with the given mode. It never
// replaces an existing file: if path exists the error wraps fs.ErrExist.
// The parent directory must exist.
func Create(path string, data []byte, mode fs.FileMode) error {
	return write(path, data, mode, os.Link)
}

// Replace writes data to path with the given mode, replacing any existing
// file atomically. The parent directory must exist.
func Replace(path string, data []byte, mode fs.FileMode) error {
	return write(path, data, mode, os.Rename)
}

func write(path string, data []byte, mode fs.FileMode, install func(oldpath, newpath string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after Link, or a failure; a no-op after Rename
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := install(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes the new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// LoadOrCreate returns the contents of the file at path. When there is no
// such file it calls gen and stores what gen returns (mode 0600, missing
// parent directories 0700); fresh reports that this call created it.
//
// Concurrent creators agree: the file is linked into place, never
// replaced, so every caller returns the bytes of the one that was written
// first. A failure (of gen or of the write) leaves no file behind. An
// existing file is returned as it is; checking its content is the
// caller's business.
func LoadOrCreate(path string, gen func() ([]byte, error)) (data []byte, fresh bool, err error) {
	// A second attempt only happens when another creator won the race, so
	// the file exists; bound the loop anyway.
	for range 3 {
		b, err := os.ReadFile(path)
		if err == nil {
			return b, false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("read %s: %w", path, err)
		}
		b, err = gen()
		if err != nil {
			return nil, false, fmt.Errorf("generate %s: %w", path, err)
		}
		dir := filepath.Dir(path)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("create %s: %w", dir, err)
		}
		err = Create(path, b, 0o600)
		if err == nil {
			return b, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
	}
	return nil, false, fmt.Errorf("load or create %s: the file keeps disappearing", path)
}
