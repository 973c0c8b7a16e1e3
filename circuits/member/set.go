package member

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"slices"

	"github.com/consensys/gnark-crypto/accumulator/merkletree"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"

	"github.com/healthgw/healthgw/circuits/credential"
)

// MaxSetSize is the largest set a depth-Depth tree holds.
const MaxSetSize = 1 << Depth

// Errors of set construction and proofs.
var (
	ErrSet       = errors.New("invalid member set")
	ErrNotMember = errors.New("value not in set")
)

// Set is a public set of attribute values (for example a program's
// diagnosis codes) committed to by a Poseidon2 Merkle root of fixed depth
// Depth. The values, sorted ascending and without duplicates, are the
// first leaves; the remaining leaves hold the padding value 2⁶⁴, which no
// attribute can take. The tree is gnark-crypto's accumulator/merkletree
// (checked in the circuit by std/accumulator/merkle) over the Poseidon2
// 2-to-1 compression C of gnark-crypto: a leaf is C(0, v) (the Poseidon2
// hash H(v)) and a node C(left, right); padding is pushed as precomputed
// subtrees.
type Set struct {
	depth  int // Depth, except in tests
	values []uint64
	root   credential.Element
	empty  [][]byte // empty[h]: root of a height-h subtree of padding
}

// NewSet builds the set of values. Duplicates are removed; Absent and
// empty sets are refused.
func NewSet(values []uint64) (*Set, error) { return newSet(values, Depth) }

func newSet(values []uint64, depth int) (*Set, error) {
	vs := slices.Clone(values)
	slices.Sort(vs)
	vs = slices.Compact(vs)
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrSet)
	}
	if len(vs) > 1<<depth {
		return nil, fmt.Errorf("%w: %d values, at most %d", ErrSet, len(vs), 1<<depth)
	}
	if vs[len(vs)-1] == credential.Absent {
		return nil, fmt.Errorf("%w: contains the absent marker", ErrSet)
	}
	s := &Set{depth: depth, values: vs, empty: make([][]byte, depth+1)}
	s.empty[0] = leafHash(paddingLeaf())
	for h := 1; h <= depth; h++ {
		s.empty[h] = parentHash(s.empty[h-1], s.empty[h-1])
	}
	t, err := s.tree(-1)
	if err != nil {
		return nil, err
	}
	if err := s.root.SetBytesCanonical(t.Root()); err != nil {
		return nil, fmt.Errorf("%w: root: %w", ErrSet, err)
	}
	return s, nil
}

// Root returns the Merkle root, the public input of the member statement.
func (s *Set) Root() credential.Element { return s.root }

// Values returns the sorted values.
func (s *Set) Values() []uint64 { return slices.Clone(s.values) }

// Contains reports whether v is in the set.
func (s *Set) Contains(v uint64) bool {
	_, ok := slices.BinarySearch(s.values, v)
	return ok
}

// Prove returns the leaf index of v and its authentication path (siblings
// from the leaf level up), the private witness of the member statement.
func (s *Set) Prove(v uint64) (index uint64, path [Depth]credential.Element, err error) {
	if s.depth != Depth {
		return 0, path, fmt.Errorf("%w: depth %d", ErrSet, s.depth)
	}
	idx, p, err := s.prove(v)
	copy(path[:], p)
	return idx, path, err
}

func (s *Set) prove(v uint64) (uint64, []credential.Element, error) {
	i, ok := slices.BinarySearch(s.values, v)
	if !ok {
		return 0, nil, ErrNotMember
	}
	t, err := s.tree(i)
	if err != nil {
		return 0, nil, err
	}
	root, proof, idx, n := t.Prove()
	if len(proof) != s.depth+1 || !bytes.Equal(proof[0], leafBytes(v)) || n != 1<<s.depth {
		return 0, nil, fmt.Errorf("%w: unexpected proof shape", ErrSet)
	}
	if !merkletree.VerifyProof(&nodeHash{}, root, proof, idx, n) {
		return 0, nil, fmt.Errorf("%w: proof does not verify", ErrSet)
	}
	path := make([]credential.Element, s.depth)
	for j := range path {
		if err := path[j].SetBytesCanonical(proof[j+1]); err != nil {
			return 0, nil, fmt.Errorf("%w: %w", ErrSet, err)
		}
	}
	return idx, path, nil
}

// tree builds the full tree, recording a proof for leaf proveIndex (none
// if negative): the values, then padding subtrees of increasing height
// until the tree has 2^Depth leaves.
func (s *Set) tree(proveIndex int) (*merkletree.Tree, error) {
	t := merkletree.New(&nodeHash{})
	if proveIndex >= 0 {
		if err := t.SetIndex(uint64(proveIndex)); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSet, err)
		}
	}
	for _, v := range s.values {
		t.Push(leafBytes(v))
	}
	for n := uint64(len(s.values)); n < 1<<s.depth; {
		h := 0
		for n&(1<<h) == 0 {
			h++
		}
		if err := t.PushSubTree(h, s.empty[h]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSet, err)
		}
		n += 1 << h
	}
	return t, nil
}

// paddingLeaf is 2⁶⁴: above every attribute value.
func paddingLeaf() []byte {
	var e credential.Element
	e.SetBigInt(new(big.Int).Lsh(big.NewInt(1), 64))
	b := e.Bytes()
	return b[:]
}

func leafBytes(v uint64) []byte {
	var e credential.Element
	e.SetUint64(v)
	b := e.Bytes()
	return b[:]
}

func leafHash(data []byte) []byte {
	h := &nodeHash{}
	h.Write(data)
	return h.Sum(nil)
}

func parentHash(a, b []byte) []byte {
	h := &nodeHash{}
	h.Write(a)
	h.Write(b)
	return h.Sum(nil)
}

// nodeHash is the native side of the circuit's nodeHasher, as a hash.Hash
// for merkletree: the Poseidon2 compression C(0, v) of one 32-byte block
// (a leaf) or C(l, r) of two (a node).
type nodeHash struct {
	buf []byte
}

var _ hash.Hash = (*nodeHash)(nil)

func (h *nodeHash) Write(p []byte) (int, error) {
	h.buf = append(h.buf, p...)
	return len(p), nil
}

func (h *nodeHash) Sum(b []byte) []byte {
	var l, r []byte
	switch len(h.buf) {
	case fr.Bytes:
		l, r = make([]byte, fr.Bytes), h.buf
	case 2 * fr.Bytes:
		l, r = h.buf[:fr.Bytes], h.buf[fr.Bytes:]
	default:
		panic(fmt.Sprintf("member: node hash of %d bytes", len(h.buf)))
	}
	out, err := poseidon2.NewDefaultPermutation().Compress(l, r)
	if err != nil {
		panic(fmt.Sprintf("member: node hash: %v", err)) // non-canonical input: a bug
	}
	return append(b, out...)
}

func (h *nodeHash) Reset()         { h.buf = h.buf[:0] }
func (h *nodeHash) Size() int      { return fr.Bytes }
func (h *nodeHash) BlockSize() int { return fr.Bytes }
