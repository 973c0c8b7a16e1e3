package ledger

import (
	"bytes"
	"crypto/aes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwe/jwebb"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

func sealKeys(t testing.TB, n int) ([]*ecdh.PrivateKey, []*ecdh.PublicKey) {
	t.Helper()
	privs := make([]*ecdh.PrivateKey, n)
	pubs := make([]*ecdh.PublicKey, n)
	for i := range privs {
		k, err := NewSealKey()
		if err != nil {
			t.Fatal(err)
		}
		privs[i], pubs[i] = k, k.PublicKey()
	}
	return privs, pubs
}

func TestSealOpenEachRecipient(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), testAtts)
	outsider, err := NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, 5, MaxRecipients} {
		privs, pubs := sealKeys(t, n)
		sealed, err := SealOpening(e.o, e.h, pubs)
		if err != nil {
			t.Fatalf("%d recipients: SealOpening: %v", n, err)
		}
		if err := CheckSealed(sealed, e.h); err != nil {
			t.Errorf("%d recipients: CheckSealed: %v", n, err)
		}
		if got := slots(t, sealed); got != n {
			t.Errorf("%d recipients: %d slots", n, got)
		}
		for i, k := range privs {
			o, err := OpenSealed(sealed, k)
			if err != nil {
				t.Fatalf("%d recipients: recipient %d: OpenSealed: %v", n, i, err)
			}
			if !bytes.Equal(o.Statement, e.stmt) || o.Justification == nil || o.Justification.Reason != "patient unconscious" {
				t.Errorf("%d recipients: recipient %d opened %+v", n, i, o)
			}
			if _, err := CheckOpening(o, e.h); err != nil {
				t.Errorf("%d recipients: recipient %d: CheckOpening: %v", n, i, err)
			}
		}
		if _, err := OpenSealed(sealed, outsider); !errors.Is(err, ErrNotRecipient) {
			t.Errorf("%d recipients: an outsider's key: %v, want ErrNotRecipient", n, err)
		}
	}
}

// slots returns the number of recipient slots of a sealed opening.
func slots(t *testing.T, sealed []byte) int {
	t.Helper()
	var m struct {
		Recipients []json.RawMessage `json:"recipients"`
	}
	if err := json.Unmarshal(sealed, &m); err != nil {
		t.Fatal(err)
	}
	if m.Recipients == nil {
		return 1 // flattened
	}
	return len(m.Recipients)
}

// TestSealedCarriesNoKid walks every JSON object of a sealed opening,
// including the decoded protected header, for a "kid" (and anything else
// that names a recipient).
func TestSealedCarriesNoKid(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), nil)
	for _, n := range []int{1, 4} {
		_, pubs := sealKeys(t, n)
		// Even a recipient key that has a kid as a JWK is sealed to
		// without it.
		sealed, err := SealOpening(e.o, e.h, pubs)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(sealed, &doc); err != nil {
			t.Fatal(err)
		}
		prot, err := base64.RawURLEncoding.DecodeString(doc.(map[string]any)["protected"].(string))
		if err != nil {
			t.Fatal(err)
		}
		var protDoc any
		if err := json.Unmarshal(prot, &protDoc); err != nil {
			t.Fatal(err)
		}
		for _, d := range []any{doc, protDoc} {
			for _, k := range keysOf(d) {
				switch k {
				case "kid", "jku", "jwk", "x5c", "x5t", "x5u", "x5t#S256", "unprotected", "zip", "apu", "apv":
					t.Errorf("%d recipients: sealed opening carries %q: %s / %s", n, k, sealed, prot)
				}
			}
		}
		for _, pub := range pubs {
			if bytes.Contains(sealed, []byte(EncodeSealKey(pub))) {
				t.Errorf("%d recipients: a recipient's public key appears in the sealed opening", n)
			}
		}
	}
}

func keysOf(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			out = append(out, k)
			out = append(out, keysOf(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, keysOf(x)...)
		}
	}
	return out
}

func TestSealPaddingAndOrder(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), nil)
	privs, pubs := sealKeys(t, 2)
	sealed, err := SealOpening(e.o, e.h, pubs, WithMinRecipients(8))
	if err != nil {
		t.Fatal(err)
	}
	if got := slots(t, sealed); got != 8 {
		t.Errorf("padded to %d slots, want 8", got)
	}
	for _, k := range privs {
		if _, err := OpenSealed(sealed, k); err != nil {
			t.Errorf("OpenSealed with dummies: %v", err)
		}
	}
	// The plaintext is padded, so a sealed opening's size tells little
	// about the body's.
	short, err := SealOpening(e.o.WithoutJustification(), e.h, pubs[:1])
	if err != nil {
		t.Fatal(err)
	}
	plain, err := jwe.Decrypt(short, jwe.WithKey(jwa.ECDH_ES_A256KW(), privs[0]))
	if err != nil {
		t.Fatal(err)
	}
	if len(plain)%sealPadBlock != 0 {
		t.Errorf("plaintext of %d bytes is not padded to %d", len(plain), sealPadBlock)
	}
}

func TestSealRegulatorsOnlyJustification(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), nil)
	regs, regPubs := sealKeys(t, 2)
	parties, partyPubs := sealKeys(t, 3)
	forRegs, err := SealOpening(e.o, e.h, regPubs)
	if err != nil {
		t.Fatal(err)
	}
	forParties, err := SealOpening(e.o.WithoutJustification(), e.h, partyPubs)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range parties {
		o, err := OpenSealed(forParties, k)
		if err != nil || o.Justification != nil {
			t.Errorf("party opened %+v, %v", o.Justification, err)
		}
		if _, err := OpenSealed(forRegs, k); !errors.Is(err, ErrNotRecipient) {
			t.Errorf("party opened the regulators' opening: %v", err)
		}
	}
	for _, k := range regs {
		o, err := OpenSealed(forRegs, k)
		if err != nil || o.Justification == nil {
			t.Fatalf("regulator: %+v, %v", o, err)
		}
		if _, err := CheckOpening(o, e.h); err != nil {
			t.Errorf("regulator's opening: %v", err)
		}
	}
}

func TestSealRejects(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), nil)
	_, pubs := sealKeys(t, MaxRecipients+1)
	p256, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := newOtherEntry(t, testV2Signer(t), testAtts)
	for name, tc := range map[string]struct {
		o    Opening
		h    Header
		to   []*ecdh.PublicKey
		want error
	}{
		"no recipients":       {e.o, e.h, nil, ErrBadSealKey},
		"too many recipients": {e.o, e.h, pubs, ErrBadSealKey},
		"a nil key":           {e.o, e.h, []*ecdh.PublicKey{pubs[0], nil}, ErrBadSealKey},
		"a P-256 key":         {e.o, e.h, []*ecdh.PublicKey{p256.PublicKey()}, ErrBadSealKey},
		"a repeated key":      {e.o, e.h, []*ecdh.PublicKey{pubs[0], pubs[1], pubs[0]}, ErrBadSealKey},
		"another header":      {e.o, other.h, pubs[:1], ErrCommitmentMismatch},
	} {
		if _, err := SealOpening(tc.o, tc.h, tc.to); !errors.Is(err, tc.want) {
			t.Errorf("%s: SealOpening = %v, want %v", name, err, tc.want)
		}
	}
	if _, err := OpenSealed([]byte("{}"), p256); !errors.Is(err, ErrBadSealKey) {
		t.Errorf("OpenSealed with a P-256 key: %v", err)
	}
}

func TestOpenSealedRejects(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), nil)
	privs, pubs := sealKeys(t, 3)
	sealed, err := SealOpening(e.o, e.h, pubs)
	if err != nil {
		t.Fatal(err)
	}
	single, err := SealOpening(e.o, e.h, pubs[:1])
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(sealed, &doc); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(map[string]any)) []byte {
		var d map[string]any
		if err := json.Unmarshal(sealed, &d); err != nil {
			t.Fatal(err)
		}
		f(d)
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	slot := func(d map[string]any, i int) map[string]any {
		return d["recipients"].([]any)[i].(map[string]any)["header"].(map[string]any)
	}
	flip := func(s string) string {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	protected := func(p string) string { return base64.RawURLEncoding.EncodeToString([]byte(p)) }
	otherEntry := newOtherEntry(t, testV2Signer(t), testAtts)
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"kid in a slot", edit(func(d map[string]any) { slot(d, 1)["kid"] = "org-b" }), ErrBadSealed},
		{"unprotected header", edit(func(d map[string]any) { d["unprotected"] = map[string]any{"kid": "x"} }), ErrBadSealed},
		{"compressed", edit(func(d map[string]any) { d["protected"] = protected(`{"enc":"A256GCM","zip":"DEF"}`) }), ErrBadSealed},
		{"another enc", edit(func(d map[string]any) { d["protected"] = protected(`{"enc":"A128GCM"}`) }), ErrBadSealed},
		{"another alg", edit(func(d map[string]any) { slot(d, 0)["alg"] = "ECDH-ES" }), ErrBadSealed},
		{"a P-256 epk", edit(func(d map[string]any) { slot(d, 2)["epk"].(map[string]any)["crv"] = "P-256" }), ErrBadSealed},
		{"no aad", edit(func(d map[string]any) { delete(d, "aad") }), ErrBadSealed},
		{"no recipients", edit(func(d map[string]any) { d["recipients"] = []any{} }), ErrBadSealed},
		{"too many recipients", edit(func(d map[string]any) {
			r := d["recipients"].([]any)
			for len(r) <= MaxRecipients {
				r = append(r, r[0])
			}
			d["recipients"] = r
		}), ErrBadSealed},
		{"compact", []byte("a.b.c.d.e"), ErrBadSealed},
		{"not JSON", []byte("{"), ErrBadSealed},
		{"too large", bytes.Repeat([]byte(" "), MaxSealedSize+1), ErrTooLarge},
		{"ciphertext edited", edit(func(d map[string]any) { d["ciphertext"] = flip(d["ciphertext"].(string)) }), ErrNotRecipient},
		{"tag edited", edit(func(d map[string]any) { d["tag"] = flip(d["tag"].(string)) }), ErrNotRecipient},
		{"aad moved to another entry", edit(func(d map[string]any) {
			d["aad"] = base64.RawURLEncoding.EncodeToString(otherEntry.h.Commitment[:])
		}), ErrNotRecipient},
		{"slots reordered still open", edit(func(d map[string]any) {
			r := d["recipients"].([]any)
			r[0], r[2] = r[2], r[0]
		}), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenSealed(tc.in, privs[0])
			if tc.want == nil {
				if err != nil {
					t.Errorf("OpenSealed = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("OpenSealed = %v, want %v", err, tc.want)
			}
		})
	}
	if err := CheckSealed(sealed, otherEntry.h); !errors.Is(err, ErrCommitmentMismatch) {
		t.Errorf("CheckSealed against another header: %v", err)
	}
	if err := CheckSealed(single, e.h); err != nil {
		t.Errorf("CheckSealed of a flattened seal: %v", err)
	}
	if !strings.Contains(string(single), `"encrypted_key"`) || strings.Contains(string(single), `"recipients"`) {
		t.Errorf("one recipient is not the flattened serialization: %s", single)
	}
}

// TestSealedOpeningBoundToCommitment: a recipient knows the content key
// and can re-encrypt another opening under it for the other slots; the
// opening it substitutes does not open the header.
func TestSealedOpeningBoundToCommitment(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), nil)
	other := newOtherEntry(t, testV2Signer(t), testAtts)
	privs, pubs := sealKeys(t, 2)
	var cek []byte
	sealed, err := SealOpening(e.o, e.h, pubs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwe.Decrypt(sealed, jwe.WithKey(jwa.ECDH_ES_A256KW(), privs[0]), jwe.WithCEK(&cek)); err != nil {
		t.Fatal(err)
	}
	// Forge: the other entry's opening, bound (aad) to the first entry's
	// commitment, for the same recipients.
	plain, err := EncodeOpening(other.o)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := jwe.EncryptStatic(plain, cek, jwe.WithJSON(), jwe.WithContentEncryption(jwa.A256GCM()),
		jwe.WithAuthenticateData(e.h.Commitment[:]), jwe.WithKey(jwa.ECDH_ES_A256KW(), pubs[0]), jwe.WithKey(jwa.ECDH_ES_A256KW(), pubs[1]))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSealed(forged, e.h); err != nil {
		t.Fatalf("the forgery is well-formed: %v", err)
	}
	if _, err := OpenSealed(forged, privs[1]); !errors.Is(err, ErrCommitmentMismatch) {
		t.Errorf("OpenSealed(forgery) = %v, want ErrCommitmentMismatch", err)
	}
}

// TestJWXAcceptsX25519JWK: jwx v3 takes X25519 keys as OKP JWKs too
// (what an org publishes in its JWKS), and a JWK's kid would leak into
// the recipient header, which is why SealOpening takes raw keys.
func TestJWXAcceptsX25519JWK(t *testing.T) {
	priv, err := NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.Import(priv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if pub.KeyType() != jwa.OKP() {
		t.Fatalf("key type %v", pub.KeyType())
	}
	if err := pub.Set(jwk.KeyIDKey, "org-b-enc"); err != nil {
		t.Fatal(err)
	}
	out, err := jwe.Encrypt([]byte("x"), jwe.WithJSON(), jwe.WithKey(jwa.ECDH_ES_A256KW(), pub), jwe.WithContentEncryption(jwa.A256GCM()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"kid":"org-b-enc"`) {
		t.Errorf("jwx no longer copies a JWK's kid into the JWE (update SealOpening's comment): %s", out)
	}
	privJWK, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := jwe.Decrypt(out, jwe.WithKey(jwa.ECDH_ES_A256KW(), privJWK)); err != nil || string(got) != "x" {
		t.Errorf("Decrypt with an OKP JWK = %q, %v", got, err)
	}
}

func TestSealKeyText(t *testing.T) {
	k, err := NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSealKey(EncodeSealKey(k.PublicKey()))
	if err != nil || !back.Equal(k.PublicKey()) {
		t.Errorf("ParseSealKey = %v, %v", back, err)
	}
	lowOrder := b64(make([]byte, 32)) // the point 0
	for _, bad := range []string{"", "AAAA", EncodeSealKey(k.PublicKey()) + "=", strings.Repeat("A", 44), lowOrder} {
		if _, err := ParseSealKey(bad); !errors.Is(err, ErrBadSealKey) {
			t.Errorf("ParseSealKey(%q) = %v", bad, err)
		}
	}
	nk, err := ParseNodeKey(EncodeNodeKey(testNodeKey(3).Public().(ed25519.PublicKey)))
	if err != nil || !bytes.Equal(nk, testNodeKey(3)[32:]) {
		t.Errorf("ParseNodeKey = %x, %v", nk, err)
	}
	if _, err := ParseNodeKey("AAAA"); !errors.Is(err, ErrBadNodeKey) {
		t.Errorf("ParseNodeKey(short) = %v", err)
	}
}

// TestDummySlotsLookReal: a sealed opening padded with dummy slots has,
// in every slot, a genuine X25519 ephemeral public key (it parses, is not
// a low-order point, and is fresh) and a 40-byte AES key wrap of the
// content key; the layout and size are those of a JWE sealed to as many
// real recipients; exactly the recipients' slots open (each tried alone,
// as a recipient does); and the recipients' slots are not in fixed
// positions.
func TestDummySlotsLookReal(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), nil)
	privs, pubs := sealKeys(t, 2)
	const total = 8
	type wireSlot struct {
		Header struct {
			Alg string `json:"alg"`
			EPK struct {
				Crv string `json:"crv"`
				Kty string `json:"kty"`
				X   string `json:"x"`
			} `json:"epk"`
		} `json:"header"`
		EncryptedKey string `json:"encrypted_key"`
	}
	positions := map[int]int{}
	seen := map[string]bool{}
	for round := range 24 {
		sealed, err := SealOpening(e.o, e.h, pubs, WithMinRecipients(total))
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			_, others := sealKeys(t, total)
			plain, err := EncodeOpening(e.o)
			if err != nil {
				t.Fatal(err)
			}
			for len(plain)%sealPadBlock != 0 {
				plain = append(plain, ' ')
			}
			ref := jwxSeal(t, plain, e.h.Commitment[:], others)
			if got, want := jweShape(t, sealed), jweShape(t, ref); got != want {
				t.Errorf("padded layout differs from jwx's with %d real recipients:\n got %s\nwant %s", total, got, want)
			}
			if len(sealed) != len(ref) {
				t.Errorf("padded: %d bytes, jwx with %d real recipients writes %d", len(sealed), total, len(ref))
			}
		}
		var doc struct {
			Recipients []wireSlot `json:"recipients"`
		}
		if err := json.Unmarshal(sealed, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Recipients) != total {
			t.Fatalf("%d slots, want %d", len(doc.Recipients), total)
		}
		opened := 0
		for i, s := range doc.Recipients {
			if s.Header.Alg != jweAlg || s.Header.EPK.Crv != "X25519" || s.Header.EPK.Kty != "OKP" {
				t.Fatalf("slot %d: header %+v", i, s.Header)
			}
			epk, err := ParseSealKey(s.Header.EPK.X) // 32 bytes, not a low-order point
			if err != nil {
				t.Fatalf("slot %d: epk: %v", i, err)
			}
			ek, err := base64.RawURLEncoding.Strict().DecodeString(s.EncryptedKey)
			if err != nil || len(ek) != 40 {
				t.Fatalf("slot %d: encrypted_key of %d bytes (%v)", i, len(ek), err)
			}
			for _, v := range []string{s.Header.EPK.X, s.EncryptedKey} {
				if seen[v] {
					t.Fatalf("slot %d: value %s repeats", i, v)
				}
				seen[v] = true
			}
			for _, k := range privs {
				kek, err := jwebb.DeriveECDHES(jweAlg, nil, nil, k, epk, jweKEKSize)
				if err != nil {
					t.Fatal(err)
				}
				block, err := aes.NewCipher(kek)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := jwebb.Unwrap(block, ek); err == nil {
					opened++
					positions[i]++
				}
			}
		}
		if opened != len(privs) {
			t.Fatalf("%d slots open with the recipients' keys, want %d", opened, len(privs))
		}
	}
	if len(positions) < 3 {
		t.Errorf("the recipients' slots were always at positions %v", positions)
	}
}
