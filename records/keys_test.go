package records

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestKeystoreFiles(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "kek")
	ks := NewKeystore(KeystoreConfig{Dir: dir})

	if _, err := ks.Current(ctx, "hosp-a"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Current with no key: err = %v, want ErrNoKey", err)
	}
	v1, err := ks.Create(ctx, "hosp-a")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := ks.Create(ctx, "hosp-a")
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version() != 1 || v2.Version() != 2 {
		t.Fatalf("created versions %d, %d; want 1, 2", v1.Version(), v2.Version())
	}
	for _, p := range []string{"hosp-a/v1.key", "hosp-a/v2.key"} {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %04o, want 0600", p, got)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "hosp-a")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("org key directory: %v, mode %v; want 0700", err, st.Mode().Perm())
	}

	// A fresh Keystore (another process) reads the same keys.
	again := NewKeystore(KeystoreConfig{Dir: dir})
	cur, err := again.Current(ctx, "hosp-a")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version() != 2 {
		t.Fatalf("Current = v%d, want v2", cur.Version())
	}
	assertSameKey(t, v2, cur)
	k1, err := again.Key(ctx, "hosp-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	assertSameKey(t, v1, k1)
	if _, err := again.Key(ctx, "hosp-a", 3); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Key v3: err = %v, want ErrNoKey", err)
	}
	vs, err := again.Versions(ctx, "hosp-a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{1, 2}, vs); diff != "" {
		t.Errorf("Versions (-want +got):\n%s", diff)
	}

	// A version created by another process is current at once.
	if _, err := again.Create(ctx, "hosp-a"); err != nil {
		t.Fatal(err)
	}
	if cur, err := ks.Current(ctx, "hosp-a"); err != nil || cur.Version() != 3 {
		t.Fatalf("Current after another process rotated = %v, %v; want v3", cur, err)
	}
}

// assertSameKey checks that two KEKs hold the same key: one unwraps what
// the other wrapped.
func assertSameKey(t *testing.T, a, b KEK) {
	t.Helper()
	bd := testBinding()
	bd.holder = a.Org()
	s, err := seal(a, bd, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(b, bd, s.wrappedKey, s.ciphertext); err != nil {
		t.Fatalf("%v and %v hold different keys: %v", a, b, err)
	}
}

func TestKeystoreAutoCreate(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	ks := NewKeystore(KeystoreConfig{Dir: dir, AutoCreate: true})
	var wg sync.WaitGroup
	got := make([]KEK, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Go(func() { got[i], errs[i] = ks.Current(ctx, "hosp-a") })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i].Version() != 1 {
			t.Fatalf("auto-created v%d, want v1", got[i].Version())
		}
	}
	// Two processes auto-creating at once: the second loads the first's.
	other := NewKeystore(KeystoreConfig{Dir: dir, AutoCreate: true})
	k, err := other.Current(ctx, "hosp-a")
	if err != nil {
		t.Fatal(err)
	}
	assertSameKey(t, got[0], k)
	if vs, _ := other.Versions(ctx, "hosp-a"); len(vs) != 1 {
		t.Fatalf("versions after concurrent auto-create: %v", vs)
	}
}

func TestKeystoreEnvironment(t *testing.T) {
	ctx := t.Context()
	key1 := bytes.Repeat([]byte{1}, 32)
	key3 := bytes.Repeat([]byte{3}, 32)
	env := map[string]string{
		"HEALTHGW_KEK_HOSP_A_V1": base64.StdEncoding.EncodeToString(key1),
		"HEALTHGW_KEK_HOSP_A_V3": " " + base64.StdEncoding.EncodeToString(key3) + "\n",
		"HEALTHGW_KEK_HOSP_B_V1": "not base64",
		"HEALTHGW_KEK_HOSP_C_V1": base64.StdEncoding.EncodeToString(key1[:16]),
	}
	ks := NewKeystore(KeystoreConfig{Getenv: envMap(env)})
	cur, err := ks.Current(ctx, "hosp-a")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version() != 3 {
		t.Fatalf("Current = v%d, want v3", cur.Version())
	}
	assertSameKey(t, mustKEK(t, "hosp-a", 3, key3), cur)
	if _, err := ks.Key(ctx, "hosp-a", 2); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Key v2: err = %v, want ErrNoKey", err)
	}
	if _, err := ks.Current(ctx, "hosp-b"); !errors.Is(err, ErrBadKey) {
		t.Fatalf("bad base64: err = %v, want ErrBadKey", err)
	}
	if _, err := ks.Current(ctx, "hosp-c"); !errors.Is(err, ErrBadKey) {
		t.Fatalf("short key: err = %v, want ErrBadKey", err)
	}
	if _, err := ks.Create(ctx, "hosp-a"); !errors.Is(err, ErrCannotCreateKey) {
		t.Fatalf("Create without a directory: err = %v, want ErrCannotCreateKey", err)
	}
	if got := EnvKeyName("hosp-a", 12); got != "HEALTHGW_KEK_HOSP_A_V12" {
		t.Errorf("EnvKeyName = %q", got)
	}
}

func TestKeystoreEnvironmentAndFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	files := NewKeystore(KeystoreConfig{Dir: dir})
	if _, err := files.Create(ctx, "hosp-a"); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(dir, "hosp-a", "v1.key"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HEALTHGW_KEK_HOSP_A_V1": string(text), // the same key: fine
		"HEALTHGW_KEK_HOSP_A_V2": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)),
	}
	both := NewKeystore(KeystoreConfig{Dir: dir, Getenv: envMap(env)})
	if cur, err := both.Current(ctx, "hosp-a"); err != nil || cur.Version() != 2 {
		t.Fatalf("Current = %v, %v; want v2 from the environment", cur, err)
	}
	if _, err := both.Key(ctx, "hosp-a", 1); err != nil {
		t.Fatalf("v1 in both, same key: %v", err)
	}
	// Creating the next version goes to a file after the highest of both.
	k, err := both.Create(ctx, "hosp-a")
	if err != nil || k.Version() != 3 {
		t.Fatalf("Create = %v, %v; want v3", k, err)
	}

	env["HEALTHGW_KEK_HOSP_A_V1"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	conflict := NewKeystore(KeystoreConfig{Dir: dir, Getenv: envMap(env)})
	if _, err := conflict.Key(ctx, "hosp-a", 1); !errors.Is(err, ErrBadKey) {
		t.Fatalf("env and file disagree: err = %v, want ErrBadKey", err)
	}
}

func TestKeystoreBadFiles(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name string
		text string
		mode os.FileMode
	}{
		{"group-readable", base64.StdEncoding.EncodeToString(make([]byte, 32)), 0o640},
		{"world-readable", base64.StdEncoding.EncodeToString(make([]byte, 32)), 0o644},
		{"not base64", "hello", 0o600},
		{"short key", base64.StdEncoding.EncodeToString(make([]byte, 31)), 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "hosp-a"), 0o700); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "hosp-a", "v1.key")
			if err := os.WriteFile(p, []byte(tt.text), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			ks := NewKeystore(KeystoreConfig{Dir: dir})
			if _, err := ks.Current(ctx, "hosp-a"); !errors.Is(err, ErrBadKey) {
				t.Fatalf("err = %v, want ErrBadKey", err)
			}
		})
	}
}

func TestKeystoreRefusesBadOrgIDs(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	ks := NewKeystore(KeystoreConfig{Dir: filepath.Join(dir, "kek"), AutoCreate: true})
	for _, org := range []string{"", "..", "../x", "a/b", "HOSP", "x", "hosp_a"} {
		if _, err := ks.Current(ctx, org); err == nil {
			t.Errorf("Current(%q) succeeded", org)
		}
		if _, err := ks.Create(ctx, org); err == nil {
			t.Errorf("Create(%q) succeeded", org)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("bad org IDs created files: %v", ents)
	}
}
