package federation

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth/authstore"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
)

// testRegistry is a consortium of three gateways: gw-a (home of hosp-a),
// gw-b (home of hosp-b) and gw-c (home of hosp-c).
type testRegistry struct {
	a     *ledger.Authority
	nodes map[string]ed25519.PrivateKey
	seals map[string]*ecdh.PrivateKey
}

func (r *testRegistry) Authority() *ledger.Authority { return r.a.Clone() }

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	r := &testRegistry{nodes: map[string]ed25519.PrivateKey{}, seals: map[string]*ecdh.PrivateKey{}}
	genesis := map[string]ledger.GatewayKeys{}
	for _, gw := range []string{"gw-a", "gw-b", "gw-c"} {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		seal, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		r.nodes[gw], r.seals[gw] = priv, seal
		genesis[gw] = ledger.GatewayKeys{Public: pub, Seal: seal.PublicKey(), BaseURL: "http://" + gw + ".test"}
	}
	r.a = ledger.NewAuthority(genesis)
	for i, org := range []string{"hosp-a", "hosp-b", "hosp-c"} {
		gw := "gw-" + org[len(org)-1:]
		h := ledger.Header{Type: ledger.TypeOrgRegistered, Author: gw, Org: org}
		if err := r.a.Apply(uint64(i), h, &ledger.Statement{Type: h.Type, Author: gw, Org: org, Body: &ledger.OrgRegisteredV2{ID: org, Home: ledger.GatewayHome{Gateway: gw}}}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *testRegistry) signer(t testing.TB, gw string, now func() time.Time) *Signer {
	t.Helper()
	s, err := NewSigner(gw, r.nodes[gw], now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const target = "/v1/federation/records/rec-1?purpose=TREAT"

func claimsFor(aud string) Claims {
	return Claims{Org: "hosp-b", Audience: aud, Method: "GET", Target: target, Scope: "system/records.read"}
}

// TestVerify: one row per way a request token fails, each refused with
// a *TokenError, and the one valid token accepted once.
func TestVerify(t *testing.T) {
	reg := newTestRegistry(t)
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return t0 }
	otherKey := func() ed25519.PrivateKey {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return k
	}()
	tests := []struct {
		name   string
		token  func(t *testing.T) string
		method string
		target string
		reason string // a substring of the TokenError's reason; "" for valid
	}{
		{name: "valid", token: func(t *testing.T) string {
			tok, _, err := reg.signer(t, "gw-b", now).Sign(claimsFor("gw-a"))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{name: "wrong key", reason: "signature", token: func(t *testing.T) string {
			s, err := NewSigner("gw-b", otherKey, now)
			if err != nil {
				t.Fatal(err)
			}
			tok, _, _ := s.Sign(claimsFor("gw-a"))
			return tok
		}},
		{name: "another gateway's key claiming to be gw-b", reason: "signature", token: func(t *testing.T) string {
			s, _ := NewSigner("gw-b", reg.nodes["gw-c"], now)
			tok, _, _ := s.Sign(claimsFor("gw-a"))
			return tok
		}},
		{name: "other gateway acting for hosp-b", reason: "not the home gateway", token: func(t *testing.T) string {
			tok, _, _ := reg.signer(t, "gw-c", now).Sign(claimsFor("gw-a"))
			return tok
		}},
		{name: "unregistered gateway", reason: "not a registered gateway", token: func(t *testing.T) string {
			s, _ := NewSigner("gw-x", otherKey, now)
			tok, _, _ := s.Sign(claimsFor("gw-a"))
			return tok
		}},
		{name: "unregistered org", reason: "not the home gateway", token: func(t *testing.T) string {
			c := claimsFor("gw-a")
			c.Org = "hosp-z"
			tok, _, _ := reg.signer(t, "gw-b", now).Sign(c)
			return tok
		}},
		{name: "expired", reason: "expired", token: func(t *testing.T) string {
			tok, _, _ := reg.signer(t, "gw-b", func() time.Time { return t0.Add(-DefaultTokenLifetime - ClockSkew - time.Second) }).Sign(claimsFor("gw-a"))
			return tok
		}},
		{name: "issued in the future", reason: "future", token: func(t *testing.T) string {
			tok, _, _ := reg.signer(t, "gw-b", func() time.Time { return t0.Add(ClockSkew + time.Minute) }).Sign(claimsFor("gw-a"))
			return tok
		}},
		{name: "lifetime too long", reason: "lifetime", token: func(t *testing.T) string {
			c := claimsFor("gw-a")
			c.Gateway, c.IssuedAt, c.Expiry, c.ID = "gw-b", t0.Unix(), t0.Add(time.Hour).Unix(), "long"
			tok, err := signJWS(c, reg.nodes["gw-b"], TokenType)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{name: "wrong audience", reason: "audience", token: func(t *testing.T) string {
			tok, _, _ := reg.signer(t, "gw-b", now).Sign(claimsFor("gw-c"))
			return tok
		}},
		{name: "another target", reason: "another request", target: "/v1/federation/records/rec-2?purpose=TREAT", token: func(t *testing.T) string {
			tok, _, _ := reg.signer(t, "gw-b", now).Sign(claimsFor("gw-a"))
			return tok
		}},
		{name: "another method", reason: "another request", method: "DELETE", token: func(t *testing.T) string {
			tok, _, _ := reg.signer(t, "gw-b", now).Sign(claimsFor("gw-a"))
			return tok
		}},
		{name: "wrong typ", reason: "typ", token: func(t *testing.T) string {
			c := claimsFor("gw-a")
			c.Gateway, c.IssuedAt, c.Expiry, c.ID = "gw-b", t0.Unix(), t0.Add(time.Second).Unix(), "typ"
			tok, _ := signJWS(c, reg.nodes["gw-b"], "JWT")
			return tok
		}},
		{name: "unknown claim", reason: "claims", token: func(t *testing.T) string {
			tok, _ := signJWS(map[string]any{"iss": "gw-b", "sub": "hosp-b", "aud": "gw-a", "iat": t0.Unix(), "exp": t0.Unix() + 10, "jti": "x", "htm": "GET", "htu": target, "admin": true}, reg.nodes["gw-b"], TokenType)
			return tok
		}},
		{name: "not EdDSA", reason: "alg", token: func(t *testing.T) string {
			h := jws.NewHeaders()
			_ = h.Set(jws.TypeKey, TokenType)
			b, err := jws.Sign([]byte(`{"iss":"gw-b"}`), jws.WithKey(jwa.HS256(), []byte("0123456789abcdef0123456789abcdef"), jws.WithProtectedHeaders(h)))
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}},
		{name: "garbage", reason: "not a JWS", token: func(*testing.T) string { return "not.a.token" }},
		{name: "too long", reason: "longer", token: func(*testing.T) string { return strings.Repeat("a", MaxTokenSize+1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier("gw-a", reg, now)
			method, tgt := "GET", target
			if tt.method != "" {
				method = tt.method
			}
			if tt.target != "" {
				tgt = tt.target
			}
			c, err := v.Verify(t.Context(), tt.token(t), method, tgt)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Gateway != "gw-b" || c.Org != "hosp-b" || c.Audience != "gw-a" {
					t.Errorf("claims %+v", c)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %v, want a TokenError", err)
			}
			if !strings.Contains(te.Reason, tt.reason) {
				t.Errorf("reason %q, want it to say %q", te.Reason, tt.reason)
			}
		})
	}
}

// TestVerifyReplay: a token is accepted once; a second token for the
// same request (another jti) is accepted.
func TestVerifyReplay(t *testing.T) {
	reg := newTestRegistry(t)
	v := NewVerifier("gw-a", reg, nil)
	s := reg.signer(t, "gw-b", nil)
	tok, _, err := s.Sign(claimsFor("gw-a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), tok, "GET", target); err != nil {
		t.Fatalf("first use: %v", err)
	}
	var te *TokenError
	if _, err := v.Verify(t.Context(), tok, "GET", target); !errors.As(err, &te) || !strings.Contains(te.Reason, "replayed") {
		t.Fatalf("replay = %v, want refused as replayed", err)
	}
	tok2, _, _ := s.Sign(claimsFor("gw-a"))
	if _, err := v.Verify(t.Context(), tok2, "GET", target); err != nil {
		t.Errorf("a fresh token for the same request: %v", err)
	}
}

// TestVerifyReplayDurable: with the gateway's replay store, a token
// accepted once stays refused by a verifier made after a restart (or at
// another replica over the same database); a client assertion's jti of
// the same value does not collide with it; a store that cannot be
// written refuses the token without calling it invalid.
func TestVerifyReplayDurable(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		reg := newTestRegistry(t)
		store, err := authstore.Open(t.Context(), db, authstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s := reg.signer(t, "gw-b", nil)
		tok, c, err := s.Sign(claimsFor("gw-a"))
		if err != nil {
			t.Fatal(err)
		}
		// A client assertion of issuer gw-b with the same jti was seen.
		if err := store.Claim(t.Context(), "gw-b", c.ID, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		first := NewVerifier("gw-a", reg, nil)
		first.UseReplayCache(store)
		if _, err := first.Verify(t.Context(), tok, "GET", target); err != nil {
			t.Fatalf("first use: %v", err)
		}
		restarted := NewVerifier("gw-a", reg, nil)
		restarted.UseReplayCache(store)
		var te *TokenError
		if _, err := restarted.Verify(t.Context(), tok, "GET", target); !errors.As(err, &te) || !strings.Contains(te.Reason, "replayed") {
			t.Fatalf("replay after a restart = %v, want refused as replayed", err)
		}
		tok2, _, _ := s.Sign(claimsFor("gw-a"))
		broken := NewVerifier("gw-a", reg, nil)
		broken.UseReplayCache(failingReplay{})
		if _, err := broken.Verify(t.Context(), tok2, "GET", target); err == nil || errors.As(err, &te) {
			t.Errorf("a failing replay store: %v, want an error that is not a token error", err)
		}
		if _, err := restarted.Verify(t.Context(), tok2, "GET", target); err != nil {
			t.Errorf("a fresh token: %v", err)
		}
	})
}

type failingReplay struct{}

func (failingReplay) Claim(context.Context, string, string, time.Time) error {
	return errors.New("database is down")
}

func TestCanonicalTarget(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/federation/records/r1":                     "/v1/federation/records/r1",
		"/v1/federation/records/r1?purpose=TREAT&a=1":   "/v1/federation/records/r1?a=1&purpose=TREAT",
		"/v1/federation/patients/p%2F1/records?purpose": "/v1/federation/patients/p%2F1/records?purpose=",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := CanonicalTarget(u); got != want {
			t.Errorf("CanonicalTarget(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSealOpen: an answer sealed by gw-a to gw-b opens at gw-b only, with
// gw-a's node key and for the request it answers.
func TestSealOpen(t *testing.T) {
	reg := newTestRegistry(t)
	body := []byte(`{"record":{"id":"rec-1"},"content":"c2VjcmV0"}`)
	sealed, err := Seal(body, "jti-1", "gw-a", reg.nodes["gw-a"], reg.seals["gw-b"].PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "rec-1") || strings.Contains(string(sealed), "c2VjcmV0") {
		t.Fatal("the sealed answer shows its body")
	}
	aPub := reg.nodes["gw-a"].Public().(ed25519.PublicKey)
	got, err := Open(sealed, reg.seals["gw-b"], "gw-a", aPub, "jti-1")
	if err != nil {
		t.Fatalf("Open at gw-b: %v", err)
	}
	if diff := cmp.Diff(string(body), string(got)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	cPub := reg.nodes["gw-c"].Public().(ed25519.PublicKey)
	for name, open := range map[string]func() ([]byte, error){
		"another gateway's sealing key": func() ([]byte, error) { return Open(sealed, reg.seals["gw-c"], "gw-a", aPub, "jti-1") },
		"another holder's node key":     func() ([]byte, error) { return Open(sealed, reg.seals["gw-b"], "gw-a", cPub, "jti-1") },
		"another holder named":          func() ([]byte, error) { return Open(sealed, reg.seals["gw-b"], "gw-c", aPub, "jti-1") },
		"another request":               func() ([]byte, error) { return Open(sealed, reg.seals["gw-b"], "gw-a", aPub, "jti-2") },
		"tampered": func() ([]byte, error) {
			b := []byte(string(sealed))
			b[len(b)-5] ^= 1
			return Open(b, reg.seals["gw-b"], "gw-a", aPub, "jti-1")
		},
	} {
		if _, err := open(); !errors.Is(err, ErrBadAnswer) {
			t.Errorf("%s: Open = %v, want ErrBadAnswer", name, err)
		}
	}
	// A gateway forging an answer "from gw-a" with its own node key.
	forged, err := Seal(body, "jti-1", "gw-a", reg.nodes["gw-c"], reg.seals["gw-b"].PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(forged, reg.seals["gw-b"], "gw-a", aPub, "jti-1"); !errors.Is(err, ErrBadAnswer) {
		t.Errorf("forged answer: Open = %v, want ErrBadAnswer", err)
	}
}

// FuzzVerify: no input makes Verify panic or accept a token not signed by
// a registered gateway's node key.
func FuzzVerify(f *testing.F) {
	reg := newTestRegistry(f)
	s, err := NewSigner("gw-b", reg.nodes["gw-b"], nil)
	if err != nil {
		f.Fatal(err)
	}
	tok, _, err := s.Sign(claimsFor("gw-a"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("")
	f.Add("a.b.c")
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Fuzz(func(t *testing.T, token string) {
		v := NewVerifier("gw-a", reg, nil)
		c, err := v.Verify(t.Context(), token, "GET", target)
		if err == nil && token != tok {
			t.Fatalf("accepted a token the signer did not make: %+v", c)
		}
	})
}
