package ledger

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/internal/atomicfile"
)

// ErrBadKey is returned for a checkpoint key file that does not hold a
// valid note key.
var ErrBadKey = errors.New("ledger: malformed checkpoint key")

// VerifierKeySuffix is appended to a signer key file's path to name the
// file holding its verifier key (see LoadOrCreateCheckpointKey).
const VerifierKeySuffix = ".pub"

// GenerateCheckpointKey returns a new Ed25519 note key pair for a log
// whose checkpoints carry the given origin line: the signer key (secret,
// "PRIVATE+KEY+<origin>+<hash>+<key>") and the verifier key
// ("<origin>+<hash>+<key>") that regulators use to check checkpoints. The
// key name is the origin, as C2SP tlog-checkpoint recommends.
func GenerateCheckpointKey(origin string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", "", fmt.Errorf("generate checkpoint key: %w", err)
	}
	if _, err := note.NewSigner(skey); err != nil {
		// GenerateKey does not validate the name.
		return "", "", fmt.Errorf("%w: origin %q is not a valid key name", ErrBadKey, origin)
	}
	return skey, vkey, nil
}

// VerifierKey returns the verifier key that matches signer key skey.
func VerifierKey(skey string) (string, error) {
	if _, err := note.NewSigner(skey); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	// NewSigner validated the layout: PRIVATE+KEY+name+hash+base64(alg||seed).
	f := strings.SplitN(skey, "+", 5)
	key, err := base64.StdEncoding.DecodeString(f[4])
	if err != nil || len(key) != 1+ed25519.SeedSize {
		return "", ErrBadKey
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(f[2], pub)
}

// WriteKeyFile writes key text to path with mode 0600 (or 0644 for a
// verifier key when public is true), atomically: a crash never leaves a
// truncated key. It refuses to overwrite a file.
func WriteKeyFile(path, key string, public bool) error {
	mode := fs.FileMode(0o600)
	if public {
		mode = 0o644
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create key directory: %w", err)
		}
	}
	if err := atomicfile.Create(path, []byte(key+"\n"), mode); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}

func readKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read key file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// LoadCheckpointSigner reads a signer key file.
func LoadCheckpointSigner(path string) (note.Signer, error) {
	skey, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, path, err)
	}
	return s, nil
}

// ParseVerifierKey parses verifier key text ("<name>+<hash>+<key>").
func ParseVerifierKey(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return v, nil
}

// LoadCheckpointVerifier reads a verifier key file. For convenience a
// signer key file is accepted too (its verifier key is derived).
func LoadCheckpointVerifier(path string) (note.Verifier, error) {
	key, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(key, "PRIVATE+KEY+") {
		if key, err = VerifierKey(key); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	v, err := ParseVerifierKey(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// LoadOrCreateCheckpointKey loads the signer key at path, or, if the file
// does not exist, generates a key named origin and writes the signer key
// to path (0600) and its verifier key to path+VerifierKeySuffix (0644). It
// returns the signer and the verifier key text.
func LoadOrCreateCheckpointKey(path, origin string) (note.Signer, string, error) {
	b, fresh, err := atomicfile.LoadOrCreate(path, func() ([]byte, error) {
		skey, _, err := GenerateCheckpointKey(origin)
		if err != nil {
			return nil, err
		}
		return []byte(skey + "\n"), nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("checkpoint key: %w", err)
	}
	skey := strings.TrimSpace(string(b))
	if fresh {
		vkey, err := VerifierKey(skey)
		if err != nil {
			return nil, "", err
		}
		// A verifier key file left from an earlier key is replaced.
		if err := atomicfile.Replace(path+VerifierKeySuffix, []byte(vkey+"\n"), 0o644); err != nil {
			return nil, "", fmt.Errorf("write verifier key file: %w", err)
		}
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrBadKey, path, err)
	}
	vkey, err := VerifierKey(skey)
	if err != nil {
		return nil, "", err
	}
	return s, vkey, nil
}
