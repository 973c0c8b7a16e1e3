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

// TestOpenSQLitePathWithURICharacters: a path holding characters that a
// SQLite file: URI gives a meaning (# ends the path, %HH is an escape)
// opens the file it names, not a shorter or decoded one.
func TestOpenSQLitePathWithURICharacters(t *testing.T) {
	for _, name := range []string{"run#2", "100%", "a%23b", "%zz#x"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			path := filepath.Join(dir, "healthgw.db")
			db, err := Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer Close(db)
			if err := db.Exec("CREATE TABLE marker (x INTEGER)").Error; err != nil {
				t.Fatal(err)
			}
			var files []struct{ Name, File string }
			if err := db.Raw("PRAGMA database_list").Scan(&files).Error; err != nil {
				t.Fatal(err)
			}
			if len(files) == 0 || files[0].File != path {
				t.Errorf("opened %+v, want %s", files, path)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("the file named: %v", err)
			}
		})
	}
}
