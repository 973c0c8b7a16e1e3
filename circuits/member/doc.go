// Package member is the statement "the holder's attribute is in a public
// set", the set given by the root of a Poseidon2 Merkle tree of fixed depth
// Depth (20, up to 2²⁰ values) — for example a diagnosis in a program's
// ICD-10 code set. Set builds the tree (with gnark-crypto's merkletree)
// and the membership paths; the circuit checks the path with
// std/accumulator/merkle.
//
// Public inputs: credential.Public (issuer key, schema, attribute index,
// date, scope, nonce, nullifier) and Root. Private: the leaf Index and the
// Path of siblings. Besides the predicate the circuit proves everything
// credential.Gadget proves: a valid issuer signature, no expiry at the
// date, knowledge of the holder secret and the nullifier.
//
// The tree hashes nodes with the bare Poseidon2 2-to-1 compression
// (C(left, right)) rather than the two-block Merkle–Damgård hash that
// std/accumulator/merkle would use with std/hash/poseidon2: one
// permutation per level instead of two, which keeps the statement within
// its budget (see nodeHasher).
//
// Constraint cost (R1CS, BN254; testdata/constraints.golden in package
// circuits is authoritative): 12,803 = the credential gadget (8,835, see
// package credential) + 3,968 for the path: 21 Poseidon2 compressions (the
// leaf and 20 levels, about 186 each), 40 selections and the 20-bit index
// decomposition.
package member
