package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
)

// openTestGatewayErr opens (and closes again) a gateway on dataDir and
// dsn without serving it, and returns the error of opening it.
func openTestGatewayErr(t *testing.T, dataDir, dsn string) error {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	cfg := defaultServeConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir, cfg.DB = dataDir, dsn
	cfg.ZKDevSetup = false
	if err := cfg.finish(); err != nil {
		t.Fatal(err)
	}
	g, err := openGateway(t.Context(), cfg, slog.New(slog.DiscardHandler), &env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard})
	if err != nil {
		return err
	}
	if err := g.close(); err != nil {
		t.Fatalf("close gateway: %v", err)
	}
	return nil
}

// treeDigest maps every file under root (but SQLite's -wal and -shm, which
// SQLite makes and removes as it opens and closes the database) to a hash
// of its content, and every directory to "dir".
func treeDigest(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		if strings.HasSuffix(p, "-wal") || strings.HasSuffix(p, "-shm") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStartRefusesOtherKeySet: a gateway started on an existing database
// with keys that are not the database's refuses, names the key and where
// it is expected, and writes nothing.
func TestStartRefusesOtherKeySet(t *testing.T) {
	for _, tc := range []struct {
		name, key, file string
	}{
		{"checkpoint key", "checkpoint key", checkpointKeyFile},
		{"pseudonym secret", "pseudonym secret", pseudonymKeyFile},
		{"access-token key", "access-token key", auth.SigningKeyFile},
		{"all keys (a fresh data directory)", "checkpoint key", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
			dbA := filepath.Join(a, "healthgw.db")
			if err := openTestGatewayErr(t, a, dbA); err != nil {
				t.Fatalf("first start of a: %v", err)
			}
			if err := openTestGatewayErr(t, b, filepath.Join(b, "healthgw.db")); err != nil {
				t.Fatalf("first start of b: %v", err)
			}
			dataDir := a
			if tc.file == "" {
				// serve --data b --db a/healthgw.db
				dataDir = b
			} else {
				copyFile(t, filepath.Join(b, tc.file), filepath.Join(a, tc.file))
			}
			before := treeDigest(t, root)
			err := openTestGatewayErr(t, dataDir, dbA)
			var kerr *KeySetError
			if !errors.As(err, &kerr) {
				t.Fatalf("start with another key set: got %v, want a KeySetError", err)
			}
			wantPath := filepath.Join(dataDir, tc.file)
			if tc.file == "" {
				wantPath = filepath.Join(dataDir, checkpointKeyFile)
			}
			if kerr.Key != tc.key || kerr.Path != wantPath || kerr.Found == "" || kerr.Expected == kerr.Found {
				t.Errorf("error %+v: want key %q at %s with expected and found", kerr, tc.key, wantPath)
			}
			msg := err.Error()
			for _, want := range []string{tc.key, wantPath, dbA, kerr.Expected, kerr.Found} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not name %q", msg, want)
				}
			}
			if diff := cmp.Diff(before, treeDigest(t, root)); diff != "" {
				t.Errorf("the refused start changed files (-before +after):\n%s", diff)
			}
			// The database's own key set still starts.
			if tc.file == "" {
				if err := openTestGatewayErr(t, a, dbA); err != nil {
					t.Errorf("restart with the right keys: %v", err)
				}
			}
		})
	}
}

// TestStartRefusesMissingKey: a key file of a bound database that is
// missing is not regenerated.
func TestStartRefusesMissingKey(t *testing.T) {
	a := filepath.Join(t.TempDir(), "a")
	db := filepath.Join(a, "healthgw.db")
	if err := openTestGatewayErr(t, a, db); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(a, pseudonymKeyFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, a)
	err := openTestGatewayErr(t, a, db)
	var kerr *KeySetError
	if !errors.As(err, &kerr) || kerr.Key != "pseudonym secret" || kerr.Path != path || kerr.Found != "" {
		t.Fatalf("start without the pseudonym secret: got %v", err)
	}
	if !strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), path) {
		t.Errorf("message %q: want it to say the key at %s is missing", err, path)
	}
	if diff := cmp.Diff(before, treeDigest(t, a)); diff != "" {
		t.Errorf("the refused start changed files (-before +after):\n%s", diff)
	}
}

// TestStartDatabaseFailureLeavesNoKeys: when the database cannot be
// opened, no key is written.
func TestStartDatabaseFailureLeavesNoKeys(t *testing.T) {
	root := t.TempDir()
	blocker := filepath.Join(root, "not-a-directory")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, dsn := range map[string]string{
		"sqlite under a file":     filepath.Join(blocker, "healthgw.db"),
		"postgres nobody listens": "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=5",
	} {
		t.Run(name, func(t *testing.T) {
			data := filepath.Join(root, strings.ReplaceAll(name, " ", "-"))
			if err := openTestGatewayErr(t, data, dsn); err == nil {
				t.Fatal("start on an unusable database succeeded")
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("data directory %s: %v; want nothing written (tree %v)", data, err, treeDigest(t, data))
			}
		})
	}
}

// TestDatabaseAndKeyModes: the SQLite file, its -wal and -shm, and the
// keys are 0600.
func TestDatabaseAndKeyModes(t *testing.T) {
	g := newTestGateway(t)
	dir := g.cfg.DataDir
	// A write makes sure the -wal and -shm exist while the gateway runs.
	g.register("hosp-a", auth.KindHospital)
	for _, p := range []string{"healthgw.db", "healthgw.db-wal", "healthgw.db-shm", checkpointKeyFile, pseudonymKeyFile, auth.SigningKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %o, want 600", p, got)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "keys")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("keys directory: %v %v, want mode 700", fi.Mode(), err)
	}
}

// TestStartRefusesOtherKeySetPostgres: the container case of the issue —
// PostgreSQL keeps the data, the data directory (no persistent volume)
// comes back empty: the gateway refuses instead of making new keys, and
// writes nothing (no key, no change to the database's key set).
func TestStartRefusesOtherKeySetPostgres(t *testing.T) {
	dsn := databasetest.PostgresDSN(t)
	first := filepath.Join(t.TempDir(), "data")
	if err := openTestGatewayErr(t, first, dsn); err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	before, _, err := database.ReadKeySet(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "data")
	err = openTestGatewayErr(t, fresh, dsn)
	var kerr *KeySetError
	if !errors.As(err, &kerr) || kerr.Key != "checkpoint key" || kerr.Path != filepath.Join(fresh, checkpointKeyFile) {
		t.Fatalf("restart with an empty data directory: %v, want a KeySetError for the checkpoint key", err)
	}
	if strings.Contains(err.Error(), "postgres@") {
		t.Errorf("message %q shows the DSN's user part", err)
	}
	if _, err := os.Stat(fresh); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused start created %s: %v", fresh, err)
	}
	after, _, err := database.ReadKeySet(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("the key set changed (-before +after):\n%s", diff)
	}
	if err := openTestGatewayErr(t, first, dsn); err != nil {
		t.Errorf("restart with the original keys: %v", err)
	}
}
