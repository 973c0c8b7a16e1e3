// Package access holds healthgw's consent-gated use cases: reading a
// record under consent (the gated read), listing the records a caller may
// read, and a patient's consent changes (grant and revoke) with their
// receipts. It takes plain values and knows nothing of HTTP: the API, the
// patient app and a federating gateway call the same Service.
//
// The gated read decides with consent.Decide and appends the decision
// (permit or deny) to the ledger as access.decided; the append is durable
// before a byte of the record is decrypted, let alone returned. A denied
// read fails exactly like a read of a record that does not exist
// (ErrNotFound).
//
// Reads and consent changes of one patient are linearised by a striped
// read-write lock keyed by the patient's pseudonym: a read holds its
// patient's stripe shared from loading the grants until its access entry
// is durable; a grant or revocation holds it exclusively until its entry
// is durable and projected. So once a revocation is acknowledged, no read
// decided under the old grant can still log a permit after it, and every
// later read sees it.
//
// A consent change answered with an unknown outcome (a consortium without
// quorum: its entry may be committed later) is repeated safely with
// GrantOnce and RevokeOnce: the Write an idempotency key fixes names the
// consent and the time of the first attempt, and a retry looks for the
// earlier attempt's entry at the head of the log before it appends the
// identical change.
//
// Queries answers the consent and access-event queries for one viewer at
// a time (a patient sees their own grants and access log, a hospital the
// grants naming it, a regulator every access event), so that no transport
// has to restate who may see what.
//
// Consent changes live here, not in package consent, because they must
// take the same stripes as the reads they order against; package consent
// stays pure (the model, validation and Decide), with no I/O.
package access
