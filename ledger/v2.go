package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// This file holds entry format v2 (docs/design/ledger-privacy.md): the
// Statement an author asserts (never public), its Commitment, the signed
// Header the consortium checks without the body, and the Leaf the public
// tree holds. Every layer has exactly one encoding: canonical compact JSON
// with the fields in struct order and no insignificant white space, and
// each Decode accepts only the bytes the matching Encode produces.

// VersionV2 is the version of the v2 entry format; it is the "v" of every
// v2 statement, header and leaf.
const VersionV2 = 2

// Size bounds of the v2 layers. Encoders refuse larger values and decoders
// refuse larger inputs before parsing. A statement fits the tlog-tiles
// entry bundle's 16-bit length prefix; headers and leaves are small and
// fixed-shape, so their bounds are tight.
const (
	MaxStatementSize = 65535
	MaxHeaderSize    = 1024
	MaxLeafSize      = 512
	// MaxOpeningSize bounds an opening: a statement, its attestations and
	// an optional break-glass justification.
	MaxOpeningSize = MaxStatementSize + MaxAttestations*maxAttestationSize + maxJustificationSize + 512
)

// Org markers: the org of entries no organisation authors.
const (
	// OrgPatient is the org of consent entries: the patient acts, through
	// their patient-facing gateway. It names no patient.
	OrgPatient = "patient"
	// OrgGateway is the org of a gateway's own entries
	// (gateway.registered, circuit.registered).
	OrgGateway = "gateway"
)

// Domain-separation prefixes of the v2 hashes. Each v2 hash is SHA-256 over
// exactly one of these followed by its input, so no hash of one kind can
// be replayed as another.
const (
	commitmentDomain    = "healthgw/entry/v2/commitment\n"
	signatureDomain     = "healthgw/entry/v2/signature\n"
	sealDomain          = "healthgw/entry/v2/seal\n"
	attestationsDomain  = "healthgw/entry/v2/attestations\n"
	justificationDomain = "healthgw/entry/v2/justification\n"
)

// orgIDPattern and gatewayIDPattern: idsyntax.go.

// SaltSize is the size of a statement salt.
const SaltSize = 32

// Salt is the 32 random bytes that make a statement's commitment
// unguessable: without the salt nobody can check a guessed body against a
// public commitment. Its text form is unpadded base64url.
type Salt [SaltSize]byte

// NewSalt returns a fresh random salt.
func NewSalt() (Salt, error) {
	var s Salt
	if err := randomFill(s[:]); err != nil {
		return Salt{}, fmt.Errorf("ledger: salt: %w", err)
	}
	return s, nil
}

// String returns the salt's text form.
func (s Salt) String() string { return base64.RawURLEncoding.EncodeToString(s[:]) }

func parseSalt(text string) (Salt, error) {
	var s Salt
	if err := decodeB64Exact(text, s[:]); err != nil {
		return Salt{}, err
	}
	return s, nil
}

// Digest is a SHA-256 value: a commitment, a seal or an attestation digest.
// Its text form is 64 lowercase hex digits.
type Digest [sha256.Size]byte

// String returns the digest in lowercase hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is the zero digest, which stands for "none"
// (a header without attestations).
func (d Digest) IsZero() bool { return d == Digest{} }

// ParseDigest parses 64 lowercase hex digits.
func ParseDigest(text string) (Digest, error) {
	if d, ok := parseLowerHexDigest(text); ok {
		return d, nil
	}
	var d Digest
	if len(text) != 2*len(d) || text != lowerHex(text) {
		return Digest{}, fmt.Errorf("digest must be %d lowercase hex digits", 2*len(d))
	}
	if _, err := hex.Decode(d[:], []byte(text)); err != nil {
		return Digest{}, fmt.Errorf("digest: %v", err)
	}
	return d, nil
}

// parseLowerHexDigest decodes text if it is 2*len(Digest) lowercase hex
// digits (what ParseDigest accepts), without allocating.
func parseLowerHexDigest[T string | []byte](text T) (Digest, bool) {
	var d Digest
	var src [2 * len(d)]byte
	if len(text) != len(src) {
		return Digest{}, false
	}
	copy(src[:], text)
	for _, c := range src {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return Digest{}, false
		}
	}
	if _, err := hex.Decode(d[:], src[:]); err != nil {
		return Digest{}, false
	}
	return d, true
}

func lowerHex(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

func domainHash(domain string, parts ...[]byte) Digest {
	h := sha256.New()
	h.Write([]byte(domain))
	for _, p := range parts {
		h.Write(p)
	}
	var d Digest
	h.Sum(d[:0])
	return d
}

// Commitment returns the commitment to a statement's canonical bytes:
// SHA-256("healthgw/entry/v2/commitment\n" ‖ statement).
func Commitment(statement []byte) Digest {
	return domainHash(commitmentDomain, statement)
}

// Seal returns the seal of a header's canonical bytes, the value a Leaf
// carries: SHA-256("healthgw/entry/v2/seal\n" ‖ header).
func Seal(header []byte) Digest {
	return domainHash(sealDomain, header)
}

// Statement is what an author asserts: the typed body, who wrote it and
// for which org, and the salt that hides it. It is never public; parties
// receive it in an Opening.
type Statement struct {
	Type Type
	// Version is VersionV2.
	Version int
	// Author is the ID of the gateway whose node key signs the entry.
	Author string
	// Org is the organisation the author acts for: the holder for
	// record and access entries (the requester is in the body),
	// OrgPatient for consents, OrgGateway for the gateway's own entries,
	// the org itself for org.registered and org.keys_rotated, the issuer
	// for issuer.registered and the verifier for proof.verified.
	Org  string
	Salt Salt
	// Body is a pointer to the v2 body struct that matches Type, e.g.
	// *ConsentGrantedV2 for TypeConsentGranted.
	Body any
}

type wireStatement struct {
	Type    Type            `json:"type"`
	Version int             `json:"v"`
	Author  string          `json:"author"`
	Org     string          `json:"org"`
	Salt    string          `json:"salt"`
	Body    json.RawMessage `json:"body"`
}

// NewStatement returns the statement of the type that matches body's Go
// type, checked as EncodeStatement checks it.
func NewStatement(author, org string, salt Salt, body any) (Statement, error) {
	t, ok := typeOfV2(body)
	if !ok {
		return Statement{}, fmt.Errorf("%w: v2 body %T", ErrUnknownType, body)
	}
	st := Statement{Type: t, Version: VersionV2, Author: author, Org: org, Salt: salt, Body: body}
	if err := st.validate(); err != nil {
		return Statement{}, err
	}
	return st, nil
}

func (st Statement) validate() error {
	want, ok := typeOfV2(st.Body)
	if ok && reflect.ValueOf(st.Body).IsNil() {
		return fmt.Errorf("%w: nil %T body", ErrMalformed, st.Body)
	}
	if !ok || want != st.Type {
		return fmt.Errorf("%w: type %q with v2 body %T", ErrUnknownType, st.Type, st.Body)
	}
	if st.Version != VersionV2 {
		return fmt.Errorf("%w: statement version %d", ErrMalformed, st.Version)
	}
	if !gatewayIDPattern.MatchString(st.Author) {
		return fmt.Errorf("%w: author %q is not a gateway ID", ErrMalformed, st.Author)
	}
	if !orgIDPattern.MatchString(st.Org) {
		return fmt.Errorf("%w: org %q is not an org ID", ErrMalformed, st.Org)
	}
	if st.Salt == (Salt{}) {
		return fmt.Errorf("%w: salt not set", ErrMalformed)
	}
	b := st.Body.(bodyV2)
	if err := b.checkV2(); err != nil {
		return fmt.Errorf("%w: %s body: %v", ErrMalformed, st.Type, err)
	}
	if err := b.authorshipV2(st.Author, st.Org); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrAuthorship, st.Type, err)
	}
	return nil
}

// EncodeStatement returns the canonical encoding of st:
// {"type","v","author","org","salt","body"} with the body's fields in the
// order of its Go struct. It checks the body (required fields, formats)
// and the static authorship rule (e.g. org is the holder of a
// record.registered, the home gateway of an org.registered is its
// author).
func EncodeStatement(st Statement) ([]byte, error) {
	if err := st.validate(); err != nil {
		return nil, err
	}
	return encodeStatement(st)
}

// encodeStatement is EncodeStatement for a statement already validated.
// The members around the body are written directly (appendStatementHead),
// and the body too when it is of a fast type (appendBodyFast):
// validated, none needs escaping.
func encodeStatement(st Statement) ([]byte, error) {
	b, _, err := encodeStatementFast(st)
	return b, err
}

// encodeStatementFast is encodeStatement, and reports whether the body
// was written by appendBodyFast (fast): then decodeBodyFast reads the
// same body back from it.
func encodeStatementFast(st Statement) (b []byte, fast bool, err error) {
	head := appendStatementHead(make([]byte, 0, 512+len(st.Author)+len(st.Org)), st)
	if fb, ok := appendBodyFast(head, st.Body); ok {
		b, fast = append(fb, '}'), true
	} else {
		body, err := marshalCompact(st.Body)
		if err != nil {
			return nil, false, fmt.Errorf("%w: body: %v", ErrMalformed, err)
		}
		b = append(append(head, body...), '}')
	}
	if len(b) > MaxStatementSize {
		return nil, false, fmt.Errorf("%w: statement of %d bytes", ErrTooLarge, len(b))
	}
	return b, fast, nil
}

// DecodeStatement parses a statement's canonical encoding. It rejects
// unknown types and fields, trailing data, bodies that fail their checks,
// and any encoding that is not the one EncodeStatement would produce.
func DecodeStatement(b []byte) (Statement, error) {
	if len(b) > MaxStatementSize {
		return Statement{}, fmt.Errorf("%w: statement of %d bytes", ErrTooLarge, len(b))
	}
	if st, ok := decodeStatementFast(b); ok {
		return st, nil
	}
	return decodeStatementJSON(b)
}

// decodeStatementJSON is DecodeStatement with encoding/json, for any
// input (decodeStatementFast declined it).
func decodeStatementJSON(b []byte) (Statement, error) {
	var w wireStatement
	if err := strictUnmarshal(b, &w); err != nil {
		return Statement{}, fmt.Errorf("%w: statement: %v", ErrMalformed, err)
	}
	body := bodyForV2(w.Type)
	if body == nil {
		return Statement{}, fmt.Errorf("%w: %q", ErrUnknownType, w.Type)
	}
	if err := strictUnmarshal(w.Body, body); err != nil {
		return Statement{}, fmt.Errorf("%w: %s body: %v", ErrMalformed, w.Type, err)
	}
	salt, err := parseSalt(w.Salt)
	if err != nil {
		return Statement{}, fmt.Errorf("%w: salt: %v", ErrMalformed, err)
	}
	st := Statement{Type: w.Type, Version: w.Version, Author: w.Author, Org: w.Org, Salt: salt, Body: body}
	again, err := EncodeStatement(st)
	if err != nil {
		return Statement{}, err
	}
	if !bytes.Equal(again, b) {
		return Statement{}, fmt.Errorf("%w: statement", ErrNonCanonical)
	}
	return st, nil
}

// Header is what the consortium sees of an entry and checks
// deterministically without the body: the statement's type, author and
// org, its commitment, the digest of its attestations, and the author's
// signature over all of them (see SignatureMessage).
type Header struct {
	Type       Type
	Version    int
	Author     string
	Org        string
	Commitment Digest
	Sig        [64]byte
	// Att is the digest of the opening's attestations (see
	// AttestationsDigest), or zero when there are none.
	Att Digest
}

type wireHeader struct {
	Type       Type   `json:"type"`
	Version    int    `json:"v"`
	Author     string `json:"author"`
	Org        string `json:"org"`
	Commitment string `json:"commitment"`
	Sig        string `json:"sig"`
	Att        string `json:"att"`
}

// SignatureMessage returns the bytes the author's node key signs:
//
//	"healthgw/entry/v2/signature\n" ‖ type ‖ "\n" ‖ author ‖ "\n" ‖ org ‖ "\n" ‖
//	hex(commitment) ‖ "\n" ‖ hex(att) (empty when there are no attestations)
//
// Type, author and org cannot hold a newline (their syntax is checked), so
// the message is unambiguous. Signing the commitment rather than the body
// lets a consortium check the signature without the body; signing att
// keeps a relay from stripping a patient's attestations.
func SignatureMessage(h Header) []byte {
	var b bytes.Buffer
	b.WriteString(signatureDomain)
	b.WriteString(string(h.Type))
	b.WriteByte('\n')
	b.WriteString(h.Author)
	b.WriteByte('\n')
	b.WriteString(h.Org)
	b.WriteByte('\n')
	b.WriteString(h.Commitment.String())
	b.WriteByte('\n')
	b.WriteString(attText(h.Att))
	return b.Bytes()
}

func attText(d Digest) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

func (h Header) validate() error {
	if !isTypeV2(h.Type) {
		return fmt.Errorf("%w: header type %q", ErrUnknownType, h.Type)
	}
	if h.Version != VersionV2 {
		return fmt.Errorf("%w: header version %d", ErrMalformed, h.Version)
	}
	if !gatewayIDPattern.MatchString(h.Author) {
		return fmt.Errorf("%w: header author %q is not a gateway ID", ErrMalformed, h.Author)
	}
	if !orgIDPattern.MatchString(h.Org) {
		return fmt.Errorf("%w: header org %q is not an org ID", ErrMalformed, h.Org)
	}
	return nil
}

// EncodeHeader returns the canonical encoding of h:
// {"type","v","author","org","commitment","sig","att"}, with the
// commitment and att in lowercase hex (att empty when zero) and the
// signature in unpadded base64url. It does not check the signature.
func EncodeHeader(h Header) ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	// The members are validated and need no escaping: written directly,
	// as encoding/json writes wireHeader.
	b := appendHeader(make([]byte, 0, 256+len(h.Author)+len(h.Org)), h)
	if len(b) > MaxHeaderSize {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// DecodeHeader parses a header's canonical encoding. It does not check
// the signature (VerifyHeader does).
func DecodeHeader(b []byte) (Header, error) {
	if len(b) > MaxHeaderSize {
		return Header{}, fmt.Errorf("%w: header of %d bytes", ErrTooLarge, len(b))
	}
	if h, ok := decodeHeaderFast(b); ok {
		return h, nil
	}
	return decodeHeaderJSON(b)
}

// decodeHeaderJSON is DecodeHeader with encoding/json.
func decodeHeaderJSON(b []byte) (Header, error) {
	var w wireHeader
	if err := strictUnmarshal(b, &w); err != nil {
		return Header{}, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	h := Header{Type: w.Type, Version: w.Version, Author: w.Author, Org: w.Org}
	var err error
	if h.Commitment, err = ParseDigest(w.Commitment); err != nil {
		return Header{}, fmt.Errorf("%w: header commitment: %v", ErrMalformed, err)
	}
	if err := decodeB64Exact(w.Sig, h.Sig[:]); err != nil {
		return Header{}, fmt.Errorf("%w: header sig: %v", ErrMalformed, err)
	}
	if w.Att != "" {
		if h.Att, err = ParseDigest(w.Att); err != nil {
			return Header{}, fmt.Errorf("%w: header att: %v", ErrMalformed, err)
		}
		if h.Att.IsZero() {
			return Header{}, fmt.Errorf("%w: header att is the zero digest", ErrNonCanonical)
		}
	}
	again, err := EncodeHeader(h)
	if err != nil {
		return Header{}, err
	}
	if !bytes.Equal(again, b) {
		return Header{}, fmt.Errorf("%w: header", ErrNonCanonical)
	}
	return h, nil
}

// Leaf is what the public tree holds for an entry (the entry bundle's
// bytes, hashed as an RFC 6962 leaf): the kind, the time the log assigned,
// and the seal of the header. A reader of the public log learns only how
// many entries there are, their kinds and times.
type Leaf struct {
	Version int
	Type    Type
	// Time is set by the log when the entry becomes durable (the block
	// time in a consortium); a leaf returned by Signer.NewEntry has none.
	Time time.Time
	// Seal is Seal(the header's canonical bytes).
	Seal Digest
}

type wireLeaf struct {
	Version int    `json:"v"`
	Type    Type   `json:"type"`
	Time    string `json:"time"`
	Seal    string `json:"seal"`
}

// EncodeLeaf returns the canonical encoding of l:
// {"v","type","time","seal"}, the time in UTC with nine fractional digits.
// The time must be set (by the log), within years 1970 to 9999.
func EncodeLeaf(l Leaf) ([]byte, error) {
	if l.Version != VersionV2 {
		return nil, fmt.Errorf("%w: leaf version %d", ErrMalformed, l.Version)
	}
	if !isTypeV2(l.Type) {
		return nil, fmt.Errorf("%w: leaf type %q", ErrUnknownType, l.Type)
	}
	if y := l.Time.UTC().Year(); l.Time.IsZero() || y < 1970 || y > 9999 {
		return nil, fmt.Errorf("%w: leaf time not set by the log (or out of range)", ErrMalformed)
	}
	// As encoding/json writes wireLeaf: the members need no escaping.
	b := appendLeaf(make([]byte, 0, 160), l)
	if len(b) > MaxLeafSize {
		return nil, fmt.Errorf("%w: leaf of %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// DecodeLeaf parses a leaf's canonical encoding.
func DecodeLeaf(b []byte) (Leaf, error) {
	if len(b) > MaxLeafSize {
		return Leaf{}, fmt.Errorf("%w: leaf of %d bytes", ErrTooLarge, len(b))
	}
	if l, ok := decodeLeafFast(b); ok {
		return l, nil
	}
	return decodeLeafJSON(b)
}

// decodeLeafJSON is DecodeLeaf with encoding/json.
func decodeLeafJSON(b []byte) (Leaf, error) {
	var w wireLeaf
	if err := strictUnmarshal(b, &w); err != nil {
		return Leaf{}, fmt.Errorf("%w: leaf: %v", ErrMalformed, err)
	}
	t, err := time.Parse(timeFormat, w.Time)
	if err != nil {
		return Leaf{}, fmt.Errorf("%w: leaf time: %v", ErrMalformed, err)
	}
	seal, err := ParseDigest(w.Seal)
	if err != nil {
		return Leaf{}, fmt.Errorf("%w: leaf seal: %v", ErrMalformed, err)
	}
	l := Leaf{Version: w.Version, Type: w.Type, Time: t, Seal: seal}
	again, err := EncodeLeaf(l)
	if err != nil {
		return Leaf{}, err
	}
	if !bytes.Equal(again, b) {
		return Leaf{}, fmt.Errorf("%w: leaf", ErrNonCanonical)
	}
	return l, nil
}

// decodeB64Exact decodes unpadded base64url text into exactly len(dst)
// bytes, refusing padding, other alphabets and non-zero trailing bits.
func decodeB64Exact(text string, dst []byte) error {
	if base64.RawURLEncoding.EncodedLen(len(dst)) != len(text) {
		return fmt.Errorf("want %d bytes of unpadded base64url", len(dst))
	}
	n, err := base64.RawURLEncoding.Strict().Decode(dst, []byte(text))
	if err != nil {
		return err
	}
	if n != len(dst) {
		return fmt.Errorf("want %d bytes, got %d", len(dst), n)
	}
	return nil
}
