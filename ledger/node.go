package ledger

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// The v2 log (docs/design/ledger-privacy.md). A backend (Store) keeps,
// per index, the public leaf (what the tree and the tiles hold) and the
// entry's envelope: its signed header and its opening, sealed to the
// gateways that may read it. A Node is a gateway's view of a store: it
// signs and seals what the gateway appends, checks and opens what it
// reads, and keeps the registry of gateways and org homes that says who
// may author what (authorship, "A ledger that never signs a lie").

// Envelope is what a store keeps and replicates of an entry besides its
// public leaf: the signed header and the opening, sealed to its recipients
// (Sealed) or, for registry entries every gateway must read to check
// authorship deterministically (gateway, org, issuer and circuit
// registrations), in clear (Clear). Exactly one of Sealed and Clear is set.
// Envelopes are never public: the tiles serve leaves only.
type Envelope struct {
	Header []byte
	Sealed []byte
	Clear  []byte
}

// ErrIdentityMismatch: the gateway's keys are not the ones the log has
// registered for it.
var ErrIdentityMismatch = errors.New("ledger: gateway identity does not match the log")

// ErrReadOnlyNode: Append on a node opened read-only.
var ErrReadOnlyNode = errors.New("ledger: the log was opened read-only")

// ErrBadEnvelope: an envelope is malformed or not bound to its header.
var ErrBadEnvelope = errors.New("ledger: malformed envelope")

// clearType reports whether entries of type t travel in clear: the
// registry facts every gateway must process to check authorship.
func clearType(t Type) bool {
	switch t {
	case TypeGatewayRegistered, TypeOrgRegistered, TypeOrgKeysRotated, TypeIssuerRegistered, TypeCircuitRegistered:
		return true
	}
	return false
}

// CheckEnvelope checks, without any key, that env is well-formed: the
// header decodes, a clear opening opens it (CheckOpening) and is of a
// registry type, a sealed one is bound to it (CheckSealed). It returns
// the header. It does not check the signature or authorship (Authority).
func CheckEnvelope(env Envelope) (Header, error) {
	h, err := DecodeHeader(env.Header)
	if err != nil {
		return Header{}, err
	}
	switch {
	case len(env.Sealed) > 0 && len(env.Clear) > 0, len(env.Sealed) == 0 && len(env.Clear) == 0:
		return Header{}, fmt.Errorf("%w: want exactly one of a sealed or a clear opening", ErrBadEnvelope)
	case len(env.Clear) > 0:
		if !clearType(h.Type) {
			return Header{}, fmt.Errorf("%w: %s must be sealed", ErrBadEnvelope, h.Type)
		}
		o, err := DecodeOpening(env.Clear)
		if err != nil {
			return Header{}, err
		}
		if _, err := CheckOpening(o, h); err != nil {
			return Header{}, err
		}
		if o.Subject != "" || o.Justification != nil {
			return Header{}, fmt.Errorf("%w: a clear opening has no subject or justification", ErrBadEnvelope)
		}
	default:
		if clearType(h.Type) {
			return Header{}, fmt.Errorf("%w: %s travels in clear", ErrBadEnvelope, h.Type)
		}
		if err := CheckSealed(env.Sealed, h); err != nil {
			return Header{}, err
		}
	}
	return h, nil
}

// NewLeafFor returns the canonical leaf of the entry whose header is
// header, at time t (the store's clock or the block time).
func NewLeafFor(header []byte, t time.Time) ([]byte, error) {
	h, err := DecodeHeader(header)
	if err != nil {
		return nil, err
	}
	return EncodeLeaf(Leaf{Version: VersionV2, Type: h.Type, Time: t.UTC(), Seal: Seal(header)})
}

// Store is the contract of a v2 backend: Log's without the signing and
// opening, which are the Node's.
type Store interface {
	// AppendEnvelope appends the entry of env: it checks env
	// (CheckEnvelope; a backend shared by several gateways also checks
	// the signature and authorship, see Authority), sets the leaf
	// (NewLeafFor with its clock) and returns the index, with
	// Appender.Append's durability contract.
	AppendEnvelope(ctx context.Context, env Envelope) (uint64, error)
	// Reader's Entries returns the leaves.
	Reader
	// Envelopes returns the envelopes of [start, end).
	Envelopes(ctx context.Context, start, end uint64) ([]Envelope, error)
	Prover
	Close() error
}

// AppendObserver is implemented by stores that report the leaves they
// appended, with their index, before they acknowledge the appends
// (gormlog). A node then has every entry it appended in its cache, with
// its leaf's time, before anyone learns its index: its projections (Read)
// and the store's own check get its entries without reading them back.
type AppendObserver interface {
	// ObserveAppends sets the observer: f(first, leaves) is called with
	// the leaves of entries first, first+1, … once they are durable and
	// before their appends return. f must not call the store.
	ObserveAppends(f func(first uint64, leaves [][]byte))
}

// GenesisGateways is implemented by stores whose gateways are fixed
// before the first entry (a consortium's genesis): the node keys of the
// gateways that may register. A store without it admits one gateway, the
// one that writes entry 0.
type GenesisGateways interface {
	GenesisGateways() map[string]GatewayKeys
}

// RegistrationWaiter is implemented by stores whose gateways are fixed at
// genesis and register their sealing keys with their first entry (a
// consortium): WaitRegistered returns once every genesis gateway has
// registered, or an error wrapping ErrUnavailable. A node waits for it
// before it seals its first entry, so that every entry is sealed to every
// gateway of the store (the recipients are every registered gateway until
// they are narrowed to each entry's parties).
type RegistrationWaiter interface {
	WaitRegistered(ctx context.Context) error
}

// Source is what a projection reads: entries in the domain view, opened
// and checked.
type Source interface {
	Size(ctx context.Context) (uint64, error)
	// Read returns the entries [start, end) in the domain view. An entry
	// this gateway may not open has its Type, Author, Org and Time and a
	// nil Body.
	Read(ctx context.Context, start, end uint64) ([]Entry, error)
}

// Identity is a gateway's: its ID, public base URL, node key (signing)
// and sealing key, and the pseudonym secret behind patient references.
type Identity struct {
	Gateway    string
	BaseURL    string
	NodeKey    crypto.Signer // Ed25519
	SealKey    *ecdh.PrivateKey
	Pseudonyms *Pseudonymizer
	// Recipients, when set, names the gateways an entry this gateway
	// appends must be sealed to (a consortium's routing policy, see
	// docs/design/ledger-privacy.md, "Consortium routing"), from the
	// registry a as of the log's head as this node knows it. The author is
	// always a recipient; every one must have registered its sealing key.
	// Registry entries travel in clear and are not routed. Nil: every
	// registered gateway (the embedded log's one gateway).
	Recipients func(ctx context.Context, e Entry, a *Authority) ([]string, error)
	// ReadOnly opens the log to read and check it only (a listing tool):
	// no node key is needed and the gateway is not registered; without a
	// SealKey sealed entries read with a nil Body.
	ReadOnly bool
}

// Node is a gateway's log: a Store with the gateway's identity. It
// implements Log.
type Node struct {
	store  Store
	id     Identity
	signer *Signer
	// selfKEK is SelfKEK(id.SealKey), the key of the self slot of the
	// entries this node seals (nil without a sealing key).
	selfKEK []byte

	mu      sync.Mutex // guards auth and cache
	auth    *Authority
	cache   entryCache
	trusted uint64 // entries below were proved against a checkpoint at open

	// pending are the entries being appended here, by the seal of their
	// header (their leaf's), until their appender has their index;
	// landed those of them the store reported durable (AppendObserver),
	// by index. A read that meets one (another appender's projection
	// sync, the store's check before a checkpoint) takes it as built
	// instead of checking it again from the store. pmu guards both; it
	// is taken after mu, never before.
	pmu     sync.Mutex
	pending map[Digest]cachedEntry
	landed  map[uint64]landedEntry

	// appendMu orders registry appends (gateway and org registrations)
	// with the authority check, so two can't race past it.
	appendMu sync.Mutex

	// unsettled are the envelopes of appends whose outcome is unknown,
	// by the entry's key, for a retry to submit again (retry.go). Only
	// over a RepeatAnswerer store; empty otherwise.
	unsettled unsettledSet
}

var _ Log = (*Node)(nil)

// OpenNode returns the node of identity id over store. It loads the
// registry (gateways, org homes) from the log, checks every entry beyond
// the latest checkpoint (its signature, authorship and opening: entries
// a checkpoint covers were checked before it was signed, and the store
// proved them against it at open), and registers the gateway itself
// (gateway.registered) if it is not yet.
func OpenNode(ctx context.Context, store Store, id Identity) (*Node, error) {
	if (id.SealKey == nil && !id.ReadOnly) || (id.SealKey != nil && id.SealKey.Curve() != ecdh.X25519()) {
		return nil, fmt.Errorf("%w: the node needs an X25519 sealing key", ErrBadSealKey)
	}
	if id.Pseudonyms == nil && (!id.ReadOnly || id.SealKey != nil) {
		return nil, errors.New("ledger: the node needs the pseudonym secret")
	}
	var signer *Signer
	if !id.ReadOnly {
		var err error
		if signer, err = NewSigner(id.Gateway, id.NodeKey); err != nil {
			return nil, err
		}
	}
	n := &Node{store: store, id: id, signer: signer, auth: NewAuthority(nil)}
	if id.SealKey != nil {
		var err error
		if n.selfKEK, err = SelfKEK(id.SealKey); err != nil {
			return nil, err
		}
	}
	if g, ok := store.(GenesisGateways); ok {
		n.auth = NewAuthority(g.GenesisGateways())
	}
	n.cache.init(entryCacheSize)
	n.pending = make(map[Digest]cachedEntry)
	n.landed = make(map[uint64]landedEntry)
	if _, ok := store.(RepeatAnswerer); ok {
		n.unsettled.init(DefaultUnsettled)
	}
	if o, ok := store.(AppendObserver); ok {
		o.ObserveAppends(n.observeAppends)
	}
	if v, ok := store.(Vouching); ok {
		// Before the first check: a store that signs its own
		// checkpoints signs none over an entry this node has not passed,
		// even if the node refuses to open.
		v.Vouch(n.checkTo)
	}
	size, err := store.Size(ctx)
	if err != nil {
		return nil, err
	}
	trusted := uint64(0)
	if cp, err := store.Checkpoint(ctx); err == nil {
		if c, err := ParseCheckpoint(cp); err == nil {
			trusted = min(c.Size, size)
		}
	}
	n.trusted = trusted
	n.mu.Lock()
	err = n.advance(ctx, size)
	n.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if id.ReadOnly {
		return n, nil
	}
	if gk, ok := n.auth.Gateway(id.Gateway); !ok || gk.Seal == nil {
		if ok && !gk.Public.Equal(signer.Public()) {
			return nil, fmt.Errorf("%w: gateway %q has another node key in the genesis than keys/gateway.key", ErrIdentityMismatch, id.Gateway)
		}
		if err := n.registerSelf(ctx); err != nil && !n.registeredMeanwhile(ctx, err) {
			return nil, err
		}
	} else if !gk.Public.Equal(signer.Public()) {
		return nil, fmt.Errorf("%w: gateway %q is registered with another node key than keys/gateway.key", ErrIdentityMismatch, id.Gateway)
	} else if !bytes.Equal(gk.Seal.Bytes(), id.SealKey.PublicKey().Bytes()) {
		return nil, fmt.Errorf("%w: gateway %q is registered with another sealing key than keys/seal.key", ErrIdentityMismatch, id.Gateway)
	}
	return n, nil
}

func (n *Node) registerSelf(ctx context.Context) error {
	_, err := n.Append(ctx, Entry{Type: TypeGatewayRegistered, Version: CurrentVersion, Body: &GatewayRegistered{
		ID: n.id.Gateway, PublicKey: EncodeNodeKey(n.signer.Public()),
		SealKey: EncodeSealKey(n.id.SealKey.PublicKey()), BaseURL: n.id.BaseURL,
	}})
	if err != nil {
		return fmt.Errorf("register gateway %q: %w", n.id.Gateway, err)
	}
	return nil
}

// Vouching is implemented by stores that sign their own checkpoints
// (gormlog): a checkpoint covers what it signs, and a node trusts what a
// checkpoint covers (OpenNode checks only the entries beyond it). OpenNode
// hands such a store its check, and the store signs no checkpoint over
// entries the check has not passed: an entry written to the database
// without the node key (or by another process) is checked before it is
// signed, and never signed if it fails.
type Vouching interface {
	// Vouch sets the check: check(ctx, size) returns nil once every
	// entry below size passed the node's checks (leaf, envelope,
	// signature and authorship as of its index, opening where the node
	// can open it), and otherwise a *VerifyError naming the first entry
	// that did not (or another error if it could not check).
	Vouch(check func(ctx context.Context, size uint64) error)
}

// checkTo brings the authority up to size (Vouching's check).
func (n *Node) checkTo(ctx context.Context, size uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.advance(ctx, size)
}

// Store returns the node's store.
func (n *Node) Store() Store { return n.store }

// Gateway returns the node's gateway ID.
func (n *Node) Gateway() string { return n.id.Gateway }

// Authority returns a snapshot of the registry as of the log's current
// size (as far as the node has read it).
func (n *Node) Authority() *Authority {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.auth.Clone()
}

// advance brings the authority up to index end. Entries the node has
// cached (appended or opened here) are applied as they are; entries below
// the trusted size (covered by the checkpoint the store proved at open)
// are applied from their headers; every other entry is checked in full
// (leaf, envelope, signature and authorship as of its index, opening and
// subject where this gateway can open it) and cached. Called with n.mu
// held.
func (n *Node) advance(ctx context.Context, end uint64) error {
	for n.auth.next < end {
		idx := n.auth.next
		c, ok := n.cache.get(idx)
		if !ok {
			c, ok = n.adoptLandedLocked(idx)
		}
		if ok {
			if err := n.auth.Apply(idx, c.header, c.statement); err != nil {
				return err
			}
			continue
		}
		// Read the entries up to the next one cached (appended here).
		hi := idx + 1
		for hi < end && hi < idx+readBatch {
			if _, ok := n.cache.get(hi); ok {
				break
			}
			hi++
		}
		leaves, err := n.store.Entries(ctx, idx, hi)
		if err != nil {
			return err
		}
		if len(leaves) != int(hi-idx) {
			return fmt.Errorf("ledger: store returned %d leaves for [%d,%d)", len(leaves), idx, hi)
		}
		var envs []Envelope
		for i := range leaves {
			at := idx + uint64(i)
			if c, ok := n.adoptPendingLocked(at, leaves[i]); ok {
				// Being appended here (its appender has not seen its
				// index yet): the node built and checked it.
				if err := n.auth.Apply(at, c.header, c.statement); err != nil {
					return err
				}
				continue
			}
			if envs == nil {
				if envs, err = n.store.Envelopes(ctx, idx, hi); err != nil {
					return err
				}
				if len(envs) != int(hi-idx) {
					return fmt.Errorf("ledger: store returned %d envelopes for [%d,%d)", len(envs), idx, hi)
				}
			}
			if err := n.checkLocked(at, leaves[i], envs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// adoptPendingLocked caches the entry at idx if its leaf is that of an
// entry this node is appending (its appender has not yet seen the
// index): the leaf's seal is the hash of the header the node signed, so
// the entry at idx is the one the node built. Called with n.mu held.
func (n *Node) adoptPendingLocked(idx uint64, leaf []byte) (cachedEntry, bool) {
	if c, ok := n.adoptLandedLocked(idx); ok {
		return c, true
	}
	n.pmu.Lock()
	defer n.pmu.Unlock()
	if len(n.pending) == 0 {
		return cachedEntry{}, false
	}
	l, err := DecodeLeaf(leaf)
	if err != nil {
		return cachedEntry{}, false
	}
	c, ok := n.pending[l.Seal]
	if !ok || l.Type != c.header.Type {
		return cachedEntry{}, false
	}
	c.leafTime, c.timed = l.Time, true
	n.cache.put(idx, c)
	return c, true
}

// adoptLandedLocked caches the entry at idx if the store reported it as
// one this node is appending (observeAppends). Called with n.mu held.
func (n *Node) adoptLandedLocked(idx uint64) (cachedEntry, bool) {
	n.pmu.Lock()
	defer n.pmu.Unlock()
	le, ok := n.landed[idx]
	if !ok {
		return cachedEntry{}, false
	}
	delete(n.landed, idx)
	n.cache.put(idx, le.entry)
	return le.entry, true
}

// observeAppends is the node's AppendObserver: the leaves the store
// appended, before their appends return. Those of entries this node is
// appending land, with their leaf's time, for readers to take.
func (n *Node) observeAppends(first uint64, leaves [][]byte) {
	n.pmu.Lock()
	defer n.pmu.Unlock()
	if len(n.pending) == 0 {
		return
	}
	for i, b := range leaves {
		l, err := DecodeLeaf(b)
		if err != nil {
			continue
		}
		c, ok := n.pending[l.Seal]
		if !ok || l.Type != c.header.Type {
			continue
		}
		c.leafTime, c.timed = l.Time, true
		n.landed[first+uint64(i)] = landedEntry{seal: l.Seal, entry: c}
	}
}

// checkLocked checks the entry at idx = n.auth.next and applies it.
func (n *Node) checkLocked(idx uint64, leaf []byte, env Envelope) error {
	h, err := DecodeHeader(env.Header)
	if err != nil {
		return verifyError(idx, err)
	}
	if idx < n.trusted {
		// The checkpoint covers the leaf, not the envelope: an envelope
		// swapped under a trusted leaf must not reach the registry.
		l, err := DecodeLeaf(leaf)
		if err != nil {
			return verifyError(idx, err)
		}
		if Seal(env.Header) != l.Seal || l.Type != h.Type {
			return verifyError(idx, fmt.Errorf("%w: %s", ErrSealMismatch, l.Type))
		}
		var st *Statement
		if len(env.Clear) > 0 {
			s, err := clearStatement(env.Clear, h)
			if err != nil {
				return verifyError(idx, err)
			}
			st = &s
		}
		return n.auth.Apply(idx, h, st)
	}
	l, err := DecodeLeaf(leaf)
	if err != nil {
		return verifyError(idx, err)
	}
	if err := CheckLeaf(l, h); err != nil {
		return verifyError(idx, err)
	}
	if _, err := CheckEnvelope(env); err != nil {
		return verifyError(idx, err)
	}
	o, st, err := n.openEnvelope(idx, h, env)
	if err != nil {
		return err
	}
	if err := n.auth.Verify(idx, h, st); err != nil {
		return err
	}
	if st != nil {
		e, err := n.domain(idx, h, *st, o.Subject)
		if err != nil {
			return err
		}
		e.Attestations = o.Attestations
		n.cache.put(idx, cachedEntry{entry: e, opening: *o, header: h, statement: registryStatement(h, st), leafTime: l.Time, timed: true})
	}
	return n.auth.Apply(idx, h, st)
}

// openEnvelope opens env (a clear opening, or the sealed one with this
// gateway's key) and checks it against h. Both results are nil when this
// gateway is not a recipient.
func (n *Node) openEnvelope(idx uint64, h Header, env Envelope) (*Opening, *Statement, error) {
	var o Opening
	var err error
	switch {
	case len(env.Clear) > 0:
		o, err = DecodeOpening(env.Clear)
	case n.id.SealKey == nil:
		return nil, nil, nil
	default:
		o, err = openSealed(env.Sealed, n.id.SealKey, n.selfKEK)
		if errors.Is(err, ErrNotRecipient) {
			if h.Author == n.id.Gateway {
				// A gateway seals every entry it authors to itself
				// (checkAppend, routedKeys): one of its own that does not
				// open was altered (AES-GCM cannot tell an altered slot
				// from another recipient's), not sealed to others.
				return nil, nil, verifyError(idx, fmt.Errorf("%w: an entry this gateway authored does not open with its sealing key: %w", ErrMalformed, err))
			}
			return nil, nil, nil
		}
	}
	if err != nil {
		return nil, nil, verifyError(idx, err)
	}
	st, err := CheckOpening(o, h)
	if err != nil {
		return nil, nil, verifyError(idx, err)
	}
	return &o, &st, nil
}

// domain returns the domain view of an opened entry (without its time).
func (n *Node) domain(idx uint64, h Header, st Statement, subject string) (Entry, error) {
	if err := n.checkSubject(st, subject); err != nil {
		return Entry{}, verifyError(idx, err)
	}
	org, body, err := fromV2(st, subject)
	if err != nil {
		return Entry{}, verifyError(idx, err)
	}
	return Entry{Type: h.Type, Version: CurrentVersion, Org: org, Author: h.Author, Body: body, Commitment: h.Commitment}, nil
}

func registryStatement(h Header, st *Statement) *Statement {
	if st == nil || !clearType(h.Type) {
		return nil
	}
	return st
}

func clearStatement(clear []byte, h Header) (Statement, error) {
	o, err := DecodeOpening(clear)
	if err != nil {
		return Statement{}, err
	}
	return CheckOpening(o, h)
}

// readBatch bounds how many entries one store read returns.
const readBatch = 1024

// Append implements Appender: it translates e into a v2 statement
// authored by this gateway, signs it, seals its opening to the gateways
// that may read it (or, for registry entries, keeps it in clear) and
// appends it. Authorship is checked first: a gateway may only write for
// the orgs whose home it is. Append is Prepare then AppendPrepared
// without attestations.
func (n *Node) Append(ctx context.Context, e Entry) (uint64, error) {
	p, err := n.Prepare(e)
	if err != nil {
		return 0, err
	}
	return n.AppendPrepared(ctx, p, nil)
}

// Prepared is an entry translated and committed to but not yet signed
// or appended, so that attestations over its commitment can be collected
// first (a patient's passkey assertion whose challenge is the
// commitment).
type Prepared struct {
	entry     Entry
	subject   string
	statement []byte
	st        Statement
	// key identifies the entry's content (entryKey), when keyed: an
	// append of the same key whose outcome is unknown is submitted
	// again.
	key   Digest
	keyed bool
}

// Commitment is what attestations of the prepared entry sign.
func (p *Prepared) Commitment() Digest { return Commitment(p.statement) }

// Statement returns the prepared entry's canonical statement.
func (p *Prepared) Statement() []byte { return bytes.Clone(p.statement) }

// Prepare translates e into a v2 statement authored by this gateway. If
// an earlier append of the same entry (same type, org and body) has an
// unknown outcome, Prepare returns that append's statement (same salt,
// same commitment), so that the retry is the same entry.
func (n *Node) Prepare(e Entry) (*Prepared, error) {
	if n.signer == nil {
		return nil, ErrReadOnlyNode
	}
	if err := checkDomain(e); err != nil {
		return nil, err
	}
	// The retry key costs a v1 encoding and a hash: only a node that
	// keeps unsettled entries (a store that answers repeats) uses it.
	var key Digest
	var keyed bool
	if n.unsettled.enabled() {
		key, keyed = entryKey(e)
	}
	if u, ok := n.unsettled.get(key); ok && keyed {
		p := u.prepared
		p.entry = e
		return &p, nil
	}
	salt, err := NewSalt()
	if err != nil {
		return nil, err
	}
	v, err := toV2(e, salt, n.id.Pseudonyms, GatewayHome{Gateway: n.id.Gateway, BaseURL: n.id.BaseURL})
	if err != nil {
		return nil, err
	}
	st, statement, fast, err := n.signer.statement(v.org, salt, v.body)
	if err != nil {
		return nil, err
	}
	// The bytes signed are bytes every reader accepts (canonical,
	// checked), and what the node caches is what a reader decodes from
	// them (no value shared with the caller's entry). A body the fast
	// encoder wrote (a flat struct of plain strings that toV2 built
	// afresh) is what the fast decoder reads back from those bytes
	// (TestFastBodiesAgree, TestPreparedIsDecoded), and st was checked
	// as DecodeStatement checks it: decoding it again would rebuild st.
	// Any other body is strictly decoded, once. Signing, sealing and
	// caching reuse st.
	if !fast {
		if st, err = DecodeStatement(statement); err != nil {
			return nil, err
		}
	}
	return &Prepared{entry: e, subject: v.subject, statement: statement, st: st, key: key, keyed: keyed}, nil
}

// AppendPrepared signs the prepared entry with its attestations (their
// digest is in the signed header, the attestations in the opening) and
// appends it.
//
// If an earlier append of the same prepared statement with the same
// attestations has an unknown outcome (the store was unavailable after
// it may have submitted it, see OutcomeUnknown), AppendPrepared submits
// that append's envelope again, byte for byte, instead of sealing a new
// one: the store recognises it and answers with its index if it was
// committed meanwhile, and the two attempts can never both be.
//
// The statement was encoded and strictly decoded once, by Prepare; the
// header, the opening and the sealed opening are built from it without
// decoding it again (SealOpening's and EncodeOpening's checks hold by
// construction: the opening is the prepared statement, the header
// commits to it).
func (n *Node) AppendPrepared(ctx context.Context, p *Prepared, atts []Attestation) (uint64, error) {
	if p == nil || p.statement == nil {
		return 0, fmt.Errorf("%w: not a prepared entry", ErrMalformed)
	}
	st := p.st
	att, err := AttestationsDigest(atts)
	if err != nil {
		return 0, err
	}
	if u, ok := n.unsettled.get(p.key); ok && p.keyed && u.att == att && bytes.Equal(u.prepared.statement, p.statement) {
		if clearType(u.cached.header.Type) {
			n.appendMu.Lock()
			defer n.appendMu.Unlock()
		}
		// Authorship was checked when it was sealed, and the store
		// checks it again; checking it here once more would refuse the
		// retry of a registration that was committed meanwhile.
		return n.submit(ctx, p, u.att, u.env, u.cached)
	}
	h, header, err := n.signer.sign(st, p.statement, atts)
	if err != nil {
		return 0, err
	}
	o := Opening{Statement: p.statement, Attestations: atts, Subject: p.subject}
	// The opening's encoding: its statement is the prepared one, its
	// attestations were validated by sign (AttestationsDigest). A sealed
	// one is padded and sealed in place: room for both.
	minCap := 0
	if !clearType(h.Type) {
		minCap = sealedPlainCap(h.Type, len(p.statement)+64+len(p.subject))
	}
	plain, err := encodeOpening(o, minCap)
	if err != nil {
		return 0, err
	}
	env := Envelope{Header: header}
	registry := clearType(h.Type)
	if registry {
		if len(atts) > 0 && h.Type != TypeOrgKeysRotated {
			return 0, fmt.Errorf("%w: %s carries no attestations", ErrBadEnvelope, h.Type)
		}
		// Registry entries are checked against the authority and
		// appended one at a time, so that two registrations of one
		// org cannot both pass the check.
		n.appendMu.Lock()
		defer n.appendMu.Unlock()
		env.Clear = plain
	}
	var routed []string
	if !registry {
		if err := n.awaitGateways(ctx); err != nil {
			return 0, err
		}
		if n.id.Recipients != nil {
			// Outside n.mu: the policy may read the projections, which
			// read this node.
			if routed, err = n.id.Recipients(ctx, p.entry, n.Authority()); err != nil {
				return 0, fmt.Errorf("ledger: recipients of %s: %w", h.Type, err)
			}
		}
	}
	to, err := n.checkAppend(ctx, h, &st)
	if err != nil {
		return 0, err
	}
	if !registry {
		minSlots := 0
		if n.id.Recipients != nil {
			if to, err = n.routedKeys(ctx, routed); err != nil {
				return 0, err
			}
			minSlots = RecipientBucket(len(to))
		}
		// The node's own slot is the A256KW self slot (WithSelf): no
		// agreement for a key it holds.
		others, self := n.withoutSelf(to)
		var selfKEK []byte
		if self {
			selfKEK = n.selfKEK
		}
		keys, dummies, err := sealRecipients(others, self, minSlots)
		if err != nil {
			return 0, err
		}
		if env.Sealed, err = sealPlain(padOpening(h.Type, plain), h.Commitment, keys, selfKEK, dummies); err != nil {
			return 0, err
		}
	}
	// The subject is the pseudonym Prepare computed the statement's
	// patient reference from (toV2), so checkSubject holds by
	// construction.
	org, body, err := fromV2(st, p.subject)
	if err != nil {
		return 0, err
	}
	dom := Entry{Type: h.Type, Version: CurrentVersion, Org: org, Author: h.Author, Body: body, Commitment: h.Commitment}
	dom.Attestations = atts
	c := cachedEntry{entry: dom, opening: o, header: h, statement: registryStatement(h, &st)}
	return n.submit(ctx, p, att, env, c)
}

// submit appends env, the envelope of prepared entry p with attestations
// digest att, whose entry in the node's cache is c. An outcome-unknown
// failure keeps env for a retry (retry.go); a known outcome forgets it.
// Registry appends hold n.appendMu.
func (n *Node) submit(ctx context.Context, p *Prepared, att Digest, env Envelope, c cachedEntry) (uint64, error) {
	h, registry := c.header, clearType(c.header.Type)
	seal := Seal(env.Header)
	if p.keyed {
		// Durably kept before it leaves the node (retrykeep.go).
		if err := n.unsettled.keep(ctx, p.key, env, h.Type); err != nil {
			return 0, err
		}
	}
	n.pmu.Lock()
	n.pending[seal] = c
	n.pmu.Unlock()
	idx, err := n.store.AppendEnvelope(ctx, env)
	if p.keyed {
		n.unsettled.answered(ctx, unsettledEntry{key: p.key, prepared: *p, att: att, env: env, cached: c}, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pmu.Lock()
	delete(n.pending, seal)
	le, landed := n.landed[idx]
	if err != nil || !landed || le.seal != seal {
		// Failed (or its outcome is unknown): what landed of it is
		// checked from the store like any other entry.
		for i, x := range n.landed {
			if x.seal == seal {
				delete(n.landed, i)
			}
		}
		landed = false
	} else {
		delete(n.landed, idx)
	}
	n.pmu.Unlock()
	if err != nil {
		return idx, err
	}
	if landed {
		// With its leaf's time (the store reported the leaf): Read
		// serves it without reading the store.
		c = le.entry
	} else if prev, ok := n.cache.get(idx); ok && prev.timed && prev.header == h {
		c = prev // a reader took it from the store's leaves already
	}
	n.cache.put(idx, c)
	if registry {
		// Bring the authority up to the new entry, so that the next
		// registry append sees it.
		if err := n.advance(ctx, idx+1); err != nil {
			return idx, err
		}
		return idx, nil
	}
	if err := n.applyCachedLocked(); err != nil {
		return idx, err
	}
	return idx, nil
}

// applyCachedLocked advances the authority over the entries at its head
// that are cached (appended or opened here, so checked), without reading
// the store; it stops at the first that is not. A node's own appends thus
// keep the authority current: a later advance (a read, or the store's
// check before it signs a checkpoint) never re-checks them from the store
// after they left the cache. Called with n.mu held.
func (n *Node) applyCachedLocked() error {
	for {
		idx := n.auth.next
		c, ok := n.cache.get(idx)
		if !ok {
			c, ok = n.adoptLandedLocked(idx)
		}
		if !ok {
			return nil
		}
		if err := n.auth.Apply(idx, c.header, c.statement); err != nil {
			return err
		}
	}
}

// checkDomain checks what the translation to a v2 statement ignores: the
// entry's type is its body's and its version the domain view's.
func checkDomain(e Entry) error {
	if t, ok := typeOf(e.Body); !ok || t != e.Type {
		return fmt.Errorf("%w: type %q with body %T", ErrUnknownType, e.Type, e.Body)
	}
	if e.Version != CurrentVersion {
		return fmt.Errorf("%w: version %d", ErrMalformed, e.Version)
	}
	return nil
}

// withoutSelf returns the recipient keys to without this node's own
// sealing key, and whether it was among them.
func (n *Node) withoutSelf(to []*ecdh.PublicKey) ([]*ecdh.PublicKey, bool) {
	if n.id.SealKey == nil || n.selfKEK == nil {
		return to, false
	}
	own := n.id.SealKey.PublicKey()
	for i, k := range to {
		if k.Equal(own) {
			others := make([]*ecdh.PublicKey, 0, len(to)-1)
			return append(append(others, to[:i]...), to[i+1:]...), true
		}
	}
	return to, false
}

// checkAppend checks authorship of a new entry against the registry as of
// the log's head and returns the keys to seal it to.
func (n *Node) checkAppend(ctx context.Context, h Header, st *Statement) ([]*ecdh.PublicKey, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	err := n.auth.Check(h, st)
	if err != nil {
		// The registry may have moved on elsewhere (another gateway
		// registered the org): catch up once.
		size, serr := n.store.Size(ctx)
		if serr != nil {
			return nil, serr
		}
		if aerr := n.advance(ctx, size); aerr != nil {
			return nil, aerr
		}
		if err = n.auth.Check(h, st); err != nil {
			return nil, err
		}
	}
	to := n.auth.SealKeys()
	if len(to) == 0 {
		to = []*ecdh.PublicKey{n.id.SealKey.PublicKey()}
	}
	return to, nil
}

// ErrNoSealKey: an entry's recipient is not a gateway that registered a
// sealing key.
var ErrNoSealKey = errors.New("ledger: recipient has no registered sealing key")

// RecipientSlots is the bucket routed entries' recipient slots are padded
// to (WithMinRecipients): a sealed opening has a multiple of it, so the
// number of slots tells little of the number of parties.
const RecipientSlots = 8

// RecipientBucket is the number of slots a sealed opening with n
// recipients is padded to: n rounded up to a multiple of RecipientSlots,
// at most MaxRecipients.
func RecipientBucket(n int) int {
	return min(MaxRecipients, (max(n, 1)+RecipientSlots-1)/RecipientSlots*RecipientSlots)
}

// routedKeys returns the sealing keys of the routed gateways and the
// author's, once each, in gateway ID order. A gateway this node has not
// seen register makes it catch up with the store once.
func (n *Node) routedKeys(ctx context.Context, ids []string) ([]*ecdh.PublicKey, error) {
	set := map[string]bool{n.id.Gateway: true}
	for _, id := range ids {
		set[id] = true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	keys := make([]*ecdh.PublicKey, 0, len(set))
	caughtUp := false
	for _, id := range slices.Sorted(maps.Keys(set)) {
		gk, ok := n.auth.Gateway(id)
		if (!ok || gk.Seal == nil) && !caughtUp {
			caughtUp = true
			size, err := n.store.Size(ctx)
			if err != nil {
				return nil, err
			}
			if err := n.advance(ctx, size); err != nil {
				return nil, err
			}
			gk, ok = n.auth.Gateway(id)
		}
		if !ok || gk.Seal == nil {
			return nil, fmt.Errorf("%w: gateway %q", ErrNoSealKey, id)
		}
		keys = append(keys, gk.Seal)
	}
	return keys, nil
}

// Size implements Reader.
func (n *Node) Size(ctx context.Context) (uint64, error) { return n.store.Size(ctx) }

// Entries implements Reader: the public leaves.
func (n *Node) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	return n.store.Entries(ctx, start, end)
}

// Checkpoint implements Prover.
func (n *Node) Checkpoint(ctx context.Context) ([]byte, error) { return n.store.Checkpoint(ctx) }

// ReadHashes implements Prover.
func (n *Node) ReadHashes(indexes []int64) ([]tlog.Hash, error) { return n.store.ReadHashes(indexes) }

// Close closes the store.
func (n *Node) Close() error { return n.store.Close() }

// Read implements Source: the entries [start, end) in the domain view,
// each checked (leaf, header, signature, authorship as of its index,
// opening, subject) when it was first read or appended here. Entries
// sealed to other gateways only have a nil Body.
func (n *Node) Read(ctx context.Context, start, end uint64) ([]Entry, error) {
	if start > end {
		return nil, fmt.Errorf("%w: [%d,%d)", ErrInvalidRange, start, end)
	}
	out := make([]Entry, 0, end-start)
	for start < end {
		hi := min(end, start+readBatch)
		if batch, ok, err := n.readCached(ctx, start, hi); err != nil {
			return nil, err
		} else if ok {
			out = append(out, batch...)
			start = hi
			continue
		}
		leaves, err := n.store.Entries(ctx, start, hi)
		if err != nil {
			return nil, err
		}
		batch, err := n.readBatch(ctx, start, leaves)
		if err != nil {
			return nil, err
		}
		out = append(out, batch...)
		start = hi
	}
	return out, nil
}

// readCached returns the entries [start, end) from the cache if every one
// is cached with its leaf's time (appended or checked here), without
// reading the store; ok is false otherwise.
func (n *Node) readCached(ctx context.Context, start, end uint64) (_ []Entry, ok bool, _ error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := start; i < end; i++ {
		c, ok := n.cache.get(i)
		if !ok {
			c, ok = n.adoptLandedLocked(i)
		}
		if !ok || !c.timed {
			return nil, false, nil
		}
	}
	if err := n.advance(ctx, end); err != nil {
		return nil, false, err
	}
	out := make([]Entry, 0, end-start)
	for i := start; i < end; i++ {
		c, ok := n.cache.get(i)
		if !ok { // evicted by advance: read the store
			return nil, false, nil
		}
		e := c.entry
		e.Time = c.leafTime
		out = append(out, e)
	}
	return out, true, nil
}

func (n *Node) readBatch(ctx context.Context, start uint64, leaves [][]byte) ([]Entry, error) {
	end := start + uint64(len(leaves))
	out := make([]Entry, len(leaves))
	ls := make([]Leaf, len(leaves))
	var missing []int // positions in leaves not in the cache
	if err := func() error {
		n.mu.Lock()
		defer n.mu.Unlock()
		for i, b := range leaves {
			if _, ok := n.cache.get(start + uint64(i)); !ok {
				n.adoptPendingLocked(start+uint64(i), b)
			}
		}
		if err := n.advance(ctx, end); err != nil {
			return err
		}
		for i, b := range leaves {
			idx := start + uint64(i)
			l, err := DecodeLeaf(b)
			if err != nil {
				return verifyError(idx, err)
			}
			ls[i] = l
			if c, ok := n.cache.get(idx); ok {
				e := c.entry
				e.Time = l.Time
				out[i] = e
			} else {
				missing = append(missing, i)
			}
		}
		return nil
	}(); err != nil {
		return nil, err
	}
	if len(missing) == 0 {
		return out, nil
	}
	// Evicted, or not ours to open: open them again (the authority passed
	// them when they were first read or appended: advance above). The
	// opening is the costly part (a key agreement per recipient slot
	// tried), so it runs outside the node's lock, on every CPU: a
	// projection catching up with a long backlog neither holds appends
	// up nor opens one entry at a time.
	envs, err := n.store.Envelopes(ctx, start, end)
	if err != nil {
		return nil, err
	}
	opened := make([]reopened, len(missing))
	parallelFor(len(missing), func(j int) {
		i := missing[j]
		opened[j].entry, opened[j].cache, opened[j].err = n.reopen(start+uint64(i), ls[i], envs[i])
	})
	for _, r := range opened { // the first failure in index order
		if r.err != nil {
			return nil, r.err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for j, i := range missing {
		r := opened[j]
		if r.cache {
			n.cache.put(start+uint64(i), r.entry)
		}
		e := r.entry.entry
		e.Time = ls[i].Time
		out[i] = e
	}
	return out, nil
}

// reopened is reopen's result for one entry of a batch.
type reopened struct {
	entry cachedEntry
	cache bool // opened here: worth caching
	err   error
}

// minParallelOpens is the batch size below which readBatch opens entries
// on the calling goroutine.
const minParallelOpens = 16

// parallelFor runs f(0) … f(n-1) on up to GOMAXPROCS goroutines, or on
// the caller's for a small n, and returns when all have run.
func parallelFor(n int, f func(int)) {
	workers := min(runtime.GOMAXPROCS(0), n/minParallelOpens)
	if workers <= 1 {
		for j := range n {
			f(j)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				j := int(next.Add(1) - 1)
				if j >= n {
					return
				}
				f(j)
			}
		})
	}
	wg.Wait()
}

// reopen opens an entry the authority has passed. It reads only the
// node's immutable identity (no lock needed); cache reports that the
// result is an opened entry worth caching (not one sealed to others).
func (n *Node) reopen(idx uint64, l Leaf, env Envelope) (_ cachedEntry, cache bool, _ error) {
	h, err := DecodeHeader(env.Header)
	if err != nil {
		return cachedEntry{}, false, verifyError(idx, err)
	}
	if err := CheckLeaf(l, h); err != nil {
		return cachedEntry{}, false, verifyError(idx, err)
	}
	o, st, err := n.openEnvelope(idx, h, env)
	if err != nil {
		return cachedEntry{}, false, err
	}
	if st == nil {
		return cachedEntry{entry: Entry{Type: h.Type, Version: CurrentVersion, Org: h.Org, Author: h.Author}, header: h}, false, nil
	}
	e, err := n.domain(idx, h, *st, o.Subject)
	if err != nil {
		return cachedEntry{}, false, err
	}
	e.Attestations = o.Attestations
	return cachedEntry{entry: e, opening: *o, header: h, statement: registryStatement(h, st), leafTime: l.Time, timed: true}, true, nil
}

// ErrSubjectMismatch: an opening's subject is not the patient its
// statement's patient reference is of.
var ErrSubjectMismatch = errors.New("ledger: opening subject does not match the patient reference")

func (n *Node) checkSubject(st Statement, subject string) error {
	ref := patientRefOf(st.Body)
	if ref == "" {
		if subject != "" {
			return fmt.Errorf("%w: %s names no patient", ErrSubjectMismatch, st.Type)
		}
		return nil
	}
	k, err := n.id.Pseudonyms.RefKey(subject)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSubjectMismatch, err)
	}
	if !IsAbout(k, st.Salt, ref) {
		return ErrSubjectMismatch
	}
	return nil
}

// Opened is an entry as a party sees it: its leaf, header and opening,
// checked, with the entry in the domain view.
type Opened struct {
	Index   uint64
	Leaf    []byte
	Header  []byte
	Opening Opening
	Entry   Entry
}

// Open returns the entry at index with its opening, for serving a body to
// a party entitled to it (the caller decides who is). It returns
// ErrNotRecipient if this gateway cannot open it.
func (n *Node) Open(ctx context.Context, index uint64) (Opened, error) {
	es, err := n.Read(ctx, index, index+1)
	if err != nil {
		return Opened{}, err
	}
	if es[0].Body == nil {
		return Opened{}, ErrNotRecipient
	}
	leaves, err := n.store.Entries(ctx, index, index+1)
	if err != nil {
		return Opened{}, err
	}
	envs, err := n.store.Envelopes(ctx, index, index+1)
	if err != nil {
		return Opened{}, err
	}
	n.mu.Lock()
	c, ok := n.cache.get(index)
	n.mu.Unlock()
	o := c.opening
	if !ok {
		l, err := DecodeLeaf(leaves[0])
		if err != nil {
			return Opened{}, err
		}
		c, cache, err := n.reopen(index, l, envs[0])
		if err != nil {
			return Opened{}, err
		}
		if cache {
			n.mu.Lock()
			n.cache.put(index, c)
			n.mu.Unlock()
		}
		o = c.opening
	}
	return Opened{Index: index, Leaf: leaves[0], Header: envs[0].Header, Opening: o, Entry: es[0]}, nil
}

// entryCacheSize bounds the cache of opened entries (appended here or
// read): projections read each entry soon after it is appended, once per
// projection.
const entryCacheSize = 8192

type landedEntry struct {
	seal  Digest
	entry cachedEntry
}

type cachedEntry struct {
	entry     Entry // without its time (the leaf's)
	opening   Opening
	header    Header
	statement *Statement // registry entries only
	// leafTime is the time of the entry's leaf, when the node has seen
	// the leaf (checked against the header): Read serves the entry
	// without reading the store.
	leafTime time.Time
	timed    bool
}

// entryCache is a bounded map of index to opened entry, evicting the
// oldest insertion.
type entryCache struct {
	m    map[uint64]cachedEntry
	ring []uint64
	next int
	full bool
}

func (c *entryCache) init(n int) {
	c.m = make(map[uint64]cachedEntry, n)
	c.ring = make([]uint64, n)
}

func (c *entryCache) get(i uint64) (cachedEntry, bool) {
	e, ok := c.m[i]
	return e, ok
}

func (c *entryCache) put(i uint64, e cachedEntry) {
	if _, ok := c.m[i]; ok {
		c.m[i] = e
		return
	}
	if c.full {
		delete(c.m, c.ring[c.next])
	}
	c.ring[c.next] = i
	c.m[i] = e
	c.next++
	if c.next == len(c.ring) {
		c.next, c.full = 0, true
	}
}

// ClearEnvelope returns the envelope of a registry entry (gateway, org,
// issuer or circuit registration: the types that travel in clear) signed
// by s, for a gateway with home as its identity. It is for tools that
// submit registry entries without a Node (comet.Remote); authorship is
// checked where the entry is appended.
func ClearEnvelope(s *Signer, e Entry, home GatewayHome) (Envelope, error) {
	if err := checkDomain(e); err != nil {
		return Envelope{}, err
	}
	if !clearType(e.Type) {
		return Envelope{}, fmt.Errorf("%w: %s entries are sealed: append them through the gateway", ErrBadEnvelope, e.Type)
	}
	salt, err := NewSalt()
	if err != nil {
		return Envelope{}, err
	}
	v, err := toV2(e, salt, nil, home)
	if err != nil {
		return Envelope{}, err
	}
	statement, err := s.Statement(v.org, salt, v.body)
	if err != nil {
		return Envelope{}, err
	}
	h, _, err := s.Sign(statement, nil)
	if err != nil {
		return Envelope{}, err
	}
	header, err := EncodeHeader(h)
	if err != nil {
		return Envelope{}, err
	}
	clear, err := EncodeOpening(Opening{Statement: statement})
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{Header: header, Clear: clear}, nil
}

// CheckpointAt implements CheckpointHistory when the store does (else
// ErrNotFound).
func (n *Node) CheckpointAt(ctx context.Context, size uint64) ([]byte, error) {
	if h, ok := n.store.(CheckpointHistory); ok {
		return h.CheckpointAt(ctx, size)
	}
	return nil, fmt.Errorf("checkpoint of size %d: %w", size, ErrNotFound)
}

// WaitCheckpoint implements CheckpointWaiter: the store's, or a poll of
// its periodic checkpoints.
func (n *Node) WaitCheckpoint(ctx context.Context, size uint64) ([]byte, error) {
	if w, ok := n.store.(CheckpointWaiter); ok {
		return w.WaitCheckpoint(ctx, size)
	}
	t := time.NewTicker(receiptPoll)
	defer t.Stop()
	for {
		raw, err := n.store.Checkpoint(ctx)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if err == nil {
			c, err := ParseCheckpoint(raw)
			if err != nil {
				return nil, err
			}
			if c.Size >= size {
				return raw, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// Ready reports the store's readiness (stores that can refuse to sign,
// or lose their quorum, implement it).
func (n *Node) Ready(ctx context.Context) error {
	if r, ok := n.store.(interface{ Ready(context.Context) error }); ok {
		return r.Ready(ctx)
	}
	_, err := n.store.Checkpoint(ctx)
	return err
}

// registeredMeanwhile reports whether a refused self-registration (err)
// was refused because the log holds it already: a replica that was behind
// (a consortium node still catching up) registered again, and the log
// refused the second registration once it had the first.
func (n *Node) registeredMeanwhile(ctx context.Context, err error) bool {
	if !errors.Is(err, ErrAuthorshipRefused) {
		return false
	}
	size, serr := n.store.Size(ctx)
	if serr != nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.advance(ctx, size) != nil {
		return false
	}
	gk, ok := n.auth.Gateway(n.id.Gateway)
	return ok && gk.Seal != nil && gk.Public.Equal(n.signer.Public()) &&
		bytes.Equal(gk.Seal.Bytes(), n.id.SealKey.PublicKey().Bytes())
}

// awaitGateways makes sure, before an entry is sealed, that the node's
// registry holds every gateway of a store with a RegistrationWaiter:
// once they have all registered, it never waits again.
func (n *Node) awaitGateways(ctx context.Context) error {
	w, ok := n.store.(RegistrationWaiter)
	if !ok {
		return nil
	}
	n.mu.Lock()
	done := len(n.auth.Unregistered()) == 0
	n.mu.Unlock()
	if done {
		return nil
	}
	if err := w.WaitRegistered(ctx); err != nil {
		return err
	}
	size, err := n.store.Size(ctx)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.advance(ctx, size)
}
