package registry

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/healthgw/healthgw/internal/truncate"
)

// Kind is the kind of an organisation.
type Kind string

// Organisation kinds.
const (
	KindHospital  Kind = "hospital"
	KindVerifier  Kind = "verifier"
	KindRegulator Kind = "regulator"
)

// Kinds lists every organisation kind.
var Kinds = []Kind{KindHospital, KindVerifier, KindRegulator}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return slices.Contains(Kinds, k) }

// Scope is an OAuth scope the gateway grants. The vocabulary is closed.
type Scope string

// The scope vocabulary (documented in docs/scopes.md).
const (
	// ScopeRecordsRead: read records (own, or others' under consent).
	ScopeRecordsRead Scope = "system/records.read"
	// ScopeRecordsWrite: store and crypto-shred records the org holds.
	ScopeRecordsWrite Scope = "system/records.write"
	// ScopeConsentsRead: list and read consent grants that name the org.
	ScopeConsentsRead Scope = "system/consents.read"
	// ScopeAuditRead: list access events across all patients (regulators).
	ScopeAuditRead Scope = "audit.read"
	// ScopeCredentialsIssue: issue zero-knowledge credentials.
	ScopeCredentialsIssue Scope = "credentials.issue"
	// ScopeProofsVerify: ask for challenges and verify proofs.
	ScopeProofsVerify Scope = "proofs.verify"
)

// KindScopes lists the scopes an organisation of each kind may hold. An org
// is registered with a subset; a token is granted a subset of that.
var KindScopes = map[Kind][]Scope{
	KindHospital:  {ScopeRecordsRead, ScopeRecordsWrite, ScopeConsentsRead, ScopeCredentialsIssue},
	KindVerifier:  {ScopeProofsVerify},
	KindRegulator: {ScopeAuditRead},
}

// Org is a registered organisation.
type Org struct {
	ID     string
	Name   string
	Kind   Kind
	Scopes []Scope
	// JWKS is an inline public JWK Set (JSON); JWKSURL a URL serving one.
	// Exactly one is set.
	JWKS    string
	JWKSURL string
}

// IDPattern is what an organisation ID looks like: 2-63 characters of
// a-z, 0-9 and '-', starting with a letter or digit.
var IDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// ErrInvalidOrg is wrapped by Org.Validate's errors.
var ErrInvalidOrg = errors.New("invalid organisation")

// KeyCheck checks an organisation's inline JWK Set: that it parses and
// holds only keys the gateway accepts. The registry does not parse keys
// itself; auth.CheckOrgJWKS is the gateway's check.
type KeyCheck func(jwks []byte) error

// Validate checks an organisation's fields, and its inline JWK Set with
// keys (which must not be nil).
func (o Org) Validate(keys KeyCheck) error {
	if keys == nil {
		return fmt.Errorf("%w: no key check to validate the JWK Set with", ErrInvalidOrg)
	}
	if !IDPattern.MatchString(o.ID) {
		return fmt.Errorf("%w: id must be 2-63 characters of a-z, 0-9 and '-'", ErrInvalidOrg)
	}
	if strings.TrimSpace(o.Name) == "" || len(o.Name) > 200 {
		return fmt.Errorf("%w: name must be 1-200 characters", ErrInvalidOrg)
	}
	if !o.Kind.Valid() {
		return fmt.Errorf("%w: kind must be one of hospital, verifier, regulator", ErrInvalidOrg)
	}
	for _, s := range o.Scopes {
		if !slices.Contains(KindScopes[o.Kind], s) {
			return fmt.Errorf("%w: scope %q is not allowed for kind %s", ErrInvalidOrg, s, o.Kind)
		}
	}
	if (o.JWKS == "") == (o.JWKSURL == "") {
		return fmt.Errorf("%w: exactly one of an inline JWKS and a JWKS URL is required", ErrInvalidOrg)
	}
	if o.JWKSURL != "" {
		u, err := url.Parse(o.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(o.JWKSURL) > 2048 {
			return fmt.Errorf("%w: JWKS URL must be an http(s) URL without credentials", ErrInvalidOrg)
		}
	}
	if o.JWKS != "" {
		if err := keys([]byte(o.JWKS)); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOrg, err)
		}
	}
	return nil
}

// HasScope reports whether the organisation may be granted s.
func (o Org) HasScope(s Scope) bool { return slices.Contains(o.Scopes, s) }

// ParseScopes parses a space-separated scope list (as in an OAuth scope
// parameter), rejecting scopes outside the vocabulary. Duplicates are
// dropped; the order is kept.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.Fields(s) {
		sc := Scope(f)
		if !sc.Valid() {
			return nil, fmt.Errorf("%w: %q", ErrUnknownScope, truncate.String(f, 64))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// ErrUnknownScope is returned for a scope outside the vocabulary.
var ErrUnknownScope = errors.New("unknown scope")

// AllScopes lists the whole scope vocabulary.
func AllScopes() []Scope {
	return []Scope{ScopeRecordsRead, ScopeRecordsWrite, ScopeConsentsRead, ScopeAuditRead, ScopeCredentialsIssue, ScopeProofsVerify}
}

// Valid reports whether s is in the vocabulary.
func (s Scope) Valid() bool { return slices.Contains(AllScopes(), s) }

// JoinScopes renders scopes as a space-separated list.
func JoinScopes(scopes []Scope) string {
	ss := make([]string, len(scopes))
	for i, s := range scopes {
		ss[i] = string(s)
	}
	return strings.Join(ss, " ")
}
