package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	if err := Create(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(p, []byte("two"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Create: %v, want fs.ErrExist", err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "one" {
		t.Errorf("content %q, %v; want the first write kept", got, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if err := Create(filepath.Join(dir, "missing", "key"), nil, 0o600); err == nil {
		t.Error("Create into a missing directory succeeded")
	}
	assertNoTemp(t, dir)
}

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "manifest")
	for _, s := range []string{"first", "second"} {
		if err := Replace(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "second" {
		t.Errorf("content %q, %v; want the last write", got, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	assertNoTemp(t, dir)
}

// assertNoTemp checks that no temporary file is left behind.
func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() && e.Name()[0] == '.' {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keys", "secret") // the parent is created
	gens := 0
	gen := func() ([]byte, error) { gens++; return []byte("first"), nil }
	got, fresh, err := LoadOrCreate(p, gen)
	if err != nil || !fresh || string(got) != "first" {
		t.Fatalf("first call: %q, fresh %v, %v; want \"first\", fresh", got, fresh, err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if di, _ := os.Stat(filepath.Dir(p)); di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", di.Mode().Perm())
	}
	// An existing file is returned unchanged and gen is not called.
	got, fresh, err = LoadOrCreate(p, func() ([]byte, error) { t.Error("gen called for an existing file"); return []byte("second"), nil })
	if err != nil || fresh || string(got) != "first" {
		t.Errorf("second call: %q, fresh %v, %v; want \"first\", not fresh", got, fresh, err)
	}
	if gens != 1 {
		t.Errorf("gen called %d times, want 1", gens)
	}
	assertNoTemp(t, filepath.Dir(p))
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	const n = 16
	type result struct {
		data  string
		fresh bool
		err   error
	}
	results := make(chan result, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			b, fresh, err := LoadOrCreate(p, func() ([]byte, error) { return fmt.Appendf(nil, "creator %d", i), nil })
			results <- result{string(b), fresh, err}
		}()
	}
	close(start)
	var winners int
	seen := map[string]bool{}
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.fresh {
			winners++
		}
		seen[r.data] = true
	}
	onDisk, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || !seen[string(onDisk)] {
		t.Errorf("callers saw %v, the file holds %q; want all to agree on the file", seen, onDisk)
	}
	if winners != 1 {
		t.Errorf("%d callers report creating the file, want 1", winners)
	}
	assertNoTemp(t, dir)
}

func TestLoadOrCreateFailure(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("no entropy")
	p := filepath.Join(dir, "secret")
	if _, _, err := LoadOrCreate(p, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("gen failure: %v, want it wrapped", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed generation left %s behind (%v)", p, err)
	}
	// The parent is a file: the write fails and leaves nothing.
	blocker := filepath.Join(dir, "blocker")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(filepath.Join(blocker, "secret"), func() ([]byte, error) { return []byte("k"), nil }); err == nil {
		t.Error("creating under a file succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after failures, want only the blocker", len(ents))
	}
	assertNoTemp(t, dir)
}
