// Package records is healthgw's encrypted off-chain record vault.
//
// Hospitals keep their records; the gateway holds them only encrypted, so
// that a stolen database or backup reveals nothing, and only commitments go
// to the ledger.
//
// # Envelope encryption
//
// Every record gets its own random 256-bit data key (DEK). The content is
// encrypted with AES-256-GCM (crypto/cipher, random 96-bit nonce stored in
// front of the ciphertext). The associated data binds the format version,
// the record ID, the holding organisation, the patient's pseudonym, the
// category, the content type and the FHIR resource type, so a ciphertext
// moved to another row, or a row whose labels were edited, fails to
// decrypt.
//
// The DEK is wrapped with AES-256-GCM under the holding organisation's
// key-encryption key (KEK); the associated data of the wrap binds the
// format version, the organisation, the KEK version and the record ID.
// KEKs come from a KeyProvider. The default, Keystore, keeps versioned keys
// in files (<dir>/<org>/v<N>.key, mode 0600) and reads keys from the
// environment (HEALTHGW_KEK_<ORG>_V<N>, base64).
//
// Rotation (Rotate) makes a new KEK version current and re-wraps every
// data key under it, batch by batch, without re-encrypting any content. It
// is idempotent: an interrupted rotation is resumed by running it again.
//
// # What is stored
//
// Rows hold the ciphertext, the wrapped DEK and its KEK version, and
// metadata: record ID, holder, the patient's ledger pseudonym (never the
// raw patient identifier), category, content type, FHIR resource type,
// size, commitment and ledger index. Crypto-shredding (Vault.Shred)
// destroys the wrapped DEK and the ciphertext and keeps a tombstone.
//
// # Ledger
//
// Vault.Put appends record.registered {record ID, holder, patient
// pseudonym, category, resource type, commitment = hex SHA-256 of the
// ciphertext}; the record is visible only once that entry is durable.
// Vault.Shred appends record.shredded.
//
// # Unknown outcomes
//
// An append can fail without saying whether the entry will be committed
// (a consortium without quorum: the transaction waits in a mempool). The
// record then stays pending, unreadable, until its registration is known
// committed or known absent; it is never deleted while the registration
// could still appear, so no registration ever lacks its record. The
// store follows the log (recordstore.Store is a ledger.Applier) and
// publishes a pending record when its registration is applied. A Put
// repeated with the same ID (PutRequest.ID, fixed by an idempotency key)
// returns the record once registered, or submits the identical
// registration again, and never makes a second record.
//
// # Categories
//
// Records are classified into a closed vocabulary (see Category) that
// consent grants refer to.
package records
