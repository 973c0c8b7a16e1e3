// Package ledger defines healthgw's tamper-evident log: typed, versioned
// entries with one canonical byte encoding, the Log contract every backend
// implements, signed checkpoints, proofs and their verification.
//
// The tree is RFC 6962 (SHA-256 with leaf and node domain separation) as
// implemented by golang.org/x/mod/sumdb/tlog; checkpoints are C2SP signed
// notes (golang.org/x/mod/sumdb/note, Ed25519) in the
// transparency-dev/formats/log checkpoint format. Nothing in this package
// hand-rolls Merkle or signature code.
//
// Entries carry no PHI: patients appear as keyed pseudonyms (see
// Pseudonymizer), records as IDs and commitments.
//
// The parts:
//
//   - Entry, Encode, Decode and the body types: the wire format.
//   - Log (Appender, Reader, Prover): the backend contract; backends are
//     ledger/gormlog (embedded) and ledger/comet (consortium), and every
//     backend passes ledger/ledgertest.
//   - Follower and Applier: projections kept in step with the log.
//   - SignCheckpoint, OpenCheckpoint, ParseCheckpoint; key files
//     (GenerateCheckpointKey, LoadOrCreateCheckpointKey,
//     LoadCheckpointVerifier).
//   - InclusionProof, ConsistencyProof, VerifyInclusion, VerifyConsistency;
//     ProveEntry and ProveConsistency for the read API; MakeReceipt and
//     VerifyReceipt for writers.
//
// The tlog-tiles HTTP API is in ledger/tiles and full audits (what
// `healthgw ledger verify` runs) in ledger/verify.
package ledger
