package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const testAuthor = "gw-a.example"

var (
	testSecret   = bytes.Repeat([]byte{7}, PseudonymKeySize)
	testLeafTime = time.Date(2026, 3, 4, 5, 6, 7, 89, time.UTC)
)

func testNodeKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func testV2Signer(t testing.TB) *Signer {
	t.Helper()
	s, err := NewSigner(testAuthor, testNodeKey(1))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fixedSalt(b byte) Salt {
	var s Salt
	for i := range s {
		s[i] = b + byte(i)
	}
	return s
}

func testRef(t testing.TB, patient string, salt Salt) string {
	t.Helper()
	k, err := PatientKey(testSecret, patient)
	if err != nil {
		t.Fatal(err)
	}
	return PatientRef(k, salt)
}

type sampleV2 struct {
	org  string
	body any
}

// sampleV2Bodies returns one body of every v2 type with every field set,
// with patient references computed under salt.
func sampleV2Bodies(t testing.TB, salt Salt) []sampleV2 {
	t.Helper()
	ref := testRef(t, "patient-1", salt)
	nb := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	seal, err := NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	return []sampleV2{
		{OrgGateway, &GatewayRegistered{ID: testAuthor, PublicKey: EncodeNodeKey(testNodeKey(1).Public().(ed25519.PublicKey)),
			SealKey: EncodeSealKey(seal.PublicKey()), BaseURL: "https://gw-a.example"}},
		{"org-a", &OrgRegisteredV2{ID: "org-a", Name: "Hospital A", Kind: "hospital", Scopes: []string{"records.write"},
			JWKS: `{"keys":[]}`, Home: GatewayHome{Gateway: testAuthor, BaseURL: "https://gw-a.example/"}}},
		{"org-a", &OrgKeysRotated{Org: "org-a", JWKSURL: "https://a.example/jwks.json"}},
		{OrgPatient, &ConsentGrantedV2{ConsentID: "cns_1", Patient: ref, Grantee: Grantee{Org: "org-b"}, Decision: "permit",
			Actions: []string{"read"}, Categories: []string{"lab"}, RecordIDs: []string{"r1"}, ResourceTypes: []string{"Observation"},
			Purposes: []string{"TREAT"}, NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0).Add(123 * time.Millisecond)}},
		{OrgPatient, &ConsentRevokedV2{ConsentID: "cns_1", Patient: ref}},
		{OrgPatient, &PasskeyRegisteredV2{Patient: ref, CredentialID: "Y3JlZC0x", PublicKey: "pQECAyYgASFYIA",
			RPID: "localhost", Origin: "http://localhost:8080"}},
		{"org-a", &RecordRegisteredV2{RecordID: "r1", Holder: "org-a", Patient: ref, Category: "mental-health",
			ResourceType: "Observation", Commitment: strings.Repeat("ab", 32)}},
		{"org-a", &RecordShreddedV2{RecordID: "r1", Holder: "org-a", Patient: ref}},
		{"org-a", &AccessDecidedV2{Requester: "org-b", RecordID: "r1", Patient: ref, Category: "lab", Purpose: "ETREAT",
			Decision: "permit", Reason: "permit.break-glass", GrantID: "cns_1", BreakGlass: true,
			JustificationCommitment: strings.Repeat("cd", 32), RequestID: "req-1", ClientRequestID: "client-7"}},
		{"org-a", &IssuerRegistered{Issuer: "org-a", KeyID: "k1", PublicKey: "00ff"}},
		{OrgGateway, &CircuitRegistered{Statement: "age_over", Version: 1, VKHash: strings.Repeat("ef", 32), Setup: "ceremony"}},
		{"org-v", &ProofVerifiedV2{Verifier: "org-v", Statement: "age_over", Params: map[string]string{"min": "18", "a": "<&>"},
			Challenge: "ch1", Valid: false, Reason: "expired", Unproven: &ProofClaims{Issuer: "org-a", Nullifier: "n1"}}},
	}
}

func TestV2TypesClosed(t *testing.T) {
	got := map[Type]bool{}
	for _, s := range sampleV2Bodies(t, fixedSalt(1)) {
		typ, ok := typeOfV2(s.body)
		if !ok {
			t.Fatalf("%T has no v2 type", s.body)
		}
		got[typ] = true
	}
	for _, typ := range TypesV2() {
		if !got[typ] {
			t.Errorf("no sample for %s", typ)
		}
		delete(got, typ)
	}
	if len(got) != 0 {
		t.Errorf("samples of types outside TypesV2: %v", got)
	}
	// v1 bodies are not v2 bodies where they changed.
	for _, b := range []any{&OrgRegistered{}, &ConsentGranted{}, &AccessDecided{}, &ProofVerified{}, &RecordRegistered{}} {
		if _, ok := typeOfV2(b); ok {
			t.Errorf("%T accepted as a v2 body", b)
		}
	}
}

func TestStatementRoundTrip(t *testing.T) {
	salt := fixedSalt(1)
	for _, s := range sampleV2Bodies(t, salt) {
		st, err := NewStatement(testAuthor, s.org, salt, s.body)
		if err != nil {
			t.Fatalf("NewStatement(%T): %v", s.body, err)
		}
		t.Run(string(st.Type), func(t *testing.T) {
			b, err := EncodeStatement(st)
			if err != nil {
				t.Fatalf("EncodeStatement: %v", err)
			}
			got, err := DecodeStatement(b)
			if err != nil {
				t.Fatalf("DecodeStatement(%s): %v", b, err)
			}
			if diff := cmp.Diff(st, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			again, err := EncodeStatement(got)
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs (%v):\n got %s\nwant %s", err, again, b)
			}
		})
	}
}

func TestStatementGolden(t *testing.T) {
	salt := fixedSalt(0)
	ref := testRef(t, "patient-1", salt)
	st, err := NewStatement(testAuthor, OrgPatient, salt, &ConsentRevokedV2{ConsentID: "cns_1", Patient: ref})
	if err != nil {
		t.Fatal(err)
	}
	got, err := EncodeStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"consent.revoked","v":2,"author":"gw-a.example","org":"patient","salt":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","body":{"consent_id":"cns_1","patient":"` + ref + `"}}`
	if string(got) != want {
		t.Errorf("EncodeStatement:\n got %s\nwant %s", got, want)
	}
}

// TestHashesMatchDesign recomputes every v2 hash from the design's
// definitions with crypto/sha256 and crypto/hmac directly.
func TestHashesMatchDesign(t *testing.T) {
	s := testV2Signer(t)
	salt := fixedSalt(3)
	j, err := NewJustification("patient unconscious, ED")
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := s.Statement("org-a", salt, &AccessDecidedV2{Requester: "org-b", RecordID: "r1", Patient: testRef(t, "p", salt),
		Category: "lab", Purpose: "ETREAT", Decision: "permit", Reason: "permit.break-glass", BreakGlass: true,
		JustificationCommitment: j.Commitment().String(), RequestID: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	atts := []Attestation{{Kind: AttestationJWS, JWS: "a.b.c"}}
	h, l, err := s.Sign(stmt, atts)
	if err != nil {
		t.Fatal(err)
	}
	sum := func(parts ...string) string {
		d := sha256.Sum256([]byte(strings.Join(parts, "")))
		return hex.EncodeToString(d[:])
	}
	if got, want := h.Commitment.String(), sum("healthgw/entry/v2/commitment\n", string(stmt)); got != want {
		t.Errorf("commitment %s, want %s", got, want)
	}
	if got, want := h.Att.String(), sum("healthgw/entry/v2/attestations\n", `[{"kind":"jws","jws":"a.b.c"}]`); got != want {
		t.Errorf("att %s, want %s", got, want)
	}
	msg := "healthgw/entry/v2/signature\naccess.decided\ngw-a.example\norg-a\n" + h.Commitment.String() + "\n" + h.Att.String()
	if string(SignatureMessage(h)) != msg {
		t.Errorf("signature message %q, want %q", SignatureMessage(h), msg)
	}
	if !ed25519.Verify(s.Public(), []byte(msg), h.Sig[:]) {
		t.Error("signature does not verify over the design's message")
	}
	hb, err := EncodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Seal.String(), sum("healthgw/entry/v2/seal\n", string(hb)); got != want {
		t.Errorf("seal %s, want %s", got, want)
	}
	if got, want := j.Commitment().String(), sum("healthgw/entry/v2/justification\n", string(j.Salt[:]), j.Reason); got != want {
		t.Errorf("justification commitment %s, want %s", got, want)
	}
	wantHeader := `{"type":"access.decided","v":2,"author":"gw-a.example","org":"org-a","commitment":"` + h.Commitment.String() +
		`","sig":"` + b64(h.Sig[:]) + `","att":"` + h.Att.String() + `"}`
	if string(hb) != wantHeader {
		t.Errorf("header:\n got %s\nwant %s", hb, wantHeader)
	}
	l.Time = testLeafTime
	lb, err := EncodeLeaf(l)
	if err != nil {
		t.Fatal(err)
	}
	wantLeaf := `{"v":2,"type":"access.decided","time":"2026-03-04T05:06:07.000000089Z","seal":"` + l.Seal.String() + `"}`
	if string(lb) != wantLeaf {
		t.Errorf("leaf:\n got %s\nwant %s", lb, wantLeaf)
	}
	// Without attestations the message ends in an empty att, the header
	// carries "att":"".
	h0, _, err := s.Sign(stmt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(SignatureMessage(h0)), h0.Commitment.String()+"\n") {
		t.Errorf("signature message without attestations: %q", SignatureMessage(h0))
	}
	if hb0, _ := EncodeHeader(h0); !strings.HasSuffix(string(hb0), `,"att":""}`) {
		t.Errorf("header without attestations: %s", hb0)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestEncodeStatementRejects(t *testing.T) {
	salt := fixedSalt(1)
	ref := testRef(t, "p", salt)
	nb := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	sk, err := NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	sealKey := EncodeSealKey(sk.PublicKey())
	grant := func(f func(*ConsentGrantedV2)) *ConsentGrantedV2 {
		g := &ConsentGrantedV2{ConsentID: "cns_1", Patient: ref, Grantee: Grantee{Org: "org-b"}, Decision: "permit",
			Actions: []string{"read"}, Purposes: []string{"TREAT"}, NotBefore: nb, NotAfter: nb.Add(time.Hour)}
		f(g)
		return g
	}
	access := func(f func(*AccessDecidedV2)) *AccessDecidedV2 {
		a := &AccessDecidedV2{Requester: "org-b", RecordID: "r1", Patient: ref, Category: "lab", Purpose: "TREAT",
			Decision: "deny", Reason: "deny.no-grant", RequestID: "req-1"}
		f(a)
		return a
	}
	cases := []struct {
		name   string
		author string
		org    string
		salt   Salt
		body   any
		want   error
	}{
		{"v1 body", testAuthor, "org-a", salt, &RecordRegistered{RecordID: "r1"}, ErrUnknownType},
		{"nil body", testAuthor, OrgPatient, salt, (*ConsentRevokedV2)(nil), ErrMalformed},
		{"no salt", testAuthor, OrgPatient, Salt{}, &ConsentRevokedV2{ConsentID: "c", Patient: ref}, ErrMalformed},
		{"bad author", "GW A", OrgPatient, salt, &ConsentRevokedV2{ConsentID: "c", Patient: ref}, ErrMalformed},
		{"author with newline", "gw\na", OrgPatient, salt, &ConsentRevokedV2{ConsentID: "c", Patient: ref}, ErrMalformed},
		{"bad org", testAuthor, "Org A", salt, &ConsentRevokedV2{ConsentID: "c", Patient: ref}, ErrMalformed},
		{"v1 pseudonym", testAuthor, OrgPatient, salt, &ConsentRevokedV2{ConsentID: "c", Patient: "ps_" + strings.Repeat("a", 64)}, ErrMalformed},
		{"consent for an org", testAuthor, "org-a", salt, &ConsentRevokedV2{ConsentID: "c", Patient: ref}, ErrAuthorship},
		{"permit without purposes", testAuthor, OrgPatient, salt, grant(func(g *ConsentGrantedV2) { g.Purposes = nil }), ErrMalformed},
		{"grant with empty action", testAuthor, OrgPatient, salt, grant(func(g *ConsentGrantedV2) { g.Actions = []string{""} }), ErrMalformed},
		{"grant to nobody", testAuthor, OrgPatient, salt, grant(func(g *ConsentGrantedV2) { g.Grantee = Grantee{} }), ErrMalformed},
		{"grant to org and kind", testAuthor, OrgPatient, salt, grant(func(g *ConsentGrantedV2) { g.Grantee.Kind = "hospital" }), ErrMalformed},
		{"grant in local time", testAuthor, OrgPatient, salt, grant(func(g *ConsentGrantedV2) { g.NotBefore = nb.In(time.FixedZone("X", 3600)) }), ErrMalformed},
		{"grant ends before it starts", testAuthor, OrgPatient, salt, grant(func(g *ConsentGrantedV2) { g.NotAfter = nb }), ErrMalformed},
		{"grant decision", testAuthor, OrgPatient, salt, grant(func(g *ConsentGrantedV2) { g.Decision = "maybe" }), ErrMalformed},
		{"record for another holder", testAuthor, "org-b", salt, &RecordRegisteredV2{RecordID: "r1", Holder: "org-a", Patient: ref, Category: "lab", Commitment: strings.Repeat("ab", 32)}, ErrAuthorship},
		{"record commitment uppercase", testAuthor, "org-a", salt, &RecordRegisteredV2{RecordID: "r1", Holder: "org-a", Patient: ref, Category: "lab", Commitment: strings.Repeat("AB", 32)}, ErrMalformed},
		{"reason of the other decision", testAuthor, "org-a", salt, access(func(a *AccessDecidedV2) { a.Reason = "permit.grant" }), ErrMalformed},
		{"not found with patient", testAuthor, "org-a", salt, access(func(a *AccessDecidedV2) { a.Reason = ReasonNotFound }), ErrMalformed},
		{"found without patient", testAuthor, "org-a", salt, access(func(a *AccessDecidedV2) { a.Patient = "" }), ErrMalformed},
		{"justification without break-glass", testAuthor, "org-a", salt, access(func(a *AccessDecidedV2) { a.JustificationCommitment = strings.Repeat("cd", 32) }), ErrMalformed},
		{"no request id", testAuthor, "org-a", salt, access(func(a *AccessDecidedV2) { a.RequestID = "" }), ErrMalformed},
		{"access by the patient marker", testAuthor, OrgPatient, salt, access(func(*AccessDecidedV2) {}), ErrAuthorship},
		{"org homed elsewhere", testAuthor, "org-a", salt, &OrgRegisteredV2{ID: "org-a", Name: "A", Kind: "hospital", Home: GatewayHome{Gateway: "gw-b", BaseURL: "https://gw-b"}}, ErrAuthorship},
		{"org registered for another org", testAuthor, "org-b", salt, &OrgRegisteredV2{ID: "org-a", Name: "A", Kind: "hospital", Home: GatewayHome{Gateway: testAuthor, BaseURL: "https://gw-a"}}, ErrAuthorship},
		{"org named patient", testAuthor, OrgPatient, salt, &OrgRegisteredV2{ID: OrgPatient, Name: "A", Kind: "hospital", Home: GatewayHome{Gateway: testAuthor, BaseURL: "https://gw-a"}}, ErrMalformed},
		{"org home not a URL", testAuthor, "org-a", salt, &OrgRegisteredV2{ID: "org-a", Name: "A", Kind: "hospital", Home: GatewayHome{Gateway: testAuthor, BaseURL: "gw-a:8080"}}, ErrMalformed},
		{"gateway registered by another", testAuthor, OrgGateway, salt, &GatewayRegistered{ID: "gw-b", PublicKey: strings.Repeat("A", 43), SealKey: sealKey, BaseURL: "https://gw-b"}, ErrAuthorship},
		{"gateway key too short", testAuthor, OrgGateway, salt, &GatewayRegistered{ID: testAuthor, PublicKey: "AAAA", SealKey: sealKey, BaseURL: "https://gw-a"}, ErrMalformed},
		{"gateway seal key of low order", testAuthor, OrgGateway, salt, &GatewayRegistered{ID: testAuthor, PublicKey: strings.Repeat("A", 43), SealKey: strings.Repeat("A", 43), BaseURL: "https://gw-a"}, ErrMalformed},
		{"keys rotated for another org", testAuthor, "org-b", salt, &OrgKeysRotated{Org: "org-a", JWKS: "{}"}, ErrAuthorship},
		{"keys rotated to text", testAuthor, "org-a", salt, &OrgKeysRotated{Org: "org-a", JWKS: "{keys"}, ErrMalformed},
		{"keys rotated to nothing", testAuthor, "org-a", salt, &OrgKeysRotated{Org: "org-a"}, ErrMalformed},
		{"issuer for another org", testAuthor, "org-b", salt, &IssuerRegistered{Issuer: "org-a", KeyID: "k", PublicKey: "00"}, ErrAuthorship},
		{"circuit by an org", testAuthor, "org-a", salt, &CircuitRegistered{Statement: "s", Version: 1, VKHash: strings.Repeat("ef", 32), Setup: "dev"}, ErrAuthorship},
		{"valid proof without proven values", testAuthor, "org-v", salt, &ProofVerifiedV2{Verifier: "org-v", Statement: "s", Challenge: "c", Valid: true}, ErrMalformed},
		{"valid proof with unproven values", testAuthor, "org-v", salt, &ProofVerifiedV2{Verifier: "org-v", Statement: "s", Challenge: "c", Valid: true,
			Proven: &ProofClaims{Issuer: "i", Nullifier: "n"}, Unproven: &ProofClaims{Issuer: "i"}}, ErrMalformed},
		{"refused proof with proven values", testAuthor, "org-v", salt, &ProofVerifiedV2{Verifier: "org-v", Statement: "s", Challenge: "c", Reason: "bad",
			Proven: &ProofClaims{Issuer: "i", Nullifier: "n"}}, ErrMalformed},
		{"proof by another verifier", testAuthor, "org-w", salt, &ProofVerifiedV2{Verifier: "org-v", Statement: "s", Challenge: "c", Reason: "bad"}, ErrAuthorship},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := Statement{Type: TypeConsentRevoked, Version: VersionV2, Author: tc.author, Org: tc.org, Salt: tc.salt, Body: tc.body}
			if typ, ok := typeOfV2(tc.body); ok {
				st.Type = typ
			}
			_, err := EncodeStatement(st)
			if !errors.Is(err, tc.want) {
				t.Errorf("EncodeStatement = %v, want %v", err, tc.want)
			}
			if _, err := NewStatement(tc.author, tc.org, tc.salt, tc.body); !errors.Is(err, tc.want) {
				t.Errorf("NewStatement = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		big := grant(func(g *ConsentGrantedV2) {
			for range 400 {
				g.RecordIDs = append(g.RecordIDs, strings.Repeat("r", 200))
			}
		})
		if _, err := NewStatement(testAuthor, OrgPatient, salt, big); err != nil {
			t.Fatal(err)
		}
		st, _ := NewStatement(testAuthor, OrgPatient, salt, big)
		if _, err := EncodeStatement(st); !errors.Is(err, ErrTooLarge) {
			t.Errorf("EncodeStatement = %v, want ErrTooLarge", err)
		}
	})
}

// validEncodings returns one valid encoding of each layer.
func validEncodings(t testing.TB) (stmt, header, leaf, opening []byte) {
	t.Helper()
	s := testV2Signer(t)
	salt := fixedSalt(5)
	stmt, h, l, err := s.NewEntry(OrgPatient, salt, &ConsentRevokedV2{ConsentID: "cns_1", Patient: testRef(t, "p", salt)})
	if err != nil {
		t.Fatal(err)
	}
	if header, err = EncodeHeader(h); err != nil {
		t.Fatal(err)
	}
	l.Time = testLeafTime
	if leaf, err = EncodeLeaf(l); err != nil {
		t.Fatal(err)
	}
	if opening, err = EncodeOpening(Opening{Statement: stmt, Attestations: []Attestation{{Kind: AttestationJWS, JWS: "a.b.c"}}}); err != nil {
		t.Fatal(err)
	}
	return stmt, header, leaf, opening
}

func TestDecodeV2Rejects(t *testing.T) {
	stmt, header, leaf, opening := validEncodings(t)
	s, hd, lf, op := string(stmt), string(header), string(leaf), string(opening)
	commitment := Commitment(stmt).String()
	rep := func(in, old, new string) []byte {
		if !strings.Contains(in, old) {
			t.Fatalf("%q not in %s", old, in)
		}
		return []byte(strings.Replace(in, old, new, 1))
	}
	v1, err := Encode(sampleEntries()[2])
	if err != nil {
		t.Fatal(err)
	}
	salt := fixedSalt(5)
	saltText := salt.String()
	type tc struct {
		name string
		in   []byte
		want error
	}
	statementCases := []tc{
		{"white space", []byte(strings.Replace(s, ",", ", ", 1)), ErrNonCanonical},
		{"reordered", rep(s, `"type":"consent.revoked","v":2`, `"v":2,"type":"consent.revoked"`), ErrNonCanonical},
		{"unknown field", rep(s, `"v":2,`, `"v":2,"x":1,`), ErrMalformed},
		{"unknown body field", rep(s, `"consent_id"`, `"x":1,"consent_id"`), ErrMalformed},
		{"field name case", rep(s, `"author"`, `"Author"`), ErrNonCanonical},
		{"duplicate field", rep(s, `"v":2,`, `"v":2,"v":2,`), ErrNonCanonical},
		{"escaped character", rep(s, `"type":"consent.revoked"`, `"type":"consent\u002erevoked"`), ErrNonCanonical},
		{"trailing data", []byte(s + " {}"), ErrMalformed},
		{"trailing newline", []byte(s + "\n"), ErrNonCanonical},
		{"version 1", rep(s, `"v":2`, `"v":1`), ErrMalformed},
		{"unknown type", rep(s, `consent.revoked`, `consent.forged`), ErrUnknownType},
		{"padded salt", rep(s, saltText, saltText+"="), ErrMalformed},
		{"std base64 salt", rep(s, `"salt":"`, `"salt":"+`), ErrMalformed},
		{"v1 entry", v1, ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"null", []byte("null"), ErrUnknownType},
		{"too large", bytes.Repeat([]byte(" "), MaxStatementSize+1), ErrTooLarge},
	}
	headerCases := []tc{
		{"white space", []byte(strings.Replace(hd, ":", ": ", 1)), ErrNonCanonical},
		{"unknown field", rep(hd, `"v":2,`, `"v":2,"kid":"x",`), ErrMalformed},
		{"uppercase commitment", rep(hd, commitment, strings.ToUpper(commitment)), ErrMalformed},
		{"att not hex", rep(hd, `"att":""`, `"att":"zz"`), ErrMalformed},
		{"zero att", rep(hd, `"att":""`, `"att":"`+strings.Repeat("0", 64)+`"`), ErrNonCanonical},
		{"short sig", rep(hd, `"sig":"`, `"sig":"AA`), ErrMalformed},
		{"version 3", rep(hd, `"v":2`, `"v":3`), ErrMalformed},
		{"unknown type", rep(hd, `consent.revoked`, `x`), ErrUnknownType},
		{"too large", bytes.Repeat([]byte(" "), MaxHeaderSize+1), ErrTooLarge},
	}
	leafCases := []tc{
		{"local time", rep(lf, `Z"`, `+00:00"`), ErrMalformed},
		{"short fraction", rep(lf, `.000000089Z`, `.89Z`), ErrMalformed},
		{"unknown field", rep(lf, `"v":2,`, `"v":2,"body":{},`), ErrMalformed},
		{"reordered", rep(lf, `"v":2,"type":"consent.revoked"`, `"type":"consent.revoked","v":2`), ErrNonCanonical},
		{"zero time", rep(lf, `2026-03-04T05:06:07.000000089Z`, `0001-01-01T00:00:00.000000000Z`), ErrMalformed},
		{"unknown type", rep(lf, `consent.revoked`, `x.y`), ErrUnknownType},
		{"too large", bytes.Repeat([]byte(" "), MaxLeafSize+1), ErrTooLarge},
	}
	openingCases := []tc{
		{"statement not canonical", rep(op, `"v":2,"author"`, `"v":2 ,"author"`), ErrNonCanonical},
		{"empty attestations", rep(op, `"attestations":[{"kind":"jws","jws":"a.b.c"}]`, `"attestations":[]`), ErrNonCanonical},
		{"unknown attestation kind", rep(op, `"kind":"jws"`, `"kind":"x"`), ErrMalformed},
		{"unknown field", rep(op, `{"statement"`, `{"kid":"x","statement"`), ErrMalformed},
		{"justification without salt", rep(op, `]}`, `],"justification":{"salt":"","reason":"r"}}`), ErrMalformed},
	}
	for _, c := range statementCases {
		t.Run("statement/"+c.name, func(t *testing.T) {
			if _, err := DecodeStatement(c.in); !errors.Is(err, c.want) {
				t.Errorf("DecodeStatement(%s) = %v, want %v", c.in, err, c.want)
			}
		})
	}
	for _, c := range headerCases {
		t.Run("header/"+c.name, func(t *testing.T) {
			if _, err := DecodeHeader(c.in); !errors.Is(err, c.want) {
				t.Errorf("DecodeHeader(%s) = %v, want %v", c.in, err, c.want)
			}
		})
	}
	for _, c := range leafCases {
		t.Run("leaf/"+c.name, func(t *testing.T) {
			if _, err := DecodeLeaf(c.in); !errors.Is(err, c.want) {
				t.Errorf("DecodeLeaf(%s) = %v, want %v", c.in, err, c.want)
			}
		})
	}
	for _, c := range openingCases {
		t.Run("opening/"+c.name, func(t *testing.T) {
			if _, err := DecodeOpening(c.in); !errors.Is(err, c.want) {
				t.Errorf("DecodeOpening(%s) = %v, want %v", c.in, err, c.want)
			}
		})
	}
	// And the valid ones decode.
	if _, err := DecodeStatement(stmt); err != nil {
		t.Error(err)
	}
	if _, err := DecodeHeader(header); err != nil {
		t.Error(err)
	}
	if _, err := DecodeLeaf(leaf); err != nil {
		t.Error(err)
	}
	if _, err := DecodeOpening(opening); err != nil {
		t.Error(err)
	}
}

func TestRoundTripLayers(t *testing.T) {
	stmt, header, leaf, opening := validEncodings(t)
	h, err := DecodeHeader(header)
	if err != nil {
		t.Fatal(err)
	}
	if hb, _ := EncodeHeader(h); !bytes.Equal(hb, header) {
		t.Errorf("header round trip: %s vs %s", hb, header)
	}
	l, err := DecodeLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Time.Equal(testLeafTime) || l.Type != TypeConsentRevoked {
		t.Errorf("leaf %+v", l)
	}
	o, err := DecodeOpening(opening)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(o.Statement, stmt) || len(o.Attestations) != 1 {
		t.Errorf("opening %+v", o)
	}
	j, err := NewJustification("unconscious, ED")
	if err != nil {
		t.Fatal(err)
	}
	o.Justification = &j
	ob, err := EncodeOpening(o)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeOpening(ob)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(o, back); diff != "" {
		t.Errorf("opening round trip (-want +got):\n%s", diff)
	}
	if back.WithoutJustification().Justification != nil || o.Justification == nil {
		t.Error("WithoutJustification changed the original or kept the justification")
	}
}

func TestEncodeLeafRejects(t *testing.T) {
	for _, l := range []Leaf{
		{Version: VersionV2, Type: TypeConsentRevoked},
		{Version: 1, Type: TypeConsentRevoked, Time: testLeafTime},
		{Version: VersionV2, Type: "x", Time: testLeafTime},
		{Version: VersionV2, Type: TypeConsentRevoked, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := EncodeLeaf(l); err == nil {
			t.Errorf("EncodeLeaf(%+v) accepted", l)
		}
	}
	// A leaf time in another zone is written in UTC.
	b, err := EncodeLeaf(Leaf{Version: VersionV2, Type: TypeConsentRevoked, Time: testLeafTime.In(time.FixedZone("X", 7200))})
	if err != nil || !strings.Contains(string(b), `"2026-03-04T05:06:07.000000089Z"`) {
		t.Errorf("EncodeLeaf = %s, %v", b, err)
	}
}
