// Package circuits is healthgw's zero-knowledge eligibility layer: a
// patient proves a fact about a hospital-issued credential ("at least 18
// years old", "HbA1c between 6.5 and 14", "diagnosis in this program's code
// set") to a verifier, revealing nothing else, with Groth16 proofs on BN254
// (gnark).
//
// Packages:
//
//   - credential: schema, issuer keys, Issue, credential and holder-secret
//     files, and the in-circuit gadget shared by every statement;
//   - age, inrange, member: one statement each (type Circuit);
//   - ceremony: the multi-party Groth16 setup producing production keys;
//   - this package: the statement registry (Statement, Compile, Version),
//     policy parameters (Params), public inputs (Public, PublicInputs),
//     key directories (WriteKeys, LoadVerifier, LoadProver, SetupDevKeys),
//     proving (Prover.Prove), verification (Verify, Verifier) and the
//     challenge and proof file formats.
//
// # What a proof binds
//
// Every statement's public inputs are: the issuer key, the schema ID, the
// attribute index, the challenge date, the verifier scope, the challenge
// nonce and the nullifier, then the statement's own constants (cutoff; lo
// and hi; Merkle root). A proof verifies only against exactly these
// values, so the server must build them from its own challenge state
// (Proof.PublicFor) — never trust the values in a proof file — and must
// check that the issuer key is registered, that the nonce is fresh and
// single-use, and (if it wants one proof per person) that the nullifier is
// new within its scope.
//
// # Flow
//
//	hospital: key := credential.GenerateIssuerKey(rand.Reader)   (register key.Public() on the ledger)
//	patient:  secret := credential.NewSecret(rand.Reader); send secret.Commitment()
//	hospital: cred := credential.Issue(key, commitment, schema, attrs, expiry)
//	gateway:  ch := Challenge{Statement, Params, Nonce, Verifier, Scope: ScopeFor(Verifier), Date}; ch.Sign(key)
//	patient:  proof := prover.ProveChallenge(cred, secret, ch, Trust{GatewayKey, Verifier})
//	verifier: verifier.Verify(proof.Statement, proof.PublicFor(ch), proof.Bytes)
package circuits
