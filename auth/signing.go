package auth

import (
	"encoding/json"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// SigningAlg is the algorithm of the keys the gateway generates for
// itself: the access-token key and the development IdP key.
const SigningAlg = "ES256"

// SigningKey is a private signature key the gateway signs tokens with: its
// kid is the RFC 7638 thumbprint and its algorithm follows from its type.
type SigningKey struct {
	priv   jwk.Key
	raw    any // the raw private key
	verify verifyKey
	public jwk.Key
}

// LoadOrCreateSigningKey returns the ES256 key stored at path (a private
// JWK, mode 0600), generating and storing it on first use. Use
// SigningKeyPath(dataDir) for the access-token key.
func LoadOrCreateSigningKey(path string) (*SigningKey, error) {
	k, err := loadOrCreateKey(path, SigningAlg)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return NewSigningKey(k)
}

// NewSigningKey wraps a private JWK (with kid and alg, as made by
// GenerateSigningKey). Its algorithm must be the one its type decides.
func NewSigningKey(k jwk.Key) (*SigningKey, error) {
	if priv, err := jwk.IsPrivateKey(k); err != nil || !priv {
		return nil, fmt.Errorf("%w: not a private key", ErrInvalidKey)
	}
	pub, err := k.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrInvalidKey, err)
	}
	kid, ok := k.KeyID()
	if !ok || kid == "" {
		return nil, fmt.Errorf("%w: signing key without kid", ErrInvalidKey)
	}
	vk, err := signatureKey(pub, orgPolicy)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	vk.kid = kid
	if err := pub.Set(jwk.AlgorithmKey, vk.alg); err != nil {
		return nil, err
	}
	if err := pub.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, err
	}
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return nil, fmt.Errorf("%w: export: %v", ErrInvalidKey, err)
	}
	return &SigningKey{priv: k, raw: raw, verify: vk, public: pub}, nil
}

// KeyID returns the key's kid.
func (k *SigningKey) KeyID() string { return k.verify.kid }

// Algorithm returns the key's signature algorithm.
func (k *SigningKey) Algorithm() string { return k.verify.alg.String() }

// Public returns the public half as a JWK (with kid, alg and use).
func (k *SigningKey) Public() jwk.Key { return k.public }

// PublicJWKS returns a JWK Set holding the public key: the content of
// GET /.well-known/jwks.json (callers may add further keys to it).
func (k *SigningKey) PublicJWKS() jwk.Set {
	s := jwk.NewSet()
	pub, _ := k.public.Clone()
	_ = s.AddKey(pub)
	return s
}

// sign signs claims as a compact JWS with header {alg, kid, typ}.
func (k *SigningKey) sign(typ string, claims map[string]any) (string, error) {
	return signCompact(k.verify.alg, k.raw, k.verify.kid, typ, claims)
}

// signCompact signs claims (a JSON object) with key and alg; kid and typ
// go into the protected header.
func signCompact(alg jwa.SignatureAlgorithm, key any, kid, typ string, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	h := jws.NewHeaders()
	if err := h.Set(jws.KeyIDKey, kid); err != nil {
		return "", err
	}
	if err := h.Set(jws.TypeKey, typ); err != nil {
		return "", err
	}
	b, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return string(b), nil
}
