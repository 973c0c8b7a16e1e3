package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// signedEntry is one entry in all its layers.
type signedEntry struct {
	stmt   []byte
	h      Header
	header []byte
	l      Leaf
	leaf   []byte
	o      Opening
}

func newSignedEntry(t testing.TB, s *Signer, atts []Attestation) signedEntry {
	t.Helper()
	return newSignedEntryWithSalt(t, s, atts, fixedSalt(9))
}

// newOtherEntry returns an entry whose statement differs from
// newSignedEntry's.
func newOtherEntry(t testing.TB, s *Signer, atts []Attestation) signedEntry {
	t.Helper()
	return newSignedEntryWithSalt(t, s, atts, fixedSalt(10))
}

func newSignedEntryWithSalt(t testing.TB, s *Signer, atts []Attestation, salt Salt) signedEntry {
	t.Helper()
	// Deterministic (Ed25519 signatures are): fuzz workers rebuild the
	// same entry.
	j := Justification{Salt: fixedSalt(11), Reason: "patient unconscious"}
	stmt, err := s.Statement("org-a", salt, &AccessDecidedV2{Requester: "org-b", RecordID: "r1", Patient: testRef(t, "p", salt),
		Category: "lab", Purpose: "ETREAT", Decision: "permit", Reason: "permit.break-glass", BreakGlass: true,
		JustificationCommitment: j.Commitment().String(), RequestID: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	h, l, err := s.Sign(stmt, atts)
	if err != nil {
		t.Fatal(err)
	}
	l.Time = testLeafTime
	header, err := EncodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := EncodeLeaf(l)
	if err != nil {
		t.Fatal(err)
	}
	return signedEntry{stmt: stmt, h: h, header: header, l: l, leaf: leaf,
		o: Opening{Statement: stmt, Attestations: atts, Justification: &j}}
}

var testAtts = []Attestation{{Kind: AttestationWebAuthn, CredentialID: "Y3JlZA", AuthenticatorData: "YXV0aA",
	ClientDataJSON: "e30", Signature: "c2ln"}}

func TestSignVerify(t *testing.T) {
	s := testV2Signer(t)
	for _, atts := range [][]Attestation{nil, testAtts} {
		e := newSignedEntry(t, s, atts)
		if err := VerifyHeader(e.h, s.Public()); err != nil {
			t.Errorf("VerifyHeader: %v", err)
		}
		if err := CheckLeaf(e.l, e.h); err != nil {
			t.Errorf("CheckLeaf: %v", err)
		}
		st, err := CheckOpening(e.o, e.h)
		if err != nil {
			t.Fatalf("CheckOpening: %v", err)
		}
		if st.Org != "org-a" || st.Body.(*AccessDecidedV2).RecordID != "r1" {
			t.Errorf("statement %+v", st)
		}
		st, err = CheckEntry(7, e.leaf, e.header, s.Public(), &e.o)
		if err != nil || st.Type != TypeAccessDecided {
			t.Errorf("CheckEntry = %+v, %v", st, err)
		}
		if _, err := CheckEntry(7, e.leaf, e.header, s.Public(), nil); err != nil {
			t.Errorf("CheckEntry without opening: %v", err)
		}
	}
}

func TestNewSignerRejects(t *testing.T) {
	if _, err := NewSigner("Not A Gateway", testNodeKey(1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad author: %v", err)
	}
	if _, err := NewSigner(testAuthor, nil); !errors.Is(err, ErrBadNodeKey) {
		t.Errorf("nil key: %v", err)
	}
	s := testV2Signer(t)
	other, err := NewSigner("gw-b", testNodeKey(2))
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := s.Statement(OrgPatient, fixedSalt(1), &ConsentRevokedV2{ConsentID: "c", Patient: testRef(t, "p", fixedSalt(1))})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Sign(stmt, nil); !errors.Is(err, ErrStatementMismatch) {
		t.Errorf("signing another gateway's statement: %v", err)
	}
	if _, _, err := s.Sign(append(stmt, ' '), nil); !errors.Is(err, ErrNonCanonical) {
		t.Errorf("signing a non-canonical statement: %v", err)
	}
	if err := VerifyHeader(Header{}, []byte{1, 2}); !errors.Is(err, ErrBadNodeKey) {
		t.Errorf("VerifyHeader with a short key: %v", err)
	}
}

// TestTamper changes one thing at a time and checks that the right check
// catches it with the right error.
func TestTamper(t *testing.T) {
	s := testV2Signer(t)
	e := newSignedEntry(t, s, testAtts)

	t.Run("every byte of the statement", func(t *testing.T) {
		for i := range e.stmt {
			o := e.o
			o.Statement = bytes.Clone(e.stmt)
			o.Statement[i] ^= 0x01
			if _, err := CheckOpening(o, e.h); !errors.Is(err, ErrCommitmentMismatch) {
				t.Fatalf("byte %d: CheckOpening = %v, want ErrCommitmentMismatch", i, err)
			}
		}
	})
	t.Run("salt", func(t *testing.T) {
		st, err := DecodeStatement(e.stmt)
		if err != nil {
			t.Fatal(err)
		}
		st.Salt[0] ^= 1
		b, err := EncodeStatement(st)
		if err != nil {
			t.Fatal(err)
		}
		o := e.o
		o.Statement = b
		if _, err := CheckOpening(o, e.h); !errors.Is(err, ErrCommitmentMismatch) {
			t.Errorf("CheckOpening = %v, want ErrCommitmentMismatch", err)
		}
	})
	t.Run("attestations", func(t *testing.T) {
		o := e.o
		o.Attestations = nil
		if _, err := CheckOpening(o, e.h); !errors.Is(err, ErrAttestationMismatch) {
			t.Errorf("stripped: CheckOpening = %v, want ErrAttestationMismatch", err)
		}
		o.Attestations = []Attestation{testAtts[0]}
		o.Attestations[0].Signature = "c2lh"
		if _, err := CheckOpening(o, e.h); !errors.Is(err, ErrAttestationMismatch) {
			t.Errorf("changed: CheckOpening = %v, want ErrAttestationMismatch", err)
		}
	})
	t.Run("justification", func(t *testing.T) {
		o := e.o
		j := *e.o.Justification
		j.Reason = "patient unconscious!"
		o.Justification = &j
		if _, err := CheckOpening(o, e.h); !errors.Is(err, ErrJustificationMismatch) {
			t.Errorf("reason: CheckOpening = %v, want ErrJustificationMismatch", err)
		}
		j = *e.o.Justification
		j.Salt[3] ^= 1
		if _, err := CheckOpening(o, e.h); !errors.Is(err, ErrJustificationMismatch) {
			t.Errorf("salt: CheckOpening = %v, want ErrJustificationMismatch", err)
		}
		if _, err := CheckOpening(e.o.WithoutJustification(), e.h); err != nil {
			t.Errorf("without justification: %v", err)
		}
	})
	t.Run("header fields", func(t *testing.T) {
		for name, f := range map[string]func(*Header){
			"type":       func(h *Header) { h.Type = TypeConsentGranted },
			"author":     func(h *Header) { h.Author = "gw-b" },
			"org":        func(h *Header) { h.Org = "org-b" },
			"commitment": func(h *Header) { h.Commitment[5] ^= 1 },
			"att":        func(h *Header) { h.Att = Digest{} },
			"signature":  func(h *Header) { h.Sig[63] ^= 0x80 },
		} {
			h := e.h
			f(&h)
			if err := VerifyHeader(h, s.Public()); !errors.Is(err, ErrBadEntrySignature) || !errors.Is(err, ErrBadSignature) {
				t.Errorf("%s: VerifyHeader = %v, want ErrBadEntrySignature", name, err)
			}
			want := ErrSealMismatch
			if name == "type" {
				want = ErrLeafMismatch
			}
			if err := CheckLeaf(e.l, h); !errors.Is(err, want) {
				t.Errorf("%s: CheckLeaf = %v, want %v", name, err, want)
			}
		}
		h := e.h
		h.Version = 3
		if err := VerifyHeader(h, s.Public()); !errors.Is(err, ErrMalformed) {
			t.Errorf("version: VerifyHeader = %v", err)
		}
	})
	t.Run("every byte of the signature", func(t *testing.T) {
		for i := range e.h.Sig {
			h := e.h
			h.Sig[i] ^= 0x04
			if err := VerifyHeader(h, s.Public()); !errors.Is(err, ErrBadEntrySignature) {
				t.Fatalf("byte %d: VerifyHeader = %v", i, err)
			}
		}
	})
	t.Run("another key", func(t *testing.T) {
		if err := VerifyHeader(e.h, testNodeKey(2).Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadEntrySignature) {
			t.Errorf("VerifyHeader = %v", err)
		}
	})
	t.Run("header signed over a statement of another org", func(t *testing.T) {
		// The author signs a header whose org is not the statement's:
		// the signature holds, the opening does not.
		h := e.h
		h.Org = "org-b"
		copy(h.Sig[:], ed25519.Sign(testNodeKey(1), SignatureMessage(h)))
		if err := VerifyHeader(h, s.Public()); err != nil {
			t.Fatal(err)
		}
		if _, err := CheckOpening(e.o, h); !errors.Is(err, ErrStatementMismatch) {
			t.Errorf("CheckOpening = %v, want ErrStatementMismatch", err)
		}
	})
	t.Run("seal", func(t *testing.T) {
		l := e.l
		l.Seal[0] ^= 1
		if err := CheckLeaf(l, e.h); !errors.Is(err, ErrSealMismatch) {
			t.Errorf("CheckLeaf = %v, want ErrSealMismatch", err)
		}
	})
	t.Run("leaf type", func(t *testing.T) {
		l := e.l
		l.Type = TypeRecordRegistered
		if err := CheckLeaf(l, e.h); !errors.Is(err, ErrLeafMismatch) {
			t.Errorf("CheckLeaf = %v, want ErrLeafMismatch", err)
		}
	})
	t.Run("leaf time", func(t *testing.T) {
		// Time is bound by the tree: a leaf with another time is not the
		// one the checkpoint covers.
		leaves := [][]byte{[]byte("leaf 0"), e.leaf, []byte("leaf 2")}
		hr, root := testTree(t, leaves)
		p, err := InclusionProof(context.Background(), hr, 1, uint64(len(leaves)))
		if err != nil {
			t.Fatal(err)
		}
		c := Checkpoint{Origin: "o", Size: uint64(len(leaves)), Hash: root}
		if err := VerifyInclusion(c, 1, e.leaf, p); err != nil {
			t.Fatalf("VerifyInclusion of the true leaf: %v", err)
		}
		l := e.l
		l.Time = l.Time.Add(time.Nanosecond)
		moved, err := EncodeLeaf(l)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckLeaf(l, e.h); err != nil {
			t.Fatalf("CheckLeaf does not cover time: %v", err)
		}
		if err := VerifyInclusion(c, 1, moved, p); err == nil {
			t.Error("a leaf with another time verified against the tree")
		}
	})
}

// testTree returns the RFC 6962 tree of leaves, built with tlog.
func testTree(t *testing.T, leaves [][]byte) (tlog.HashReader, tlog.Hash) {
	t.Helper()
	var stored []tlog.Hash
	for i, l := range leaves {
		hs, err := tlog.StoredHashes(int64(i), l, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for j, x := range idx {
				out[j] = stored[x]
			}
			return out, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for j, x := range idx {
			out[j] = stored[x]
		}
		return out, nil
	})
	root, err := tlog.TreeHash(int64(len(leaves)), hr)
	if err != nil {
		t.Fatal(err)
	}
	return hr, root
}

func TestCheckEntryNamesKindAndIndex(t *testing.T) {
	s := testV2Signer(t)
	e := newSignedEntry(t, s, testAtts)
	badSig := e.h
	badSig.Sig[0] ^= 1
	badSigHeader, err := EncodeHeader(badSig)
	if err != nil {
		t.Fatal(err)
	}
	badSigLeaf := e.l
	badSigLeaf.Seal = Seal(badSigHeader)
	badSigLeafBytes, err := EncodeLeaf(badSigLeaf)
	if err != nil {
		t.Fatal(err)
	}
	otherStmt := e.o
	otherStmt.Statement = bytes.Replace(e.stmt, []byte(`"req-1"`), []byte(`"req-2"`), 1)
	cases := []struct {
		name    string
		leaf    []byte
		header  []byte
		opening *Opening
		want    error
	}{
		{"leaf not canonical", append(bytes.Clone(e.leaf), ' '), e.header, nil, ErrNonCanonical},
		{"header not the sealed one", e.leaf, badSigHeader, nil, ErrSealMismatch},
		{"header not canonical", e.leaf, []byte(strings.Replace(string(e.header), ",", ", ", 1)), nil, ErrSealMismatch},
		{"bad signature", badSigLeafBytes, badSigHeader, nil, ErrBadEntrySignature},
		{"statement edited", e.leaf, e.header, &otherStmt, ErrCommitmentMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckEntry(42, tc.leaf, tc.header, s.Public(), tc.opening)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("CheckEntry = %v, want a *VerifyError", err)
			}
			if ve.Index != 42 || ve.Kind != tc.want || !errors.Is(err, tc.want) {
				t.Errorf("CheckEntry = %#v (%v), want kind %v at 42", ve, err, tc.want)
			}
			if !strings.Contains(err.Error(), "entry 42") {
				t.Errorf("error %q does not name the index", err)
			}
		})
	}
}
