// Package credential is the shared core of healthgw's zero-knowledge
// eligibility proofs: the attribute schema, issuer keys, credential issuance
// and its JSON file format for patient apps, the holder secret, and the
// in-circuit gadget that every statement (age, inrange, member) embeds.
//
// # Credentials
//
// A hospital (the issuer) holds an EdDSA key on the BN254 twisted Edwards
// curve (gnark-crypto). A credential is the issuer's signature over a
// Poseidon2 commitment
//
//	m = H(TagCredential, holder, a[0], …, a[7], schema·2³² + expiry)
//
// where holder = H(TagHolder, secret) is supplied by the patient app (the
// gateway never sees the secret), schema is the schema ID, a[i] are the
// eight integer attributes named by the schema and expiry is the last day
// (inclusive) on which the credential is valid. H is the Poseidon2
// Merkle–Damgård hash of gnark-crypto (bn254/fr/poseidon2) over field
// elements; the same construction is used in-circuit (std/hash/poseidon2).
// Every hash starts with a distinct domain tag so that, for instance, a
// nullifier can never be computed from the (issuer-known) holder commitment.
//
// # Attributes
//
// Every attribute is an unsigned integer below 2⁶⁴−1; the value 2⁶⁴−1
// (Absent) marks an attribute the issuer did not assert and fails every
// predicate. Kinds:
//
//   - date: days since 1900-01-01 (UTC, proleptic Gregorian), see Day;
//   - decimal: a lab value as a scaled integer (HbA1c 6.5 % with scale 100
//     is 650);
//   - integer: a plain count or measurement in the documented unit;
//   - code: a coded value through the documented code table (CodeValue):
//     ICD-10 codes and FHIR administrative gender.
//
// The schema in force is PatientV1; its attribute names, kinds, units and
// scales are listed there.
//
// # In-circuit gadget
//
// Gadget (private) and Public (public inputs) are embedded by every
// statement's Circuit. Gadget.Verify proves that the credential is signed
// by the public issuer key, has not expired at the public date, that the
// prover knows the holder secret, that the public nullifier is
// H(TagNullifier, secret, scope), and binds the verifier's challenge nonce
// in a constraint. It returns the attribute selected by the public
// attribute index, range-checked to 64 bits, for the statement's predicate.
//
// Cost: 9,654 R1CS constraints, of which about 7,050 verify the EdDSA
// signature (std/signature/eddsa: the 254-bit double-base scalar
// multiplication, S < ℓ, and the Poseidon2 challenge hash of R, A, m),
// 2,420 are the other Poseidon2 hashes (13 absorbed variables at about 186
// constraints each: the commitment, holder commitment and nullifier), 100
// range-check and compare the date and expiry (32 bits), and the rest
// select and range-check the attribute and bind the nonce. Range checks
// are bit decompositions (std/math/bits) and comparisons std/math/cmp's
// bounded comparator, so the circuits need no Groth16 commitment.
package credential
