// Package recordstore is the gorm implementation of records.Store and
// records.RewrapStore, on SQLite and PostgreSQL.
//
// Records live in one table, "records". Content and data keys are only
// ever stored sealed; patients only as ledger pseudonyms. Shredding sets
// the ciphertext and the wrapped data key to NULL; on SQLite it does so
// with secure_delete on and then truncates the write-ahead log, so the
// bytes are overwritten in the database file rather than left in free
// pages. Every other write to the table runs with secure_delete on too:
// an update that moves a row (publishing a record at a ledger index that
// needs more bytes than the pending row's, a rewrap) would otherwise leave
// the old copy of its ciphertext and wrapped key in free space, out of the
// shred's reach. PostgreSQL keeps the old row version until VACUUM, and backups
// keep what they hold: see docs/design/records-vault.md.
//
// The Store also follows the ledger (it is a ledger.Applier named
// "records", with its cursor in "records_projection_cursors") to settle
// what its own writes left open: a pending record is published when its
// record.registered entry is applied, however late it was committed.
package recordstore
