// Package age is the statement "the holder's date attribute is on or
// before a public cutoff" — with the birth date and
// credential.AgeCutoff(date, 18), "at least 18 years old on date".
//
// Public inputs: credential.Public (issuer key, schema, attribute index,
// date, scope, nonce, nullifier) and Cutoff (a credential.Day). Besides
// the predicate the circuit proves everything credential.Gadget proves:
// a valid issuer signature, no expiry at the date, knowledge of the holder
// secret and the nullifier.
//
// Constraint cost (R1CS, BN254; testdata/constraints.golden in package
// circuits is authoritative): 8,966 = the credential gadget (8,835, see
// package credential) + 131 for the 64-bit range check of the cutoff and
// the bounded comparison attribute ≤ cutoff.
package age
