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
//	m = H(TagCredential, holder, W₀, W₁, W₂)
//
// over three 192-bit words that pack the eight 64-bit attributes a[i],
// the schema ID and the expiry, three 64-bit fields per word (see Words):
// W₀ = a[0..2], W₁ = a[3..5], W₂ = a[6], a[7], expiry + schema·2³².
//
// holder = H(TagHolder, secret) is supplied by the patient app (the
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
// Cost: 8,835 R1CS constraints (credential format v2, circuit version 2):
//
//   - 7,057 verify the EdDSA signature with std/signature/eddsa.Verify
//     (the Poseidon2 challenge hash of R, A, m, S < ℓ, the double-base
//     multiplication and the cofactored check);
//   - 1,302 are the other Poseidon2 permutations (about 186 each, a
//     constant first block is free): the commitment m (4), the holder
//     commitment (1) and the nullifier (2);
//   - 386 decompose the selected word and the last word into 192 bits,
//     which range-checks the attribute (64 bits), the expiry and the
//     schema (32 bits each) and binds the schema to its public input;
//   - the rest compare the date with the expiry, select the attribute and
//     bind the nonce.
//
// Version 1 (9,654) hashed the eleven message elements one by one (11
// permutations), range-checked expiry and attribute separately. Range checks are bit decompositions (std/math/bits) and
// comparisons std/math/cmp's bounded comparator, so the circuits need no
// Groth16 commitment (which would make proofs larger, verification an
// extra pairing check slower and the ceremony more complex; the std
// lattice-based scalar multiplications need one too, through emulated
// arithmetic and log-derivative lookups).
package credential
