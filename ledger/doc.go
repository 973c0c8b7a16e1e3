// Package ledger defines healthgw's tamper-evident log: typed, versioned
// entries with one canonical byte encoding, the Log contract every backend
// implements, signed checkpoints, proofs and their verification.
//
// The tree is RFC 6962 (SHA-256 with leaf and node domain separation) as
// implemented by golang.org/x/mod/sumdb/tlog; checkpoints are C2SP signed
// notes (golang.org/x/mod/sumdb/note) in the transparency-dev/formats/log
// checkpoint format. Nothing in this package hand-rolls Merkle or signature
// code.
//
// Entries carry no PHI: patients appear as keyed pseudonyms (see
// Pseudonymizer), records as IDs and commitments.
package ledger
