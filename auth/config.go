package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Defaults and bounds of Config.
const (
	// DefaultAccessTokenTTL is the lifetime of an access token; it is
	// also the maximum.
	DefaultAccessTokenTTL = 5 * time.Minute
	// MaxAssertionLifetime bounds how far ahead a client assertion's exp
	// may be (SMART Backend Services: at most five minutes).
	MaxAssertionLifetime = 5 * time.Minute
	// DefaultSkew is the clock skew tolerated on exp, nbf and iat.
	DefaultSkew = 30 * time.Second
	// TokenPath is the token endpoint's path under the issuer URL.
	TokenPath = "/oauth2/token"
	// JWKSPath is where the gateway publishes its public keys.
	JWKSPath = "/.well-known/jwks.json"
)

// Config configures token issuing (Exchanger) and verification
// (Authenticator). Zero values take the documented defaults.
type Config struct {
	// Issuer is the gateway's public base URL, e.g.
	// http://127.0.0.1:8080: the iss and aud of its access tokens.
	// Required.
	Issuer string
	// TokenEndpoint is the URL client assertions must name as their aud
	// (default Issuer + TokenPath).
	TokenEndpoint string
	// AccessTokenTTL is the lifetime of access tokens (default and
	// maximum DefaultAccessTokenTTL).
	AccessTokenTTL time.Duration
	// Skew is the clock skew tolerated on exp, nbf and iat (default
	// DefaultSkew, at most MaxSkew).
	Skew time.Duration
	// HTTPClient fetches JWK Sets registered by URL (organisations,
	// patient IdPs). Default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// AllowInsecureJWKSURL lets JWK Sets registered by URL (organisations,
	// patient IdPs) be fetched over plain http. Development only: outside
	// it, a key set fetched without TLS could be replaced by anyone on the
	// path, and with it every assertion. Default false: https only.
	AllowInsecureJWKSURL bool
	// Revocations remembers revoked access tokens (RFC 7009) until they
	// expire; the Authenticator refuses them. authstore.Store implements
	// it. Nil: tokens cannot be revoked.
	Revocations Revocations
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives rejections: org ID, kid and reason, never a token.
	Logger *slog.Logger
}

// ErrInsecureJWKSURL: a registered JWKS URL is plain http and
// Config.AllowInsecureJWKSURL is not set; nothing is fetched from it.
var ErrInsecureJWKSURL = errors.New("auth: JWKS URL is not https")

// checkJWKSURL refuses plain-http JWKS URLs unless development allows
// them.
func (c Config) checkJWKSURL(u string) error {
	if strings.HasPrefix(u, "https://") || (c.AllowInsecureJWKSURL && strings.HasPrefix(u, "http://")) {
		return nil
	}
	return ErrInsecureJWKSURL
}

func (c Config) withDefaults() (Config, error) {
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	if !strings.HasPrefix(c.Issuer, "https://") && !strings.HasPrefix(c.Issuer, "http://") {
		return c, fmt.Errorf("auth config: issuer must be an http(s) URL, not %q", c.Issuer)
	}
	if c.TokenEndpoint == "" {
		c.TokenEndpoint = c.Issuer + TokenPath
	}
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.AccessTokenTTL < 0 || c.AccessTokenTTL > DefaultAccessTokenTTL {
		return c, fmt.Errorf("auth config: access token lifetime must be at most %s", DefaultAccessTokenTTL)
	}
	if c.Skew == 0 {
		c.Skew = DefaultSkew
	}
	if c.Skew < 0 || c.Skew > MaxSkew {
		return c, fmt.Errorf("auth config: skew must be at most %s", MaxSkew)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
