package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/auth"
)

func jwkJSON(t *testing.T, raw any, members map[string]any) string {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range members {
		if err := k.Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func set(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }

func TestParseOrgJWKS(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	ed, err := auth.GenerateSigningKey("EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	edPub, _ := ed.PublicKey()
	edJSON, _ := json.Marshal(edPub)
	enc, err := auth.GenerateEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	encPub, _ := enc.PublicKey()
	_ = encPub.Remove(jwk.AlgorithmKey)
	encJSON, _ := json.Marshal(encPub)

	pub := func(raw any, m map[string]any) string { return jwkJSON(t, raw, m) }
	tests := []struct {
		name     string
		jwks     string
		wantAlgs map[string]string // kid -> alg
		wantEnc  bool
		why      string // fragment of the error, "" for success
	}{
		{name: "EC P-256 is ES256", jwks: set(pub(&p256.PublicKey, map[string]any{"kid": "a"})), wantAlgs: map[string]string{"a": "ES256"}},
		{name: "EC P-384 is ES384", jwks: set(pub(&p384.PublicKey, map[string]any{"kid": "a", "alg": "ES384"})), wantAlgs: map[string]string{"a": "ES384"}},
		{name: "RSA is RS384", jwks: set(pub(&rsa2048.PublicKey, map[string]any{"kid": "r", "use": "sig"})), wantAlgs: map[string]string{"r": "RS384"}},
		{name: "Ed25519 is EdDSA, with an enc key", jwks: set(string(edJSON), string(encJSON)), wantAlgs: map[string]string{mustKid(ed): "EdDSA"}, wantEnc: true},
		{name: "private EC key", jwks: set(pub(p256, map[string]any{"kid": "a"})), why: "private"},
		{name: "private RSA key", jwks: set(pub(rsa2048, map[string]any{"kid": "a"})), why: "private"},
		{name: "symmetric key", jwks: set(`{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0"}`), why: `"k"`},
		{name: "no kid", jwks: set(pub(&p256.PublicKey, nil)), why: "kid is required"},
		{name: "duplicate kid", jwks: set(pub(&p256.PublicKey, map[string]any{"kid": "a"}), pub(&p384.PublicKey, map[string]any{"kid": "a"})), why: "duplicate kid"},
		{name: "alg contradicting the type", jwks: set(pub(&p256.PublicKey, map[string]any{"kid": "a", "alg": "ES384"})), why: "does not match"},
		{name: "RSA declared RS256", jwks: set(pub(&rsa2048.PublicKey, map[string]any{"kid": "r", "alg": "RS256"})), why: "RS256 is not accepted"},
		{name: "RSA declared PS256", jwks: set(pub(&rsa2048.PublicKey, map[string]any{"kid": "r", "alg": "PS256"})), why: "does not match"},
		{name: "RSA 1024 bits", jwks: set(`{"kty":"RSA","kid":"r","e":"AQAB","n":"` + base64.RawURLEncoding.EncodeToString(rsa1024.N.Bytes()) + `"}`), why: "too small"},
		{name: "P-521", jwks: set(pub(&p521.PublicKey, map[string]any{"kid": "a"})), why: "not accepted"},
		{name: "only an encryption key", jwks: set(string(encJSON)), why: "no signature key"},
		{name: "unknown use", jwks: set(pub(&p256.PublicKey, map[string]any{"kid": "a"})[:1] + `"use":"wrap",` + pub(&p256.PublicKey, map[string]any{"kid": "a"})[1:]), why: "use"},
		{name: "x5u member", jwks: set(`{"kid":"a","x5u":"https://evil.example/c.pem",` + pub(&p256.PublicKey, nil)[1:]), why: "x5u"},
		{name: "a single JWK, not a set", jwks: pub(&p256.PublicKey, map[string]any{"kid": "a"}), why: "no keys"},
		{name: "empty set", jwks: `{"keys":[]}`, why: "no keys"},
		{name: "not JSON", jwks: `keys`, why: "not JSON"},
		{name: "trailing data", jwks: set(pub(&p256.PublicKey, map[string]any{"kid": "a"})) + "{}", why: "trailing"},
		{name: "too many keys", jwks: set(strings.Split(strings.Repeat(pub(&p256.PublicKey, map[string]any{"kid": "a"})+"\x00", 33), "\x00")[:33]...), why: "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := auth.ParseOrgJWKS([]byte(tt.jwks))
			if tt.why != "" {
				if !errors.Is(err, auth.ErrInvalidKey) || !strings.Contains(err.Error(), tt.why) {
					t.Fatalf("ParseOrgJWKS = %v, want ErrInvalidKey mentioning %q", err, tt.why)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOrgJWKS: %v", err)
			}
			if ks.Len() != len(tt.wantAlgs) {
				t.Errorf("Len = %d, want %d", ks.Len(), len(tt.wantAlgs))
			}
			for kid, want := range tt.wantAlgs {
				if got, ok := ks.SigningAlg(kid); !ok || got != want {
					t.Errorf("SigningAlg(%s) = %q, %v; want %q", kid, got, ok, want)
				}
			}
			ek, ok := ks.EncryptionKey()
			if ok != tt.wantEnc {
				t.Fatalf("EncryptionKey ok = %v, want %v", ok, tt.wantEnc)
			}
			if ok {
				if a, _ := ek.Algorithm(); a.String() != "ECDH-ES+A256KW" {
					t.Errorf("encryption key alg = %v, want ECDH-ES (set by type)", a)
				}
			}
		})
	}
}

func mustKid(k jwk.Key) string {
	kid, _ := k.KeyID()
	return kid
}

// FuzzParseOrgJWKS: untrusted JWK Sets never panic, and whatever parses
// has signature keys only of the accepted algorithms.
func FuzzParseOrgJWKS(f *testing.F) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, _ := jwk.Import(&p256.PublicKey)
	_ = k.Set("kid", "a")
	b, _ := json.Marshal(k)
	f.Add([]byte(set(string(b))))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AA","kid":"x"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := auth.ParseOrgJWKS(data)
		if err != nil {
			return
		}
		if ks.Len() == 0 {
			t.Fatal("parsed a JWK Set without signature keys")
		}
	})
}
