package ledger

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"time"
)

// Fast paths of the v2 codecs. Every v2 layer has one encoding, so the
// decoders can first read the canonical layout directly (no reflection,
// no scanning twice) and fall back to encoding/json for anything else.
// A fast path never decides alone: it accepts only when re-encoding what
// it read reproduces the input byte for byte (the canonical check the
// slow path ends with too), and it declines, leaving the verdict and its
// error to the slow path, on anything it does not recognise. So the
// decoders accept exactly what they accepted before, with the same
// values (TestFastDecodersAgree and the fuzz tests compare both paths),
// and the checks at read and verify time are unchanged.
//
// The encoders write the fixed members directly: their values are
// checked first (types from a closed set, gateway and org IDs, lowercase
// hex, unpadded base64url, digits), so none needs escaping and the bytes
// are those encoding/json writes (TestFastEncodersMatchJSON).

// cursor reads canonical JSON from b.
type cursor struct {
	b  []byte
	i  int
	ok bool
}

func newCursor(b []byte) *cursor { return &cursor{b: b, ok: true} }

// lit consumes the literal s.
func (c *cursor) lit(s string) {
	if !c.ok {
		return
	}
	if len(c.b)-c.i < len(s) || string(c.b[c.i:c.i+len(s)]) != s {
		c.ok = false
		return
	}
	c.i += len(s)
}

// has reports whether s follows, without consuming it.
func (c *cursor) has(s string) bool {
	return c.ok && len(c.b)-c.i >= len(s) && string(c.b[c.i:c.i+len(s)]) == s
}

// plain consumes the body of a JSON string up to (not including) its
// closing quote, declining escapes and control characters: the strings
// the fast paths read need none in their canonical encoding.
func (c *cursor) plain() string {
	if !c.ok {
		return ""
	}
	for j := c.i; j < len(c.b); j++ {
		switch ch := c.b[j]; {
		case ch == '"':
			s := string(c.b[c.i:j])
			c.i = j
			return s
		case ch == '\\' || ch < 0x20:
			c.ok = false
			return ""
		}
	}
	c.ok = false
	return ""
}

// b64 consumes an unpadded base64url value up to its closing quote and
// returns its text, declining any other character.
func (c *cursor) b64() []byte {
	if !c.ok {
		return nil
	}
	for j := c.i; j < len(c.b); j++ {
		ch := c.b[j]
		if ch == '"' {
			s := c.b[c.i:j]
			c.i = j
			return s
		}
		if !isB64URL(ch) {
			c.ok = false
			return nil
		}
	}
	c.ok = false
	return nil
}

// text consumes a value up to its closing quote and returns it,
// unchecked: the caller checks it (a long base64url value, with
// validB64 and noLineBreaks).
func (c *cursor) text() []byte {
	if !c.ok {
		return nil
	}
	j := bytes.IndexByte(c.b[c.i:], '"')
	if j < 0 {
		c.ok = false
		return nil
	}
	s := c.b[c.i : c.i+j]
	c.i += j
	return s
}

// noLineBreaks reports whether text holds no CR or LF, the only
// characters outside the alphabet the base64 decoder skips instead of
// refusing: with validB64, text is in the base64url alphabet (as b64
// checks).
func noLineBreaks(text []byte) bool {
	return bytes.IndexByte(text, '\n') < 0 && bytes.IndexByte(text, '\r') < 0
}

func (c *cursor) end() bool { return c.ok && c.i == len(c.b) }

func isB64URL(ch byte) bool { return b64URLChars[ch] }

// b64URLChars is the unpadded base64url alphabet.
var b64URLChars = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

// validB64 reports whether text is unpadded base64url that decodes under
// the strict decoder (no stray bits in the last group), without keeping
// the bytes: it decodes in groups through a fixed buffer.
func validB64(text []byte) bool {
	var buf [768]byte
	const chunk = 1024 // characters: whole 4-character groups
	for len(text) > chunk {
		if _, err := base64.RawURLEncoding.Strict().Decode(buf[:], text[:chunk]); err != nil {
			return false
		}
		text = text[chunk:]
	}
	_, err := base64.RawURLEncoding.Strict().Decode(buf[:], text)
	return err == nil
}

// b64Exact decodes unpadded base64url text into exactly len(dst) bytes
// (decodeB64Exact for bytes).
func b64Exact(text, dst []byte) bool {
	if base64.RawURLEncoding.EncodedLen(len(dst)) != len(text) {
		return false
	}
	n, err := base64.RawURLEncoding.Strict().Decode(dst, text)
	return err == nil && n == len(dst)
}

// appendHex appends d in lowercase hex.
func appendHex(dst []byte, d []byte) []byte {
	const digits = "0123456789abcdef"
	for _, v := range d {
		dst = append(dst, digits[v>>4], digits[v&0x0f])
	}
	return dst
}

// appendHeader appends the canonical encoding of a validated header.
func appendHeader(dst []byte, h Header) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, h.Type...)
	dst = append(dst, `","v":`...)
	dst = strconv.AppendInt(dst, int64(h.Version), 10)
	dst = append(dst, `,"author":"`...)
	dst = append(dst, h.Author...)
	dst = append(dst, `","org":"`...)
	dst = append(dst, h.Org...)
	dst = append(dst, `","commitment":"`...)
	dst = appendHex(dst, h.Commitment[:])
	dst = append(dst, `","sig":"`...)
	dst = base64.RawURLEncoding.AppendEncode(dst, h.Sig[:])
	dst = append(dst, `","att":"`...)
	if !h.Att.IsZero() {
		dst = appendHex(dst, h.Att[:])
	}
	return append(dst, `"}`...)
}

// decodeHeaderFast reads a header in its canonical layout.
func decodeHeaderFast(b []byte) (Header, bool) {
	c := newCursor(b)
	var h Header
	c.lit(`{"type":"`)
	h.Type = Type(c.plain())
	c.lit(`","v":2,"author":"`)
	h.Version = VersionV2
	h.Author = c.plain()
	c.lit(`","org":"`)
	h.Org = c.plain()
	c.lit(`","commitment":"`)
	commitment := c.b64()
	c.lit(`","sig":"`)
	sig := c.b64()
	c.lit(`","att":"`)
	att := c.b64()
	c.lit(`"}`)
	if !c.end() {
		return Header{}, false
	}
	var ok bool
	if h.Commitment, ok = parseLowerHexDigest(commitment); !ok {
		return Header{}, false
	}
	if !b64Exact(sig, h.Sig[:]) {
		return Header{}, false
	}
	if len(att) > 0 {
		if h.Att, ok = parseLowerHexDigest(att); !ok {
			return Header{}, false
		}
	}
	if h.validate() != nil {
		return Header{}, false
	}
	var buf [512]byte // the re-encoding, on the stack unless longer
	if !bytes.Equal(appendHeader(buf[:0], h), b) {
		return Header{}, false
	}
	return h, true
}

// appendLeaf appends the canonical encoding of a validated leaf.
func appendLeaf(dst []byte, l Leaf) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(l.Version), 10)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, l.Type...)
	dst = append(dst, `","time":"`...)
	dst = l.Time.UTC().AppendFormat(dst, timeFormat)
	dst = append(dst, `","seal":"`...)
	dst = appendHex(dst, l.Seal[:])
	return append(dst, `"}`...)
}

// decodeLeafFast reads a leaf in its canonical layout.
func decodeLeafFast(b []byte) (Leaf, bool) {
	c := newCursor(b)
	l := Leaf{Version: VersionV2}
	c.lit(`{"v":2,"type":"`)
	l.Type = Type(c.plain())
	c.lit(`","time":"`)
	ts := c.plain()
	c.lit(`","seal":"`)
	seal := c.b64()
	c.lit(`"}`)
	if !c.end() || !isTypeV2(l.Type) {
		return Leaf{}, false
	}
	t, err := time.Parse(timeFormat, ts)
	if err != nil {
		return Leaf{}, false
	}
	l.Time = t
	var ok bool
	if l.Seal, ok = parseLowerHexDigest(seal); !ok {
		return Leaf{}, false
	}
	if y := l.Time.Year(); y < 1970 || y > 9999 {
		return Leaf{}, false
	}
	var buf [256]byte // the re-encoding, on the stack unless longer
	if !bytes.Equal(appendLeaf(buf[:0], l), b) {
		return Leaf{}, false
	}
	return l, true
}

// appendStatementHead appends the canonical encoding of a validated
// statement up to its body: the body's encoding and a closing brace
// follow.
func appendStatementHead(dst []byte, st Statement) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, st.Type...)
	dst = append(dst, `","v":`...)
	dst = strconv.AppendInt(dst, int64(st.Version), 10)
	dst = append(dst, `,"author":"`...)
	dst = append(dst, st.Author...)
	dst = append(dst, `","org":"`...)
	dst = append(dst, st.Org...)
	dst = append(dst, `","salt":"`...)
	dst = base64.RawURLEncoding.AppendEncode(dst, st.Salt[:])
	return append(dst, `","body":`...)
}

// decodeStatementFast reads a statement in its canonical layout: the
// fixed members directly, the body directly when it is of a fast type in
// the layout appendBodyFast writes (decodeBodyFast), otherwise with
// encoding/json as the slow path does, once.
func decodeStatementFast(b []byte) (Statement, bool) {
	c := newCursor(b)
	var st Statement
	c.lit(`{"type":"`)
	st.Type = Type(c.plain())
	c.lit(`","v":2,"author":"`)
	st.Version = VersionV2
	st.Author = c.plain()
	c.lit(`","org":"`)
	st.Org = c.plain()
	c.lit(`","salt":"`)
	salt := c.b64()
	c.lit(`","body":`)
	if !c.ok || len(b) == 0 || b[len(b)-1] != '}' || c.i >= len(b)-1 {
		return Statement{}, false
	}
	if !b64Exact(salt, st.Salt[:]) {
		return Statement{}, false
	}
	body, ok := decodeBodyFast(st.Type, b[c.i:len(b)-1])
	if !ok {
		if body = bodyForV2(st.Type); body == nil {
			return Statement{}, false
		}
		if err := strictUnmarshal(b[c.i:len(b)-1], body); err != nil {
			return Statement{}, false
		}
	}
	st.Body = body
	again, err := EncodeStatement(st)
	if err != nil || !bytes.Equal(again, b) {
		return Statement{}, false
	}
	return st, true
}

// Sealed openings: the layout encryptJWE (and jwx) writes, flattened or
// general. parseSealedFast accepts a subset of what parseSealed accepts
// and returns the same commitment.
const (
	sealedSlotHeader = `{"header":{"alg":"` + jweAlg + `","epk":{"crv":"X25519","kty":"OKP","x":"`
	sealedFlatProt   = `{"alg":"` + jweAlg + `","enc":"` + jweEnc + `","epk":{"crv":"X25519","kty":"OKP","x":"`
	sealedGenProt    = `{"enc":"` + jweEnc + `"}`
	// The self slot (WithSelf): its slot header, and the whole protected
	// header when it is the only slot.
	sealedSelfSlot     = `{"header":{"alg":"` + jweSelfAlg + `"},"encrypted_key":"`
	sealedSelfFlatProt = `{"alg":"` + jweSelfAlg + `","enc":"` + jweEnc + `"}`
)

func parseSealedFast(sealed []byte) (Digest, bool) {
	if len(sealed) > MaxSealedSize {
		return Digest{}, false
	}
	c := newCursor(sealed)
	c.lit(`{"aad":"`)
	aad := c.b64()
	c.lit(`","ciphertext":"`)
	ct := c.text() // checked below: validB64, noLineBreaks
	flat := c.has(`","encrypted_key":"`)
	var ek []byte
	if flat {
		c.lit(`","encrypted_key":"`)
		ek = c.b64()
	}
	c.lit(`","iv":"`)
	iv := c.b64()
	c.lit(`","protected":"`)
	prot := c.b64()
	c.lit(`"`)
	var x [40]byte // scratch: ephemeral keys (32 bytes), wrapped keys (40)
	slots, selfSlots := 0, 0
	if !flat {
		c.lit(`,"recipients":[`)
		for c.ok {
			if c.has(sealedSelfSlot) {
				if selfSlots++; selfSlots > 1 {
					return Digest{}, false
				}
				c.lit(sealedSelfSlot)
			} else {
				c.lit(sealedSlotHeader)
				if !b64Exact(c.b64(), x[:32]) {
					return Digest{}, false
				}
				c.lit(`"}},"encrypted_key":"`)
			}
			if !b64Exact(c.b64(), x[:40]) {
				return Digest{}, false
			}
			c.lit(`"}`)
			slots++
			if !c.has(",") {
				break
			}
			c.lit(",")
		}
		c.lit("]")
		if slots < 1 || slots > MaxRecipients {
			return Digest{}, false
		}
	}
	c.lit(`,"tag":"`)
	tag := c.b64()
	c.lit(`"}`)
	if !c.end() {
		return Digest{}, false
	}
	// The protected header, decoded: exactly {"enc"} for the general
	// serialization, the slot's parameters and "enc" for the flattened.
	var pbuf [256]byte
	if base64.RawURLEncoding.DecodedLen(len(prot)) > len(pbuf) {
		return Digest{}, false
	}
	n, err := base64.RawURLEncoding.Strict().Decode(pbuf[:], prot)
	if err != nil {
		return Digest{}, false
	}
	p := pbuf[:n]
	if flat && string(p) == sealedSelfFlatProt {
		if !b64Exact(ek, x[:40]) {
			return Digest{}, false
		}
	} else if flat {
		pc := newCursor(p)
		pc.lit(sealedFlatProt)
		epk := pc.b64()
		pc.lit(`"}}`)
		if !pc.end() || !b64Exact(epk, x[:32]) || !b64Exact(ek, x[:40]) {
			return Digest{}, false
		}
	} else if string(p) != sealedGenProt {
		return Digest{}, false
	}
	var ivb [12]byte
	var tagb [16]byte
	if !b64Exact(iv, ivb[:]) || !b64Exact(tag, tagb[:]) {
		return Digest{}, false
	}
	if len(ct) == 0 || !noLineBreaks(ct) || !validB64(ct) {
		return Digest{}, false
	}
	var d Digest
	if !b64Exact(aad, d[:]) {
		return Digest{}, false
	}
	return d, true
}
