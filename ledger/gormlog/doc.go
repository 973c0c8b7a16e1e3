// Package gormlog is the embedded ledger backend: an RFC 6962 Merkle log
// stored through gorm in SQLite (default) or PostgreSQL.
//
// # Storage
//
// Three tables:
//
//   - ledger_entries(idx, data, hashes, env_header, env_sealed, env_clear):
//     one row per entry. data is the entry's public v2 leaf (what the tree
//     hashes and the tiles serve); env_* its envelope (the signed header,
//     and the opening sealed or, for registry entries, in clear), which is
//     not in the tree: the leaf seals the header, the header commits to
//     the opening. A database in the first entry format (no env_*
//     columns) is refused (ErrFormatV1). hashes is the concatenation of
//     the tree hashes that appending this record stores, exactly as
//     tlog.StoredHashes returns them (the leaf hash first, then the hash of
//     every subtree the record completes). Keeping them in the entry's own
//     row means an entry and its hashes can never be written apart, and a
//     batch costs one row per entry. The hash with tlog storage index i
//     (level L, node n; tlog.SplitStoredHashIndex) is at offset 32*L of
//     the row with idx (n+1)<<L - 1.
//   - ledger_head(id=1, size, origin): the number of durable entries and
//     the log's origin, chosen when the log is created. Every write
//     transaction locks this row (PostgreSQL: SELECT … FOR UPDATE; SQLite:
//     BEGIN IMMEDIATE, set by database.Open) and re-reads the size, so
//     other processes may append to the same database concurrently.
//   - ledger_checkpoints(size, note, created_at): every signed checkpoint
//     published, so old ones can be served by size.
//
// # Appends
//
// AppendEnvelope checks the envelope (ledger.CheckEnvelope: rejecting it,
// with nothing written, if it does not check) and queues it; a
// ledger.Node over the log signs and seals what the gateway appends. One
// writer goroutine drains the queue, up to Options.MaxBatch entries at a
// time, and writes the whole batch — leaves, envelopes, hashes and the
// new head size — in one transaction (group commit): the more concurrent
// appenders, the larger the batch, while each append returns only after
// its transaction committed. A crash leaves the whole batch or none of
// it. The writer sets each leaf's time (UTC, never going backwards within
// a process), and reports each committed batch's leaves to its node
// (ledger.AppendObserver) before it answers the appends, so that the node
// serves its own entries to its projections without reading them back.
//
// # Checkpoints
//
// A publisher goroutine signs a checkpoint for the durable size every
// Options.CheckpointInterval while the log grows, on demand
// (WaitCheckpoint), and once more in Close.
//
// # Integrity
//
// Nothing stored is trusted. Open replays the whole stored log
// (verify.Local) against every stored checkpoint, each of which must be
// signed with the log's own key for its origin, and refuses to open
// (ErrInconsistent, with a *verify.Failure naming the first bad entry) if
// anything differs: a rollback with the checkpoints kept, an edited hash or
// entry, a row moved, a foreign checkpoint. Before signing a checkpoint the
// publisher proves the new tree, read from the database, consistent with
// the latest signed one; if that fails, or the stored size shrinks under
// the running log, the log signs nothing more, Ready reports the fault and
// Append refuses (ledger.ErrUnavailable). It signs no checkpoint over an
// entry it did not append itself until its node has checked it (Vouch:
// signature and authorship as of its index, opening): a row another
// process or a forger wrote is checked first, and one that fails makes the
// log fault in the same way, so a forged entry is never signed into a
// checkpoint and the next start refuses it again. There is no repair
// mode.
package gormlog
