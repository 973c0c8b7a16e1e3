package ledger

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Authority is the registry as of one index of the log, as far as
// authorship needs it: the registered gateways (node and sealing keys),
// each org's home gateway, and the issuers' key IDs. It is derived from
// headers and the clear openings of registry entries only, so that every
// gateway of a consortium derives the same one whatever it can open.
//
// The rules (docs/design/ledger-privacy.md, "Authorship"):
//   - every entry is signed by a registered gateway's node key;
//   - a gateway registers itself (gateway.registered, self-signed): in a
//     consortium only the genesis gateways, with their genesis keys; in an
//     embedded log only one, the first;
//   - an org is registered once, by the gateway that becomes its home;
//     only that gateway may author entries for the org (org.keys_rotated,
//     records, access decisions, issuers, proofs);
//   - an org.keys_rotated is also signed by the org: a JWS by a key of
//     the org's current inline key set over the new keys and the index of
//     the entry that set the current ones (VerifyRotation), so that its
//     home gateway cannot change an org's keys alone, nor replay an old
//     rotation;
//   - an issuer's key ID is the one its key dictates, and is never
//     registered twice;
//   - consents (org "patient") and the gateway's own entries (org
//     "gateway") are authored by any registered gateway.
type Authority struct {
	next     uint64
	genesis  bool
	gateways map[string]GatewayKeys
	homes    map[string]string
	orgKeys  map[string]OrgKeys
	issuers  map[string]string // key ID -> issuer org
	// sealKeys are the gateways' sealing keys in gateway ID order,
	// computed whenever gateways changes (every append seals to them);
	// never changed in place, so clones share it.
	sealKeys []*ecdh.PublicKey
}

// OrgKeys are an org's current public keys as the ledger holds them.
type OrgKeys struct {
	JWKS    string // inline JWK Set, or
	JWKSURL string
	Index   uint64 // of the entry that set them
}

// GatewayKeys are a registered gateway's keys.
type GatewayKeys struct {
	Public  ed25519.PublicKey
	Seal    *ecdh.PublicKey
	BaseURL string
	Index   uint64 // of its gateway.registered
}

// ErrAuthorshipRefused: an entry's author may not write it (see
// Authority). errors.Is also matches ErrAuthorship.
var ErrAuthorshipRefused = fmt.Errorf("%w: refused by the registry", ErrAuthorship)

// NewAuthority returns the authority of an empty log. genesis, when not
// nil, fixes the gateways of the log (a consortium's): they may author
// entries from index 0, and each registers its sealing key and base URL
// once with gateway.registered (unless genesis gave them). Without a
// genesis, the gateway that writes the first gateway.registered is the
// log's only gateway.
func NewAuthority(genesis map[string]GatewayKeys) *Authority {
	a := &Authority{
		genesis:  genesis != nil,
		gateways: maps.Clone(genesis),
		homes:    map[string]string{},
		orgKeys:  map[string]OrgKeys{},
		issuers:  map[string]string{},
	}
	if a.gateways == nil {
		a.gateways = map[string]GatewayKeys{}
	}
	a.sealKeys = sealKeysOf(a.gateways)
	return a
}

// Clone returns a copy.
func (a *Authority) Clone() *Authority {
	return &Authority{
		next: a.next, genesis: a.genesis, gateways: maps.Clone(a.gateways),
		homes: maps.Clone(a.homes), orgKeys: maps.Clone(a.orgKeys), issuers: maps.Clone(a.issuers),
		sealKeys: a.sealKeys,
	}
}

// Next is the index of the first entry not yet applied.
func (a *Authority) Next() uint64 { return a.next }

// Gateway returns a registered gateway's keys.
func (a *Authority) Gateway(id string) (GatewayKeys, bool) {
	g, ok := a.gateways[id]
	return g, ok
}

// Gateways returns the registered gateway IDs, sorted.
func (a *Authority) Gateways() []string { return slices.Sorted(maps.Keys(a.gateways)) }

// Unregistered returns the gateways of the genesis that have not yet
// registered their sealing key (gateway.registered), sorted: entries
// cannot be sealed to them.
func (a *Authority) Unregistered() []string {
	var out []string
	for _, id := range a.Gateways() {
		if a.gateways[id].Seal == nil {
			out = append(out, id)
		}
	}
	return out
}

// Home returns an org's home gateway.
func (a *Authority) Home(org string) (string, bool) {
	g, ok := a.homes[org]
	return g, ok
}

// OrgKeys returns an org's current keys.
func (a *Authority) OrgKeys(org string) (OrgKeys, bool) {
	k, ok := a.orgKeys[org]
	return k, ok
}

// SealKeys returns every registered gateway's sealing key, in gateway ID
// order.
func (a *Authority) SealKeys() []*ecdh.PublicKey { return slices.Clone(a.sealKeys) }

// sealKeysOf returns the sealing keys of gateways in gateway ID order
// (nil if none).
func sealKeysOf(gateways map[string]GatewayKeys) []*ecdh.PublicKey {
	var keys []*ecdh.PublicKey
	for _, id := range slices.Sorted(maps.Keys(gateways)) {
		if k := gateways[id].Seal; k != nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// ErrOrgRegistered: an org.registered for an org ID that is already
// registered (an org is registered once; its keys are rotated with
// org.keys_rotated). errors.Is also matches ErrAuthorshipRefused.
var ErrOrgRegistered = fmt.Errorf("%w: org already registered", ErrAuthorshipRefused)

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrAuthorshipRefused, fmt.Sprintf(format, args...))
}

// Check checks that a new entry with header h (and, for registry
// entries, statement st) may be appended now: the authorship rules, not
// the signature.
func (a *Authority) Check(h Header, st *Statement) error {
	if h.Type == TypeGatewayRegistered {
		return a.checkGateway(h, st)
	}
	if _, ok := a.gateways[h.Author]; !ok {
		return refused("%s by unregistered gateway %q", h.Type, h.Author)
	}
	switch h.Type {
	case TypeOrgRegistered:
		if home, ok := a.homes[h.Org]; ok {
			return fmt.Errorf("%w: org %q (home gateway %q): an org is registered once; its keys are rotated with %s by its home gateway", ErrOrgRegistered, h.Org, home, TypeOrgKeysRotated)
		}
		return nil
	case TypeOrgKeysRotated:
		if err := a.checkHome(h); err != nil {
			return err
		}
		return a.checkRotation(h, st)
	case TypeIssuerRegistered:
		if err := a.checkHome(h); err != nil {
			return err
		}
		if st == nil {
			return refused("%s without its body", h.Type)
		}
		b, ok := st.Body.(*IssuerRegistered)
		if !ok {
			return refused("%s with body %T", h.Type, st.Body)
		}
		if id, err := IssuerKeyID(b.PublicKey); err != nil || id != b.KeyID {
			return refused("issuer key ID %q is not the ID of its key", b.KeyID)
		}
		if org, ok := a.issuers[b.KeyID]; ok {
			return refused("issuer key ID %q is already registered (to %q)", b.KeyID, org)
		}
		return nil
	}
	switch h.Org {
	case OrgPatient, OrgGateway:
		return nil
	}
	return a.checkHome(h)
}

// checkRotation checks an org.keys_rotated's signature by the org's
// current keys and that it follows them (Previous).
func (a *Authority) checkRotation(h Header, st *Statement) error {
	if st == nil {
		return refused("%s without its body", h.Type)
	}
	b, ok := st.Body.(*OrgKeysRotated)
	if !ok {
		return refused("%s with body %T", h.Type, st.Body)
	}
	if b.Org != h.Org {
		return refused("%s for org %q under org %q", h.Type, b.Org, h.Org)
	}
	cur, ok := a.orgKeys[b.Org]
	if !ok {
		return refused("%s for unregistered org %q", h.Type, b.Org)
	}
	if b.Previous != cur.Index {
		return fmt.Errorf("%w: org %q: the rotation follows the keys of entry %d, the org's current keys are those of entry %d (a replayed or stale rotation)", ErrRotationSignature, b.Org, b.Previous, cur.Index)
	}
	if err := VerifyRotation(b, cur.JWKS); err != nil {
		return fmt.Errorf("org %q: %w", b.Org, err)
	}
	return nil
}

func (a *Authority) checkHome(h Header) error {
	home, ok := a.homes[h.Org]
	if !ok && !a.genesis && len(a.gateways) == 1 {
		// An embedded log has one gateway, the home of every org: the
		// gateway's API has checked the org is registered.
		return nil
	}
	if !ok {
		return refused("%s for unregistered org %q", h.Type, h.Org)
	}
	if home != h.Author {
		return refused("%s for org %q by gateway %q: only its home gateway %q writes for it", h.Type, h.Org, h.Author, home)
	}
	return nil
}

func (a *Authority) checkGateway(h Header, st *Statement) error {
	if st == nil {
		return refused("%s without its body", h.Type)
	}
	b, ok := st.Body.(*GatewayRegistered)
	if !ok {
		return refused("%s with body %T", h.Type, st.Body)
	}
	pub, err := ParseNodeKey(b.PublicKey)
	if err != nil {
		return refused("gateway %q: %v", b.ID, err)
	}
	if a.genesis {
		g, ok := a.gateways[b.ID]
		if !ok {
			return refused("gateway %q is not in the genesis", b.ID)
		}
		if !g.Public.Equal(pub) {
			return refused("gateway %q registers another key than its genesis key", b.ID)
		}
		if g.Seal != nil {
			return refused("gateway %q is already registered", b.ID)
		}
		return nil
	}
	if _, ok := a.gateways[b.ID]; ok {
		return refused("gateway %q is already registered", b.ID)
	}
	if len(a.gateways) > 0 {
		return refused("gateway %q: an embedded log has one gateway", b.ID)
	}
	return nil
}

// Verify checks the entry at index with header h (and its statement, if
// opened; registry entries always are) against the authority as of index:
// the authorship rules and the author's signature. It returns a
// *VerifyError naming index.
func (a *Authority) Verify(index uint64, h Header, st *Statement) error {
	if index != a.next {
		return verifyError(index, fmt.Errorf("ledger: authority at %d", a.next))
	}
	if clearType(h.Type) && st == nil {
		return verifyError(index, refused("%s must be readable by every gateway", h.Type))
	}
	if err := a.Check(h, st); err != nil {
		return verifyError(index, err)
	}
	var pub ed25519.PublicKey
	if h.Type == TypeGatewayRegistered {
		pub, _ = ParseNodeKey(st.Body.(*GatewayRegistered).PublicKey)
	} else {
		pub = a.gateways[h.Author].Public
	}
	if err := VerifyHeader(h, pub); err != nil {
		return verifyError(index, err)
	}
	return nil
}

// Apply records the entry at index (already verified, or trusted) and
// moves the authority past it.
func (a *Authority) Apply(index uint64, h Header, st *Statement) error {
	if index != a.next {
		return verifyError(index, fmt.Errorf("ledger: authority at %d", a.next))
	}
	a.next++
	if st == nil {
		return nil
	}
	switch b := st.Body.(type) {
	case *GatewayRegistered:
		pub, err := ParseNodeKey(b.PublicKey)
		if err != nil {
			return verifyError(index, err)
		}
		seal, err := ParseSealKey(b.SealKey)
		if err != nil {
			return verifyError(index, err)
		}
		if g, ok := a.gateways[b.ID]; !ok || g.Seal == nil {
			a.gateways[b.ID] = GatewayKeys{Public: pub, Seal: seal, BaseURL: b.BaseURL, Index: index}
			a.sealKeys = sealKeysOf(a.gateways)
		}
	case *OrgRegisteredV2:
		if _, ok := a.homes[b.ID]; !ok {
			a.homes[b.ID] = h.Author
			a.orgKeys[b.ID] = OrgKeys{JWKS: b.JWKS, JWKSURL: b.JWKSURL, Index: index}
		}
	case *OrgKeysRotated:
		if _, ok := a.orgKeys[b.Org]; ok {
			a.orgKeys[b.Org] = OrgKeys{JWKS: b.JWKS, JWKSURL: b.JWKSURL, Index: index}
		}
	case *IssuerRegistered:
		if _, ok := a.issuers[b.KeyID]; !ok {
			a.issuers[b.KeyID] = b.Issuer
		}
	}
	return nil
}

// IssuerKeyID returns the key ID of an issuer's public key as
// issuer.registered carries it (hex, compressed point): the first 8 bytes
// of the SHA-256 of the compressed key, in hex (credential.PublicKey.ID).
func IssuerKeyID(publicKeyHex string) (string, error) {
	b, err := hex.DecodeString(publicKeyHex)
	if err != nil || len(b) != 32 || hex.EncodeToString(b) != publicKeyHex {
		return "", errors.New("ledger: issuer public key is not 32 bytes of lowercase hex")
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8]), nil
}
