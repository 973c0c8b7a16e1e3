package auth

import (
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// DefaultAssertionLifetime is the lifetime NewClientAssertion gives an
// assertion when asked for none.
const DefaultAssertionLifetime = 4 * time.Minute

// NewClientAssertion signs a SMART Backend Services client assertion for
// organisation orgID with its private key (a JWK with kid, as written by
// `healthgw org keygen`): iss = sub = orgID, aud = the token endpoint URL,
// a random jti, iat = now and exp = now + lifetime (default
// DefaultAssertionLifetime, at most MaxAssertionLifetime). The key's type
// decides the algorithm.
func NewClientAssertion(key jwk.Key, orgID, audience string, now time.Time, lifetime time.Duration) (string, error) {
	if lifetime == 0 {
		lifetime = DefaultAssertionLifetime
	}
	if lifetime < 0 || lifetime > MaxAssertionLifetime {
		return "", fmt.Errorf("assertion lifetime must be at most %s", MaxAssertionLifetime)
	}
	sk, err := NewSigningKey(key)
	if err != nil {
		return "", err
	}
	return sk.sign(typJWT, map[string]any{
		"iss": orgID,
		"sub": orgID,
		"aud": audience,
		"jti": newJTI(),
		"iat": now.Unix(),
		"exp": now.Add(lifetime).Unix(),
	})
}
