package credential

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
)

// Domain tags: the first element of every hash, so that hashes made for
// different purposes never coincide.
const (
	TagHolder    = 1 // holder commitment H(TagHolder, secret)
	TagNullifier = 2 // nullifier H(TagNullifier, secret, scope)
	// TagCredential starts the signed message H(TagCredential, holder,
	// W₀, W₁, W₂) of credential format v2 (see Words). Tag 3 was the
	// unpacked message of format v1 and is not reused.
	TagCredential = 4
)

// Domain-separation strings of the hash-to-field maps (RFC 9380
// expand_message_xmd, as implemented by gnark-crypto fr.Hash).
const (
	dstScope = "healthgw/zk/v1/scope"
	dstNonce = "healthgw/zk/v1/nonce"
)

// Element is a BN254 scalar-field element, the native value type of the
// circuits (commitments, nullifiers, roots, public inputs).
type Element = fr.Element

// ErrElement reports a malformed field element encoding.
var ErrElement = errors.New("invalid field element")

// hashElements returns the Poseidon2 Merkle–Damgård hash (gnark-crypto,
// BN254, width 2) of the elements, the same function the circuits compute
// with std/hash/poseidon2.
func hashElements(xs ...Element) Element {
	h := poseidon2.NewMerkleDamgardHasher()
	for i := range xs {
		b := xs[i].Bytes()
		h.Write(b[:]) // never fails for canonical 32-byte blocks
	}
	var out Element
	if err := out.SetBytesCanonical(h.Sum(nil)); err != nil {
		panic(fmt.Sprintf("credential: poseidon2 digest not canonical: %v", err)) // cannot happen
	}
	return out
}

// Hash exposes the Poseidon2 hash used throughout, for tests and tools.
func Hash(xs ...Element) Element { return hashElements(xs...) }

func elem(v uint64) Element {
	var e Element
	e.SetUint64(v)
	return e
}

// ScopeElement maps a verifier scope (for example the verifier's org ID
// and purpose) to the field element used in the nullifier.
func ScopeElement(scope string) Element {
	return hashToField([]byte(scope), dstScope)
}

// NonceElement maps a challenge nonce to the field element bound by every
// proof.
func NonceElement(nonce []byte) Element {
	return hashToField(nonce, dstNonce)
}

func hashToField(msg []byte, dst string) Element {
	es, err := fr.Hash(msg, []byte(dst), 1)
	if err != nil {
		panic(fmt.Sprintf("credential: hash to field: %v", err)) // only for bad parameters
	}
	return es[0]
}

// FormatElement returns the hex form of e: 64 lower-case digits, big-endian.
func FormatElement(e Element) string {
	b := e.Bytes()
	return hex.EncodeToString(b[:])
}

// ParseElement parses 64 hex digits (an optional 0x prefix is allowed) as a
// canonical field element.
func ParseElement(s string) (Element, error) {
	var e Element
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != fr.Bytes {
		return e, fmt.Errorf("%w: want %d hex bytes", ErrElement, fr.Bytes)
	}
	if err := e.SetBytesCanonical(b); err != nil {
		return e, fmt.Errorf("%w: %w", ErrElement, err)
	}
	return e, nil
}

// BigInt returns e as a big integer.
func BigInt(e Element) *big.Int {
	var b big.Int
	return e.BigInt(&b)
}
