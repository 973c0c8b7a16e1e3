package member

import (
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/accumulator/merkle"
	"github.com/consensys/gnark/std/hash/poseidon2"

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
	h, err := poseidon2.New(api)
	if err != nil {
		return err
	}
	// The attribute is range-checked to 64 bits (and ≠ Absent) by Verify,
	// so it can never be the padding leaf 2⁶⁴ of Set. The depth is fixed,
	// so an inner node can never pass for a leaf.
	mp := merkle.MerkleProof{RootHash: c.Root, Path: append([]frontend.Variable{attr}, c.Path[:]...)}
	mp.VerifyProof(api, h, c.Index)
	return nil
}
