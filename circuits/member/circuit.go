package member

import (
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/accumulator/merkle"
	"github.com/consensys/gnark/std/permutation/poseidon2"

	"github.com/healthgw/healthgw/circuits/credential"
)

// Depth is the fixed depth of the set's Merkle tree: up to 2²⁰ values.
const Depth = 20

// Circuit proves: the selected attribute of a valid, unexpired credential
// held by the prover is a leaf of the Poseidon2 Merkle tree with root Root.
type Circuit struct {
	Credential credential.Gadget
	Public     credential.Public `gnark:",public"`
	Root       frontend.Variable `gnark:",public"`

	Index frontend.Variable        // leaf position (Depth bits)
	Path  [Depth]frontend.Variable // siblings, leaf level first
}

// Define declares the constraints.
func (c *Circuit) Define(api frontend.API) error {
	attr, err := c.Credential.Verify(api, &c.Public)
	if err != nil {
		return err
	}
	perm, err := poseidon2.NewPoseidon2(api)
	if err != nil {
		return err
	}
	h := &nodeHasher{perm: perm}
	// The attribute is range-checked to 64 bits (and ≠ Absent) by Verify,
	// so it can never be the padding leaf 2⁶⁴ of Set. The depth is fixed,
	// so an inner node can never pass for a leaf.
	mp := merkle.MerkleProof{RootHash: c.Root, Path: append([]frontend.Variable{attr}, c.Path[:]...)}
	mp.VerifyProof(api, h, c.Index)
	return nil
}

// nodeHasher adapts the Poseidon2 2-to-1 compression function (width 2,
// gnark's std/permutation/poseidon2) to the hasher interface of
// std/accumulator/merkle: a node is Compress(left, right) and a leaf is
// Compress(0, v), which is the Poseidon2 Merkle–Damgård hash H(v). With
// the hasher's own Merkle–Damgård construction a node would cost two
// permutations (H(l, r) = C(C(0, l), r)); this halves the tree's cost.
// The native side is Set's nodeHash, so that gnark-crypto's merkletree
// builds the same tree.
type nodeHasher struct {
	perm *poseidon2.Permutation
	data []frontend.Variable
}

func (h *nodeHasher) Write(data ...frontend.Variable) { h.data = append(h.data, data...) }

func (h *nodeHasher) Reset() { h.data = nil }

func (h *nodeHasher) Sum() frontend.Variable {
	switch len(h.data) {
	case 1:
		return h.perm.Compress(0, h.data[0])
	case 2:
		return h.perm.Compress(h.data[0], h.data[1])
	}
	panic("member: node hasher takes one or two elements")
}
