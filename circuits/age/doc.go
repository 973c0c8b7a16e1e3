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
// circuits is authoritative): 9,785, of which about 7,050 verify the EdDSA
// signature (including its Poseidon2 challenge hash), 2,600 are the other
// Poseidon2 hashes (credential commitment, holder commitment, nullifier;
// about 186 per absorbed element), 150 check the expiry, and 200 range-
// check and compare the attribute and the cutoff to 64 bits.
package age
