// Package comet is healthgw's replicated ledger backend: a deterministic
// ABCI 2.0 application run by an in-process CometBFT v0.38 node, so that a
// consortium of hospitals shares one log without trusting an operator.
//
// A *Log is a ledger.Store: it keeps and replicates, per index, the
// entry's public leaf and its envelope (the signed v2 header and the
// opening, sealed to the gateways or, for registry entries, in clear;
// docs/design/ledger-privacy.md). It signs, seals and opens nothing
// itself: each gateway runs a ledger.Node over its Log (ledger.OpenNode),
// which registers the gateway's sealing key with a gateway.registered the
// first time it opens, signs what the gateway writes with the gateway key
// and seals it to every registered gateway.
//
// Each hospital runs one validator. Its gateway submits each envelope as a
// transaction (see SignTx): the envelope, the gateway's ID and a random
// nonce, signed with the gateway's Ed25519 key, which is also the key the
// entry's header is signed with. The set of gateways and their keys is
// fixed in the genesis app_state (see GenesisState). The application
//
//   - checks a new transaction in CheckTx: its shape and signature, the
//     entry's envelope and header signature (ParseTx), that it is not
//     committed, and the registry's rules (ledger.Authority: who may
//     author what) at the next index, answering CodeRefused to what the
//     registry refuses;
//   - in FinalizeBlock admits each entry the registry admits at its own
//     index (refusing the rest, reported to their waiting appenders),
//     sets its leaf's time to the block time (never a local clock) and
//     extends the RFC 6962 tree with golang.org/x/mod/sumdb/tlog stored
//     hashes, returning the new tree root as the application hash;
//   - in Commit writes the block's leaves, transactions, hashes,
//     transaction IDs and the new height in one synchronous batch.
//
// The registry is derived from headers and clear registry openings only,
// so every node derives the same one whatever it can open, and refuses
// the same entries. Every node rebuilds it from its log at start.
//
// Because the application hash is the log root, the header of block H+1
// carries the root of the log after block H, and the commit for it, signed
// by more than two thirds of the voting power, attests the log. Checkpoints
// (Log.Checkpoint, Log.CheckpointAt) are C2SP signed notes signed by each
// node's own key; an extension line names the chain and height they
// describe (see ParseCheckpointHeight).
//
// State is kept in cometbft-db (goleveldb by default) under the node's data
// directory, next to CometBFT's own block and state stores: the log is a
// key-value shape (index → leaf and transaction, storage index → hash),
// one atomic WriteSync batch per block gives the "all of the block or none
// of it" guarantee Commit needs, it adds no SQL schema or second database
// engine to a node, and it keeps gorm out of this package.
//
// Open starts a node from a CometBFT home directory (config.toml,
// genesis.json, node, validator and gateway keys) and returns its *Log.
// Until every genesis gateway has registered its sealing key, Log.Ready
// says which have not and a gateway waits before it seals
// (Log.WaitRegistered): an entry sealed before a gateway registered could
// never be opened by it. OpenRemote submits registry entries (an organisation's
// registration, homed at the node's gateway) through the RPC server of a
// node running in another process. InitConsortium writes the homes of a
// local or containerised consortium. Package comettest starts networks of
// nodes, with their gateways' ledgers, on loopback for tests.
//
// A node that cannot prove its state does not serve. At start it opens
// goleveldb in strict mode (a torn journal is an error, never a silent
// "recovery"), checks every leaf against its leaf hash, every stored
// transaction's signature (so not one byte of an envelope, a sealed
// opening's ciphertext included, has changed) and its header against the
// leaf's seal, every stored hash against the hashes below it, the tree
// against the committed root and the root against the application hash
// CometBFT recorded; any mismatch is ErrCorrupt naming the index and why,
// and Open fails. A consensus failure at run time (CometBFT logs it and
// stops consensus) is logged at Error and halts the Log: Ready, reads and
// appends answer a HaltError (ErrHalted, ledger.ErrUnavailable) with
// CometBFT's reason.
//
// Reads decide at the head: Log.Head waits until this node has applied
// every block it knows (from its peers' reported heights) is committed;
// Log.WaitReplicated lets a revocation be acknowledged once the connected
// nodes applied it; Log.Committed notifies followers of each commit.
package comet
