// Package gormlog is the embedded ledger backend: an RFC 6962 Merkle log
// stored through gorm in SQLite (default) or PostgreSQL.
//
// # Storage
//
// Three tables:
//
//   - ledger_entries(idx, data, hashes): one row per entry. data is the
//     entry's canonical encoding; hashes is the concatenation of the tree
//     hashes that appending this record stores, exactly as
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
// Append encodes the entry (rejecting it, with nothing written, if it does
// not encode) and queues it. One writer goroutine drains the queue, up to
// Options.MaxBatch entries at a time, and writes the whole batch — entries,
// hashes and the new head size — in one transaction (group commit): the
// more concurrent appenders, the larger the batch, while each Append
// returns only after its transaction committed. A crash leaves the whole
// batch or none of it. The writer assigns Entry.Time (UTC, never going
// backwards within a process).
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
// Append refuses (ledger.ErrUnavailable). There is no repair mode.
package gormlog
