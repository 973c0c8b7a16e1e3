package federation

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/ledger"
)

// TokenType is the "typ" of a request token's protected header.
const TokenType = "healthgw-fed+jwt"

// Token lifetimes. A token is made for one request, just before it is
// sent: DefaultTokenLifetime is what Signer gives it; a Verifier refuses a
// token valid for longer than MaxTokenLifetime, and tolerates ClockSkew
// between the two gateways' clocks.
const (
	DefaultTokenLifetime = 30 * time.Second
	MaxTokenLifetime     = 2 * time.Minute
	ClockSkew            = 10 * time.Second
)

// MaxTokenSize bounds a request token's length (a token is a few hundred
// bytes; anything much larger is not one).
const MaxTokenSize = 4096

// Sealing targets: who the holder seals a record to.
const (
	// SealGateway: the requesting gateway's registered sealing key; the
	// gateway opens the answer and serves its client.
	SealGateway = "gateway"
	// SealOrg: the reader org's registered encryption key ("use":"enc");
	// the requesting gateway passes the JWE through unopened.
	SealOrg = "org"
)

// Claims are a request token's claims.
type Claims struct {
	// Gateway is the requesting gateway (iss): the reader org's home.
	Gateway string `json:"iss"`
	// Org is the org the gateway acts for (sub).
	Org string `json:"sub"`
	// Audience is the holder's gateway (aud).
	Audience string `json:"aud"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	// ID is the token's unique ID (jti): a token is accepted once.
	ID string `json:"jti"`
	// Method and Target bind the token to one request: the HTTP method
	// and the path with its query in canonical form (CanonicalTarget).
	Method string `json:"htm"`
	Target string `json:"htu"`
	// Scope is the space-separated scopes of the reader's own token at
	// its gateway (what it may read, by resource type).
	Scope string `json:"scope,omitempty"`
	// Seal is SealGateway (or empty) or SealOrg.
	Seal string `json:"seal,omitempty"`
}

// ErrInvalidToken: a request token the holder does not accept. Every
// failure wraps it (a *TokenError says which check failed; that reason is
// for the log, never for the caller).
var ErrInvalidToken = errors.New("federation: invalid request token")

// ErrReplayCacheFull: the verifier holds as many unexpired token IDs as
// it may, and cannot tell a replay from a new token: it refuses until some
// expire (a transient condition; it wraps ledger.ErrUnavailable so the
// API answers 503).
var ErrReplayCacheFull = fmt.Errorf("federation: too many requests in flight: %w", ledger.ErrUnavailable)

// TokenError is ErrInvalidToken with the check that failed.
type TokenError struct{ Reason string }

func (e *TokenError) Error() string { return "federation: invalid request token: " + e.Reason }

// Unwrap returns ErrInvalidToken.
func (e *TokenError) Unwrap() error { return ErrInvalidToken }

func invalid(format string, args ...any) error {
	return &TokenError{Reason: fmt.Sprintf(format, args...)}
}

// Signer makes request tokens for one gateway with its ledger node key.
type Signer struct {
	gateway string
	key     ed25519.PrivateKey
	now     func() time.Time
}

// NewSigner returns the signer of gateway with its node key. now is the
// clock (nil: time.Now).
func NewSigner(gateway string, key ed25519.PrivateKey, now func() time.Time) (*Signer, error) {
	if gateway == "" || len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("federation: a signer needs a gateway ID and an Ed25519 node key")
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{gateway: gateway, key: key, now: now}, nil
}

// Gateway returns the signer's gateway ID.
func (s *Signer) Gateway() string { return s.gateway }

// Sign returns a token for one request to the gateway audience, acting for
// org: c's Gateway, IssuedAt, Expiry and ID are filled in.
func (s *Signer) Sign(c Claims) (string, Claims, error) {
	now := s.now()
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", Claims{}, fmt.Errorf("federation: token ID: %w", err)
	}
	c.Gateway, c.IssuedAt, c.Expiry, c.ID = s.gateway, now.Unix(), now.Add(DefaultTokenLifetime).Unix(), hex.EncodeToString(id[:])
	tok, err := signJWS(c, s.key, TokenType)
	return tok, c, err
}

// signJWS signs v (as JSON) as a compact EdDSA JWS of type typ.
func signJWS(v any, key ed25519.PrivateKey, typ string) (string, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("federation: encode: %w", err)
	}
	h := jws.NewHeaders()
	if err := h.Set(jws.TypeKey, typ); err != nil {
		return "", err
	}
	b, err := jws.Sign(payload, jws.WithKey(jwa.EdDSA(), key, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", fmt.Errorf("federation: sign: %w", err)
	}
	return string(b), nil
}

// Registry is the ledger registry as the verifier reads it (ledger.Node):
// the registered gateways' node keys and every org's home gateway.
type Registry interface {
	Authority() *ledger.Authority
}

// Verifier checks the request tokens addressed to one gateway. It is safe
// for concurrent use.
type Verifier struct {
	self string
	reg  Registry
	now  func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // iss and jti -> expiry

	// durable, if set, remembers token IDs instead of seen: in the
	// gateway's database, so across restarts and replicas.
	durable auth.ReplayCache
}

// UseReplayCache makes v remember the token IDs it accepted in rc (the
// gateway's authstore.Store, shared with client assertions under a key
// of their own) instead of in memory: a token stays refused after a
// restart and at every replica sharing the database. Call it before v is
// used.
func (v *Verifier) UseReplayCache(rc auth.ReplayCache) { v.durable = rc }

// replayPrefix leads the token IDs kept in a shared ReplayCache, keyed by
// the requesting gateway as issuer.
const replayPrefix = "federation/"

// MaxReplayEntries bounds the token IDs a Verifier remembers.
const MaxReplayEntries = 1 << 16

// NewVerifier returns the verifier of the tokens addressed to gateway
// self. now is the clock (nil: time.Now).
func NewVerifier(self string, reg Registry, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{self: self, reg: reg, now: now, seen: map[string]time.Time{}}
}

// Verify checks token for a request of method to target (CanonicalTarget
// of the request as received) and returns its claims. The checks, in
// order: the form (a compact JWS, "typ" TokenType, "alg" EdDSA, no
// other critical header); the issuer is a registered gateway and the
// signature is by its registered node key; the subject org's home gateway
// is the issuer; the audience is this gateway; the token is current (not
// expired, not issued in the future, valid for at most MaxTokenLifetime,
// ClockSkew allowed); method and target are this request's; and its ID
// has not been seen before (remembered until it expires, in memory or in
// the ReplayCache given to UseReplayCache). Any failure of the token is a
// *TokenError (ErrInvalidToken); a replay cache that cannot be written is
// another error.
func (v *Verifier) Verify(ctx context.Context, token, method, target string) (Claims, error) {
	var c Claims
	if len(token) > MaxTokenSize {
		return c, invalid("longer than %d bytes", MaxTokenSize)
	}
	msg, err := jws.Parse([]byte(token))
	if err != nil {
		return c, invalid("not a JWS: %v", err)
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return c, invalid("%d signatures", len(sigs))
	}
	ph := sigs[0].ProtectedHeaders()
	if typ, ok := ph.Type(); !ok || typ != TokenType {
		return c, invalid("typ is not %s", TokenType)
	}
	if alg, ok := ph.Algorithm(); !ok || alg.String() != jwa.EdDSA().String() {
		return c, invalid("alg is not EdDSA")
	}
	dec := json.NewDecoder(bytes.NewReader(msg.Payload()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Claims{}, invalid("claims: %v", err)
	}
	a := v.reg.Authority()
	gk, ok := a.Gateway(c.Gateway)
	if !ok || len(gk.Public) != ed25519.PublicKeySize {
		return Claims{}, invalid("issuer %q is not a registered gateway", c.Gateway)
	}
	if _, err := jws.Verify([]byte(token), jws.WithKey(jwa.EdDSA(), gk.Public)); err != nil {
		return Claims{}, invalid("signature is not by gateway %q's node key", c.Gateway)
	}
	if c.Org == "" {
		return Claims{}, invalid("no subject org")
	}
	if home, ok := a.Home(c.Org); !ok || home != c.Gateway {
		return Claims{}, invalid("gateway %q is not the home gateway of org %q", c.Gateway, c.Org)
	}
	if c.Audience != v.self {
		return Claims{}, invalid("audience %q is not this gateway", c.Audience)
	}
	now := v.now()
	exp, iat := time.Unix(c.Expiry, 0), time.Unix(c.IssuedAt, 0)
	switch {
	case c.Expiry == 0 || c.IssuedAt == 0:
		return Claims{}, invalid("no iat or exp")
	case !now.Before(exp.Add(ClockSkew)):
		return Claims{}, invalid("expired")
	case iat.After(now.Add(ClockSkew)):
		return Claims{}, invalid("issued in the future")
	case exp.Sub(iat) > MaxTokenLifetime || !exp.After(iat):
		return Claims{}, invalid("lifetime %s is not within (0, %s]", exp.Sub(iat), MaxTokenLifetime)
	}
	if c.Method != method || c.Target != target {
		return Claims{}, invalid("made for another request")
	}
	switch c.Seal {
	case "", SealGateway, SealOrg:
	default:
		return Claims{}, invalid("seal %q", c.Seal)
	}
	if c.ID == "" || len(c.ID) > 64 {
		return Claims{}, invalid("jti missing or too long")
	}
	if v.durable != nil {
		err := v.durable.Claim(ctx, c.Gateway, replayPrefix+c.ID, exp.Add(ClockSkew))
		if errors.Is(err, auth.ErrReplay) {
			return Claims{}, invalid("replayed (jti seen before)")
		}
		if err != nil {
			return Claims{}, fmt.Errorf("federation: remember the token: %w", err)
		}
		return c, nil
	}
	if err := v.remember(c.Gateway+" "+c.ID, exp.Add(ClockSkew), now); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// remember records a token ID until expiry; a replay is refused.
func (v *Verifier) remember(key string, expiry, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.seen[key]; ok {
		return invalid("replayed (jti seen before)")
	}
	if len(v.seen) >= MaxReplayEntries {
		for k, exp := range v.seen {
			if !now.Before(exp) {
				delete(v.seen, k)
			}
		}
		if len(v.seen) >= MaxReplayEntries {
			return ErrReplayCacheFull
		}
	}
	v.seen[key] = expiry
	return nil
}

// CanonicalTarget is a request's target as tokens bind it: the path and,
// if any, "?" and the query with its keys sorted (url.Values.Encode), so
// that the two gateways agree however the query was spelt.
func CanonicalTarget(u *url.URL) string {
	q := u.Query().Encode()
	if q == "" {
		return u.EscapedPath()
	}
	return u.EscapedPath() + "?" + q
}
