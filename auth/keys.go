package auth

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Limits on JWK Sets accepted from organisations and identity providers.
const (
	// MaxJWKSSize bounds the JSON text of a JWK Set.
	MaxJWKSSize = 64 << 10
	// MaxJWKSKeys bounds the number of keys in a JWK Set.
	MaxJWKSKeys = 32
	// MinRSABits is the smallest RSA modulus accepted.
	MinRSABits = 2048
)

// OrgSigningAlgs are the algorithms organisations may sign client
// assertions with. The key decides which one applies: EC P-256 is ES256,
// EC P-384 is ES384, RSA is RS384 and Ed25519 is EdDSA.
var OrgSigningAlgs = []string{"ES256", "ES384", "RS384", "EdDSA"}

// keyPolicy says which signature algorithms a key set may use, and which
// one an RSA key without an "alg" member gets.
type keyPolicy struct {
	allowed    []string
	rsaDefault string
}

var (
	orgPolicy = keyPolicy{allowed: OrgSigningAlgs, rsaDefault: "RS384"}
	// Patient identity providers are OIDC providers: RS256 is their
	// default, and their JWKS usually name the algorithm.
	idpPolicy = keyPolicy{allowed: []string{"RS256", "RS384", "ES256", "ES384", "EdDSA"}, rsaDefault: "RS256"}
)

// verifyKey is one public signature key with the algorithm it decides.
type verifyKey struct {
	kid string
	alg jwa.SignatureAlgorithm
	raw any // *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey
}

// KeySet is a parsed public JWK Set: signature keys by kid, each with the
// one algorithm it may be used with, and encryption keys ("use": "enc").
type KeySet struct {
	sig map[string]verifyKey
	enc []jwk.Key
}

// Len returns the number of signature keys.
func (s *KeySet) Len() int { return len(s.sig) }

// SigningAlg returns the algorithm of the signature key kid.
func (s *KeySet) SigningAlg(kid string) (string, bool) {
	k, ok := s.sig[kid]
	return k.alg.String(), ok
}

// EncryptionKey returns the set's first encryption key ("use": "enc"), to
// seal JWE responses to; its "alg" member names the key management
// algorithm (ECDH-ES unless the JWK says otherwise).
func (s *KeySet) EncryptionKey() (jwk.Key, bool) {
	if len(s.enc) == 0 {
		return nil, false
	}
	return s.enc[0], true
}

func (s *KeySet) lookup(kid string) (verifyKey, bool) {
	k, ok := s.sig[kid]
	return k, ok
}

// privateMembers are JWK members that only private or symmetric keys have.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// ParseOrgJWKS parses an organisation's JWK Set. It accepts public keys
// only (any private or symmetric key material is an error), requires a
// unique kid on every key, derives each signature key's algorithm from its
// type (EC P-256 ES256, P-384 ES384, RSA >= 2048 bits RS384, Ed25519
// EdDSA; an "alg" member must agree) and needs at least one signature key.
// Keys with "use": "enc" are encryption keys (EC or X25519 with ECDH-ES*,
// RSA with RSA-OAEP*).
func ParseOrgJWKS(data []byte) (*KeySet, error) { return parseJWKS(data, orgPolicy) }

// ParseIdPJWKS parses a patient identity provider's JWK Set, like
// ParseOrgJWKS but also admitting RS256 (the OIDC default; an RSA key
// without "alg" is RS256 here).
func ParseIdPJWKS(data []byte) (*KeySet, error) { return parseJWKS(data, idpPolicy) }

func parseJWKS(data []byte, p keyPolicy) (*KeySet, error) {
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("%w: JWK Set over %d bytes", ErrInvalidKey, MaxJWKSSize)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: JWK Set is not JSON: %v", ErrInvalidKey, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after JWK Set", ErrInvalidKey)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("%w: JWK Set has no keys", ErrInvalidKey)
	}
	if len(doc.Keys) > MaxJWKSKeys {
		return nil, fmt.Errorf("%w: JWK Set has more than %d keys", ErrInvalidKey, MaxJWKSKeys)
	}
	s := &KeySet{sig: map[string]verifyKey{}}
	seen := map[string]bool{}
	for i, raw := range doc.Keys {
		kid, err := s.add(raw, p)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrInvalidKey, i, err)
		}
		if seen[kid] {
			return nil, fmt.Errorf("%w: duplicate kid %q", ErrInvalidKey, kid)
		}
		seen[kid] = true
	}
	if len(s.sig) == 0 {
		return nil, fmt.Errorf("%w: JWK Set has no signature key", ErrInvalidKey)
	}
	return s, nil
}

// add parses one JWK and files it; it returns the key's kid.
func (s *KeySet) add(raw json.RawMessage, p keyPolicy) (string, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return "", errors.New("not a JSON object")
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return "", fmt.Errorf("private or symmetric key material (%q) is not accepted", m)
		}
	}
	for _, m := range []string{"x5u", "x5c"} {
		if _, ok := members[m]; ok {
			return "", fmt.Errorf("member %q is not supported", m)
		}
	}
	k, err := jwk.ParseKey(raw)
	if err != nil {
		return "", fmt.Errorf("parse: %v", err)
	}
	if priv, err := jwk.IsPrivateKey(k); err != nil || priv {
		return "", errors.New("only public asymmetric keys are accepted")
	}
	kid, ok := k.KeyID()
	if !ok || kid == "" {
		return "", errors.New("kid is required")
	}
	if len(kid) > 128 {
		return "", errors.New("kid longer than 128 characters")
	}
	use, _ := k.KeyUsage()
	switch use {
	case "", string(jwk.ForSignature):
		vk, err := signatureKey(k, p)
		if err != nil {
			return "", fmt.Errorf("kid %q: %v", kid, err)
		}
		vk.kid = kid
		s.sig[kid] = vk
	case string(jwk.ForEncryption):
		if err := checkEncryptionKey(k); err != nil {
			return "", fmt.Errorf("kid %q: %v", kid, err)
		}
		s.enc = append(s.enc, k)
	default:
		return "", fmt.Errorf("kid %q: unknown use %q", kid, use)
	}
	return kid, nil
}

// signatureKey derives the one algorithm k may verify with.
func signatureKey(k jwk.Key, p keyPolicy) (verifyKey, error) {
	var alg string
	switch k.KeyType().String() {
	case "EC":
		ek, ok := k.(jwk.ECDSAPublicKey)
		if !ok {
			return verifyKey{}, errors.New("not an EC public key")
		}
		crv, _ := ek.Crv()
		switch crv.String() {
		case "P-256":
			alg = "ES256"
		case "P-384":
			alg = "ES384"
		default:
			return verifyKey{}, fmt.Errorf("EC curve %q is not accepted", crv.String())
		}
	case "RSA":
		alg = p.rsaDefault
		if a, ok := k.Algorithm(); ok && (a.String() == "RS256" || a.String() == "RS384") {
			alg = a.String()
		}
	case "OKP":
		ok, isOKP := k.(jwk.OKPPublicKey)
		if !isOKP {
			return verifyKey{}, errors.New("not an OKP public key")
		}
		crv, _ := ok.Crv()
		if crv.String() != "Ed25519" {
			return verifyKey{}, fmt.Errorf("OKP curve %q cannot sign", crv.String())
		}
		alg = "EdDSA"
	default:
		return verifyKey{}, fmt.Errorf("key type %q is not accepted", k.KeyType().String())
	}
	if a, ok := k.Algorithm(); ok && a.String() != alg {
		return verifyKey{}, fmt.Errorf("alg %q does not match the key type (want %s)", a.String(), alg)
	}
	if !slices.Contains(p.allowed, alg) {
		return verifyKey{}, fmt.Errorf("algorithm %s is not accepted", alg)
	}
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return verifyKey{}, fmt.Errorf("export: %v", err)
	}
	if rk, ok := raw.(*rsa.PublicKey); ok && rk.N.BitLen() < MinRSABits {
		return verifyKey{}, fmt.Errorf("RSA key of %d bits is too small (minimum %d)", rk.N.BitLen(), MinRSABits)
	}
	sa, ok := jwa.LookupSignatureAlgorithm(alg)
	if !ok {
		return verifyKey{}, fmt.Errorf("algorithm %s is unknown", alg)
	}
	return verifyKey{alg: sa, raw: raw}, nil
}

// checkEncryptionKey accepts the keys a JWE can be sealed to and sets
// their "alg" when absent.
func checkEncryptionKey(k jwk.Key) error {
	var algs []string
	var def string
	switch k.KeyType().String() {
	case "EC":
		ek, _ := k.(jwk.ECDSAPublicKey)
		if ek == nil {
			return errors.New("not an EC public key")
		}
		crv, _ := ek.Crv()
		if crv.String() != "P-256" && crv.String() != "P-384" {
			return fmt.Errorf("EC curve %q is not accepted for encryption", crv.String())
		}
		algs, def = []string{"ECDH-ES+A256KW"}, "ECDH-ES+A256KW"
	case "OKP":
		ok, _ := k.(jwk.OKPPublicKey)
		if ok == nil {
			return errors.New("not an OKP public key")
		}
		crv, _ := ok.Crv()
		if crv.String() != "X25519" {
			return fmt.Errorf("OKP curve %q is not accepted for encryption", crv.String())
		}
		algs, def = []string{"ECDH-ES+A256KW"}, "ECDH-ES+A256KW"
	case "RSA":
		algs, def = []string{"RSA-OAEP-256"}, "RSA-OAEP-256"
		var rk *rsa.PublicKey
		if err := jwk.Export(k, &rk); err != nil {
			return fmt.Errorf("export: %v", err)
		}
		if rk.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key of %d bits is too small (minimum %d)", rk.N.BitLen(), MinRSABits)
		}
	default:
		return fmt.Errorf("key type %q is not accepted for encryption", k.KeyType().String())
	}
	if a, ok := k.Algorithm(); ok {
		if !slices.Contains(algs, a.String()) {
			return fmt.Errorf("alg %q is not accepted for encryption with this key", a.String())
		}
		return nil
	}
	ka, _ := jwa.LookupKeyEncryptionAlgorithm(def)
	return k.Set(jwk.AlgorithmKey, ka)
}
