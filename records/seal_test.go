package records_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/records"
)

// jwkOf imports a raw key and sets fields on it.
func jwkOf(t *testing.T, raw any, fields map[string]any) jwk.Key {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	for n, v := range fields {
		if err := k.Set(n, v); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// publicSet returns a JWKS of the public parts of keys, as an org
// registers it.
func publicSet(t *testing.T, keys ...jwk.Key) jwk.Set {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		pub, err := k.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := set.AddKey(pub); err != nil {
			t.Fatal(err)
		}
	}
	return set
}

func TestSeal(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		priv    jwk.Key
		decoys  []jwk.Key // earlier in the set, not usable for encryption
		wantKID string
	}{
		{name: "P-256", priv: jwkOf(t, p256, map[string]any{"use": "enc", "kid": "enc-1"}), wantKID: "enc-1"},
		{name: "X25519", priv: jwkOf(t, x25519, map[string]any{"use": "enc", "kid": "x-1", "alg": "ECDH-ES+A256KW"}), wantKID: "x-1"},
		{
			name: "P-384 after a signing key",
			priv: jwkOf(t, p384, map[string]any{"use": "enc", "kid": "enc-2"}),
			decoys: []jwk.Key{
				jwkOf(t, p256, map[string]any{"use": "sig", "kid": "sig-1"}),
				jwkOf(t, p256, map[string]any{"use": "enc", "kid": "wrong-alg", "alg": "RSA-OAEP-256"}),
			},
			wantKID: "enc-2",
		},
	}
	plaintext := []byte(`{"resourceType":"Observation","valueQuantity":{"value":7.1}}`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := publicSet(t, append(tt.decoys, tt.priv)...)
			out, err := records.Seal(plaintext, records.FHIRContentType, set)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := jwe.Parse(out)
			if err != nil {
				t.Fatalf("not a JWE: %v", err)
			}
			h := msg.ProtectedHeaders()
			if alg, _ := h.Algorithm(); alg != jwa.ECDH_ES_A256KW() {
				t.Errorf("alg = %v, want ECDH-ES+A256KW", alg)
			}
			if enc, _ := h.ContentEncryption(); enc != jwa.A256GCM() {
				t.Errorf("enc = %v, want A256GCM", enc)
			}
			if cty, _ := h.ContentType(); cty != records.FHIRContentType {
				t.Errorf("cty = %q", cty)
			}
			if kid, _ := h.KeyID(); kid != tt.wantKID {
				t.Errorf("kid = %q, want %q", kid, tt.wantKID)
			}
			got, err := jwe.Decrypt(out, jwe.WithKey(jwa.ECDH_ES_A256KW(), tt.priv))
			if err != nil {
				t.Fatalf("decrypt with the private key: %v", err)
			}
			if string(got) != string(plaintext) {
				t.Fatalf("decrypted %q", got)
			}
			// Another key of the same kind cannot decrypt it.
			other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jwe.Decrypt(out, jwe.WithKey(jwa.ECDH_ES_A256KW(), other)); err == nil {
				t.Fatal("decrypted with another key")
			}
		})
	}
}

func TestSealNoEncryptionKey(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		set  jwk.Set
	}{
		{"nil set", nil},
		{"empty set", jwk.NewSet()},
		{"signing key only", publicSet(t, jwkOf(t, p256, map[string]any{"use": "sig"}))},
		{"no use", publicSet(t, jwkOf(t, p256, nil))},
		{"RSA encryption key", publicSet(t, jwkOf(t, rsaKey, map[string]any{"use": "enc"}))},
		{"other algorithm", publicSet(t, jwkOf(t, p256, map[string]any{"use": "enc", "alg": "ECDH-ES"}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := records.Seal([]byte("x"), "text/plain", tt.set)
			if !errors.Is(err, records.ErrNoEncryptionKey) {
				t.Fatalf("err = %v, want ErrNoEncryptionKey", err)
			}
			if out != nil {
				t.Fatal("output with the error")
			}
		})
	}
}

// TestSealPrivateKeyInSet: a set that (wrongly) holds a private key is
// sealed to its public part, and the output carries no private material.
func TestSealPrivateKeyInSet(t *testing.T) {
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv := jwkOf(t, x, map[string]any{"use": "enc", "kid": "k"})
	set := jwk.NewSet()
	if err := set.AddKey(priv); err != nil {
		t.Fatal(err)
	}
	key, err := records.EncryptionKey(set)
	if err != nil {
		t.Fatal(err)
	}
	if ak, ok := key.(jwk.AsymmetricKey); !ok || ak.IsPrivate() {
		t.Fatal("EncryptionKey returned a private key")
	}
	out, err := records.Seal([]byte("x"), "text/plain", set)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := jwe.Decrypt(out, jwe.WithKey(jwa.ECDH_ES_A256KW(), priv)); err != nil || string(got) != "x" {
		t.Fatalf("decrypt: %q, %v", got, err)
	}
}
