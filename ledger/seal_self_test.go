package ledger

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
)

// sealedSlots returns the slot headers of a sealed opening (the
// protected header's slot parameters for the flattened serialization).
func sealedSlots(t testing.TB, sealed []byte) []wireSlotHeader {
	t.Helper()
	var w wireSealed
	if err := json.Unmarshal(sealed, &w); err != nil {
		t.Fatal(err)
	}
	if w.Recipients == nil {
		pb, err := base64.RawURLEncoding.DecodeString(w.Protected)
		if err != nil {
			t.Fatal(err)
		}
		var p wireProtected
		if err := json.Unmarshal(pb, &p); err != nil {
			t.Fatal(err)
		}
		return []wireSlotHeader{{Alg: p.Alg, EPK: p.EPK}}
	}
	out := make([]wireSlotHeader, len(w.Recipients))
	for i, r := range w.Recipients {
		out[i] = *r.Header
	}
	return out
}

// TestSealSelfSlot: WithSelf seals the author's own slot as a standard
// A256KW recipient under SelfKEK (jwx decrypts it with that key), the
// other recipients keep their ECDH-ES slots, and OpenSealed opens it with
// the author's sealing key, alone, among others and among dummies.
func TestSealSelfSlot(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), testAtts)
	plain, err := EncodeOpening(e.o)
	if err != nil {
		t.Fatal(err)
	}
	for len(plain)%sealPadBlock != 0 {
		plain = append(plain, ' ')
	}
	outsider, err := NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ others, min int }{{0, 0}, {1, 0}, {4, 0}, {2, 8}} {
		selfs, _ := sealKeys(t, 1)
		self := selfs[0]
		privs, pubs := sealKeys(t, tc.others)
		sealed, err := SealOpening(e.o, e.h, pubs, WithSelf(self), WithMinRecipients(tc.min))
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if err := CheckSealed(sealed, e.h); err != nil {
			t.Errorf("%+v: CheckSealed: %v", tc, err)
		}
		if _, ok := parseSealedFast(sealed); !ok {
			t.Errorf("%+v: the fast path declines a sealed opening with a self slot", tc)
		}
		slots := sealedSlots(t, sealed)
		if want := max(tc.min, tc.others+1); len(slots) != want {
			t.Errorf("%+v: %d slots, want %d", tc, len(slots), want)
		}
		selfSlots := 0
		for _, s := range slots {
			switch s.Alg {
			case jweSelfAlg:
				selfSlots++
				if s.EPK != nil {
					t.Errorf("%+v: the self slot has an epk", tc)
				}
			case jweAlg:
				if s.EPK == nil {
					t.Errorf("%+v: an ECDH-ES slot without an epk", tc)
				}
			default:
				t.Errorf("%+v: slot alg %q", tc, s.Alg)
			}
		}
		if selfSlots != 1 {
			t.Errorf("%+v: %d self slots, want 1", tc, selfSlots)
		}

		// The author opens it, as does every other recipient; an
		// outsider does not.
		for i, k := range append([]*ecdh.PrivateKey{self}, privs...) {
			o, err := OpenSealed(sealed, k)
			if err != nil {
				t.Fatalf("%+v: recipient %d: %v", tc, i, err)
			}
			if _, err := CheckOpening(o, e.h); err != nil {
				t.Errorf("%+v: recipient %d: %v", tc, i, err)
			}
		}
		if _, err := OpenSealed(sealed, outsider); !errors.Is(err, ErrNotRecipient) {
			t.Errorf("%+v: outsider: %v, want ErrNotRecipient", tc, err)
		}

		// The self slot is a standard A256KW recipient: jwx decrypts it
		// with SelfKEK, and the author's key opens no ECDH-ES slot.
		kek, err := SelfKEK(self)
		if err != nil {
			t.Fatal(err)
		}
		got, err := jwe.Decrypt(sealed, jwe.WithKey(jwa.A256KW(), kek), jwe.WithMaxRecipients(MaxRecipients))
		if err != nil {
			t.Fatalf("%+v: jwx does not decrypt the self slot: %v", tc, err)
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("%+v: jwx decrypted %q, want %q", tc, got, plain)
		}
		if _, err := jwe.Decrypt(sealed, jwe.WithKey(jwa.ECDH_ES_A256KW(), self), jwe.WithMaxRecipients(MaxRecipients)); err == nil {
			t.Errorf("%+v: the author's key opens an ECDH-ES slot: it was sealed to twice", tc)
		}
		for i, k := range privs {
			if _, err := jwe.Decrypt(sealed, jwe.WithKey(jwa.ECDH_ES_A256KW(), k), jwe.WithMaxRecipients(MaxRecipients)); err != nil {
				t.Errorf("%+v: jwx does not decrypt recipient %d's slot: %v", tc, i, err)
			}
		}
		// Another key's self slot key opens nothing.
		if other, err := SelfKEK(outsider); err != nil {
			t.Fatal(err)
		} else if _, err := jwe.Decrypt(sealed, jwe.WithKey(jwa.A256KW(), other), jwe.WithMaxRecipients(MaxRecipients)); err == nil {
			t.Errorf("%+v: another key's self-slot key decrypts", tc)
		}

		// Alone, it is laid out exactly as jwx lays out a flattened
		// A256KW JWE.
		if tc.others == 0 && tc.min == 0 {
			ref, err := jwe.Encrypt(plain, jwe.WithJSON(), jwe.WithContentEncryption(jwa.A256GCM()),
				jwe.WithAuthenticateData(e.h.Commitment[:]), jwe.WithLegacyHeaderMerging(false),
				jwe.WithKey(jwa.A256KW(), kek))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := jweShape(t, sealed), jweShape(t, ref); got != want {
				t.Errorf("self slot alone: layout differs from jwx's:\n got %s\nwant %s", got, want)
			}
			if err := CheckSealed(ref, e.h); err != nil {
				t.Errorf("CheckSealed(jwx's flattened A256KW output) = %v", err)
			}
			if o, err := OpenSealed(ref, self); err != nil {
				t.Errorf("OpenSealed(jwx's flattened A256KW output) = %v", err)
			} else if _, err := CheckOpening(o, e.h); err != nil {
				t.Error(err)
			}
		}
	}
}

// TestSealSelfRejects: the self slot's key cannot also be an ECDH-ES
// recipient, a sealed opening has at most one self slot and that slot
// carries no epk, and an altered self slot does not open.
func TestSealSelfRejects(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), nil)
	privs, pubs := sealKeys(t, 3)
	self := privs[0]
	if _, err := SealOpening(e.o, e.h, pubs, WithSelf(self)); !errors.Is(err, ErrBadSealKey) {
		t.Errorf("self key among the recipients: %v, want ErrBadSealKey", err)
	}
	p256, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SealOpening(e.o, e.h, pubs[1:], WithSelf(p256)); !errors.Is(err, ErrBadSealKey) {
		t.Errorf("a P-256 self key: %v, want ErrBadSealKey", err)
	}
	if _, err := SelfKEK(nil); !errors.Is(err, ErrBadSealKey) {
		t.Errorf("SelfKEK(nil) = %v", err)
	}
	_, many := sealKeys(t, MaxRecipients)
	if _, err := SealOpening(e.o, e.h, many, WithSelf(self)); !errors.Is(err, ErrBadSealKey) {
		t.Errorf("%d recipients and a self slot: %v, want ErrBadSealKey", MaxRecipients, err)
	}

	sealed, err := SealOpening(e.o, e.h, pubs[1:], WithSelf(self))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AAD        string            `json:"aad"`
		Ciphertext string            `json:"ciphertext"`
		IV         string            `json:"iv"`
		Protected  string            `json:"protected"`
		Recipients []json.RawMessage `json:"recipients"`
		Tag        string            `json:"tag"`
	}
	if err := json.Unmarshal(sealed, &doc); err != nil {
		t.Fatal(err)
	}
	selfAt := -1
	for i, r := range doc.Recipients {
		if strings.Contains(string(r), `"alg":"A256KW"}`) {
			selfAt = i
		}
	}
	if selfAt < 0 {
		t.Fatalf("no self slot in %s", sealed)
	}
	with := func(slots []json.RawMessage) []byte {
		d := doc
		d.Recipients = slots
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Re-encoded with encoding/json, the original still checks and opens.
	if err := CheckSealed(with(doc.Recipients), e.h); err != nil {
		t.Fatalf("re-encoded: %v", err)
	}
	other := doc.Recipients[(selfAt+1)%len(doc.Recipients)]
	twice := append([]json.RawMessage{doc.Recipients[selfAt]}, doc.Recipients...)
	var withEPK json.RawMessage
	{
		var epk struct {
			Header struct {
				EPK json.RawMessage `json:"epk"`
			} `json:"header"`
		}
		if err := json.Unmarshal(other, &epk); err != nil {
			t.Fatal(err)
		}
		withEPK = json.RawMessage(strings.Replace(string(doc.Recipients[selfAt]), `"alg":"A256KW"}`, `"alg":"A256KW","epk":`+string(epk.Header.EPK)+`}`, 1))
	}
	epkSlots := append([]json.RawMessage(nil), doc.Recipients...)
	epkSlots[selfAt] = withEPK
	for name, b := range map[string][]byte{"two self slots": with(twice), "a self slot with an epk": with(epkSlots)} {
		if err := CheckSealed(b, e.h); !errors.Is(err, ErrBadSealed) {
			t.Errorf("%s: CheckSealed = %v, want ErrBadSealed", name, err)
		}
		if _, ok := parseSealedFast(b); ok {
			t.Errorf("%s: the fast path accepts it", name)
		}
		if _, err := OpenSealed(b, self); !errors.Is(err, ErrBadSealed) {
			t.Errorf("%s: OpenSealed = %v, want ErrBadSealed", name, err)
		}
	}

	// The self slot's wrapped key altered: the author's key no longer
	// opens it (the unwrap's integrity check); the others still do.
	var slot struct {
		Header       json.RawMessage `json:"header"`
		EncryptedKey string          `json:"encrypted_key"`
	}
	if err := json.Unmarshal(doc.Recipients[selfAt], &slot); err != nil {
		t.Fatal(err)
	}
	ek, err := base64.RawURLEncoding.DecodeString(slot.EncryptedKey)
	if err != nil {
		t.Fatal(err)
	}
	ek[3] ^= 1
	slot.EncryptedKey = base64.RawURLEncoding.EncodeToString(ek)
	altered := append([]json.RawMessage(nil), doc.Recipients...)
	if altered[selfAt], err = json.Marshal(slot); err != nil {
		t.Fatal(err)
	}
	b := with(altered)
	if err := CheckSealed(b, e.h); err != nil {
		t.Fatalf("altered wrapped key: CheckSealed = %v (the shape is unchanged)", err)
	}
	if _, err := OpenSealed(b, self); !errors.Is(err, ErrNotRecipient) {
		t.Errorf("altered self slot: OpenSealed = %v, want ErrNotRecipient", err)
	}
	if _, err := OpenSealed(b, privs[1]); err != nil {
		t.Errorf("altered self slot: another recipient: %v", err)
	}
}

// TestSelfKEK: the self slot's key is a function of the sealing key
// alone, differs between keys and is not the key itself.
func TestSelfKEK(t *testing.T) {
	privs, _ := sealKeys(t, 2)
	a1, err := SelfKEK(privs[0])
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := SelfKEK(privs[0])
	b, _ := SelfKEK(privs[1])
	if len(a1) != jweKEKSize {
		t.Fatalf("%d bytes", len(a1))
	}
	if !bytes.Equal(a1, a2) {
		t.Error("SelfKEK is not deterministic")
	}
	if bytes.Equal(a1, b) {
		t.Error("two sealing keys have one self-slot key")
	}
	if bytes.Equal(a1, privs[0].Bytes()) {
		t.Error("the self-slot key is the sealing key")
	}
}
