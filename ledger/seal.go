package ledger

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwe/jwebb"
)

// Sealing (docs/design/ledger-privacy.md, "Sealing"). An opening is stored
// and replicated sealed to the parties that may read it: one JWE in JSON
// serialization (RFC 7516 §7.2) with ECDH-ES+A256KW on X25519 per
// recipient and A256GCM for the content, opened by
// github.com/lestrrat-go/jwx/v3 and built from standard building blocks
// in the layout jwx writes (encryptJWE; a test decrypts it with jwx).
// Recipient slots carry no "kid": a
// recipient list would tell a non-party who is involved, so a node tries
// its key on every slot (OpenSealed). The JWE's additional authenticated
// data is the entry's commitment, so a sealed opening is bound to its
// header and CheckSealed can check that binding without any key.
//
// With several recipients jwx writes the general JSON serialization (a
// "recipients" array); with one it writes the flattened one (§7.2.2).
// Both are accepted.

// Sealing bounds.
const (
	// MaxRecipients bounds the recipient slots of a sealed opening,
	// dummies included; it bounds a trial open's work too.
	MaxRecipients = 32
	// MaxSealedSize bounds a sealed opening.
	MaxSealedSize = (MaxOpeningSize+sealPadBlock)*4/3 + MaxRecipients*sealSlotSize + 1024

	// sealPadBlock: plaintexts are padded with spaces to a multiple of
	// this, so a sealed opening's size tells little about its body.
	sealPadBlock = 256
	// sealSlotSize bounds the JSON of one recipient slot.
	sealSlotSize = 256
)

// Sealing errors.
var (
	// ErrNotRecipient: no recipient slot of the sealed opening opens with
	// the key (or its ciphertext was altered: AES-GCM cannot tell).
	ErrNotRecipient = errors.New("ledger: sealed opening does not open with this key")
	// ErrBadSealed: the bytes are not a sealed opening in this format.
	ErrBadSealed = errors.New("ledger: malformed sealed opening")
	// ErrBadSealKey: a key is not an X25519 key, or a recipient list is
	// empty, too long or repeats a key.
	ErrBadSealKey = errors.New("ledger: bad sealing key")
)

// NewSealKey returns a new X25519 sealing key.
func NewSealKey() (*ecdh.PrivateKey, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ledger: sealing key: %w", err)
	}
	return k, nil
}

// EncodeSealKey returns the text form of an X25519 public key (unpadded
// base64url), as GatewayRegistered.SealKey carries it.
func EncodeSealKey(pub *ecdh.PublicKey) string {
	return base64.RawURLEncoding.EncodeToString(pub.Bytes())
}

// ParseSealKey parses an X25519 public key from its text form. It
// refuses low-order points, with which no key agreement succeeds (a
// gateway registering one would make every seal that names it fail).
func ParseSealKey(text string) (*ecdh.PublicKey, error) {
	var b [32]byte
	if err := decodeB64Exact(text, b[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSealKey, err)
	}
	pub, err := ecdh.X25519().NewPublicKey(b[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSealKey, err)
	}
	probe, err := NewSealKey()
	if err != nil {
		return nil, err
	}
	if _, err := probe.ECDH(pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSealKey, err)
	}
	return pub, nil
}

// EncodeNodeKey returns the text form of an Ed25519 node key (unpadded
// base64url), as GatewayRegistered.PublicKey carries it.
func EncodeNodeKey(pub ed25519.PublicKey) string {
	return base64.RawURLEncoding.EncodeToString(pub)
}

// ParseNodeKey parses an Ed25519 node key from its text form.
func ParseNodeKey(text string) (ed25519.PublicKey, error) {
	b := make([]byte, ed25519.PublicKeySize)
	if err := decodeB64Exact(text, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadNodeKey, err)
	}
	return ed25519.PublicKey(b), nil
}

// SealOption configures SealOpening.
type SealOption func(*sealConfig)

type sealConfig struct {
	minRecipients int
	self          *ecdh.PrivateKey
}

// WithSelf seals the opening to the author's own key (the sealing key of
// the gateway that signs the entry) in a self slot: the content key
// wrapped with A256KW under SelfKEK(key) instead of ECDH-ES+A256KW, which
// costs two X25519 scalar multiplications a slot (see encryptJWE). The
// key's public half must then not be among the recipients passed to
// SealOpening: the self slot replaces its X25519 slot.
func WithSelf(key *ecdh.PrivateKey) SealOption {
	return func(c *sealConfig) { c.self = key }
}

// selfKEKInfo is the HKDF info string of SelfKEK.
const selfKEKInfo = "healthgw/ledger/seal/self-kek/v1"

// SelfKEK returns the key-encryption key of a gateway's self slot:
// HKDF-SHA-256 (RFC 5869, crypto/hkdf) of its X25519 sealing key's 32
// private bytes, no salt, info "healthgw/ledger/seal/self-kek/v1", 32
// bytes for A256KW. Only the holder of the sealing key can compute it.
func SelfKEK(key *ecdh.PrivateKey) ([]byte, error) {
	if key == nil || key.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("%w: not an X25519 private key", ErrBadSealKey)
	}
	kek, err := hkdf.Key(sha256.New, key.Bytes(), nil, selfKEKInfo, jweKEKSize)
	if err != nil {
		return nil, fmt.Errorf("ledger: self key-encryption key: %w", err)
	}
	return kek, nil
}

// WithMinRecipients pads the recipient slots with dummy slots (a fresh
// ephemeral key each and the content key wrapped under a random key
// nobody keeps; encryptJWE) up to n, so the number of slots does not tell
// how many parties an entry has. n is capped at MaxRecipients.
func WithMinRecipients(n int) SealOption {
	return func(c *sealConfig) { c.minRecipients = min(n, MaxRecipients) }
}

// SealOpening seals opening o of the entry with header h to the X25519
// public keys to, in random slot order. The opening must open h
// (CheckOpening). Seal one opening per audience: a break-glass
// justification goes to regulators only (Opening.WithoutJustification for
// the others).
func SealOpening(o Opening, h Header, to []*ecdh.PublicKey, opts ...SealOption) ([]byte, error) {
	var cfg sealConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	var self []byte
	if cfg.self != nil {
		var err error
		if self, err = SelfKEK(cfg.self); err != nil {
			return nil, err
		}
		pub := cfg.self.PublicKey()
		for i, k := range to {
			if k != nil && k.Equal(pub) {
				return nil, fmt.Errorf("%w: recipient %d is the self slot's key", ErrBadSealKey, i)
			}
		}
	}
	keys, dummies, err := sealRecipients(to, self != nil, cfg.minRecipients)
	if err != nil {
		return nil, err
	}
	if _, err := CheckOpening(o, h); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	plain, err := EncodeOpening(o)
	if err != nil {
		return nil, err
	}
	return sealPlain(plain, h.Commitment, keys, self, dummies)
}

// sealRecipients checks the recipient keys (distinct X25519 keys, 1 to
// MaxRecipients slots counting the self slot when self is set) and
// returns them in a new slice with the number of dummy slots that pad
// the slots to minRecipients (encryptJWE makes the dummies and puts every
// slot in random order).
func sealRecipients(to []*ecdh.PublicKey, self bool, minRecipients int) ([]*ecdh.PublicKey, int, error) {
	slots := len(to)
	if self {
		slots++
	}
	if slots == 0 || slots > MaxRecipients {
		return nil, 0, fmt.Errorf("%w: %d recipients (1 to %d)", ErrBadSealKey, slots, MaxRecipients)
	}
	keys := make([]*ecdh.PublicKey, 0, len(to))
	for i, k := range to {
		if k == nil || k.Curve() != ecdh.X25519() {
			return nil, 0, fmt.Errorf("%w: recipient %d is not an X25519 key", ErrBadSealKey, i)
		}
		for _, prev := range keys {
			if prev.Equal(k) {
				return nil, 0, fmt.Errorf("%w: recipient %d repeats a key", ErrBadSealKey, i)
			}
		}
		keys = append(keys, k)
	}
	return keys, max(0, min(minRecipients, MaxRecipients)-slots), nil
}

// accessOpeningSize is the size every access.decided opening is padded
// to at least before it is sealed: the openings of a read of a record
// that does not exist (no patient, category or resource type) and of a
// denied read (all of them) then seal to the same size, so neither the
// sealed opening's size nor the work of sealing and storing it tells the
// two apart. Break-glass commitments and long request IDs still fit.
const accessOpeningSize = 4 * sealPadBlock

// padOpening pads plain, the encoded opening of an entry of type t, with
// spaces to the least size its type is sealed at (accessOpeningSize for
// access decisions; sealPlain then pads every opening to a multiple of
// sealPadBlock).
func padOpening(t Type, plain []byte) []byte {
	if t != TypeAccessDecided {
		return plain
	}
	return appendSpaces(plain, accessOpeningSize-len(plain))
}

// sealedPlainCap is the capacity an opening of type t encoded in n bytes
// needs to be padded (padOpening, sealPlain) and sealed in place (its
// tag).
func sealedPlainCap(t Type, n int) int {
	if t == TypeAccessDecided {
		n = max(n, accessOpeningSize)
	}
	return (n+sealPadBlock-1)/sealPadBlock*sealPadBlock + jweTagSize
}

// appendSpaces appends n spaces to b (none if n <= 0), growing it once.
func appendSpaces(b []byte, n int) []byte {
	if n <= 0 {
		return b
	}
	b = slices.Grow(b, n)
	for range n {
		b = append(b, ' ')
	}
	return b
}

// sealPlain pads the encoded opening plain (the caller's: it is padded
// and sealed in place, so its bytes are overwritten) and seals it, bound to commitment, to keys (checked by
// sealRecipients), a self slot under the key-encryption key self when it
// is not nil (SelfKEK), and dummies dummy slots.
func sealPlain(plain []byte, commitment Digest, keys []*ecdh.PublicKey, self []byte, dummies int) ([]byte, error) {
	if r := len(plain) % sealPadBlock; r != 0 {
		plain = appendSpaces(plain, sealPadBlock-r)
	}
	plain = slices.Grow(plain, jweTagSize) // room for the tag
	sealed, err := encryptJWE(plain, commitment[:], keys, self, dummies)
	if err != nil {
		return nil, fmt.Errorf("ledger: seal: %w", err)
	}
	if len(sealed) > MaxSealedSize {
		return nil, fmt.Errorf("%w: sealed opening of %d bytes", ErrTooLarge, len(sealed))
	}
	return sealed, nil
}

// JWE parameters of a sealed opening.
const (
	jweAlg     = "ECDH-ES+A256KW"
	jweSelfAlg = "A256KW" // the self slot (WithSelf)
	jweEnc     = "A256GCM"
	jweKEKSize = 32 // A256KW
	jweCEKSize = 32 // A256GCM
	jweIVSize  = 12
	jweTagSize = 16
)

// encryptJWE returns the JWE (RFC 7516, JSON serialization) of plain
// (encrypted in place: its bytes are overwritten) with additional
// authenticated data aad, sealed to keys with ECDH-ES+A256KW
// on X25519 (RFC 7518 §4.6, RFC 8037) and A256GCM (RFC 7518 §5.3), in
// the layout jwx v3's jwe.Encrypt(WithJSON, WithLegacyHeaderMerging(false))
// writes: with one recipient the flattened serialization with the slot's
// "alg" and "epk" in the protected header, with more the general one with
// {"enc"} protected and {"alg","epk"} per slot; members in jwx's order.
//
// It composes the standard building blocks without jwx's generic message
// machinery (reflection-driven header maps, a JWK per ephemeral key, a
// JSON encoder per header), which cost more than the cryptography: per
// slot a fresh X25519 ephemeral key and the agreement (crypto/ecdh), the
// key-encryption key by jwx's ConcatKDF (jwebb.DeriveECDHES, the function
// jwx's own decryption uses) and the content key wrapped by jwx's
// RFC 3394 AES key wrap (jwebb.Wrap, over crypto/aes); the content by
// crypto/cipher's AES-GCM with the JWE's AAD (RFC 7516 §5.1 step 14:
// ASCII(BASE64URL(protected) || '.' || BASE64URL(aad))). No primitive is
// implemented here. TestEncryptJWEInterop decrypts its output with jwx's
// jwe.Decrypt (every slot), checks it with jwx's jwe.Parse and
// CheckSealed, and opens jwx's own output the same way, so the format
// stays the one jwx writes and reads.
//
// Dummy slots (dummies of them, padding the slot count; see
// WithMinRecipients) are sealed to nobody: each has a fresh ephemeral key
// pair made exactly as a real slot's (its public key is a genuine X25519
// public key, the same distribution as a real slot's "epk"), and its
// "encrypted_key" is the content key wrapped (jwebb.Wrap, as a real slot)
// under a key-encryption key drawn uniformly from crypto/rand instead of
// one derived by ECDH and ConcatKDF from an agreement with a recipient.
// Why a holder of the sealed opening cannot tell a dummy from a real slot,
// even a recipient who knows the content key: a real slot's KEK is
// ConcatKDF (SHA-256) of X25519(e, R) for an ephemeral e nobody keeps and
// a recipient key R; to anyone without e or R's private key that
// agreement is unknown (Diffie-Hellman on X25519, which holds knowing R
// and every registered gateway key), so its hash is indistinguishable
// from a uniform 256-bit key independent of the "epk" shown (hashed
// Diffie-Hellman: CDH with the KDF as a random oracle). A dummy's KEK is
// uniform and independent of its "epk" by construction. So both slots
// are (epk, AES-KW_K(cek)) with epk a fresh X25519 public key and K
// uniform to the observer: the same distribution
// (the dummies made before this, sealed to a fresh throwaway recipient
// key, were too; the throwaway key and the agreement with it only cost
// two more scalar multiplications). Trying a key on a dummy fails as on
// another party's slot (the unwrap's integrity check). What is kept
// exactly: the epk is never random bytes (those would often not be on
// the curve or not in its prime-order subgroup, which anyone can test),
// the wrapped key is 40 bytes of a real AES key wrap of the same content
// key, and all slots are shuffled together (shuffleSlots).
//
// The self slot (self, the author's SelfKEK, when not nil) is the
// standard A256KW recipient of RFC 7518 §4.4: {"alg":"A256KW"} and the
// content key wrapped under that key, no "epk". It replaces the author's
// own ECDH-ES slot, which cost two X25519 scalar multiplications (the
// ephemeral key and the agreement) for a key the author holds anyway.
// It is told from the other slots by its "alg"; that says only that the
// author is a recipient, which every entry's author is (its header names
// it), so it tells nothing about the other slots, which stay shuffled
// with it.
func encryptJWE(plain, aad []byte, keys []*ecdh.PublicKey, self []byte, dummies int) ([]byte, error) {
	if len(keys) == 0 && self == nil {
		return nil, errors.New("no recipients")
	}
	var cek [jweCEKSize]byte
	var iv [jweIVSize]byte
	if err := randomFill(cek[:]); err != nil {
		return nil, err
	}
	if err := randomFill(iv[:]); err != nil {
		return nil, err
	}
	slots := make([]jweSlot, 0, len(keys)+1+dummies)
	if self != nil {
		ek, err := wrapCEK(self, cek[:])
		if err != nil {
			return nil, err
		}
		slots = append(slots, jweSlot{self: true, ek: ek})
	}
	for _, k := range keys {
		eph, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("ephemeral key: %w", err)
		}
		kek, err := jwebb.DeriveECDHES(jweAlg, nil, nil, eph, k, jweKEKSize)
		if err != nil {
			return nil, err
		}
		ek, err := wrapCEK(kek, cek[:])
		if err != nil {
			return nil, err
		}
		slots = append(slots, jweSlot{epk: eph.PublicKey().Bytes(), ek: ek})
	}
	for range dummies {
		eph, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("ephemeral key: %w", err)
		}
		var kek [jweKEKSize]byte
		if err := randomFill(kek[:]); err != nil {
			return nil, err
		}
		ek, err := wrapCEK(kek[:], cek[:])
		if err != nil {
			return nil, err
		}
		slots = append(slots, jweSlot{epk: eph.PublicKey().Bytes(), ek: ek})
	}
	if len(slots) > 1 {
		if err := shuffleSlots(slots); err != nil {
			return nil, err
		}
	}
	b64 := base64.RawURLEncoding
	appendB64 := func(dst, src []byte) []byte {
		return b64.AppendEncode(dst, src)
	}
	// The slot header members, in jwx's order: "alg", then "epk" with
	// "crv", "kty", "x".
	appendSlotParams := func(dst []byte, s jweSlot) []byte {
		if s.self {
			return append(dst, `"alg":"`+jweSelfAlg+`"`...)
		}
		dst = append(dst, `"alg":"`+jweAlg+`","epk":{"crv":"X25519","kty":"OKP","x":"`...)
		dst = appendB64(dst, s.epk)
		return append(dst, `"}`...)
	}
	flat := len(slots) == 1
	var prot []byte
	switch {
	case flat && slots[0].self:
		prot = []byte(`{"alg":"` + jweSelfAlg + `","enc":"` + jweEnc + `"}`)
	case flat:
		// The slot's parameters and "enc", in jwx's (sorted) order:
		// {"alg","enc","epk"}.
		prot = append(prot, `{"alg":"`+jweAlg+`","enc":"`+jweEnc+`","epk":{"crv":"X25519","kty":"OKP","x":"`...)
		prot = appendB64(prot, slots[0].epk)
		prot = append(prot, `"}}`...)
	default:
		prot = []byte(`{"enc":"` + jweEnc + `"}`)
	}
	protB64 := appendB64(nil, prot)
	aadB64 := appendB64(nil, aad)
	contentAAD := make([]byte, 0, len(protB64)+1+len(aadB64))
	contentAAD = append(append(append(contentAAD, protB64...), '.'), aadB64...)
	block, err := aes.NewCipher(cek[:])
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sealed := gcm.Seal(plain[:0], iv[:], plain, contentAAD) // in place
	ct, tag := sealed[:len(sealed)-jweTagSize], sealed[len(sealed)-jweTagSize:]

	size := 128 + len(aadB64) + b64.EncodedLen(len(ct)) + len(protB64) + len(slots)*(sealSlotSize)
	out := make([]byte, 0, size)
	out = append(out, `{"aad":"`...)
	out = append(out, aadB64...)
	out = append(out, `","ciphertext":"`...)
	out = appendB64(out, ct)
	if flat {
		out = append(out, `","encrypted_key":"`...)
		out = appendB64(out, slots[0].ek)
	}
	out = append(out, `","iv":"`...)
	out = appendB64(out, iv[:])
	out = append(out, `","protected":"`...)
	out = append(out, protB64...)
	out = append(out, '"')
	if !flat {
		out = append(out, `,"recipients":[`...)
		for i, s := range slots {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, `{"header":{`...)
			out = appendSlotParams(out, s)
			out = append(out, `},"encrypted_key":"`...)
			out = appendB64(out, s.ek)
			out = append(out, `"}`...)
		}
		out = append(out, ']')
	}
	out = append(out, `,"tag":"`...)
	out = appendB64(out, tag)
	out = append(out, `"}`...)
	return out, nil
}

// jweSlot is one recipient slot of a sealed opening.
type jweSlot struct {
	self bool   // the A256KW self slot (no epk)
	epk  []byte // the ephemeral public key
	ek   []byte // the wrapped content key
}

// wrapCEK wraps the content key under kek (RFC 3394, jwx's jwebb.Wrap).
func wrapCEK(kek, cek []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return jwebb.Wrap(block, cek)
}

// shuffleSlots permutes slots uniformly with a generator seeded from
// crypto/rand, so a slot's position says nothing about its recipient or
// whether it is a dummy.
func shuffleSlots(slots []jweSlot) error {
	var seed [32]byte
	if err := randomFill(seed[:]); err != nil {
		return fmt.Errorf("ledger: seal: %w", err)
	}
	r := mrand.New(mrand.NewChaCha8(seed))
	r.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
	return nil
}

// OpenSealed trial-opens a sealed opening with one X25519 private key: it
// tries the key on every recipient slot. It returns ErrNotRecipient if no
// slot opens, and ErrCommitmentMismatch if the opening inside is not the
// one the JWE is bound to. The caller then checks the opening against the
// entry's header (CheckOpening).
func OpenSealed(sealed []byte, key *ecdh.PrivateKey) (Opening, error) {
	return openSealed(sealed, key, nil)
}

// openSealed is OpenSealed with the key's self-slot key selfKEK
// (SelfKEK(key)) when the caller holds it, as a node does; nil derives it
// when a self slot is tried.
func openSealed(sealed []byte, key *ecdh.PrivateKey, selfKEK []byte) (Opening, error) {
	if key == nil || key.Curve() != ecdh.X25519() {
		return Opening{}, fmt.Errorf("%w: not an X25519 private key", ErrBadSealKey)
	}
	commitment, err := parseSealed(sealed)
	if err != nil {
		return Opening{}, err
	}
	plain, err := openJWE(sealed, key, selfKEK)
	if err != nil {
		return Opening{}, err
	}
	o, err := DecodeOpening(bytes.TrimRight(plain, " "))
	if err != nil {
		return Opening{}, fmt.Errorf("sealed: %w", err)
	}
	if Commitment(o.Statement) != commitment {
		return Opening{}, fmt.Errorf("%w: sealed opening bound to another entry", ErrCommitmentMismatch)
	}
	return o, nil
}

// openJWE decrypts a sealed opening with key: first its self slot, if it
// has one, under kek = SelfKEK(key) (derived here when kek is nil; an AES
// key unwrap: the author opening its own entries pays no agreement), then
// every ECDH-ES+A256KW slot with the key, each by jwx's jwe.Decrypt. Each
// pass offers its key to the slots of its algorithm only (slotKeys), so
// no key is ever used with another slot's algorithm.
func openJWE(sealed []byte, key *ecdh.PrivateKey, kek []byte) ([]byte, error) {
	if bytes.Contains(sealed, selfSlotMarker) || bytes.Contains(sealed, selfFlatMarker) {
		if kek == nil {
			var err error
			if kek, err = SelfKEK(key); err != nil {
				return nil, err
			}
		}
		plain, err := jwe.Decrypt(sealed,
			jwe.WithKeyProvider(slotKeys{alg: jwa.A256KW(), key: kek}),
			jwe.WithMaxRecipients(MaxRecipients),
		)
		if err == nil {
			return plain, nil
		}
	}
	plain, err := jwe.Decrypt(sealed,
		jwe.WithKeyProvider(slotKeys{alg: jwa.ECDH_ES_A256KW(), key: key}),
		jwe.WithMaxRecipients(MaxRecipients),
	)
	if err != nil {
		return nil, ErrNotRecipient
	}
	return plain, nil
}

// selfSlotMarker and selfFlatMarker: a sealed opening with a self slot
// has one of these (a slot header of the general serialization, or the
// base64url of the flattened protected header's start, {"alg":"A256KW");
// openJWE skips the self pass without them. A false positive only costs
// that pass.
var (
	selfSlotMarker = []byte(`{"alg":"` + jweSelfAlg + `"}`)
	selfFlatMarker = []byte(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + jweSelfAlg + `","enc":"` + jweEnc + `"}`)))
)

// slotKeys is a jwe.KeyProvider that offers one key to the recipient
// slots whose "alg" is alg and nothing to the others.
type slotKeys struct {
	alg jwa.KeyEncryptionAlgorithm
	key any
}

func (s slotKeys) FetchKeys(_ context.Context, sink jwe.KeySink, r jwe.Recipient, msg *jwe.Message) error {
	alg, ok := r.Headers().Algorithm()
	if !ok && msg != nil {
		// The flattened serialization: the one slot's "alg" is in the
		// protected header.
		alg, ok = msg.ProtectedHeaders().Algorithm()
	}
	if ok && alg == s.alg {
		sink.Key(s.alg, s.key)
	}
	return nil
}

// CheckSealed checks, without any key, that sealed is a well-formed sealed
// opening bound to header h: the JSON shape, ECDH-ES+A256KW with an X25519
// ephemeral key in every slot but at most one A256KW self slot (WithSelf),
// A256GCM, no "kid" and no compression, 1 to MaxRecipients slots, and the
// commitment as additional
// authenticated data. This is what a consortium node that is not a party
// can check.
func CheckSealed(sealed []byte, h Header) error {
	c, err := parseSealed(sealed)
	if err != nil {
		return err
	}
	if c != h.Commitment {
		return fmt.Errorf("%w: sealed opening bound to another entry", ErrCommitmentMismatch)
	}
	return nil
}

// The accepted JSON shape of a sealed opening. strictUnmarshal refuses
// every other member: a "kid", an "unprotected" header, "zip", "jku", ….
type (
	wireSealed struct {
		Protected  string            `json:"protected"`
		Recipients []wireSealedEntry `json:"recipients,omitempty"`
		// Flattened serialization (one recipient).
		Header       *wireSlotHeader `json:"header,omitempty"`
		EncryptedKey string          `json:"encrypted_key,omitempty"`
		AAD          string          `json:"aad"`
		IV           string          `json:"iv"`
		Ciphertext   string          `json:"ciphertext"`
		Tag          string          `json:"tag"`
	}
	wireSealedEntry struct {
		Header       *wireSlotHeader `json:"header"`
		EncryptedKey string          `json:"encrypted_key"`
	}
	wireSlotHeader struct {
		Alg string   `json:"alg,omitempty"`
		EPK *wireEPK `json:"epk,omitempty"`
	}
	wireProtected struct {
		Alg string   `json:"alg,omitempty"`
		Enc string   `json:"enc"`
		EPK *wireEPK `json:"epk,omitempty"`
	}
	wireEPK struct {
		Crv string `json:"crv"`
		Kty string `json:"kty"`
		X   string `json:"x"`
	}
)

func badSealed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadSealed, fmt.Sprintf(format, args...))
}

// parseSealed checks the shape of a sealed opening and returns the
// commitment it is bound to.
func parseSealed(sealed []byte) (Digest, error) {
	if len(sealed) > MaxSealedSize {
		return Digest{}, fmt.Errorf("%w: sealed opening of %d bytes", ErrTooLarge, len(sealed))
	}
	if d, ok := parseSealedFast(sealed); ok {
		return d, nil
	}
	return parseSealedJSON(sealed)
}

// parseSealedJSON is parseSealed with encoding/json, for any layout.
func parseSealedJSON(sealed []byte) (Digest, error) {
	var w wireSealed
	if err := strictUnmarshal(sealed, &w); err != nil {
		return Digest{}, badSealed("%v", err)
	}
	pb, err := base64.RawURLEncoding.Strict().DecodeString(w.Protected)
	if err != nil {
		return Digest{}, badSealed("protected header: %v", err)
	}
	var p wireProtected
	if err := strictUnmarshal(pb, &p); err != nil {
		return Digest{}, badSealed("protected header: %v", err)
	}
	if p.Enc != jwa.A256GCM().String() {
		return Digest{}, badSealed("enc %q", p.Enc)
	}
	var slots []wireSealedEntry
	switch {
	case w.Recipients != nil:
		if w.Header != nil || w.EncryptedKey != "" || p.Alg != "" || p.EPK != nil {
			return Digest{}, badSealed("recipients with flattened members")
		}
		slots = w.Recipients
	default:
		// Flattened: the one slot's parameters are in the protected
		// header (jwx merges them there).
		if w.Header != nil && (w.Header.Alg != "" || w.Header.EPK != nil) {
			return Digest{}, badSealed("flattened header repeats protected parameters")
		}
		slots = []wireSealedEntry{{Header: &wireSlotHeader{Alg: p.Alg, EPK: p.EPK}, EncryptedKey: w.EncryptedKey}}
	}
	if len(slots) == 0 || len(slots) > MaxRecipients {
		return Digest{}, badSealed("%d recipients (1 to %d)", len(slots), MaxRecipients)
	}
	selfSlots := 0
	for i, s := range slots {
		self, err := checkSlot(s)
		if err != nil {
			return Digest{}, badSealed("recipient %d: %v", i, err)
		}
		if self {
			if selfSlots++; selfSlots > 1 {
				return Digest{}, badSealed("recipient %d: a second %s slot", i, jweSelfAlg)
			}
		}
	}
	var iv [12]byte
	if err := decodeB64Exact(w.IV, iv[:]); err != nil {
		return Digest{}, badSealed("iv: %v", err)
	}
	var tag [16]byte
	if err := decodeB64Exact(w.Tag, tag[:]); err != nil {
		return Digest{}, badSealed("tag: %v", err)
	}
	if w.Ciphertext == "" {
		return Digest{}, badSealed("no ciphertext")
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(w.Ciphertext); err != nil {
		return Digest{}, badSealed("ciphertext: %v", err)
	}
	var c Digest
	if err := decodeB64Exact(w.AAD, c[:]); err != nil {
		return Digest{}, badSealed("aad is not a commitment: %v", err)
	}
	return c, nil
}

// checkSlot checks one recipient slot: ECDH-ES+A256KW with an X25519
// "epk", or the A256KW self slot with none (self is then true); either
// way a 40-byte wrapped key.
func checkSlot(s wireSealedEntry) (self bool, err error) {
	if s.Header == nil {
		return false, errors.New("no header")
	}
	switch s.Header.Alg {
	case jwa.ECDH_ES_A256KW().String():
		epk := s.Header.EPK
		if epk == nil || epk.Kty != "OKP" || epk.Crv != "X25519" {
			return false, errors.New("epk is not an X25519 key")
		}
		var x [32]byte
		if err := decodeB64Exact(epk.X, x[:]); err != nil {
			return false, fmt.Errorf("epk: %v", err)
		}
	case jweSelfAlg:
		if s.Header.EPK != nil {
			return false, fmt.Errorf("%s slot with an epk", jweSelfAlg)
		}
		self = true
	default:
		return false, fmt.Errorf("alg %q", s.Header.Alg)
	}
	var ek [40]byte // AES key wrap of a 256-bit key
	if err := decodeB64Exact(s.EncryptedKey, ek[:]); err != nil {
		return false, fmt.Errorf("encrypted_key: %v", err)
	}
	return self, nil
}
