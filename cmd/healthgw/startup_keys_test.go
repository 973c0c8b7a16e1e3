package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
)

// openTestGatewayWith is openTestGatewayErr with the configuration
// changed by mutate.
func openTestGatewayWith(t *testing.T, dataDir, dsn string, mutate func(*serveConfig)) error {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	cfg := defaultServeConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir, cfg.DB = dataDir, dsn
	cfg.ZKDevSetup = false
	if mutate != nil {
		mutate(&cfg)
	}
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

// TestKeySetCoversEveryKey: a new database records every key of the set
// in use, each by its public identifier, and nothing secret.
func TestKeySetCoversEveryKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	dsn := filepath.Join(dir, "healthgw.db")
	if err := openTestGatewayErr(t, dir, dsn); err != nil {
		t.Fatal(err)
	}
	db, err := database.OpenExisting(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	ks, ok, err := database.ReadKeySet(t.Context(), db)
	if err != nil || !ok {
		t.Fatalf("key set: %v %v", ok, err)
	}
	want := database.KeySet{}
	for _, k := range boundKeys {
		id, err := k.identify(filepath.Join(dir, k.rel))
		if err != nil {
			t.Fatalf("%s: %v", k.name, err)
		}
		want[k.id] = id
	}
	// The raw secrets are not in what is recorded, in any usual encoding.
	for _, rel := range []string{pseudonymKeyFile, challengeKeyFile} {
		secret, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range []string{hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret)} {
			for name, id := range ks {
				if strings.Contains(id, enc[:16]) {
					t.Errorf("the recorded %s identifier holds %s", name, rel)
				}
			}
		}
	}
	if diff := cmp.Diff(want, ks); diff != "" {
		t.Errorf("recorded key set (-want +got):\n%s", diff)
	}
	for _, id := range []string{"challenge", "dev-idp"} {
		if ks[id] == "" {
			t.Errorf("the key set does not record the %s key", id)
		}
	}
}

// TestStartFailureLeavesNothing: a first start that fails after the key
// set was made (an unreadable patient IdP JWKS, a missing consortium
// home) leaves no key file, no data directory and, on PostgreSQL, no table
// and no key set; the next start with a good configuration makes a fresh
// key set and runs.
func TestStartFailureLeavesNothing(t *testing.T) {
	failures := map[string]func(*serveConfig){
		"patient IdP JWKS unreadable": func(c *serveConfig) {
			c.PatientIss, c.PatientJWKS = "https://idp.example", filepath.Join(t.TempDir(), "missing-jwks.json")
		},
		"consortium home missing": func(c *serveConfig) {
			c.Ledger, c.CometHome = "comet", filepath.Join(t.TempDir(), "no-such-home")
		},
	}
	for name, fail := range failures {
		t.Run(name, func(t *testing.T) {
			databasetest.EachDSN(t, func(t *testing.T, dsn string) {
				root := t.TempDir()
				dir := filepath.Join(root, "data")
				db := dsn
				if database.DialectOf(dsn) == database.SQLite {
					db = filepath.Join(dir, "healthgw.db")
				}
				if err := openTestGatewayWith(t, dir, db, fail); err == nil {
					t.Fatal("the start did not fail")
				}
				if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("the failed start left %s: %v", dir, treeDigest(t, root))
				}
				if database.DialectOf(dsn) == database.Postgres {
					pg, err := database.Open(t.Context(), dsn)
					if err != nil {
						t.Fatal(err)
					}
					tables, err := database.Tables(t.Context(), pg)
					database.Close(pg)
					if err != nil || len(tables) != 0 {
						t.Errorf("the failed start left tables %v (%v)", tables, err)
					}
				}
				if err := openTestGatewayErr(t, dir, db); err != nil {
					t.Fatalf("a good start after the failed one: %v", err)
				}
				for _, k := range boundKeys {
					if _, err := os.Stat(filepath.Join(dir, k.rel)); err != nil {
						t.Errorf("%s after the good start: %v", k.name, err)
					}
				}
			})
		})
	}
}

// TestStartRefusesOtherChallengeAndDevIdPKeys: the keys that joined the
// key set with the challenge and development IdP keys are checked like the
// first three: another one refuses, naming it, and writes nothing.
func TestStartRefusesOtherChallengeAndDevIdPKeys(t *testing.T) {
	for _, tc := range []struct{ key, file string }{
		{"challenge key", challengeKeyFile},
		{"development IdP key", auth.DevIdPKeyFile},
	} {
		t.Run(tc.key, func(t *testing.T) {
			root := t.TempDir()
			a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
			dbA := filepath.Join(a, "healthgw.db")
			for _, d := range []string{a, b} {
				if err := openTestGatewayErr(t, d, filepath.Join(d, "healthgw.db")); err != nil {
					t.Fatal(err)
				}
			}
			copyFile(t, filepath.Join(b, tc.file), filepath.Join(a, tc.file))
			before := treeDigest(t, root)
			err := openTestGatewayErr(t, a, dbA)
			var kerr *KeySetError
			if !errors.As(err, &kerr) || kerr.Key != tc.key || kerr.Path != filepath.Join(a, tc.file) || kerr.Found == "" || kerr.Found == kerr.Expected {
				t.Fatalf("start with another %s: %v", tc.key, err)
			}
			for _, want := range []string{tc.key, kerr.Path, dbA, kerr.Expected, kerr.Found} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not name %q", err, want)
				}
			}
			if diff := cmp.Diff(before, treeDigest(t, root)); diff != "" {
				t.Errorf("the refused start changed files (-before +after):\n%s", diff)
			}
		})
	}
}

// TestStartRefusesMissingBoundKey: no key of a bound database is made
// again when its file is missing, whichever key it is.
func TestStartRefusesMissingBoundKey(t *testing.T) {
	for _, k := range boundKeys {
		t.Run(k.name, func(t *testing.T) {
			a := filepath.Join(t.TempDir(), "a")
			db := filepath.Join(a, "healthgw.db")
			if err := openTestGatewayErr(t, a, db); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(a, k.rel)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			before := treeDigest(t, a)
			err := openTestGatewayErr(t, a, db)
			var kerr *KeySetError
			if !errors.As(err, &kerr) || kerr.Key != k.name || kerr.Path != path || kerr.Found != "" || !strings.Contains(err.Error(), "missing") {
				t.Fatalf("start without the %s: %v", k.name, err)
			}
			if diff := cmp.Diff(before, treeDigest(t, a)); diff != "" {
				t.Errorf("the refused start changed files (-before +after):\n%s", diff)
			}
		})
	}
}

// firstKeySetRow is the row of the first key-set table, as database
// wrote it before keys were recorded by name.
type firstKeySetRow struct {
	ID             int    `gorm:"primaryKey;autoIncrement:false"`
	CheckpointKey  string `gorm:"not null"`
	AccessTokenKID string `gorm:"not null"`
	PseudonymMAC   string `gorm:"not null"`
	CreatedAt      time.Time
}

func (firstKeySetRow) TableName() string { return "healthgw_keyset" }

// TestKeySetUpgrade: a database bound by the first key-set table (three
// keys, one row) starts, records the keys that joined the set since (the
// challenge and development IdP keys, from their files), and from then on
// refuses another challenge key.
func TestKeySetUpgrade(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	dsn := filepath.Join(dir, "healthgw.db")
	if err := openTestGatewayErr(t, dir, dsn); err != nil {
		t.Fatal(err)
	}
	db, err := database.OpenExisting(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	ks, _, err := database.ReadKeySet(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the binding as the first key-set code wrote it (its row
	// type, migrated by gorm as it was).
	if err := db.Exec(`DROP TABLE healthgw_keys`).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.AutoMigrate(&firstKeySetRow{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Create(&firstKeySetRow{ID: 1, CheckpointKey: ks[database.KeyCheckpoint], AccessTokenKID: ks[database.KeyAccessToken], PseudonymMAC: ks[database.KeyPseudonym]}).Error; err != nil {
		t.Fatal(err)
	}
	legacy, _, err := database.ReadKeySet(t.Context(), db)
	database.Close(db)
	if err != nil || len(legacy) != 3 || legacy[database.KeyCheckpoint] != ks[database.KeyCheckpoint] {
		t.Fatalf("legacy key set %v: %v", legacy, err)
	}

	if err := openTestGatewayErr(t, dir, dsn); err != nil {
		t.Fatalf("start on the legacy binding: %v", err)
	}
	db, err = database.OpenExisting(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := database.ReadKeySet(t.Context(), db)
	database.Close(db)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ks, got); diff != "" {
		t.Errorf("key set after the upgrade start (-want +got):\n%s", diff)
	}

	other := make([]byte, 32)
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, challengeKeyFile), other, 0o600); err != nil {
		t.Fatal(err)
	}
	var kerr *KeySetError
	if err := openTestGatewayErr(t, dir, dsn); !errors.As(err, &kerr) || kerr.Key != "challenge key" {
		t.Fatalf("another challenge key after the upgrade: %v", err)
	}
}

// TestStartChecksKEKs: a database whose records are wrapped under an
// organisation's key-encryption key does not start without that key, or
// with another key in its place (which the first upload would otherwise
// have used for new records, leaving the earlier ones unreadable); the
// refusal names the key file and writes nothing.
func TestStartChecksKEKs(t *testing.T) {
	g := newTestGateway(t)
	dir, dsn := g.cfg.DataDir, g.cfg.DB
	a := g.register("hosp-a", auth.KindHospital)
	g.putRecord(g.token(a, ""), "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	g.srv.Close()
	if err := g.close(); err != nil {
		t.Fatal(err)
	}
	kek := filepath.Join(dir, "keys", "kek", "hosp-a", "v1.key")
	orig, err := os.ReadFile(kek)
	if err != nil {
		t.Fatal(err)
	}
	other := make([]byte, 32)
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		prepare func() error
		want    string
	}{
		{"missing", func() error { return os.Remove(kek) }, "missing"},
		{"another key", func() error {
			return os.WriteFile(kek, []byte(base64.StdEncoding.EncodeToString(other)+"\n"), 0o600)
		}, "is not the key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.prepare(); err != nil {
				t.Fatal(err)
			}
			before := treeDigest(t, dir)
			err := openTestGatewayErr(t, dir, dsn)
			var kerr *KeySetError
			if !errors.As(err, &kerr) || kerr.Path != kek || !strings.Contains(kerr.Key, "hosp-a v1") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("start with the KEK %s: %v", tc.name, err)
			}
			if diff := cmp.Diff(before, treeDigest(t, dir)); diff != "" {
				t.Errorf("the refused start changed files (-before +after):\n%s", diff)
			}
		})
	}
	if err := os.WriteFile(kek, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := openTestGatewayErr(t, dir, dsn); err != nil {
		t.Errorf("start with the KEK restored: %v", err)
	}
}
