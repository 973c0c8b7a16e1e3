package records

import (
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// JOSEContentType is the media type of a compact JWE (RFC 7516), the
// response to Accept: application/jose.
const JOSEContentType = "application/jose"

// Seal encrypts plaintext to an organisation as a compact JWE: key
// agreement ECDH-ES+A256KW, content encryption A256GCM, with cty set to
// contentType and kid to the chosen key's ID. The key is the first one in
// orgJWKS with "use":"enc" that ECDH-ES can use (an EC key on P-256,
// P-384 or P-521, or an X25519 OKP key) and whose "alg", if present, is
// ECDH-ES+A256KW. Private keys in the set are reduced to their public
// part. ErrNoEncryptionKey if there is no such key.
func Seal(plaintext []byte, contentType string, orgJWKS jwk.Set) ([]byte, error) {
	key, err := EncryptionKey(orgJWKS)
	if err != nil {
		return nil, err
	}
	hdr := jwe.NewHeaders()
	if contentType != "" {
		if err := hdr.Set(jwe.ContentTypeKey, contentType); err != nil {
			return nil, fmt.Errorf("records: seal: %w", err)
		}
	}
	out, err := jwe.Encrypt(plaintext,
		jwe.WithKey(jwa.ECDH_ES_A256KW(), key),
		jwe.WithContentEncryption(jwa.A256GCM()),
		jwe.WithProtectedHeaders(hdr),
		jwe.WithCompact(),
	)
	if err != nil {
		return nil, fmt.Errorf("records: seal: %w", err)
	}
	return out, nil
}

// EncryptionKey returns the public key Seal would encrypt to, or
// ErrNoEncryptionKey.
func EncryptionKey(set jwk.Set) (jwk.Key, error) {
	if set == nil {
		return nil, ErrNoEncryptionKey
	}
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		if use, ok := k.KeyUsage(); !ok || use != string(jwk.ForEncryption) {
			continue
		}
		if alg, ok := k.Algorithm(); ok && alg.String() != jwa.ECDH_ES_A256KW().String() {
			continue
		}
		if !ecdhCapable(k) {
			continue
		}
		pub, err := k.PublicKey()
		if err != nil {
			continue
		}
		return pub, nil
	}
	return nil, ErrNoEncryptionKey
}

// ecdhCapable reports whether ECDH-ES works with k: an EC key on a NIST
// curve, or an X25519 OKP key (public or private).
func ecdhCapable(k jwk.Key) bool {
	ck, ok := k.(interface {
		Crv() (jwa.EllipticCurveAlgorithm, bool)
	})
	if !ok {
		return false
	}
	crv, ok := ck.Crv()
	if !ok {
		return false
	}
	switch k.KeyType() {
	case jwa.EC():
		return crv == jwa.P256() || crv == jwa.P384() || crv == jwa.P521()
	case jwa.OKP():
		return crv == jwa.X25519()
	}
	return false
}
