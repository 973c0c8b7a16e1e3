package database

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNotWritable marks a SQLite path the process cannot write.
var ErrNotWritable = errors.New("database is not writable")

// checkSQLitePath reports, before SQLite tries, why a database file at path
// could not be opened for writing: SQLite itself only says "unable to open
// database file" (code 14, which the pure-Go driver prints as "out of
// memory (14)"). SQLite in WAL mode writes path, path-wal and path-shm, so
// the directory must be writable as well as the file.
func checkSQLitePath(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("%w: %s is a directory; --db names the database file (e.g. %s)", ErrNotWritable, path, filepath.Join(path, "healthgw.db"))
	case err == nil:
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("%w: cannot open %s for writing (%w); fix its owner or permissions, or point --db elsewhere", ErrNotWritable, path, err)
		}
		f.Close()
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s: %w", ErrNotWritable, path, err)
	}
	probe, err := os.CreateTemp(dir, ".healthgw-write-check-*")
	if err != nil {
		return fmt.Errorf("%w: directory %s does not let this process create files (%w); SQLite needs it writable for %s and its -wal and -shm files: fix its owner or permissions, or point --data/--db at a writable directory", ErrNotWritable, dir, err, filepath.Base(path))
	}
	name := probe.Name()
	probe.Close()
	return os.Remove(name)
}
