package ledger

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// jwxSeal is what SealOpening did before it built the JWE itself: jwx's
// jwe.Encrypt with the same options. TestEncryptJWEInterop compares the
// two.
func jwxSeal(t testing.TB, plain, aad []byte, pubs []*ecdh.PublicKey) []byte {
	t.Helper()
	opts := []jwe.EncryptOption{
		jwe.WithJSON(), jwe.WithContentEncryption(jwa.A256GCM()),
		jwe.WithAuthenticateData(aad), jwe.WithLegacyHeaderMerging(false),
	}
	for _, k := range pubs {
		opts = append(opts, jwe.WithKey(jwa.ECDH_ES_A256KW(), k))
	}
	out, err := jwe.Encrypt(plain, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jweShape returns the layout of a JWE in JSON serialization: its
// members in order, with every base64url value replaced by its decoded
// length and the protected header by its own layout. Two JWEs with the
// same shape differ only in their random and secret values.
func jweShape(t testing.TB, b []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	var sb strings.Builder
	key := ""
	inObject := []bool{}
	expectKey := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("shape of %s: %v", b, err)
		}
		switch v := tok.(type) {
		case json.Delim:
			sb.WriteString(v.String())
			switch v {
			case '{':
				inObject = append(inObject, true)
				expectKey = true
			case '[':
				inObject = append(inObject, false)
				expectKey = false
			default:
				inObject = inObject[:len(inObject)-1]
				expectKey = len(inObject) > 0 && inObject[len(inObject)-1]
			}
			continue
		case string:
			if expectKey {
				key = v
				sb.WriteString(v + ":")
				expectKey = false
				continue
			}
			switch key {
			case "protected":
				p, err := base64.RawURLEncoding.Strict().DecodeString(v)
				if err != nil {
					t.Fatalf("protected: %v", err)
				}
				sb.WriteString("<" + jweShape(t, p) + ">")
			case "aad", "ciphertext", "iv", "tag", "encrypted_key", "x":
				d, err := base64.RawURLEncoding.Strict().DecodeString(v)
				if err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				fmt.Fprintf(&sb, "b64[%d]", len(d))
			default:
				fmt.Fprintf(&sb, "%q", v)
			}
		default:
			fmt.Fprintf(&sb, "%v", v)
		}
		sb.WriteString(",")
		expectKey = len(inObject) > 0 && inObject[len(inObject)-1]
	}
	return sb.String()
}

// TestEncryptJWEInterop: SealOpening composes the JWE from standard
// building blocks instead of calling jwe.Encrypt (see encryptJWE). Its
// output must stay a JWE jwx parses and decrypts with every recipient's
// key (raw and as a JWK), laid out exactly as jwx lays out its own, and
// CheckSealed must accept jwx's own output as before.
func TestEncryptJWEInterop(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), testAtts)
	plain, err := EncodeOpening(e.o)
	if err != nil {
		t.Fatal(err)
	}
	padded := append([]byte(nil), plain...)
	for len(padded)%sealPadBlock != 0 {
		padded = append(padded, ' ')
	}
	outsider, err := NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 5, MaxRecipients} {
		privs, pubs := sealKeys(t, n)
		sealed, err := SealOpening(e.o, e.h, pubs)
		if err != nil {
			t.Fatalf("%d recipients: %v", n, err)
		}
		if _, err := jwe.Parse(sealed); err != nil {
			t.Fatalf("%d recipients: jwx does not parse the sealed opening: %v\n%s", n, err, sealed)
		}
		for i, k := range privs {
			got, err := jwe.Decrypt(sealed, jwe.WithKey(jwa.ECDH_ES_A256KW(), k), jwe.WithMaxRecipients(MaxRecipients))
			if err != nil {
				t.Fatalf("%d recipients: jwx cannot decrypt slot of recipient %d: %v", n, i, err)
			}
			if !bytes.Equal(got, padded) {
				t.Fatalf("%d recipients: recipient %d: jwx decrypted %q, want %q", n, i, got, padded)
			}
			kj, err := jwk.Import(k)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jwe.Decrypt(sealed, jwe.WithKey(jwa.ECDH_ES_A256KW(), kj), jwe.WithMaxRecipients(MaxRecipients)); err != nil {
				t.Fatalf("%d recipients: jwx cannot decrypt with recipient %d's JWK: %v", n, i, err)
			}
		}
		if _, err := jwe.Decrypt(sealed, jwe.WithKey(jwa.ECDH_ES_A256KW(), outsider), jwe.WithMaxRecipients(MaxRecipients)); err == nil {
			t.Errorf("%d recipients: jwx decrypts with an outsider's key", n)
		}
		// The layout is jwx's: same members in the same order, same
		// protected header, same sizes.
		_, others := sealKeys(t, n)
		ref := jwxSeal(t, padded, e.h.Commitment[:], others)
		if got, want := jweShape(t, sealed), jweShape(t, ref); got != want {
			t.Errorf("%d recipients: layout differs from jwx's:\n got %s\nwant %s", n, got, want)
		}
		if len(sealed) != len(ref) {
			t.Errorf("%d recipients: %d bytes, jwx writes %d", n, len(sealed), len(ref))
		}
		// jwx's own output is still a well-formed sealed opening that
		// OpenSealed opens.
		if err := CheckSealed(ref, e.h); err != nil {
			t.Errorf("%d recipients: CheckSealed(jwx's output) = %v", n, err)
		}
	}
	// jwx's output opens with OpenSealed, ours with jwx (above), and a
	// byte changed anywhere authenticated is refused by jwx.
	privs, pubs := sealKeys(t, 2)
	sealed, err := SealOpening(e.o, e.h, pubs)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(sealed, &doc); err != nil {
		t.Fatal(err)
	}
	for _, member := range []string{"aad", "ciphertext", "iv", "tag", "protected"} {
		var v string
		if err := json.Unmarshal(doc[member], &v); err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)-1] ^= 1
		tampered := map[string]json.RawMessage{}
		for k, x := range doc {
			tampered[k] = x
		}
		tampered[member], _ = json.Marshal(base64.RawURLEncoding.EncodeToString(raw))
		b, _ := json.Marshal(tampered)
		if _, err := jwe.Decrypt(b, jwe.WithKey(jwa.ECDH_ES_A256KW(), privs[0])); err == nil {
			t.Errorf("jwx decrypts the sealed opening with %s changed", member)
		}
		if _, err := OpenSealed(b, privs[0]); err == nil {
			t.Errorf("OpenSealed opens the sealed opening with %s changed", member)
		}
	}
}

// TestOpenSealedOpensJWX: a sealed opening jwx's jwe.Encrypt wrote (what
// stored entries before this format's own encoder hold) still opens.
func TestOpenSealedOpensJWX(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), nil)
	plain, err := EncodeOpening(e.o)
	if err != nil {
		t.Fatal(err)
	}
	for len(plain)%sealPadBlock != 0 {
		plain = append(plain, ' ')
	}
	for _, n := range []int{1, 3} {
		privs, pubs := sealKeys(t, n)
		ref := jwxSeal(t, plain, e.h.Commitment[:], pubs)
		for i, k := range privs {
			o, err := OpenSealed(ref, k)
			if err != nil {
				t.Fatalf("%d recipients: recipient %d: %v", n, i, err)
			}
			if _, err := CheckOpening(o, e.h); err != nil {
				t.Errorf("%d recipients: %v", n, err)
			}
		}
		outsider, _ := NewSealKey()
		if _, err := OpenSealed(ref, outsider); !errors.Is(err, ErrNotRecipient) {
			t.Errorf("%d recipients: outsider: %v", n, err)
		}
	}
}
