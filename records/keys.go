package records

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/healthgw/healthgw/internal/atomicfile"
)

// KeyProvider supplies organisations' key-encryption keys.
type KeyProvider interface {
	// Current returns the version new data keys are wrapped under: the
	// highest version the provider has. ErrNoKey if org has none.
	Current(ctx context.Context, org string) (KEK, error)
	// Key returns one version of org's key. ErrNoKey if it does not exist.
	Key(ctx context.Context, org string, version int) (KEK, error)
}

// KeyCreator is a KeyProvider that can make new key versions (Rotate uses
// it).
type KeyCreator interface {
	// Create makes and durably stores org's next key version (1 for an
	// org with none) and returns it.
	Create(ctx context.Context, org string) (KEK, error)
}

// MaxKeyVersion bounds key versions. Keys from the environment are found
// by looking up versions 1..MaxKeyVersion.
const MaxKeyVersion = 999

// EnvKeyPrefix starts the names of environment variables holding KEKs:
// HEALTHGW_KEK_<ORG>_V<N>, where <ORG> is the org ID in upper case with
// '-' as '_', and the value is the key in standard base64.
const EnvKeyPrefix = "HEALTHGW_KEK_"

// EnvKeyName returns the environment variable that holds version of org's
// KEK, e.g. HEALTHGW_KEK_HOSP_A_V1 for hosp-a version 1.
func EnvKeyName(org string, version int) string {
	return EnvKeyPrefix + strings.ToUpper(strings.ReplaceAll(org, "-", "_")) + "_V" + strconv.Itoa(version)
}

// KeystoreConfig configures a Keystore.
type KeystoreConfig struct {
	// Dir holds key files: <Dir>/<org>/v<N>.key, each the key in standard
	// base64 and a newline, mode 0600 (directories 0700). Empty: no files
	// (keys from the environment only; Create is refused).
	Dir string
	// Getenv looks up environment variables (os.Getenv in production).
	// Nil: no keys from the environment.
	Getenv func(string) string
	// AutoCreate makes Current create version 1 for an org that has no
	// key yet (zero-configuration deployments). Needs Dir.
	AutoCreate bool
}

// Keystore is the default KeyProvider: versioned KEKs in files and in
// environment variables. A version present in both must hold the same key.
// Key versions are immutable, so loaded keys are cached; the current
// version is looked up on every call so that a rotation made by another
// process (healthgw keys rotate) is picked up at once.
type Keystore struct {
	cfg KeystoreConfig

	mu     sync.Mutex
	keys   map[string]map[int]KEK // org -> version -> key
	envMax map[string]int         // org -> highest version in the environment
}

var (
	_ KeyProvider = (*Keystore)(nil)
	_ KeyCreator  = (*Keystore)(nil)
)

// NewKeystore returns a Keystore. It does no I/O.
func NewKeystore(cfg KeystoreConfig) *Keystore {
	return &Keystore{cfg: cfg, keys: map[string]map[int]KEK{}, envMax: map[string]int{}}
}

// Versions returns org's key versions, ascending.
func (k *Keystore) Versions(ctx context.Context, org string) ([]int, error) {
	if !orgPattern.MatchString(org) {
		return nil, fmt.Errorf("%w: bad organisation ID", ErrNoKey)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.versionsLocked(org)
}

func (k *Keystore) versionsLocked(org string) ([]int, error) {
	vs, err := k.fileVersions(org)
	if err != nil {
		return nil, err
	}
	for v := range k.envVersionsLocked(org) {
		if !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return vs, nil
}

// Current implements KeyProvider.
func (k *Keystore) Current(ctx context.Context, org string) (KEK, error) {
	if !orgPattern.MatchString(org) {
		return KEK{}, fmt.Errorf("%w: bad organisation ID", ErrNoKey)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	vs, err := k.versionsLocked(org)
	if err != nil {
		return KEK{}, err
	}
	if len(vs) == 0 {
		if !k.cfg.AutoCreate || k.cfg.Dir == "" {
			return KEK{}, fmt.Errorf("%w: %s has no key-encryption key", ErrNoKey, org)
		}
		return k.createLocked(org, 1)
	}
	return k.keyLocked(org, vs[len(vs)-1])
}

// Key implements KeyProvider.
func (k *Keystore) Key(ctx context.Context, org string, version int) (KEK, error) {
	if !orgPattern.MatchString(org) {
		return KEK{}, fmt.Errorf("%w: bad organisation ID", ErrNoKey)
	}
	if version < 1 || version > MaxKeyVersion {
		return KEK{}, fmt.Errorf("%w: %s v%d", ErrNoKey, org, version)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keyLocked(org, version)
}

// Create implements KeyCreator: it writes org's next version to a file.
func (k *Keystore) Create(ctx context.Context, org string) (KEK, error) {
	if !orgPattern.MatchString(org) {
		return KEK{}, fmt.Errorf("%w: bad organisation ID", ErrBadKey)
	}
	if k.cfg.Dir == "" {
		return KEK{}, fmt.Errorf("%w: no key directory", ErrCannotCreateKey)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	vs, err := k.versionsLocked(org)
	if err != nil {
		return KEK{}, err
	}
	next := 1
	if len(vs) > 0 {
		next = vs[len(vs)-1] + 1
	}
	if next > MaxKeyVersion {
		return KEK{}, fmt.Errorf("%w: %s has reached version %d", ErrCannotCreateKey, org, MaxKeyVersion)
	}
	return k.createLocked(org, next)
}

// keyLocked returns a cached key or loads it from the environment and the
// key file.
func (k *Keystore) keyLocked(org string, version int) (KEK, error) {
	if kek, ok := k.keys[org][version]; ok {
		return kek, nil
	}
	var envKey, fileKey []byte
	defer func() { clear(envKey); clear(fileKey) }()
	if k.cfg.Getenv != nil {
		if s := strings.TrimSpace(k.cfg.Getenv(EnvKeyName(org, version))); s != "" {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return KEK{}, fmt.Errorf("%w: %s is not standard base64", ErrBadKey, EnvKeyName(org, version))
			}
			envKey = b
		}
	}
	if k.cfg.Dir != "" {
		b, err := readKeyFile(k.keyPath(org, version))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return KEK{}, err
		}
		fileKey = b
	}
	key := envKey
	switch {
	case envKey == nil && fileKey == nil:
		return KEK{}, fmt.Errorf("%w: %s v%d", ErrNoKey, org, version)
	case envKey == nil:
		key = fileKey
	case fileKey != nil && !bytes.Equal(envKey, fileKey):
		return KEK{}, fmt.Errorf("%w: %s and %s hold different keys", ErrBadKey, EnvKeyName(org, version), k.keyPath(org, version))
	}
	kek, err := NewKEK(org, version, key)
	if err != nil {
		return KEK{}, err
	}
	k.cacheLocked(kek)
	return kek, nil
}

func (k *Keystore) cacheLocked(kek KEK) {
	if k.keys[kek.org] == nil {
		k.keys[kek.org] = map[int]KEK{}
	}
	k.keys[kek.org][kek.version] = kek
}

// createLocked makes version of org's key. The file is written under a
// temporary name, synced, and linked into place, which fails if the
// version exists: two processes creating the same version cannot
// overwrite each other's key. The loser loads the winner's key.
func (k *Keystore) createLocked(org string, version int) (KEK, error) {
	dir := filepath.Join(k.cfg.Dir, org)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return KEK{}, fmt.Errorf("create key directory: %w", err)
	}
	key := make([]byte, KeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return KEK{}, fmt.Errorf("generate key: %w", err)
	}
	kek, err := NewKEK(org, version, key)
	if err != nil {
		return KEK{}, err
	}
	text := []byte(base64.StdEncoding.EncodeToString(key) + "\n")
	defer clear(text)
	if err := atomicfile.Create(k.keyPath(org, version), text, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return k.keyLocked(org, version)
		}
		return KEK{}, fmt.Errorf("install key file: %w", err)
	}
	k.cacheLocked(kek)
	return kek, nil
}

func (k *Keystore) keyPath(org string, version int) string {
	return filepath.Join(k.cfg.Dir, org, "v"+strconv.Itoa(version)+".key")
}

// fileVersions lists the versions with a key file.
func (k *Keystore) fileVersions(org string) ([]int, error) {
	if k.cfg.Dir == "" {
		return nil, nil
	}
	ents, err := os.ReadDir(filepath.Join(k.cfg.Dir, org))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	var vs []int
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "v") || !strings.HasSuffix(name, ".key") {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "v"), ".key"))
		if err != nil || v < 1 || v > MaxKeyVersion || "v"+strconv.Itoa(v)+".key" != name {
			continue
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// envVersionsLocked returns the versions of org's key present in the
// environment. The environment does not change while the process runs, so
// the probe is done once per org.
func (k *Keystore) envVersionsLocked(org string) map[int]bool {
	out := map[int]bool{}
	if k.cfg.Getenv == nil {
		return out
	}
	hi, ok := k.envMax[org]
	if !ok {
		for v := 1; v <= MaxKeyVersion; v++ {
			if k.cfg.Getenv(EnvKeyName(org, v)) != "" {
				hi = v
			}
		}
		k.envMax[org] = hi
	}
	for v := 1; v <= hi; v++ {
		if k.cfg.Getenv(EnvKeyName(org, v)) != "" {
			out[v] = true
		}
	}
	return out
}

// readKeyFile reads a base64 key file, refusing files that others can
// read or write.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; want 0600 (chmod 600 it)", ErrBadKey, path, st.Mode().Perm())
	}
	if st.Size() > 1024 {
		return nil, fmt.Errorf("%w: %s is too large", ErrBadKey, path)
	}
	text := make([]byte, st.Size())
	defer clear(text)
	if _, err := f.ReadAt(text, 0); err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(text)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not standard base64", ErrBadKey, path)
	}
	return key, nil
}
