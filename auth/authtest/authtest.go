// Package authtest builds organisations, keys and tokens for tests,
// including hostile ones: assertions with arbitrary headers and claims,
// unsigned tokens, HMAC tokens keyed with a public key, raw compact
// strings. It also provides in-memory fakes of auth.OrgSource and
// auth.ReplayCache.
package authtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/healthgw/healthgw/auth"
)

// Org is a registered organisation together with its private keys.
type Org struct {
	auth.Org
	// Key is the private signing key (with kid, alg and use "sig").
	Key jwk.Key
	// EncKey is the private encryption key (ECDH-ES, P-256, use "enc").
	EncKey jwk.Key
}

// NewOrg makes an organisation of kind with a fresh signing key for alg
// (ES256, ES384, RS384 or EdDSA) and a fresh encryption key; its inline
// JWKS holds both public halves and its scopes are all of its kind's.
func NewOrg(t testing.TB, id string, kind auth.Kind, alg string) *Org {
	t.Helper()
	sig, err := auth.GenerateSigningKey(alg)
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	enc, err := auth.GenerateEncryptionKey()
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	jwks, err := auth.PublicJWKS(sig, enc)
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	o := &Org{
		Org: auth.Org{
			ID:     id,
			Name:   "Test " + id,
			Kind:   kind,
			Scopes: append([]auth.Scope(nil), auth.KindScopes[kind]...),
			JWKS:   string(jwks),
		},
		Key:    sig,
		EncKey: enc,
	}
	if err := auth.ValidateOrg(o.Org); err != nil {
		t.Fatalf("authtest: org %s: %v", id, err)
	}
	return o
}

// KeyID returns the signing key's kid.
func (o *Org) KeyID() string {
	kid, _ := o.Key.KeyID()
	return kid
}

// Alg returns the signing key's algorithm.
func (o *Org) Alg() string {
	a, _ := o.Key.Algorithm()
	return a.String()
}

// Header returns the header of a well-formed assertion: alg, kid, typ JWT.
func (o *Org) Header() map[string]any {
	return map[string]any{"alg": o.Alg(), "kid": o.KeyID(), "typ": "JWT"}
}

// Claims returns the claims of a well-formed assertion for aud (the token
// endpoint URL) at now: iss = sub = the org ID, a fresh jti, iat now, exp
// in four minutes.
func (o *Org) Claims(aud string, now time.Time) map[string]any {
	return map[string]any{
		"iss": o.ID,
		"sub": o.ID,
		"aud": aud,
		"jti": NewJTI(),
		"iat": now.Unix(),
		"exp": now.Add(4 * time.Minute).Unix(),
	}
}

// Assertion returns a valid client assertion for aud at now.
func (o *Org) Assertion(t testing.TB, aud string, now time.Time) string {
	t.Helper()
	return o.Sign(t, o.Header(), o.Claims(aud, now))
}

// Sign signs claims with the org's key under header. header["alg"]
// names the algorithm used (it may differ from the key's, if jwx can sign
// with it); every other member is copied into the protected header as
// given.
func (o *Org) Sign(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	return Sign(t, o.Key, header, claims)
}

// Sign signs claims with key (a private JWK or a raw key) under header;
// header["alg"] names the algorithm.
func Sign(t testing.TB, key any, header, claims map[string]any) string {
	t.Helper()
	alg, _ := header["alg"].(string)
	sa, ok := jwa.LookupSignatureAlgorithm(alg)
	if !ok {
		t.Fatalf("authtest: unknown algorithm %q", alg)
	}
	if k, ok := key.(jwk.Key); ok {
		var raw any
		if err := jwk.Export(k, &raw); err != nil {
			t.Fatalf("authtest: export key: %v", err)
		}
		key = raw
	}
	h := jws.NewHeaders()
	for name, v := range header {
		if name == "alg" {
			continue
		}
		if err := h.Set(name, v); err != nil {
			t.Fatalf("authtest: header %s: %v", name, err)
		}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("authtest: claims: %v", err)
	}
	b, err := jws.Sign(payload, jws.WithKey(sa, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatalf("authtest: sign: %v", err)
	}
	return string(b)
}

// HMAC returns a token whose header names alg (HS256, …) "signed" with
// secret, for instance the bytes of an organisation's public key.
func HMAC(t testing.TB, alg string, secret []byte, header, claims map[string]any) string {
	t.Helper()
	h := maps.Clone(header)
	h["alg"] = alg
	return Sign(t, secret, h, claims)
}

// Compact assembles a compact JWS from a header and claims (each
// JSON-encoded unless already []byte or string) and raw signature bytes,
// without signing anything: for alg none and other forged tokens.
func Compact(t testing.TB, header, claims any, sig []byte) string {
	t.Helper()
	enc := func(v any) string {
		var b []byte
		switch v := v.(type) {
		case []byte:
			b = v
		case string:
			b = []byte(v)
		default:
			var err error
			if b, err = json.Marshal(v); err != nil {
				t.Fatalf("authtest: %v", err)
			}
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Flattened turns a compact JWS into the flattened JSON serialization,
// with extra top-level members injected beside protected, payload and
// signature.
func Flattened(t testing.TB, compact string, extra map[string]any) string {
	t.Helper()
	segs := strings.Split(compact, ".")
	if len(segs) != 3 {
		t.Fatalf("authtest: not a compact JWS")
	}
	m := map[string]any{"protected": segs[0], "payload": segs[1], "signature": segs[2]}
	maps.Copy(m, extra)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// PublicKeyBytes returns the JSON of key's public half (the "secret" of an
// HS256 key-confusion attack).
func PublicKeyBytes(t testing.TB, key jwk.Key) []byte {
	t.Helper()
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// NewSigningKey returns a fresh ES256 gateway signing key.
func NewSigningKey(t testing.TB) *auth.SigningKey {
	t.Helper()
	k, err := auth.GenerateSigningKey(auth.SigningAlg)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := auth.NewSigningKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// NewJTI returns a random jti.
func NewJTI() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Orgs is an in-memory auth.OrgSource.
type Orgs struct {
	mu   sync.Mutex
	orgs map[string]auth.Org
}

var _ auth.OrgSource = (*Orgs)(nil)

// NewOrgs returns an OrgSource holding orgs.
func NewOrgs(orgs ...*Org) *Orgs {
	s := &Orgs{orgs: map[string]auth.Org{}}
	for _, o := range orgs {
		s.Put(o.Org)
	}
	return s
}

// Put registers (or replaces) o.
func (s *Orgs) Put(o auth.Org) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgs[o.ID] = o
}

// Org implements auth.OrgSource.
func (s *Orgs) Org(_ context.Context, id string) (auth.Org, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orgs[id]
	if !ok {
		return auth.Org{}, fmt.Errorf("%w: %s", auth.ErrUnknownOrg, id)
	}
	return o, nil
}

// Replay is an in-memory auth.ReplayCache (it does not survive a restart:
// use authstore for that).
type Replay struct {
	mu   sync.Mutex
	now  func() time.Time
	seen map[[2]string]time.Time
}

var _ auth.ReplayCache = (*Replay)(nil)

// NewReplay returns an empty replay cache on clock now.
func NewReplay(now func() time.Time) *Replay {
	return &Replay{now: now, seen: map[[2]string]time.Time{}}
}

// Claim implements auth.ReplayCache.
func (r *Replay) Claim(_ context.Context, issuer, jti string, until time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]string{issuer, jti}
	if exp, ok := r.seen[k]; ok && !exp.Before(r.now()) {
		return auth.ErrReplay
	}
	r.seen[k] = until
	return nil
}

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set sets the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
