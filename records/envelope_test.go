package records

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func testKEK(t testing.TB, org string, version int) KEK {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	k, err := NewKEK(org, version, key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testBinding() binding {
	return binding{
		format:       FormatVersion,
		id:           "3f1c1f0e-7c55-4d3e-9a43-6a8f0e6c2b11",
		holder:       "hosp-a",
		patient:      "ps_0123",
		category:     "labs",
		contentType:  FHIRContentType,
		resourceType: "Observation",
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	kek := testKEK(t, "hosp-a", 1)
	for _, n := range []int{1, 100, 4096, 1 << 20} {
		pt := make([]byte, n)
		if _, err := rand.Read(pt); err != nil {
			t.Fatal(err)
		}
		s, err := seal(kek, testBinding(), pt)
		if err != nil {
			t.Fatalf("seal %d bytes: %v", n, err)
		}
		if got, want := len(s.ciphertext), n+28; got != want {
			t.Errorf("ciphertext of %d bytes is %d bytes, want %d (nonce+tag overhead)", n, got, want)
		}
		if bytes.Contains(s.ciphertext, pt[:min(n, 64)]) && n >= 16 {
			t.Errorf("ciphertext contains the plaintext")
		}
		got, err := open(kek, testBinding(), s.wrappedKey, s.ciphertext)
		if err != nil {
			t.Fatalf("open %d bytes: %v", n, err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("open %d bytes: plaintext differs", n)
		}
	}
}

func TestSealFreshKeysAndNonces(t *testing.T) {
	kek := testKEK(t, "hosp-a", 1)
	pt := []byte("same content")
	a, err := seal(kek, testBinding(), pt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := seal(kek, testBinding(), pt)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.ciphertext, b.ciphertext) || bytes.Equal(a.wrappedKey, b.wrappedKey) {
		t.Fatal("two seals of the same content are equal: data keys or nonces are reused")
	}
	// Each data key is its own: a's key does not open b's content.
	dekA, err := unwrap(kek, FormatVersion, testBinding().id, a.wrappedKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(kek, testBinding(), a.wrappedKey, b.ciphertext); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a's data key opened b's content: err = %v", err)
	}
	clear(dekA)
}

// TestOpenTampered: every way a stored record can be altered is an
// ErrDecrypt, never plaintext, never a panic.
func TestOpenTampered(t *testing.T) {
	// The same key bytes under another version or org must not work
	// either: the wrap is bound to org and version, not just the key.
	kek := mustKEK(t, "hosp-a", 1, sharedKey)
	sameKeyV2 := mustKEK(t, "hosp-a", 2, sharedKey)
	otherOrgKEK := mustKEK(t, "hosp-b", 1, sharedKey)
	otherKEK := testKEK(t, "hosp-a", 1)
	pt := []byte(`{"resourceType":"Observation","valueQuantity":{"value":7.1}}`)
	s, err := seal(kek, testBinding(), pt)
	if err != nil {
		t.Fatal(err)
	}
	const otherID = "0b9a2d7e-1111-4c2b-8f7e-5f2a9c1d3e4f"
	otherB := testBinding()
	otherB.id = otherID
	other, err := seal(kek, otherB, pt)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		if i < 0 {
			i += len(c)
		}
		c[i] ^= 0x01
		return c
	}
	with := func(f func(*binding)) binding {
		b := testBinding()
		f(&b)
		return b
	}
	tests := []struct {
		name    string
		kek     KEK
		b       binding
		wrapped []byte
		ct      []byte
	}{
		{"ciphertext nonce byte", kek, testBinding(), s.wrappedKey, flip(s.ciphertext, 0)},
		{"ciphertext body byte", kek, testBinding(), s.wrappedKey, flip(s.ciphertext, 20)},
		{"ciphertext tag byte", kek, testBinding(), s.wrappedKey, flip(s.ciphertext, -1)},
		{"ciphertext truncated", kek, testBinding(), s.wrappedKey, s.ciphertext[:len(s.ciphertext)-1]},
		{"ciphertext shorter than a nonce", kek, testBinding(), s.wrappedKey, s.ciphertext[:5]},
		{"ciphertext empty", kek, testBinding(), s.wrappedKey, nil},
		{"ciphertext appended to", kek, testBinding(), s.wrappedKey, append(bytes.Clone(s.ciphertext), 0)},
		{"wrapped key byte", kek, testBinding(), flip(s.wrappedKey, 15), s.ciphertext},
		{"wrapped key truncated", kek, testBinding(), s.wrappedKey[:40], s.ciphertext},
		{"wrapped key empty", kek, testBinding(), nil, s.ciphertext},
		{"another record's ciphertext", kek, testBinding(), s.wrappedKey, other.ciphertext},
		{"another record's ciphertext and key", kek, testBinding(), other.wrappedKey, other.ciphertext},
		{"wrong KEK", otherKEK, testBinding(), s.wrappedKey, s.ciphertext},
		{"wrong key version (same key bytes)", sameKeyV2, testBinding(), s.wrappedKey, s.ciphertext},
		{"other org's KEK (same key bytes)", otherOrgKEK, with(func(b *binding) { b.holder = "hosp-b" }), s.wrappedKey, s.ciphertext},
		{"other record ID", kek, with(func(b *binding) { b.id = otherID }), s.wrappedKey, s.ciphertext},
		{"other patient", kek, with(func(b *binding) { b.patient = "ps_9999" }), s.wrappedKey, s.ciphertext},
		{"other category", kek, with(func(b *binding) { b.category = "demographics" }), s.wrappedKey, s.ciphertext},
		{"other content type", kek, with(func(b *binding) { b.contentType = "application/pdf" }), s.wrappedKey, s.ciphertext},
		{"other resource type", kek, with(func(b *binding) { b.resourceType = "Patient" }), s.wrappedKey, s.ciphertext},
		{"other format", kek, with(func(b *binding) { b.format = 2 }), s.wrappedKey, s.ciphertext},
		{"zero KEK", KEK{}, testBinding(), s.wrappedKey, s.ciphertext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := open(tt.kek, tt.b, tt.wrapped, tt.ct)
			if err == nil {
				t.Fatal("open succeeded")
			}
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrNoKey) {
				t.Errorf("err = %v, want ErrDecrypt", err)
			}
			if got != nil {
				t.Errorf("open returned %d bytes with the error", len(got))
			}
		})
	}
}

func mustKEK(t testing.TB, org string, version int, key []byte) KEK {
	t.Helper()
	k, err := NewKEK(org, version, key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var sharedKey = bytes.Repeat([]byte{0x42}, KeySize)

func TestSealRefusesOtherOrgsKEK(t *testing.T) {
	kek := testKEK(t, "hosp-b", 1)
	if _, err := seal(kek, testBinding(), []byte("x")); !errors.Is(err, ErrBadKey) {
		t.Fatalf("seal with hosp-b's KEK for a hosp-a record: err = %v, want ErrBadKey", err)
	}
	if _, err := seal(KEK{}, testBinding(), []byte("x")); !errors.Is(err, ErrNoKey) {
		t.Fatalf("seal with zero KEK: err = %v, want ErrNoKey", err)
	}
}

func TestRewrap(t *testing.T) {
	v1 := testKEK(t, "hosp-a", 1)
	v2 := testKEK(t, "hosp-a", 2)
	b := testBinding()
	pt := []byte("content")
	s, err := seal(v1, b, pt)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := rewrap(v1, v2, FormatVersion, b.id, s.wrappedKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := open(v2, b, w2, s.ciphertext)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open after rewrap: %q, %v", got, err)
	}
	if _, err := open(v1, b, w2, s.ciphertext); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("old KEK opens the re-wrapped key: err = %v", err)
	}
	if _, err := rewrap(v2, v1, FormatVersion, b.id, s.wrappedKey); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("rewrap from the wrong version: err = %v, want ErrDecrypt", err)
	}
}

func TestNewKEK(t *testing.T) {
	tests := []struct {
		name    string
		org     string
		version int
		key     []byte
		ok      bool
	}{
		{"ok", "hosp-a", 1, make([]byte, 32), true},
		{"short key", "hosp-a", 1, make([]byte, 16), false},
		{"long key", "hosp-a", 1, make([]byte, 33), false},
		{"version 0", "hosp-a", 0, make([]byte, 32), false},
		{"path in org", "../etc", 1, make([]byte, 32), false},
		{"upper-case org", "Hosp-A", 1, make([]byte, 32), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := NewKEK(tt.org, tt.version, tt.key)
			if got := err == nil; got != tt.ok {
				t.Fatalf("NewKEK ok = %v (%v), want %v", got, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadKey) {
				t.Errorf("err = %v, want ErrBadKey", err)
			}
			if tt.ok && k.String() != "kek(hosp-a v1)" {
				t.Errorf("String = %q", k.String())
			}
		})
	}
}

// FuzzOpen: arbitrary stored bytes never panic and never open.
func FuzzOpen(f *testing.F) {
	kek := mustKEK(f, "hosp-a", 1, sharedKey)
	s, err := seal(kek, testBinding(), []byte("hello"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.wrappedKey, s.ciphertext)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, wrapped, ct []byte) {
		// Only records sealed under this KEK (the seeds; each fuzz
		// worker's seal differs) may open, and they hold "hello"; a
		// mutation that forges a GCM tag is infeasible.
		pt, err := open(kek, testBinding(), wrapped, ct)
		if err != nil {
			if pt != nil {
				t.Fatalf("plaintext returned with an error: %q", pt)
			}
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("err = %v, want ErrDecrypt", err)
			}
			return
		}
		if string(pt) != "hello" {
			t.Fatalf("forged record opened: %q", pt)
		}
	})
}
