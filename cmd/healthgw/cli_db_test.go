package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/ledger"
)

// TestCLINeverCreatesDatabase: every command that works on a gateway's
// database or data directory refuses a directory that holds none, says
// so, and leaves the directory as it was; --create is the way to start
// one.
func TestCLINeverCreatesDatabase(t *testing.T) {
	outside := t.TempDir()
	org := authtest.NewOrg(t, "hosp-z", auth.KindHospital, "ES256")
	jwks := filepath.Join(outside, "hosp-z.jwks.json")
	if err := os.WriteFile(jwks, []byte(org.JWKS), 0o644); err != nil {
		t.Fatal(err)
	}
	_, vkey, err := ledger.GenerateCheckpointKey("cli.test/log")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string // --data (or --db) is added
		db   bool     // the command takes --db only
		want string
	}{
		{"org add", []string{"org", "add", "--id", "hosp-z", "--jwks", jwks}, false, "pass --create"},
		{"org keygen", []string{"org", "keygen", "--id", "hosp-y", "--out", filepath.Join(outside, "keys")}, false, "pass --create"},
		{"org list", []string{"org", "list"}, false, "no healthgw database"},
		{"keys init", []string{"keys", "init", "--org", "hosp-a"}, false, "pass --create"},
		{"keys rotate", []string{"keys", "rotate", "--org", "hosp-a"}, false, "no healthgw database"},
		{"keys status", []string{"keys", "status", "--org", "hosp-a"}, false, "no healthgw database"},
		{"token patient", []string{"token", "patient", "--id", "pat-1"}, false, "no development IdP key"},
		{"ledger verify", []string{"ledger", "verify", "--key", vkey}, true, "no healthgw database"},
		{"ledger checkpoint", []string{"ledger", "checkpoint"}, true, "no healthgw database"},
	} {
		for _, state := range []string{"missing", "empty"} {
			t.Run(tc.name+"/"+state, func(t *testing.T) {
				data := filepath.Join(t.TempDir(), "data")
				if state == "empty" {
					if err := os.Mkdir(data, 0o700); err != nil {
						t.Fatal(err)
					}
				}
				args := append(tc.args, "--data", data)
				if tc.db {
					args = append(tc.args, "--db", filepath.Join(data, "healthgw.db"))
				}
				_, _, err := runCLI(t, args...)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("%s on a %s data directory: %v, want an error saying %q", tc.name, state, err, tc.want)
				}
				if state == "missing" {
					if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s created %s (%v)", tc.name, data, err)
					}
					return
				}
				left, err := os.ReadDir(data)
				if err != nil || len(left) != 0 {
					t.Errorf("%s left %v in the data directory (%v)", tc.name, left, err)
				}
			})
		}
	}
	if left, _ := os.ReadDir(filepath.Join(outside, "keys")); len(left) != 0 {
		t.Errorf("org keygen wrote %v although it refused", left)
	}
}

// TestCLICreate: --create makes the database and its key set, which a
// gateway then starts on, and later commands need no --create.
func TestCLICreate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if _, _, err := runCLI(t, "org", "keygen", "--id", "hosp-a", "--out", filepath.Join(t.TempDir(), "keys"), "--data", data, "--create"); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "org", "list", "--data", data)
	if err != nil || !strings.Contains(out, "hosp-a ") {
		t.Fatalf("org list after org keygen --create = %q, %v", out, err)
	}
	if err := openTestGatewayErr(t, data, filepath.Join(data, "healthgw.db")); err != nil {
		t.Errorf("serve on the database org keygen --create made: %v", err)
	}
}

// TestTokenPatientTTL: a lifetime that is not positive or above the
// maximum is refused with a message, not silently replaced.
func TestTokenPatientTTL(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct{ ttl, want string }{
		{"-5m", "--ttl -5m0s: the lifetime must be more than 0"},
		{"0", "--ttl 0s: the lifetime must be more than 0"},
		{"25h", "--ttl 25h0m0s: the lifetime must be at most 24h0m0s"},
	} {
		t.Run(tc.ttl, func(t *testing.T) {
			out, err := runToken(t, "token", "patient", "--id", "pat-1", "--data", data, "--create", "--ttl", tc.ttl)
			if err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
				t.Fatalf("--ttl %s: %q, %v; want no token and %q", tc.ttl, out, err, tc.want)
			}
		})
	}
	tok, err := runToken(t, "token", "patient", "--id", "pat-1", "--data", data, "--create", "--ttl", "30m")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseInsecure([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	iat, _ := parsed.IssuedAt()
	exp, _ := parsed.Expiration()
	if diff := cmp.Diff(30*time.Minute, exp.Sub(iat)); diff != "" {
		t.Errorf("lifetime (-want +got):\n%s", diff)
	}
}

// TestOrgListConsortiumNode: on a consortium node (no embedded ledger),
// org list --data and org list --comet-home list the registry the
// gateway serves.
func TestOrgListConsortiumNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a validator network")
	}
	c := newConsortium(t, 1)
	g := c.gws[0]
	registerTestOrg(t, g.gateway, "hosp-n")
	c.syncAll(t)
	for name, args := range map[string][]string{
		"--data":       {"org", "list", "--data", g.cfg.DataDir},
		"--comet-home": {"org", "list", "--comet-home", g.cfg.CometHome, "--data", g.cfg.DataDir},
	} {
		out, _, err := runCLI(t, args...)
		if err != nil || !strings.Contains(out, "\nhosp-n ") {
			t.Errorf("org list %s = %q, %v; want hosp-n listed", name, out, err)
		}
	}
	if _, _, err := runCLI(t, "org", "list", "--comet-home", filepath.Join(t.TempDir(), "nowhere"), "--data", g.cfg.DataDir); err == nil || !strings.Contains(err.Error(), "--comet-home") {
		t.Errorf("org list with a --comet-home that is no node: %v, want an error naming --comet-home", err)
	}
}

// TestLedgerWrongKeyMessage: checking a database's checkpoints with
// another log's key names the file the key came from, the key expected
// and the key that signed.
func TestLedgerWrongKeyMessage(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	dsn := filepath.Join(data, "healthgw.db")
	if err := openTestGatewayErr(t, data, dsn); err != nil {
		t.Fatal(err)
	}
	own, err := os.ReadFile(filepath.Join(data, checkpointKeyFile+ledger.VerifierKeySuffix))
	if err != nil {
		t.Fatal(err)
	}
	ownV, err := ledger.ParseVerifierKey(string(own))
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := ledger.GenerateCheckpointKey("other.example/ledger")
	if err != nil {
		t.Fatal(err)
	}
	otherV, err := ledger.ParseVerifierKey(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "other.pub")
	if err := os.WriteFile(keyFile, []byte(otherKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{"ledger", "checkpoint", "--db", dsn, "--key", keyFile},
		{"ledger", "verify", "--db", dsn, "--key", keyFile, "--quiet"},
	} {
		_, _, err := runCLI(t, cmd...)
		if err == nil {
			t.Fatalf("%v succeeded with another log's key", cmd)
		}
		msg := err.Error()
		for _, part := range []string{
			ledger.KeyID(otherV.Name(), otherV.KeyHash()),
			ledger.KeyID(ownV.Name(), ownV.KeyHash()),
			"--key read from " + keyFile,
		} {
			if !strings.Contains(msg, part) {
				t.Errorf("%v: message %q does not name %q", cmd[:2], msg, part)
			}
		}
	}
}
