package ledger

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Typical entries for the size report and the benchmarks: a permitted
// read under a grant and a consent grant, in v1 and v2.

func typicalAccessV1() Entry {
	return Entry{Type: TypeAccessDecided, Version: CurrentVersion, Org: "org-b", Time: testLeafTime, Body: &AccessDecided{
		Requester: "org-b", RecordID: "5f0c6f7e-3d8a-4c1e-9b7a-2f4e6d8c0a1b", Patient: "ps_" + strings.Repeat("3f", 32),
		Category: "lab", Purpose: "TREAT", Decision: "permit", Reason: "permit.grant", GrantID: "cns_" + strings.Repeat("a1", 16),
		RequestID: "01J9Z6Q7WQ3M5N8P2R4T6V8X0Z"}}
}

func typicalAccessV2(salt Salt) (string, any) {
	k, _ := PatientKey(testSecret, "patient-123")
	return "org-a", &AccessDecidedV2{
		Requester: "org-b", RecordID: "5f0c6f7e-3d8a-4c1e-9b7a-2f4e6d8c0a1b", Patient: PatientRef(k, salt),
		Category: "lab", Purpose: "TREAT", Decision: "permit", Reason: "permit.grant", GrantID: "cns_" + strings.Repeat("a1", 16),
		RequestID: "01J9Z6Q7WQ3M5N8P2R4T6V8X0Z", ClientRequestID: "emr-req-000123"}
}

var typicalPeriod = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

func typicalConsentV1() Entry {
	return Entry{Type: TypeConsentGranted, Version: CurrentVersion, Org: "patient:ps_" + strings.Repeat("3f", 32), Time: testLeafTime,
		Body: &ConsentGranted{ConsentID: "cns_" + strings.Repeat("a1", 16), Patient: "ps_" + strings.Repeat("3f", 32),
			Grantee: Grantee{Org: "org-b"}, Decision: "permit", Actions: []string{"read"}, Categories: []string{"lab", "imaging"},
			Purposes: []string{"TREAT"}, NotBefore: typicalPeriod, NotAfter: typicalPeriod.AddDate(1, 0, 0)}}
}

func typicalConsentV2(salt Salt) (string, any) {
	k, _ := PatientKey(testSecret, "patient-123")
	return OrgPatient, &ConsentGrantedV2{ConsentID: "cns_" + strings.Repeat("a1", 16), Patient: PatientRef(k, salt),
		Grantee: Grantee{Org: "org-b"}, Decision: "permit", Actions: []string{"read"}, Categories: []string{"lab", "imaging"},
		Purposes: []string{"TREAT"}, NotBefore: typicalPeriod, NotAfter: typicalPeriod.AddDate(1, 0, 0)}
}

type entrySizes struct {
	v1, statement, leaf, header, opening int
	sealed                               map[int]int // by recipients
}

func measureSizes(t testing.TB, v1 Entry, org string, body any, atts []Attestation) entrySizes {
	t.Helper()
	v1b, err := Encode(v1)
	if err != nil {
		t.Fatal(err)
	}
	salt, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	s := testV2Signer(t)
	stmt, err := s.Statement(org, salt, body)
	if err != nil {
		t.Fatal(err)
	}
	h, l, err := s.Sign(stmt, atts)
	if err != nil {
		t.Fatal(err)
	}
	l.Time = testLeafTime
	hb, err := EncodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := EncodeLeaf(l)
	if err != nil {
		t.Fatal(err)
	}
	o := Opening{Statement: stmt, Attestations: atts}
	ob, err := EncodeOpening(o)
	if err != nil {
		t.Fatal(err)
	}
	z := entrySizes{v1: len(v1b), statement: len(stmt), leaf: len(lb), header: len(hb), opening: len(ob), sealed: map[int]int{}}
	for _, n := range []int{1, 3, 5} {
		_, pubs := sealKeys(t, n)
		sealed, err := SealOpening(o, h, pubs)
		if err != nil {
			t.Fatal(err)
		}
		z.sealed[n] = len(sealed)
	}
	return z
}

// TestEntrySizes reports the bytes per entry of v1 and v2 and checks that
// the public leaf carries nothing of the body.
func TestEntrySizes(t *testing.T) {
	salt := fixedSalt(1)
	// A typical passkey assertion: 32-byte credential ID, 37 bytes of
	// authenticator data, ~135 bytes of client data, a 72-byte ECDSA
	// signature.
	webauthn := []Attestation{{Kind: AttestationWebAuthn, CredentialID: b64(make([]byte, 32)),
		AuthenticatorData: b64(make([]byte, 37)), ClientDataJSON: b64(make([]byte, 135)), Signature: b64(make([]byte, 72))}}
	for _, tc := range []struct {
		name string
		v1   Entry
		org  string
		body any
		atts []Attestation
	}{
		{"access.decided", typicalAccessV1(), "", nil, nil},
		{"consent.granted", typicalConsentV1(), "", nil, nil},
		{"consent.granted+passkey", typicalConsentV1(), "", nil, webauthn},
	} {
		switch tc.v1.Type {
		case TypeAccessDecided:
			tc.org, tc.body = typicalAccessV2(salt)
		default:
			tc.org, tc.body = typicalConsentV2(salt)
		}
		z := measureSizes(t, tc.v1, tc.org, tc.body, tc.atts)
		t.Logf("%-24s v1 %4d B | v2 public leaf %3d B, header %3d B, statement %4d B, opening %4d B, sealed to 1/3/5: %d/%d/%d B; stored v2 (leaf+header+sealed to 3) %d B",
			tc.name, z.v1, z.leaf, z.header, z.statement, z.opening, z.sealed[1], z.sealed[3], z.sealed[5],
			z.leaf+z.header+z.sealed[3])
		if z.leaf > 160 {
			t.Errorf("%s: public leaf of %d bytes", tc.name, z.leaf)
		}
	}
	// The public leaf names no org, record, patient or category.
	s := testV2Signer(t)
	org, body := typicalAccessV2(salt)
	_, _, l, err := s.NewEntry(org, salt, body)
	if err != nil {
		t.Fatal(err)
	}
	l.Time = testLeafTime
	lb, err := EncodeLeaf(l)
	if err != nil {
		t.Fatal(err)
	}
	ad := body.(*AccessDecidedV2)
	for _, secret := range []string{"org-a", "org-b", ad.RecordID, ad.Patient, ad.Patient[3:20], ad.Category, ad.Purpose, testAuthor, "permit"} {
		if bytes.Contains(lb, []byte(secret)) {
			t.Errorf("public leaf %s carries %q", lb, secret)
		}
	}
}

func BenchmarkSignEntry(b *testing.B) {
	s := testV2Signer(b)
	salt := fixedSalt(1)
	org, body := typicalAccessV2(salt)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := s.NewEntry(org, salt, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeV1(b *testing.B) {
	e := typicalAccessV1()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyHeader(b *testing.B) {
	s := testV2Signer(b)
	salt := fixedSalt(1)
	org, body := typicalAccessV2(salt)
	_, h, _, err := s.NewEntry(org, salt, body)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyHeader(h, s.Public()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckEntry is a party's full check of one entry from its
// bytes: leaf, seal, signature and opening (not the inclusion proof).
func BenchmarkCheckEntry(b *testing.B) {
	s := testV2Signer(b)
	salt := fixedSalt(1)
	org, body := typicalAccessV2(salt)
	stmt, h, l, err := s.NewEntry(org, salt, body)
	if err != nil {
		b.Fatal(err)
	}
	l.Time = testLeafTime
	hb, _ := EncodeHeader(h)
	lb, _ := EncodeLeaf(l)
	o := &Opening{Statement: stmt}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CheckEntry(1, lb, hb, s.Public(), o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealOpening(b *testing.B) {
	s := testV2Signer(b)
	salt := fixedSalt(1)
	org, body := typicalAccessV2(salt)
	stmt, h, _, err := s.NewEntry(org, salt, body)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 3, 5} {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			_, pubs := sealKeys(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SealOpening(Opening{Statement: stmt}, h, pubs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The author's own slot as the A256KW self slot (WithSelf) and
	// n-1 others: what a node seals its entries with.
	for _, n := range []int{1, 3, 5} {
		b.Run(fmt.Sprintf("self+%d", n-1), func(b *testing.B) {
			privs, pubs := sealKeys(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SealOpening(Opening{Statement: stmt}, h, pubs[1:], WithSelf(privs[0])); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenSealed trial-opens a sealed opening with 5 slots as the
// recipient of the last slot (the worst case for a recipient) and as a
// non-recipient (every slot fails), and opens, with the author's key, one
// sealed with a self slot alone (an embedded node reading its own
// entries) and among 4 others.
func BenchmarkOpenSealed(b *testing.B) {
	s := testV2Signer(b)
	salt := fixedSalt(1)
	org, body := typicalAccessV2(salt)
	stmt, h, _, err := s.NewEntry(org, salt, body)
	if err != nil {
		b.Fatal(err)
	}
	privs, pubs := sealKeys(b, 5)
	sealed, err := SealOpening(Opening{Statement: stmt}, h, pubs)
	if err != nil {
		b.Fatal(err)
	}
	last := moveSlotLast(b, sealed, privs[0])
	outsider, err := NewSealKey()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("last-of-5", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := OpenSealed(last, privs[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("non-recipient-of-5", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := OpenSealed(last, outsider); err == nil {
				b.Fatal("outsider opened")
			}
		}
	})
	for _, others := range []int{0, 4} {
		b.Run(fmt.Sprintf("self+%d", others), func(b *testing.B) {
			sealed, err := SealOpening(Opening{Statement: stmt}, h, pubs[1:1+others], WithSelf(privs[0]))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := OpenSealed(sealed, privs[0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// moveSlotLast reorders the slots of sealed so that key's is the last.
func moveSlotLast(tb testing.TB, sealed []byte, key *ecdh.PrivateKey) []byte {
	tb.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(sealed, &doc); err != nil {
		tb.Fatal(err)
	}
	var slots []json.RawMessage
	if err := json.Unmarshal(doc["recipients"], &slots); err != nil {
		tb.Fatal(err)
	}
	with := func(s []json.RawMessage) []byte {
		d := map[string]json.RawMessage{}
		for k, v := range doc {
			d[k] = v
		}
		r, _ := json.Marshal(s)
		d["recipients"] = r
		out, _ := json.Marshal(d)
		return out
	}
	for i := range slots {
		if _, err := OpenSealed(with([]json.RawMessage{slots[i]}), key); err == nil {
			rest := append(append([]json.RawMessage{}, slots[:i]...), slots[i+1:]...)
			return with(append(rest, slots[i]))
		}
	}
	tb.Fatal("no slot opens")
	return nil
}

// Baselines, to read the figures above on a loaded machine: one Ed25519
// signature and one X25519 key agreement (a seal slot costs a key
// generation and an agreement, a trial open one agreement per slot).
func BenchmarkBaselineEd25519Sign(b *testing.B) {
	k := testNodeKey(1)
	msg := bytes.Repeat([]byte("m"), 128)
	for b.Loop() {
		_ = ed25519.Sign(k, msg)
	}
}

func BenchmarkBaselineX25519(b *testing.B) {
	priv, _ := NewSealKey()
	peer, _ := NewSealKey()
	for b.Loop() {
		if _, err := priv.ECDH(peer.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}

// The append path's codec steps, one by one, on a typical access entry
// sealed to one recipient (an embedded gateway's own key): what
// BenchmarkNodeAppend spends besides the signature and the key
// agreements.
func BenchmarkCodec(b *testing.B) {
	s := testV2Signer(b)
	salt := fixedSalt(1)
	org, body := typicalAccessV2(salt)
	st, err := NewStatement(testAuthor, org, salt, body)
	if err != nil {
		b.Fatal(err)
	}
	stmt, h, l, err := s.NewEntry(org, salt, body)
	if err != nil {
		b.Fatal(err)
	}
	l.Time = testLeafTime
	hb, _ := EncodeHeader(h)
	lb, _ := EncodeLeaf(l)
	_, pubs := sealKeys(b, 1)
	o := Opening{Statement: stmt}
	sealed, err := SealOpening(o, h, pubs)
	if err != nil {
		b.Fatal(err)
	}
	env := Envelope{Header: hb, Sealed: sealed}
	for _, bc := range []struct {
		name string
		f    func() error
	}{
		{"Statement.validate", func() error { return st.validate() }},
		{"EncodeStatement", func() error { _, err := EncodeStatement(st); return err }},
		{"DecodeStatement", func() error { _, err := DecodeStatement(stmt); return err }},
		{"EncodeHeader", func() error { _, err := EncodeHeader(h); return err }},
		{"DecodeHeader", func() error { _, err := DecodeHeader(hb); return err }},
		{"EncodeLeaf", func() error { _, err := EncodeLeaf(l); return err }},
		{"DecodeLeaf", func() error { _, err := DecodeLeaf(lb); return err }},
		{"EncodeOpening", func() error { _, err := EncodeOpening(o); return err }},
		{"CheckSealed", func() error { return CheckSealed(sealed, h) }},
		{"CheckEnvelope", func() error { _, err := CheckEnvelope(env); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.f(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
