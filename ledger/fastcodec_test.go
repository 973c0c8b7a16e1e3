package ledger

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestFastEncodersMatchJSON: the encoders that write their members
// directly write the bytes encoding/json writes for the wire structs.
func TestFastEncodersMatchJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []string{"gw-a", "gateway.example.org", "a0", "x-1.y-2", "0" + string(bytes.Repeat([]byte("z"), 126))}
	orgs := []string{"org-a", OrgPatient, OrgGateway, "h1", "0" + string(bytes.Repeat([]byte("q"), 62))}
	for i := range 500 {
		var h Header
		h.Type = TypesV2()[i%len(TypesV2())]
		h.Version = VersionV2
		h.Author = ids[rng.IntN(len(ids))]
		h.Org = orgs[rng.IntN(len(orgs))]
		fill(rng, h.Commitment[:])
		fill(rng, h.Sig[:])
		if i%2 == 0 {
			fill(rng, h.Att[:])
		}
		got, err := EncodeHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		want, err := marshalCompact(wireHeader{Type: h.Type, Version: h.Version, Author: h.Author, Org: h.Org,
			Commitment: h.Commitment.String(), Sig: base64.RawURLEncoding.EncodeToString(h.Sig[:]), Att: attText(h.Att)})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("EncodeHeader:\n got %s\nwant %s", got, want)
		}

		l := Leaf{Version: VersionV2, Type: h.Type, Seal: h.Commitment,
			Time: time.Unix(rng.Int64N(253402300799), rng.Int64N(1e9)).In(time.FixedZone("x", 3600*rng.IntN(12)))}
		if i == 0 {
			l.Time = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		gotL, err := EncodeLeaf(l)
		if err != nil {
			t.Fatal(err)
		}
		wantL, err := marshalCompact(wireLeaf{Version: l.Version, Type: l.Type, Time: l.Time.UTC().Format(timeFormat), Seal: l.Seal.String()})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotL, wantL) {
			t.Fatalf("EncodeLeaf:\n got %s\nwant %s", gotL, wantL)
		}
	}
	for _, salt := range []Salt{fixedSalt(1), fixedSalt(200)} {
		for _, s := range sampleV2Bodies(t, salt) {
			st, err := NewStatement(testAuthor, s.org, salt, s.body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := EncodeStatement(st)
			if err != nil {
				t.Fatal(err)
			}
			body, err := marshalCompact(st.Body)
			if err != nil {
				t.Fatal(err)
			}
			want, err := marshalCompact(wireStatement{Type: st.Type, Version: st.Version, Author: st.Author, Org: st.Org,
				Salt: st.Salt.String(), Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("EncodeStatement:\n got %s\nwant %s", got, want)
			}
		}
	}
}

// TestEncodeOpeningMatchesJSON: the opening encoder writes what
// encoding/json writes for wireOpening.
func TestEncodeOpeningMatchesJSON(t *testing.T) {
	e := newSignedEntry(t, testV2Signer(t), testAtts)
	j := Justification{Salt: fixedSalt(3), Reason: "unconscious <&> \"quoted\" \u2028 é\n"}
	for _, o := range []Opening{
		{Statement: e.stmt},
		{Statement: e.stmt, Attestations: testAtts},
		{Statement: e.stmt, Attestations: testAtts, Justification: &j},
		{Statement: e.stmt, Justification: &j, Subject: "ps_" + strings.Repeat("3f", 32)},
		{Statement: e.stmt, Subject: "patient-1"},
	} {
		got, err := EncodeOpening(o)
		if err != nil {
			t.Fatal(err)
		}
		w := wireOpening{Statement: o.Statement, Attestations: o.Attestations, Subject: o.Subject}
		if o.Justification != nil {
			w.Justification = &wireJustification{Salt: o.Justification.Salt.String(), Reason: o.Justification.Reason}
		}
		want, err := marshalCompact(w)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("EncodeOpening:\n got %s\nwant %s", got, want)
		}
		back, err := DecodeOpening(got)
		if err != nil || !reflect.DeepEqual(back, o) {
			t.Errorf("DecodeOpening = %+v, %v, want %+v", back, err, o)
		}
	}
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
}

// mutations returns b with every single-byte deletion, every byte
// replaced by each of a few characters that matter to JSON, white space
// and an escape inserted everywhere, and every member moved to the end.
func mutations(b []byte) [][]byte {
	var out [][]byte
	for i := range b {
		out = append(out, append(append([]byte{}, b[:i]...), b[i+1:]...))
		for _, c := range []byte{'"', '\\', ' ', ',', '{', '}', 'A', 'a', '0', 'Z', '-', '_', '=', 0xff, '\n', '\r'} {
			if b[i] == c {
				continue
			}
			m := append([]byte{}, b...)
			m[i] = c
			out = append(out, m)
		}
		if i%3 == 0 {
			out = append(out, append(append(append([]byte{}, b[:i]...), ' '), b[i:]...))
			out = append(out, append(append(append([]byte{}, b[:i]...), `\u0061`...), b[i:]...))
		}
	}
	// Members reordered: the same JSON object, another order.
	var doc map[string]json.RawMessage
	if json.Unmarshal(b, &doc) == nil {
		for k := range doc {
			var re bytes.Buffer
			re.WriteByte('{')
			first := true
			for _, k2 := range append(keysExcept(doc, k), k) {
				if !first {
					re.WriteByte(',')
				}
				first = false
				kb, _ := json.Marshal(k2)
				re.Write(kb)
				re.WriteByte(':')
				re.Write(doc[k2])
			}
			re.WriteByte('}')
			out = append(out, re.Bytes())
		}
	}
	return out
}

func keysExcept(doc map[string]json.RawMessage, k string) []string {
	var out []string
	for x := range doc {
		if x != k {
			out = append(out, x)
		}
	}
	return out
}

// TestFastDecodersAgree: on valid encodings the fast paths accept, and on
// those and on every mutation of them a fast path accepts only what the
// encoding/json path accepts, with the same value.
func TestFastDecodersAgree(t *testing.T) {
	s := testV2Signer(t)
	var statements, headers, leaves, sealeds [][]byte
	var sealedHeaders []Header
	for _, salt := range []Salt{fixedSalt(1), fixedSalt(77)} {
		for _, sb := range sampleV2Bodies(t, salt) {
			stmt, h, l, err := s.NewEntry(sb.org, salt, sb.body)
			if err != nil {
				t.Fatal(err)
			}
			l.Time = testLeafTime
			hb, _ := EncodeHeader(h)
			lb, _ := EncodeLeaf(l)
			statements, headers, leaves = append(statements, stmt), append(headers, hb), append(leaves, lb)
		}
	}
	e := newSignedEntry(t, s, testAtts)
	headers = append(headers, e.header)
	for _, n := range []int{1, 2, 3} {
		_, pubs := sealKeys(t, n)
		sealed, err := SealOpening(e.o, e.h, pubs)
		if err != nil {
			t.Fatal(err)
		}
		sealeds, sealedHeaders = append(sealeds, sealed), append(sealedHeaders, e.h)
	}
	// With the author's self slot (WithSelf): alone (flattened) and among
	// others.
	for _, n := range []int{0, 2} {
		self, _ := sealKeys(t, 1)
		_, pubs := sealKeys(t, n)
		sealed, err := SealOpening(e.o, e.h, pubs, WithSelf(self[0]))
		if err != nil {
			t.Fatal(err)
		}
		sealeds, sealedHeaders = append(sealeds, sealed), append(sealedHeaders, e.h)
	}

	// Crafted near misses: a zero att, zero and too many slots.
	crafted := func(b []byte, old, new string) []byte {
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
	zeroAtt := crafted(e.header, `"att":"`+e.h.Att.String(), `"att":"`+Digest{}.String())
	var gen struct {
		Recipients []json.RawMessage `json:"recipients"`
	}
	if err := json.Unmarshal(sealeds[1], &gen); err != nil {
		t.Fatal(err)
	}
	var many []string
	for range MaxRecipients + 1 {
		many = append(many, string(gen.Recipients[0]))
	}
	allSlots := `[` + string(gen.Recipients[0]) + `,` + string(gen.Recipients[1]) + `]`
	tooMany := crafted(sealeds[1], allSlots, `[`+strings.Join(many, ",")+`]`)
	none := crafted(sealeds[1], allSlots, `[]`)
	for _, b := range [][]byte{zeroAtt, tooMany, none} {
		if bytes.Equal(b, e.header) || bytes.Equal(b, sealeds[1]) {
			t.Fatal("crafting failed")
		}
	}
	for kind, b := range map[string][]byte{"zero att": zeroAtt, "too many slots": tooMany, "no slot": none} {
		_, hok := decodeHeaderFast(b)
		_, sok := parseSealedFast(b)
		if hok || sok {
			t.Errorf("the fast path accepts a sealed opening or header with %s", kind)
		}
	}

	check := func(kind string, valid [][]byte, fast func([]byte) (any, bool), slow func([]byte) (any, error)) {
		t.Helper()
		accepted, tried := 0, 0
		for _, v := range valid {
			if _, ok := fast(v); !ok {
				t.Errorf("%s: the fast path declines a valid encoding %s", kind, v)
			}
			for _, m := range append(mutations(v), v) {
				tried++
				got, ok := fast(m)
				if !ok {
					continue
				}
				accepted++
				want, err := slow(m)
				if err != nil {
					t.Errorf("%s: the fast path accepts %q, the JSON path refuses it: %v", kind, m, err)
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: %q decodes to %+v on the fast path, %+v on the JSON path", kind, m, got, want)
				}
			}
		}
		t.Logf("%s: %d inputs, %d accepted by the fast path", kind, tried, accepted)
	}
	check("statement", statements,
		func(b []byte) (any, bool) { return decodeStatementFast(b) },
		func(b []byte) (any, error) { return decodeStatementJSON(b) })
	check("header", headers,
		func(b []byte) (any, bool) { return decodeHeaderFast(b) },
		func(b []byte) (any, error) { return decodeHeaderJSON(b) })
	check("leaf", leaves,
		func(b []byte) (any, bool) { return decodeLeafFast(b) },
		func(b []byte) (any, error) { return decodeLeafJSON(b) })
	check("sealed", sealeds,
		func(b []byte) (any, bool) { return parseSealedFast(b) },
		func(b []byte) (any, error) { return parseSealedJSON(b) })
	for i, sealed := range sealeds {
		if err := CheckSealed(sealed, sealedHeaders[i]); err != nil {
			t.Errorf("CheckSealed: %v", err)
		}
	}
	// Large slot counts and jwx's own output take the fast path too.
	_, pubs := sealKeys(t, MaxRecipients)
	sealed, err := SealOpening(e.o, e.h, pubs)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := parseSealedFast(sealed); !ok {
		t.Errorf("the fast path declines %d slots", MaxRecipients)
	}
	plain, _ := EncodeOpening(e.o)
	for len(plain)%sealPadBlock != 0 {
		plain = append(plain, ' ')
	}
	for _, n := range []int{1, 4} {
		_, pubs := sealKeys(t, n)
		if _, ok := parseSealedFast(jwxSeal(t, plain, e.h.Commitment[:], pubs)); !ok {
			t.Errorf("the fast path declines jwx's output with %d slots", n)
		}
	}
}
