package comet

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	voied "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/healthgw/healthgw/ledger"
)

// Errors about transactions. CheckTx and FinalizeBlock reject such
// transactions; Append returns them wrapped.
var (
	// ErrBadTx: the transaction is not a well-formed, canonically encoded
	// envelope.
	ErrBadTx = errors.New("comet: malformed transaction")
	// ErrUnknownGateway: the envelope names a gateway that is not in the
	// genesis gateway set.
	ErrUnknownGateway = errors.New("comet: unknown gateway")
	// ErrBadSignature: the gateway's signature does not verify.
	ErrBadSignature = errors.New("comet: bad gateway signature")
	// ErrDuplicate: a transaction with the same ID is already in the log.
	ErrDuplicate = errors.New("comet: duplicate transaction")
	// ErrDuplicateEntry: another transaction carrying the same entry (the
	// same signed header, so the same statement, commitment and salt) is
	// already in the log, or earlier in the same block. It wraps
	// ErrDuplicate. The log holds each entry once: a client repeating a
	// write whose outcome was unknown (its first transaction waiting in
	// a mempool while the quorum was lost) gets the first one's index
	// from Log.AppendEnvelope, and never a second entry.
	ErrDuplicateEntry = fmt.Errorf("%w: entry already committed", ErrDuplicate)
	// ErrRefused: the entry's author may not write it (the registry's
	// authorship rules, ledger.Authority) or its signature does not
	// verify under the author's node key.
	ErrRefused = errors.New("comet: entry refused by the registry")
)

// MaxTxSize bounds a transaction: a maximal envelope (header and the
// larger of a sealed or a clear opening) in base64, as the JSON carries
// them, plus the transaction's own fields (version, gateway ID of at most
// 64 characters, nonce and signature: under 300 bytes). ParseTx refuses a
// larger transaction before parsing it; InitHomes sets CometBFT's
// mempool.max_tx_bytes to it, and Open raises a smaller setting to it
// (a mempool that refused a well-formed entry would make its gateway
// unable to write it). Blocks (consensus_params.block.max_bytes, 21 MiB
// by default) hold a hundred maximal transactions.
const MaxTxSize = 4*(ledger.MaxHeaderSize+max(ledger.MaxSealedSize, ledger.MaxOpeningSize)+4)/3 + 1024

// txVersion is the envelope version written by this code: 2 carries a v2
// entry envelope (signed header, sealed or clear opening).
const txVersion = 2

// nonceSize is the size of the random nonce that makes every submission
// unique.
const nonceSize = 16

// signaturePrefix separates gateway transaction signatures from every other
// use of a gateway key.
const signaturePrefix = "healthgw/comet/tx/v1\n"

// TxID identifies a transaction: the SHA-256 of its bytes (as CometBFT's
// own transaction hash). A transaction is canonical and its Ed25519
// signature is unique (Go's ed25519.Verify refuses malleated ones), so
// one signed message has one ID. The log refuses a second transaction
// with the same ID, so a captured transaction cannot be replayed.
type TxID [sha256.Size]byte

// String returns the ID in hex.
func (id TxID) String() string { return hex.EncodeToString(id[:]) }

// wireTx is the canonical JSON envelope of a transaction.
type wireTx struct {
	Version int    `json:"v"`
	Gateway string `json:"gateway"`
	Nonce   string `json:"nonce"` // hex
	Header  []byte `json:"header"`
	Sealed  []byte `json:"sealed,omitempty"`
	Clear   []byte `json:"clear,omitempty"`
	Sig     []byte `json:"sig,omitempty"`
}

// Tx is a parsed and verified transaction.
type Tx struct {
	ID      TxID
	Gateway string
	// Envelope is the submitted entry's envelope, and Header its
	// decoded header (authored by Gateway, its signature verified).
	Envelope ledger.Envelope
	Header   ledger.Header
	// Statement is the checked statement of a registry entry's clear
	// opening (nil for a sealed entry).
	Statement *ledger.Statement
	// Seal is the entry's identity: the seal of its header
	// (ledger.Seal), which its leaf carries. Two transactions with the
	// same seal carry the same entry.
	Seal ledger.Digest
}

// SignTx returns a transaction that submits the entry of env on the chain
// chainID, signed by gateway with key (the gateway must be the entry's
// author), and the transaction's ID.
func SignTx(chainID, gateway string, key ed25519.PrivateKey, env ledger.Envelope) ([]byte, TxID, error) {
	if err := checkGatewayID(gateway); err != nil {
		return nil, TxID{}, err
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, TxID{}, errors.New("comet: gateway key must be an Ed25519 private key")
	}
	h, err := ledger.CheckEnvelope(env)
	if err != nil {
		return nil, TxID{}, err
	}
	if h.Author != gateway {
		return nil, TxID{}, fmt.Errorf("%w: entry authored by %q submitted by %q", ErrBadTx, h.Author, gateway)
	}
	var nonce [nonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, TxID{}, fmt.Errorf("nonce: %w", err)
	}
	w := wireTx{Version: txVersion, Gateway: gateway, Nonce: hex.EncodeToString(nonce[:]), Header: env.Header, Sealed: env.Sealed, Clear: env.Clear}
	msg, err := signedMessage(chainID, w)
	if err != nil {
		return nil, TxID{}, err
	}
	w.Sig = ed25519.Sign(key, msg)
	tx, err := encodeWire(w)
	if err != nil {
		return nil, TxID{}, fmt.Errorf("encode tx: %w", err)
	}
	return tx, sha256.Sum256(tx), nil
}

// signedMessageOf returns signedMessage for a canonical transaction tx
// (parseTx checked that it is json.Marshal's encoding of its wireTx, with
// a signature): the same bytes without the last member, "sig", which
// spares encoding the transaction again.
func signedMessageOf(chainID string, tx []byte) []byte {
	const sigMember = len(`,"sig":""}`)
	n := len(tx) - sigMember - base64.StdEncoding.EncodedLen(ed25519.SignatureSize)
	msg := make([]byte, 0, len(signaturePrefix)+len(chainID)+1+n+1)
	msg = append(msg, signaturePrefix...)
	msg = append(msg, chainID...)
	msg = append(msg, '\n')
	msg = append(msg, tx[:n]...)
	return append(msg, '}')
}

// signedMessage is what a gateway signs: a fixed prefix, the chain ID and
// the canonical envelope without its signature.
func signedMessage(chainID string, w wireTx) ([]byte, error) {
	w.Sig = nil
	body, err := encodeWire(w)
	if err != nil {
		return nil, fmt.Errorf("encode tx: %w", err)
	}
	msg := make([]byte, 0, len(signaturePrefix)+len(chainID)+1+len(body))
	msg = append(msg, signaturePrefix...)
	msg = append(msg, chainID...)
	msg = append(msg, '\n')
	return append(msg, body...), nil
}

// ParseTx parses tx, checks that it is canonical, that its gateway is in
// gateways and that the signature verifies for chainID, and that it carries
// a well-formed entry envelope (ledger.CheckEnvelope) authored by that
// gateway whose header signature verifies under the gateway's genesis key
// (a consortium's gateways sign with their genesis keys: the registry
// refuses a gateway.registered with another key). It is deterministic
// and reads no state beyond its arguments, so its result may be cached
// by the transaction's bytes; what depends on the log (authorship at the
// entry's index) is the registry's, ledger.Authority.Check.
func ParseTx(chainID string, gateways map[string]ed25519.PublicKey, tx []byte) (Tx, error) {
	keys, err := newGatewayKeys(gateways)
	if err != nil {
		return Tx{}, err
	}
	return parseTx(chainID, keys, tx, parseFull)
}

// gatewayKeys are the genesis gateways' node keys, each expanded once for
// verification (curve25519-voi's ExpandedPublicKey: the point decompressed
// and its table precomputed), which about halves the cost of each of the
// two signature checks of a transaction.
type gatewayKeys map[string]*voied.ExpandedPublicKey

func newGatewayKeys(gateways map[string]ed25519.PublicKey) (gatewayKeys, error) {
	keys := make(gatewayKeys, len(gateways))
	for id, pub := range gateways {
		x, err := voied.NewExpandedPublicKey(voied.PublicKey(pub))
		if err != nil {
			return nil, fmt.Errorf("comet: gateway %q: public key: %w", id, err)
		}
		keys[id] = x
	}
	return keys, nil
}

// verify reports whether sig is key's signature of msg, exactly as
// crypto/ed25519.Verify decides (voi's VerifyOptionsStdLib: canonical s,
// no malleated signature), so that every node, and every version of this
// code, accepts the same transactions.
func verify(key *voied.ExpandedPublicKey, msg, sig []byte) bool {
	opts := voied.Options{Verify: voied.VerifyOptionsStdLib}
	return voied.VerifyExpandedWithOptions(key, msg, sig, &opts)
}

// parseMode says which signatures parseTx verifies.
type parseMode struct {
	// ownTx: the transaction was just signed by this node (SignTx), so
	// its transaction signature is right by construction; the header's,
	// made by whoever built the envelope, is still verified.
	ownTx bool
	// noHeader leaves out the entry's header signature (for committed
	// transactions, checked when their block was finalized: the
	// transaction signature, by the same key over the same header bytes,
	// shows they are unchanged).
	noHeader bool
}

var parseFull = parseMode{}

// parseTx is ParseTx with the gateways' keys expanded, verifying what
// mode says.
func parseTx(chainID string, gateways gatewayKeys, tx []byte, mode parseMode) (Tx, error) {
	if len(tx) > MaxTxSize {
		return Tx{}, fmt.Errorf("%w: %d bytes", ErrBadTx, len(tx))
	}
	w, err := decodeWireTx(tx)
	if err != nil {
		return Tx{}, err
	}
	if w.Version != txVersion {
		return Tx{}, fmt.Errorf("%w: version %d", ErrBadTx, w.Version)
	}
	if n, err := hex.DecodeString(w.Nonce); err != nil || len(n) != nonceSize || hex.EncodeToString(n) != w.Nonce {
		return Tx{}, fmt.Errorf("%w: bad nonce", ErrBadTx)
	}
	if len(w.Sig) != ed25519.SignatureSize {
		return Tx{}, fmt.Errorf("%w: bad signature length", ErrBadTx)
	}
	key, ok := gateways[w.Gateway]
	if !ok {
		return Tx{}, fmt.Errorf("%w: %q", ErrUnknownGateway, w.Gateway)
	}
	if !mode.ownTx && !verify(key, signedMessageOf(chainID, tx), w.Sig) {
		return Tx{}, fmt.Errorf("%w: gateway %q", ErrBadSignature, w.Gateway)
	}
	env := ledger.Envelope{Header: w.Header, Sealed: w.Sealed, Clear: w.Clear}
	h, err := ledger.CheckEnvelope(env)
	if err != nil {
		return Tx{}, fmt.Errorf("%w: entry: %w", ErrBadTx, err)
	}
	if h.Author != w.Gateway {
		return Tx{}, fmt.Errorf("%w: entry authored by %q submitted by %q", ErrRefused, h.Author, w.Gateway)
	}
	// ledger.VerifyHeader, with the expanded key (CheckEnvelope
	// validated the header).
	if !mode.noHeader && !verify(key, ledger.SignatureMessage(h), h.Sig[:]) {
		return Tx{}, fmt.Errorf("%w: %w: %s by %s", ErrRefused, ledger.ErrBadEntrySignature, h.Type, h.Author)
	}
	t := Tx{ID: sha256.Sum256(tx), Gateway: w.Gateway, Envelope: env, Header: h, Seal: ledger.Seal(env.Header)}
	if len(env.Clear) > 0 {
		o, err := ledger.DecodeOpening(env.Clear)
		if err != nil {
			return Tx{}, fmt.Errorf("%w: entry: %w", ErrBadTx, err)
		}
		st, err := ledger.CheckOpening(o, h)
		if err != nil {
			return Tx{}, fmt.Errorf("%w: entry: %w", ErrBadTx, err)
		}
		t.Statement = &st
	}
	return t, nil
}

// decodeTxEnvelope returns the envelope a transaction carries, without
// checking anything: for transactions that ParseTx accepted before (the
// stored ones, checked at start).
func decodeTxEnvelope(tx []byte) (ledger.Envelope, error) {
	w, ok := decodeWireFast(tx)
	if !ok {
		if err := json.Unmarshal(tx, &w); err != nil {
			return ledger.Envelope{}, fmt.Errorf("%w: %v", ErrBadTx, err)
		}
	}
	return ledger.Envelope{Header: w.Header, Sealed: w.Sealed, Clear: w.Clear}, nil
}
