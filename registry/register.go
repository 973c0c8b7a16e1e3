package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/ledger"
)

// Submitter is the Org of the entries Register appends: registrations are
// the gateway operator's.
const Submitter = "gateway"

// Appender appends ledger entries (ledger.Log implements it).
type Appender interface {
	Append(ctx context.Context, e ledger.Entry) (uint64, error)
}

// Syncer brings projections up to a log size (*ledger.Follower
// implements it).
type Syncer interface {
	Sync(ctx context.Context, size uint64) error
}

// ErrExists is wrapped by Register's error when the org ID is already
// registered: an org is registered once, by its home gateway; its keys
// are rotated with Rotate.
var ErrExists = errors.New("registry: organisation already registered (rotate its keys instead)")

// ErrNotSynced is wrapped by Register's error when the entry was appended
// (the registration is durable) but the projection could not apply it yet.
var ErrNotSynced = errors.New("registry: registered, projection not yet updated")

// Registration is an organisation with the ledger entry that registered
// it.
type Registration struct {
	Org   Org
	Index uint64
	// KeysIndex is the index of the entry that set the org's current
	// keys: Index, or that of its last org.keys_rotated.
	KeysIndex uint64
	Time      time.Time
}

// Body is the org.registered entry body of o.
func Body(o Org) *ledger.OrgRegistered {
	scopes := make([]string, len(o.Scopes))
	for i, s := range o.Scopes {
		scopes[i] = string(s)
	}
	return &ledger.OrgRegistered{ID: o.ID, Name: o.Name, Kind: string(o.Kind), Scopes: scopes, JWKS: o.JWKS, JWKSURL: o.JWKSURL}
}

// FromBody is the organisation an org.registered entry body names.
func FromBody(b *ledger.OrgRegistered) Org {
	scopes := make([]Scope, len(b.Scopes))
	for i, s := range b.Scopes {
		scopes[i] = Scope(s)
	}
	return Org{ID: b.ID, Name: b.Name, Kind: Kind(b.Kind), Scopes: scopes, JWKS: b.JWKS, JWKSURL: b.JWKSURL}
}

// Normalize fills defaults and puts o in its canonical form: no scopes
// means every scope of its kind; scopes are deduplicated and ordered as
// in the vocabulary; an inline JWKS is compacted.
func Normalize(o Org) Org {
	if len(o.Scopes) == 0 {
		o.Scopes = KindScopes[o.Kind]
	}
	var scopes []Scope
	for _, s := range AllScopes() {
		if slices.Contains(o.Scopes, s) {
			scopes = append(scopes, s)
		}
	}
	for _, s := range o.Scopes {
		if !s.Valid() && !slices.Contains(scopes, s) {
			scopes = append(scopes, s) // kept so that Validate names it
		}
	}
	o.Scopes = scopes
	var buf bytes.Buffer
	if o.JWKS != "" && json.Compact(&buf, []byte(o.JWKS)) == nil {
		o.JWKS = buf.String()
	}
	return o
}

// Register validates o (after Normalize), appends an org.registered entry
// and waits until sync has applied it, so that the very next lookup sees
// it. It returns the entry's index. A registration of an existing ID is
// refused by the ledger (ErrExists): keys change with Rotate. An invalid organisation is refused before anything is
// appended (the error wraps ErrInvalidOrg); keys checks its inline JWK
// Set (auth.CheckOrgJWKS). If the entry was
// appended but the projection could not catch up, the index is returned
// with an error wrapping ErrNotSynced: the registration is durable and the
// projection applies it when it next follows the log.
func Register(ctx context.Context, app Appender, sync Syncer, keys KeyCheck, o Org) (uint64, error) {
	o = Normalize(o)
	if err := o.Validate(keys); err != nil {
		return 0, err
	}
	e, err := ledger.NewEntry(Submitter, Body(o))
	if err != nil {
		return 0, fmt.Errorf("register %s: %w", o.ID, err)
	}
	idx, err := app.Append(ctx, e)
	if errors.Is(err, ledger.ErrOrgRegistered) {
		return 0, fmt.Errorf("register %s: %w: %w", o.ID, ErrExists, err)
	}
	if err != nil {
		return 0, fmt.Errorf("register %s: append: %w", o.ID, err)
	}
	if err := sync.Sync(ctx, idx+1); err != nil {
		return idx, fmt.Errorf("%w: %s at index %d: %w", ErrNotSynced, o.ID, idx, err)
	}
	return idx, nil
}

// ErrWrongKey is wrapped by Rotate's error when the signing key given is
// not one of the org's current signing keys.
var ErrWrongKey = errors.New("registry: the key is not one of the organisation's current signing keys")

// Rotate replaces the public keys of the registered org current (an
// inline JWK Set or a JWKS URL, exactly one) with an org.keys_rotated
// entry, which only the org's home gateway may write and which the org
// signs with key, a private signing key of its current (inline) key set:
// the entry carries a JWS over the new keys and current.KeysIndex
// (ledger.SignRotation), checked by every node. A key that does not
// verify against the current keys is refused before anything is appended
// (ErrWrongKey). It waits until sync has applied the entry. The new keys
// are checked as Register checks them.
func Rotate(ctx context.Context, app Appender, sync Syncer, keys KeyCheck, current Registration, key jwk.Key, jwks, jwksURL string) (uint64, error) {
	o := current.Org
	o.JWKS, o.JWKSURL = jwks, jwksURL
	o = Normalize(o)
	if (o.JWKS == "") == (o.JWKSURL == "") {
		return 0, fmt.Errorf("%w: give exactly one of a JWK Set and a JWKS URL", ErrInvalidOrg)
	}
	if err := o.Validate(keys); err != nil {
		return 0, err
	}
	if key == nil {
		return 0, fmt.Errorf("rotate %s: the organisation's current private signing key is required", o.ID)
	}
	if current.Org.JWKS == "" {
		return 0, fmt.Errorf("rotate %s: its current keys are published at a URL, not in the ledger; a rotation must be signed by a key the ledger holds", o.ID)
	}
	b := &ledger.OrgKeysRotated{Org: o.ID, JWKS: o.JWKS, JWKSURL: o.JWKSURL, Previous: current.KeysIndex}
	if err := ledger.SignRotation(b, key); err != nil {
		return 0, fmt.Errorf("rotate %s: %w", o.ID, err)
	}
	if err := ledger.VerifyRotation(b, current.Org.JWKS); err != nil {
		return 0, fmt.Errorf("rotate %s: %w: %w", o.ID, ErrWrongKey, err)
	}
	e, err := ledger.NewEntry(Submitter, b)
	if err != nil {
		return 0, fmt.Errorf("rotate %s: %w", o.ID, err)
	}
	idx, err := app.Append(ctx, e)
	if err != nil {
		return 0, fmt.Errorf("rotate %s: append: %w", o.ID, err)
	}
	if err := sync.Sync(ctx, idx+1); err != nil {
		return idx, fmt.Errorf("%w: %s at index %d: %w", ErrNotSynced, o.ID, idx, err)
	}
	return idx, nil
}
