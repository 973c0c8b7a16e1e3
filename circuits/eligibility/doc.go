// Package eligibility is the zero-knowledge eligibility use case, with no
// transport in it: hospitals issue credentials (IssueCredential), verifiers
// ask for single-use challenges (NewChallenge) and have proofs checked
// against them (Verify), and every verification, valid or refused, is
// appended to the ledger as proof.verified.
//
// The verification policy is the gateway's, not the prover's: a proof is
// checked against the verifier's own stored challenge (statement,
// parameters, nonce, scope and date), an issuer key registered on the
// ledger (issuer.registered) and the verifying key registered for the
// statement (circuit.registered). KeyDir and IssuerKeys make those
// registrations.
//
// The types here are the domain's; package circuits/zkstore keeps them in
// a database.
package eligibility
