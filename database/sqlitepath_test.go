package database

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenUnwritableSQLite(t *testing.T) {
	dir := t.TempDir()
	t.Run("path is a directory", func(t *testing.T) {
		_, err := Open(t.Context(), dir)
		if !errors.Is(err, ErrNotWritable) || !strings.Contains(err.Error(), "is a directory") {
			t.Fatalf("Open(directory) = %v", err)
		}
	})
	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes to read-only directories")
		}
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		_, err := Open(t.Context(), filepath.Join(ro, "healthgw.db"))
		if !errors.Is(err, ErrNotWritable) || !strings.Contains(err.Error(), ro) || strings.Contains(err.Error(), "out of memory") {
			t.Fatalf("Open(read-only dir) = %v", err)
		}
	})
	t.Run("read-only file", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes to read-only files")
		}
		f := filepath.Join(dir, "ro.db")
		if err := os.WriteFile(f, nil, 0o400); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(t.Context(), f); !errors.Is(err, ErrNotWritable) {
			t.Fatalf("Open(read-only file) = %v", err)
		}
	})
	t.Run("writable leaves no probe behind", func(t *testing.T) {
		d := filepath.Join(dir, "ok")
		db, err := Open(t.Context(), filepath.Join(d, "healthgw.db"))
		if err != nil {
			t.Fatal(err)
		}
		Close(db)
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".healthgw-write-check") {
				t.Errorf("probe file left: %s", e.Name())
			}
		}
	})
}
