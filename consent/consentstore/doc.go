// Package consentstore keeps the consent projection of the ledger in a gorm
// database (SQLite or PostgreSQL): consent grants, with their revocations,
// from consent.granted and consent.revoked entries, and access events from
// access.decided entries.
//
// Store is a ledger.Applier: feed it with a ledger.Follower. Each Apply
// writes its rows and advances the projection's cursor in one transaction,
// so the projection is always the image of a prefix of the log. The
// projection is a pure function of the entries: Reset and a fresh sync
// rebuild exactly the same rows.
//
// Projection rules, chosen so that any log (even one holding entries the
// API would have refused) projects deterministically and never wedges the
// follower:
//
//   - a consent.granted entry whose consent ID already exists is ignored
//     (the first grant with an ID wins);
//   - a consent.revoked entry takes effect only if the grant exists, belongs
//     to the same patient and is not yet revoked; the grant keeps its row,
//     marked revoked with the revocation's ledger index and time;
//   - a passkey.registered entry records a patient's passkey (credential ID,
//     COSE public key, RP ID, origin); a credential ID already registered
//     is ignored (the first registration wins), and so is a further passkey
//     of a patient who has one, unless an existing passkey signs it (the
//     passkey rule below applies to registrations too);
//   - the passkey rule: once a patient has a registered passkey, a
//     consent.granted or consent.revoked entry about them counts only if it
//     carries a WebAuthn assertion by one of their passkeys over the entry's
//     commitment (consent.VerifyAssertion: challenge, origin, RP ID, user
//     presence, signature); otherwise it is ignored and logged (index,
//     type, author, reason), so neither the operator nor another gateway
//     can forge it. Before any passkey, consent changes count; grants are
//     marked signed or not (consent.Grant.Signed);
//   - every access.decided entry becomes one access event, keyed by its
//     ledger index;
//   - other entry types are skipped.
//
// Times are stored as int64 Unix nanoseconds (NULL for a zero time), so they
// round-trip exactly on both databases.
//
// Lists are newest first (descending ledger index) with opaque cursors
// (consent.EncodeCursor).
package consentstore
