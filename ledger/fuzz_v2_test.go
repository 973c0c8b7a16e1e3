package ledger

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"reflect"
	"testing"
)

// Every decoder of untrusted v2 bytes is fuzzed with the same property:
// whatever it accepts, the matching encoder writes back byte for byte.

func FuzzDecodeStatement(f *testing.F) {
	salt := fixedSalt(1)
	for _, s := range sampleV2Bodies(f, salt) {
		st, err := NewStatement(testAuthor, s.org, salt, s.body)
		if err != nil {
			f.Fatal(err)
		}
		b, err := EncodeStatement(st)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"consent.revoked","v":2,"author":"","org":"","salt":"","body":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fastAgrees(t, b, func(b []byte) (any, bool) { return decodeStatementFast(b) },
			func(b []byte) (any, error) { return decodeStatementJSON(b) })
		st, err := DecodeStatement(b)
		if err != nil {
			return
		}
		again, err := EncodeStatement(st)
		if err != nil {
			t.Fatalf("DecodeStatement accepted %q but EncodeStatement fails: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("DecodeStatement accepted a non-canonical encoding:\n in %q\nout %q", b, again)
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	_, header, _, _ := validEncodings(f)
	f.Add(header)
	e := newSignedEntry(f, testV2Signer(f), testAtts)
	f.Add(e.header)
	f.Add([]byte(`{"type":"x","v":2,"author":"","org":"","commitment":"","sig":"","att":""}`))
	pub := testV2Signer(f).Public()
	f.Fuzz(func(t *testing.T, b []byte) {
		fastAgrees(t, b, func(b []byte) (any, bool) { return decodeHeaderFast(b) },
			func(b []byte) (any, error) { return decodeHeaderJSON(b) })
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		again, err := EncodeHeader(h)
		if err != nil {
			t.Fatalf("DecodeHeader accepted %q but EncodeHeader fails: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("DecodeHeader accepted a non-canonical encoding:\n in %q\nout %q", b, again)
		}
		// Verification never panics; it succeeds only for the seeds.
		if err := VerifyHeader(h, pub); err == nil && !bytes.Equal(b, header) && !bytes.Equal(b, e.header) {
			t.Fatalf("a header the signer never signed verifies: %q", b)
		}
	})
}

func FuzzDecodeLeaf(f *testing.F) {
	_, _, leaf, _ := validEncodings(f)
	f.Add(leaf)
	f.Add([]byte(`{"v":2,"type":"access.decided","time":"2026-01-01T00:00:00.000000000Z","seal":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fastAgrees(t, b, func(b []byte) (any, bool) { return decodeLeafFast(b) },
			func(b []byte) (any, error) { return decodeLeafJSON(b) })
		l, err := DecodeLeaf(b)
		if err != nil {
			return
		}
		again, err := EncodeLeaf(l)
		if err != nil {
			t.Fatalf("DecodeLeaf accepted %q but EncodeLeaf fails: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("DecodeLeaf accepted a non-canonical encoding:\n in %q\nout %q", b, again)
		}
	})
}

func FuzzDecodeOpening(f *testing.F) {
	_, _, _, opening := validEncodings(f)
	f.Add(opening)
	e := newSignedEntry(f, testV2Signer(f), testAtts)
	if b, err := EncodeOpening(e.o); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeOpening(b)
		if err != nil {
			return
		}
		again, err := EncodeOpening(o)
		if err != nil {
			t.Fatalf("DecodeOpening accepted %q but EncodeOpening fails: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("DecodeOpening accepted a non-canonical encoding:\n in %q\nout %q", b, again)
		}
	})
}

// FuzzOpenSealed feeds arbitrary bytes to the trial open. Nothing may
// panic, and whatever opens must be an opening bound to the commitment
// the JWE names, which only the seeds are.
func FuzzOpenSealed(f *testing.F) {
	e := newSignedEntry(f, testV2Signer(f), testAtts)
	// Fixed keys: fuzz workers must open the seeds the coordinator made.
	var privs []*ecdh.PrivateKey
	var pubs []*ecdh.PublicKey
	for i := range 3 {
		k, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{byte(i + 1)}, 32))
		if err != nil {
			f.Fatal(err)
		}
		privs, pubs = append(privs, k), append(pubs, k.PublicKey())
	}
	for _, n := range []int{1, 3} {
		sealed, err := SealOpening(e.o, e.h, pubs[:n])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed)
	}
	f.Add([]byte(`{"protected":"eyJlbmMiOiJBMjU2R0NNIn0","recipients":[],"aad":"","iv":"","ciphertext":"","tag":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fastAgrees(t, b, func(b []byte) (any, bool) { return parseSealedFast(b) },
			func(b []byte) (any, error) { return parseSealedJSON(b) })
		for _, k := range []*ecdh.PrivateKey{privs[0], privs[2]} {
			o, err := OpenSealed(b, k)
			if err != nil {
				if !errors.Is(err, ErrNotRecipient) && !errors.Is(err, ErrBadSealed) && !errors.Is(err, ErrTooLarge) &&
					!errors.Is(err, ErrCommitmentMismatch) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNonCanonical) &&
					!errors.Is(err, ErrUnknownType) {
					t.Fatalf("OpenSealed: unexpected error kind: %v", err)
				}
				continue
			}
			if _, err := CheckOpening(o, e.h); err != nil {
				t.Fatalf("OpenSealed returned an opening that does not open the only header sealed to this key: %v", err)
			}
			if err := CheckSealed(b, e.h); err != nil {
				t.Fatalf("OpenSealed opened what CheckSealed refuses: %v", err)
			}
		}
	})
}

// fastAgrees fails t if a decoder's fast path accepts b and its
// encoding/json path does not, or decodes it to another value (see
// fastcodec.go).
func fastAgrees(t *testing.T, b []byte, fast func([]byte) (any, bool), slow func([]byte) (any, error)) {
	t.Helper()
	got, ok := fast(b)
	if !ok {
		return
	}
	want, err := slow(b)
	if err != nil {
		t.Fatalf("the fast path accepts %q, the JSON path refuses it: %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: fast path %+v, JSON path %+v", b, got, want)
	}
}
