// Package comet is healthgw's replicated ledger backend: a deterministic
// ABCI 2.0 application run by an in-process CometBFT v0.38 node, so that a
// consortium of hospitals shares one log without trusting an operator.
//
// Each hospital runs one validator. Its gateway submits entries as signed
// transactions (see SignTx): the canonical entry encoding from
// ledger.Encode with a zero Time, the gateway's ID and a random nonce, all
// signed with the gateway's Ed25519 key. The set of gateway keys is fixed in
// the genesis app_state (see GenesisState). The application
//
//   - checks a transaction's shape and signature in CheckTx (cheap, no
//     state beyond the gateway set and the set of applied transactions);
//   - in FinalizeBlock assigns the next log indices, sets every entry's Time
//     to the block time (never a local clock), re-encodes it canonically and
//     extends the RFC 6962 tree with golang.org/x/mod/sumdb/tlog stored
//     hashes, returning the new tree root as the application hash;
//   - in Commit writes the block's entries, hashes, transaction IDs and the
//     new height in one synchronous batch.
//
// Because the application hash is the log root, the header of block H+1
// carries the root of the log after block H, and the commit for it, signed
// by more than two thirds of the voting power, attests the log. Checkpoints
// (Log.Checkpoint) are C2SP signed notes signed by each node's own key; an
// extension line names the chain and height they describe (see
// ParseCheckpointHeight).
//
// State is kept in cometbft-db (goleveldb by default) under the node's data
// directory, next to CometBFT's own block and state stores: the log is a
// key-value shape (index → entry, storage index → hash), one atomic
// WriteSync batch per block gives the "all of the block or none of it"
// guarantee Commit needs, it adds no SQL schema or second database engine
// to a node, and it keeps gorm out of this package.
//
// Open starts a node from a CometBFT home directory (config.toml,
// genesis.json, node and validator keys) and returns a *Log that implements
// ledger.Log. OpenRemote appends through the RPC server of a node running
// in another process (one-shot commands while the gateway runs).
// InitConsortium writes the homes of a local or containerised consortium.
// Package comettest starts networks of nodes on loopback for tests.
//
// A node that cannot prove its state does not serve. At start it opens
// goleveldb in strict mode (a torn journal is an error, never a silent
// "recovery"), checks every entry against its leaf hash, every stored
// hash against the hashes below it, the tree against the committed root
// and the root against the application hash CometBFT recorded; any
// mismatch is ErrCorrupt naming the index, and Open fails. A consensus
// failure at run time (CometBFT logs it and stops consensus) is logged at
// Error and halts the Log: Ready, reads and appends answer a HaltError
// (ErrHalted, ledger.ErrUnavailable) with CometBFT's reason.
//
// Reads decide at the head: Log.Head waits until this node has applied
// every block it knows (from its peers' reported heights) is committed;
// Log.WaitReplicated lets a revocation be acknowledged once the connected
// nodes applied it; Log.Committed notifies followers of each commit.
package comet
