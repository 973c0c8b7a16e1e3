package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/registry/registrystore"
)

// testStores is the registry over a test database and an in-memory
// ledger.
type testStores struct {
	log    *ledgertest.MemLog
	reg    *registrystore.Store
	follow *ledger.Follower
}

func newTestStores(t *testing.T, db *gorm.DB) *testStores {
	t.Helper()
	reg, err := registrystore.Open(t.Context(), db, registrystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := &ledgertest.MemLog{}
	return &testStores{log: log, reg: reg, follow: ledger.NewFollower(log, reg)}
}

func testEnv() (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &env{getenv: func(string) string { return "" }, stdout: &out, stderr: &errOut}, &out, &errOut
}

func TestOrgAddAndList(t *testing.T) {
	k, err := auth.GenerateSigningKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := auth.PublicJWKS(k)
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		st := newTestStores(t, db)
		e, out, _ := testEnv()
		orgs := []auth.Org{
			{ID: "hosp-a", Name: "Hospital A", Kind: auth.KindHospital, JWKS: string(jwks)},
			{ID: "reg-1", Name: "Regulator", Kind: auth.KindRegulator, JWKSURL: "https://reg.example/jwks.json"},
			{ID: "verif-1", Name: "Insurer", Kind: auth.KindVerifier, Scopes: []auth.Scope{auth.ScopeProofsVerify}, JWKS: string(jwks)},
		}
		for _, o := range orgs {
			if err := orgAdd(t.Context(), e, st.log, st.follow, o); err != nil {
				t.Fatalf("orgAdd(%s): %v", o.ID, err)
			}
		}
		if !strings.Contains(out.String(), "registered hosp-a (hospital) at ledger index 0, scopes: system/records.read system/records.write system/consents.read credentials.issue") {
			t.Errorf("orgAdd output:\n%s", out)
		}
		bad := orgs[0]
		bad.ID, bad.Scopes = "hosp-b", []auth.Scope{auth.ScopeAuditRead}
		if err := orgAdd(t.Context(), e, st.log, st.follow, bad); !errors.Is(err, auth.ErrInvalidOrg) {
			t.Errorf("orgAdd with a regulator scope on a hospital = %v, want ErrInvalidOrg", err)
		}
		out.Reset()
		if err := orgList(t.Context(), e, st.reg); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 4 {
			t.Fatalf("orgList printed %d lines, want 4:\n%s", len(lines), out)
		}
		for i, want := range [][]string{
			{"ID", "KIND", "SCOPES", "KEYS", "INDEX", "NAME"},
			{"hosp-a", "hospital", "system/records.read,system/records.write,system/consents.read,credentials.issue", "inline", "(1", "sig)", "0", "Hospital", "A"},
			{"reg-1", "regulator", "audit.read", "https://reg.example/jwks.json", "1", "Regulator"},
			{"verif-1", "verifier", "proofs.verify", "inline", "(1", "sig)", "2", "Insurer"},
		} {
			if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("line %d = %q, want %q", i, got, want)
			}
		}
	})
}

func TestOrgCommandFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"org", "add", "--jwks", "x.json"}, "--id is required"},
		{[]string{"org", "add", "--id", "hosp-a"}, "--jwks is required"},
		{[]string{"org", "add", "--id", "hosp-a", "--jwks", filepath.Join(dir, "missing.json")}, "no such file"},
		{[]string{"org", "add", "--id", "hosp-a", "--scopes", "system/*", "--jwks", "x"}, "unknown scope"},
		{[]string{"org", "keygen", "--id", "hosp-a"}, "--out is required"},
		{[]string{"org", "keygen", "--id", "hosp-a", "--out", dir, "--alg", "HS256"}, "signing algorithm"},
		{[]string{"org", "keygen", "--id", "hosp-a", "--out", dir, "--kind", "insurer"}, "kind must be one of"},
		{[]string{"org", "frobnicate"}, "unknown command"},
		{[]string{"token", "patient"}, "--id is required"},
		{[]string{"token", "client", "--org", "hosp-a"}, "--key are required"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), tt.args, func(string) string { return "" }, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestOrgKeygen(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		st := newTestStores(t, db)
		e, _, _ := testEnv()
		dir := filepath.Join(t.TempDir(), "keys")
		kg, err := newKeygen(auth.Org{ID: "hosp-a", Name: "Hospital A", Kind: auth.KindHospital}, dir, "ES384")
		if err != nil {
			t.Fatal(err)
		}
		if err := kg.run(t.Context(), e, st.log, st.follow); err != nil {
			t.Fatal(err)
		}
		for name, mode := range map[string]os.FileMode{"hosp-a.jwk": 0o600, "hosp-a.enc.jwk": 0o600, "hosp-a.jwks.json": 0o644} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != mode {
				t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), mode)
			}
		}
		o, err := st.reg.Org(t.Context(), "hosp-a")
		if err != nil {
			t.Fatal(err)
		}
		ks, err := auth.ParseOrgJWKS([]byte(o.JWKS))
		if err != nil {
			t.Fatal(err)
		}
		sig, err := auth.ReadPrivateKey(filepath.Join(dir, "hosp-a.jwk"))
		if err != nil {
			t.Fatal(err)
		}
		kid, _ := sig.KeyID()
		enc, _ := ks.EncryptionKey()
		if alg, ok := ks.SigningAlg(kid); !ok || alg != "ES384" || enc == nil || len(o.Scopes) != 4 {
			t.Errorf("registered %+v: signing alg %q, enc key %v", o, alg, enc)
		}
		// Again: the files exist, nothing is overwritten.
		if _, err := newKeygen(auth.Org{ID: "hosp-a", Name: "A", Kind: auth.KindHospital}, dir, "ES384"); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Errorf("second keygen = %v, want an error about existing files", err)
		}
	})
}

func TestOrgKeygenRemovesFilesWhenRefused(t *testing.T) {
	st := newTestStores(t, databasetest.SQLite(t))
	st.log.Fail = func(ledger.Entry) error { return fmt.Errorf("%w: no quorum", ledger.ErrUnavailable) }
	e, _, _ := testEnv()
	dir := t.TempDir()
	kg, err := newKeygen(auth.Org{ID: "hosp-a", Name: "A", Kind: auth.KindHospital}, dir, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	if err := kg.run(t.Context(), e, st.log, st.follow); !errors.Is(err, ledger.ErrUnavailable) {
		t.Fatalf("run = %v, want ErrUnavailable", err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Errorf("files left after a refused registration: %v", left)
	}
}

// TestOrgCommands runs the org commands through run, against the real
// embedded ledger, on SQLite and PostgreSQL.
func TestOrgCommands(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		data := t.TempDir()
		clients := filepath.Join(data, "clients")
		do := func(args ...string) (string, error) {
			t.Helper()
			var out, errOut bytes.Buffer
			err := run(t.Context(), append(args, "--db", dsn, "--data", data), func(string) string { return "" }, &out, &errOut)
			return out.String(), err
		}
		if out, err := do("org", "list"); !errors.Is(err, database.ErrNoDatabase) {
			t.Fatalf("org list on an empty database = %q, %v; want ErrNoDatabase", out, err)
		}
		if _, err := do("org", "keygen", "--id", "hosp-a", "--name", "Hospital A", "--out", clients, "--create"); err != nil {
			t.Fatalf("org keygen: %v", err)
		}
		if _, err := do("org", "add", "--id", "verif-1", "--kind", "verifier", "--jwks", filepath.Join(clients, "hosp-a.jwks.json")); err != nil {
			t.Fatalf("org add: %v", err)
		}
		if _, err := do("org", "add", "--id", "verif-2", "--kind", "verifier", "--jwks", filepath.Join(clients, "hosp-a.jwk")); !errors.Is(err, auth.ErrInvalidOrg) {
			t.Fatalf("org add with a private key = %v, want ErrInvalidOrg", err)
		}
		out, err := do("org", "list")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[1], "hosp-a ") || !strings.HasPrefix(lines[2], "verif-1 ") {
			t.Errorf("org list:\n%s", out)
		}
		// An org is registered once: a second registration is refused
		// and says how keys change; rotate replaces the keys.
		if _, err := do("org", "add", "--id", "verif-1", "--kind", "verifier", "--jwks", filepath.Join(clients, "hosp-a.jwks.json")); err == nil ||
			!strings.Contains(err.Error(), "already registered") || !strings.Contains(err.Error(), "org rotate --id verif-1") {
			t.Errorf("second org add = %v, want a refusal naming org rotate", err)
		}
		k, err := auth.GenerateSigningKey("ES256")
		if err != nil {
			t.Fatal(err)
		}
		set, _ := auth.PublicJWKS(k)
		newJWKS := filepath.Join(data, "new.jwks.json")
		if err := os.WriteFile(newJWKS, set, 0o600); err != nil {
			t.Fatal(err)
		}
		newKey := filepath.Join(data, "new.jwk")
		if err := auth.WritePrivateKey(newKey, k); err != nil {
			t.Fatal(err)
		}
		oldKey := filepath.Join(clients, "hosp-a.jwk") // verif-1 registered hosp-a's public keys
		// The rotation is signed by the org's current key: without one,
		// or with the new key signing for itself, nothing is appended.
		if _, err := do("org", "rotate", "--id", "verif-1", "--jwks", newJWKS); err == nil || !strings.Contains(err.Error(), "--key is required") {
			t.Errorf("org rotate without --key = %v, want a refusal naming --key", err)
		}
		if _, err := do("org", "rotate", "--id", "verif-1", "--jwks", newJWKS, "--key", filepath.Join(data, "missing.jwk")); err == nil || !strings.Contains(err.Error(), "--key") {
			t.Errorf("org rotate with a missing key file = %v, want an error naming --key", err)
		}
		if _, err := do("org", "rotate", "--id", "verif-1", "--jwks", newJWKS, "--key", newKey); err == nil || !strings.Contains(err.Error(), "is not one of verif-1's current signing keys") {
			t.Errorf("org rotate signed by the new key = %v, want a refusal", err)
		}
		if out, err := do("org", "rotate", "--id", "verif-1", "--jwks", newJWKS, "--key", oldKey); err != nil || !strings.Contains(out, "rotated the keys of verif-1") {
			t.Fatalf("org rotate = %q, %v", out, err)
		}
		// The old key no longer signs for verif-1; the new one does.
		if _, err := do("org", "rotate", "--id", "verif-1", "--jwks", filepath.Join(clients, "hosp-a.jwks.json"), "--key", oldKey); err == nil || !strings.Contains(err.Error(), "is not one of verif-1's current signing keys") {
			t.Errorf("org rotate signed by the replaced key = %v, want a refusal", err)
		}
		if _, err := do("org", "rotate", "--id", "nobody", "--jwks", newJWKS, "--key", newKey); !errors.Is(err, auth.ErrUnknownOrg) {
			t.Errorf("org rotate of an unknown org = %v, want ErrUnknownOrg", err)
		}
		db, err := database.OpenExisting(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer database.Close(db)
		reg, err := registrystore.Open(t.Context(), db, registrystore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := reg.Org(t.Context(), "verif-1")
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		_ = json.Compact(&want, set)
		if got.JWKS != want.String() {
			t.Errorf("verif-1's keys after rotate = %s, want the new set", got.JWKS)
		}
	})
}
