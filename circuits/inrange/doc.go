// Package inrange is the statement "the holder's attribute lies in the
// public range [Lo, Hi]" — for example HbA1c between 6.5 and 14 % (650 to
// 1400 at the schema's scale 100). The package cannot be called range,
// a Go keyword; the statement's name is "range".
//
// Public inputs: credential.Public (issuer key, schema, attribute index,
// date, scope, nonce, nullifier), Lo and Hi (encoded attribute values,
// inclusive). Besides the predicate the circuit proves everything
// credential.Gadget proves: a valid issuer signature, no expiry at the
// date, knowledge of the holder secret and the nullifier.
//
// Constraint cost (R1CS, BN254; testdata/constraints.golden in package
// circuits is authoritative): 9,097 = the credential gadget (8,835, see
// package credential) + 262 for the 64-bit range checks of Lo and Hi and
// the two bounded comparisons.
package inrange
