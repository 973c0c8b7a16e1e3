package ledger

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// genText returns a string of pieces that encoding/json writes as they
// are and pieces it escapes or replaces (quotes, backslashes, control
// characters, HTML characters, U+2028, non-ASCII, invalid UTF-8), or
// only the plain ones when plain.
func genText(rng *rand.Rand, plain bool) string {
	plainPieces := []string{"a", "Z", "0", "9", "-", "_", ".", " ", "~", "<", ">", "&", "/", "=", "+", "lab", "req-17", "permit.grant", "{", "}", ",", ":", "[", "]"}
	otherPieces := []string{`"`, `\`, "\n", "\t", "\x00", "\x1f", "\u2028", "\u2029", "é", "日本", "\xff", "\xc3", "\U0001F600", "\x7f"}
	n := rng.IntN(12)
	var b strings.Builder
	for range n {
		if !plain && rng.IntN(4) == 0 {
			b.WriteString(otherPieces[rng.IntN(len(otherPieces))])
		} else {
			b.WriteString(plainPieces[rng.IntN(len(plainPieces))])
		}
	}
	return b.String()
}

// genBody returns a body of one of the fast types with generated
// strings (free text everywhere, valid or not) and whether every string
// in it is plain.
func genBody(rng *rand.Rand, i int, plain bool) any {
	s := func() string { return genText(rng, plain) }
	switch i % 4 {
	case 0:
		return &AccessDecidedV2{Requester: s(), RecordID: s(), Patient: s(), Category: s(), Purpose: s(),
			Decision: s(), Reason: s(), GrantID: s(), BreakGlass: rng.IntN(2) == 0,
			JustificationCommitment: s(), RequestID: s(), ClientRequestID: s()}
	case 1:
		sizes := []int64{0, 1, -1, 1 << 20, math.MaxInt64, math.MinInt64, rng.Int64()}
		return &RecordRegisteredV2{RecordID: s(), Holder: s(), Patient: s(), Category: s(), ResourceType: s(),
			Commitment: s(), ContentType: s(), Size: sizes[rng.IntN(len(sizes))]}
	case 2:
		return &RecordShreddedV2{RecordID: s(), Holder: s(), Patient: s()}
	default:
		return &ConsentRevokedV2{ConsentID: s(), Patient: s()}
	}
}

// TestFastBodiesMatchJSON: over generated bodies of the fast types,
// appendBodyFast writes the bytes encoding/json writes or declines, and
// does not decline when every string is plain; appendJSONString quotes
// as encoding/json does.
func TestFastBodiesMatchJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	fast := 0
	for i := range 4000 {
		plain := i%2 == 0
		body := genBody(rng, i, plain)
		want, err := marshalCompact(body)
		if err != nil {
			t.Fatal(err)
		}
		prefix := []byte("prefix:")
		got, ok := appendBodyFast(bytes.Clone(prefix), body)
		if !ok {
			if plain {
				t.Errorf("appendBodyFast declines %s, all plain", want)
			}
			continue
		}
		fast++
		if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
			t.Errorf("appendBodyFast(%T):\n got %q\nwant %q", body, got, want)
		}
	}
	if fast < 2000 {
		t.Errorf("the fast path wrote %d of 4000 bodies, want at least the 2000 plain ones", fast)
	}
	for i := range 2000 {
		s := genText(rng, i%3 == 0)
		want, err := marshalCompact(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSONString([]byte("x"), s)
		if err != nil || !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Errorf("appendJSONString(%q) = %q, %v, want x%s", s, got, err, want)
		}
	}
	// Types without a fast path decline.
	for _, b := range []any{&ConsentGrantedV2{}, &OrgRegisteredV2{}, (*AccessDecidedV2)(nil), "x"} {
		if _, ok := appendBodyFast(nil, b); ok {
			t.Errorf("appendBodyFast(%T) accepts", b)
		}
	}
}

// TestFastBodiesAgree: decodeBodyFast reads every body appendBodyFast
// writes back to the same value, and on those encodings, on bodies with
// escapes and on their mutations accepts only what encoding/json
// decodes, to the same value.
func TestFastBodiesAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	types := map[string]Type{}
	for _, ty := range TypesV2() {
		if b := bodyForV2(ty); b != nil {
			types[reflect.TypeOf(b).String()] = ty
		}
	}
	accepted, tried := 0, 0
	for i := range 400 {
		plain := i%4 != 3
		body := genBody(rng, i, plain)
		ty := types[reflect.TypeOf(body).String()]
		enc, err := marshalCompact(body)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := decodeBodyFast(ty, enc)
		if plain && (!ok || !reflect.DeepEqual(got, body)) {
			t.Errorf("decodeBodyFast(%s) = %+v, %v, want %+v", enc, got, ok, body)
		}
		inputs := [][]byte{enc}
		if i%8 == 0 {
			inputs = append(inputs, mutations(enc)...)
		}
		for _, m := range inputs {
			tried++
			got, ok := decodeBodyFast(ty, m)
			if !ok {
				continue
			}
			accepted++
			want := bodyForV2(ty)
			if err := strictUnmarshal(m, want); err != nil {
				t.Errorf("decodeBodyFast accepts %q, encoding/json refuses it: %v", m, err)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%q decodes to %+v on the fast path, %+v with encoding/json", m, got, want)
			}
		}
	}
	t.Logf("%d inputs, %d accepted by the fast path", tried, accepted)
	for _, ty := range TypesV2() {
		switch ty {
		case TypeAccessDecided, TypeRecordRegistered, TypeRecordShredded, TypeConsentRevoked:
		default:
			if _, ok := decodeBodyFast(ty, []byte(`{}`)); ok {
				t.Errorf("decodeBodyFast(%s) accepts", ty)
			}
		}
	}
}

// oldEncodeStatement is EncodeStatement as it was before the fast body
// encoder: the body and the statement with encoding/json.
func oldEncodeStatement(st Statement) ([]byte, error) {
	if err := st.validate(); err != nil {
		return nil, err
	}
	body, err := marshalCompact(st.Body)
	if err != nil {
		return nil, err
	}
	b, err := marshalCompact(wireStatement{Type: st.Type, Version: st.Version, Author: st.Author, Org: st.Org,
		Salt: st.Salt.String(), Body: body})
	if err != nil {
		return nil, err
	}
	if len(b) > MaxStatementSize {
		return nil, ErrTooLarge
	}
	return b, nil
}

// oldDecodeStatement is DecodeStatement with encoding/json alone and
// oldEncodeStatement's canonical check.
func oldDecodeStatement(b []byte) (Statement, error) {
	var w wireStatement
	if err := strictUnmarshal(b, &w); err != nil {
		return Statement{}, err
	}
	body := bodyForV2(w.Type)
	if body == nil {
		return Statement{}, ErrUnknownType
	}
	if err := strictUnmarshal(w.Body, body); err != nil {
		return Statement{}, err
	}
	salt, err := parseSalt(w.Salt)
	if err != nil {
		return Statement{}, err
	}
	st := Statement{Type: w.Type, Version: w.Version, Author: w.Author, Org: w.Org, Salt: salt, Body: body}
	again, err := oldEncodeStatement(st)
	if err != nil {
		return Statement{}, err
	}
	if !bytes.Equal(again, b) {
		return Statement{}, ErrNonCanonical
	}
	return st, nil
}

// genValidBody returns a body of one of the fast types that passes its
// checks: the syntax-checked members valid, free text (plain or not)
// elsewhere, the optional members set or not.
func genValidBody(t *testing.T, rng *rand.Rand, i int, salt Salt) (org string, body any) {
	text := func() string {
		for {
			if s := genText(rng, i%3 != 0); s != "" && len(s) <= maxFieldLen && need("x", s) == nil {
				return s
			}
		}
	}
	opt := func() string {
		if rng.IntN(2) == 0 {
			return ""
		}
		return text()
	}
	ref := testRef(t, "patient-"+string(rune('a'+rng.IntN(26))), salt)
	hex := strings.Repeat("0123456789abcdef", 4)
	switch i % 4 {
	case 0:
		b := &AccessDecidedV2{Requester: "org-b", RecordID: text(), Patient: ref, Category: text(), Purpose: opt(),
			Decision: DecisionPermit, Reason: DecisionPermit + "." + text(), GrantID: opt(),
			RequestID: text(), ClientRequestID: opt()}
		switch rng.IntN(3) {
		case 0:
			b.Decision, b.Reason = DecisionDeny, DecisionDeny+"."+text()
		case 1:
			b.Decision, b.Reason, b.Patient, b.Category, b.GrantID = DecisionDeny, ReasonNotFound, "", "", ""
		}
		if rng.IntN(2) == 0 {
			b.BreakGlass = true
			if rng.IntN(2) == 0 {
				b.JustificationCommitment = hex
			}
		}
		return "org-a", b
	case 1:
		return "org-a", &RecordRegisteredV2{RecordID: text(), Holder: "org-a", Patient: ref, Category: text(),
			ResourceType: opt(), Commitment: hex, ContentType: opt(), Size: []int64{0, 1, 1 << 40, math.MaxInt64}[rng.IntN(4)]}
	case 2:
		return "org-a", &RecordShreddedV2{RecordID: text(), Holder: "org-a", Patient: ref}
	default:
		return OrgPatient, &ConsentRevokedV2{ConsentID: text(), Patient: ref}
	}
}

// TestStatementCodecMatchesOld: over generated valid statements of the
// fast types (and one of every type), EncodeStatement writes the bytes
// the encoding/json encoder wrote, and DecodeStatement agrees with the
// encoding/json decoder, on those encodings and on their mutations:
// the same verdict, the same value.
func TestStatementCodecMatchesOld(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var statements [][]byte
	for i := range 1200 {
		var salt Salt
		fill(rng, salt[:])
		org, body := genValidBody(t, rng, i, salt)
		st, err := NewStatement(testAuthor, org, salt, body)
		if err != nil {
			t.Fatalf("generated %+v: %v", body, err)
		}
		got, err := EncodeStatement(st)
		if err != nil {
			t.Fatal(err)
		}
		want, err := oldEncodeStatement(st)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("EncodeStatement:\n got %s\nwant %s", got, want)
		}
		statements = append(statements, got)
	}
	for _, sb := range sampleV2Bodies(t, fixedSalt(3)) {
		st, err := NewStatement(testAuthor, sb.org, fixedSalt(3), sb.body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := EncodeStatement(st)
		if err != nil {
			t.Fatal(err)
		}
		if want, err := oldEncodeStatement(st); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("EncodeStatement(%s):\n got %s\nwant %s (%v)", st.Type, got, want, err)
		}
		statements = append(statements, got)
	}
	accepted, tried := 0, 0
	for i, s := range statements {
		inputs := [][]byte{s}
		if i%40 == 0 {
			inputs = append(inputs, mutations(s)...)
		}
		for _, m := range inputs {
			tried++
			got, err := DecodeStatement(m)
			want, werr := oldDecodeStatement(m)
			if (err == nil) != (werr == nil) {
				t.Errorf("DecodeStatement(%q): %v, the encoding/json decoder: %v", m, err, werr)
				continue
			}
			if err != nil {
				continue
			}
			accepted++
			if !reflect.DeepEqual(got, want) {
				t.Errorf("DecodeStatement(%q) = %+v, the encoding/json decoder %+v", m, got, want)
			}
		}
	}
	if accepted < len(statements) {
		t.Errorf("%d of %d inputs accepted, want at least the %d valid statements", accepted, tried, len(statements))
	}
	t.Logf("%d inputs, %d accepted", tried, accepted)
}

// TestFastBodyDecodeDoesNotShare: a decoded statement's body is its own
// (the node caches it; a caller's later change of its bytes cannot reach
// it).
func TestFastBodyDecodeDoesNotShare(t *testing.T) {
	salt := fixedSalt(4)
	st, err := NewStatement(testAuthor, "org-a", salt, &RecordShreddedV2{RecordID: "r1", Holder: "org-a", Patient: testRef(t, "p", salt)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeStatement(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		if b[i] == 'r' {
			b[i] = 'X'
		}
	}
	if id := got.Body.(*RecordShreddedV2).RecordID; id != "r1" {
		t.Errorf("record ID %q after the input changed", id)
	}
}

// oldParseDigest is ParseDigest as it was before its allocation-free
// path.
func oldParseDigest(text string) (Digest, error) {
	var d Digest
	if len(text) != 2*len(d) || text != lowerHex(text) {
		return Digest{}, errors.New("not lowercase hex")
	}
	if _, err := hex.Decode(d[:], []byte(text)); err != nil {
		return Digest{}, err
	}
	return d, nil
}

// TestParseDigestAgrees: ParseDigest and parseLowerHexDigest (on strings
// and bytes) accept what ParseDigest accepted, with the same digest,
// over digests and every single-character change of them.
func TestParseDigestAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var inputs []string
	for range 50 {
		var d Digest
		fill(rng, d[:])
		s := d.String()
		inputs = append(inputs, s, s[1:], s+"0", "", strings.ToUpper(s))
		for i := range s {
			for _, c := range []byte{'0', '9', 'a', 'f', 'A', 'F', 'g', 'G', ' ', '/', ':', '`', '@', 0xff, 0} {
				m := []byte(s)
				m[i] = c
				inputs = append(inputs, string(m))
			}
		}
	}
	accepted := 0
	for _, s := range inputs {
		want, werr := oldParseDigest(s)
		got, err := ParseDigest(s)
		gs, oks := parseLowerHexDigest(s)
		gb, okb := parseLowerHexDigest([]byte(s))
		if (err == nil) != (werr == nil) || oks != (werr == nil) || okb != (werr == nil) || got != want || gs != want || gb != want {
			t.Errorf("%q: ParseDigest %x, %v; fast %x %v / %x %v; before %x, %v", s, got, err, gs, oks, gb, okb, want, werr)
		}
		if werr == nil {
			accepted++
		}
	}
	if accepted < 50 {
		t.Errorf("%d inputs accepted, want at least the 50 digests", accepted)
	}
}
