package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/internal/atomicfile"
)

// Key files under the data directory.
const (
	// SigningKeyFile holds the gateway's access-token signing key.
	SigningKeyFile = "keys/access-token.jwk"
	// DevIdPKeyFile holds the development patient IdP's signing key.
	DevIdPKeyFile = "keys/dev-idp.jwk"
)

// SigningKeyPath returns the access-token key file under dataDir.
func SigningKeyPath(dataDir string) string { return filepath.Join(dataDir, SigningKeyFile) }

// DevIdPKeyPath returns the development IdP key file under dataDir.
func DevIdPKeyPath(dataDir string) string { return filepath.Join(dataDir, DevIdPKeyFile) }

// GenerateSigningKey returns a new private JWK for alg (ES256, ES384,
// RS384 or EdDSA) with "alg", "use": "sig" and kid = its RFC 7638
// thumbprint (SHA-256, base64url).
func GenerateSigningKey(alg string) (jwk.Key, error) {
	var raw any
	var err error
	switch alg {
	case "ES256":
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		raw, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "RS384":
		raw, err = rsa.GenerateKey(rand.Reader, 3072)
	case "EdDSA":
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("%w: signing algorithm %q (want one of ES256, ES384, RS384, EdDSA)", ErrInvalidKey, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	sa, _ := jwa.LookupSignatureAlgorithm(alg)
	return finishKey(raw, sa, jwk.ForSignature)
}

// GenerateEncryptionKey returns a new private P-256 JWK for ECDH-ES key
// agreement ("use": "enc", "alg": "ECDH-ES+A256KW"), kid = its thumbprint. Its
// public half lets the gateway seal JWE responses to the holder.
func GenerateEncryptionKey() (jwk.Key, error) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return finishKey(raw, jwa.ECDH_ES_A256KW(), jwk.ForEncryption)
}

func finishKey(raw any, alg jwa.KeyAlgorithm, use jwk.KeyUsageType) (jwk.Key, error) {
	k, err := jwk.Import(raw)
	if err != nil {
		return nil, fmt.Errorf("import key: %w", err)
	}
	if err := k.Set(jwk.AlgorithmKey, alg); err != nil {
		return nil, err
	}
	if err := k.Set(jwk.KeyUsageKey, use); err != nil {
		return nil, err
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("thumbprint: %w", err)
	}
	if err := k.Set(jwk.KeyIDKey, base64.RawURLEncoding.EncodeToString(tp)); err != nil {
		return nil, err
	}
	return k, nil
}

// PublicJWKS returns the JSON of a JWK Set holding the public halves of
// keys.
func PublicJWKS(keys ...jwk.Key) ([]byte, error) {
	set := jwk.NewSet()
	for _, k := range keys {
		pk, err := k.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		if err := set.AddKey(pk); err != nil {
			return nil, err
		}
	}
	return json.Marshal(set)
}

// ReadPrivateKey reads a private JWK from path (as written by
// WritePrivateKey or `healthgw org keygen`).
func ReadPrivateKey(path string) (jwk.Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	return parsePrivateKey(b, path)
}

func parsePrivateKey(b []byte, path string) (jwk.Key, error) {
	k, err := jwk.ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not a JWK", ErrInvalidKey, path)
	}
	if priv, err := jwk.IsPrivateKey(k); err != nil || !priv {
		return nil, fmt.Errorf("%w: %s: not a private key", ErrInvalidKey, path)
	}
	if kid, ok := k.KeyID(); !ok || kid == "" {
		return nil, fmt.Errorf("%w: %s: no kid", ErrInvalidKey, path)
	}
	if _, ok := k.Algorithm(); !ok {
		return nil, fmt.Errorf("%w: %s: no alg", ErrInvalidKey, path)
	}
	return k, nil
}

// WritePrivateKey writes k to path with mode 0600 (the directory 0700)
// through a temporary file, so that no half-written key is ever visible.
// It refuses to replace an existing file.
func WritePrivateKey(path string, k jwk.Key) error {
	b, err := marshalKey(k)
	if err != nil {
		return err
	}
	return createFile(path, b, 0o600)
}

// loadOrCreateKey reads the private JWK at path, or generates one with
// alg and stores it (0600) when the file does not exist. Concurrent first
// starts agree on one key (atomicfile.LoadOrCreate).
func loadOrCreateKey(path, alg string) (jwk.Key, error) {
	b, _, err := atomicfile.LoadOrCreate(path, func() ([]byte, error) {
		k, err := GenerateSigningKey(alg)
		if err != nil {
			return nil, err
		}
		return marshalKey(k)
	})
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return parsePrivateKey(b, path)
}

func marshalKey(k jwk.Key) ([]byte, error) {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return append(b, '\n'), nil
}

// createFile writes data to a new file at path atomically (parent
// directory 0700); it fails with fs.ErrExist if path exists.
func createFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return atomicfile.Create(path, data, mode)
}
