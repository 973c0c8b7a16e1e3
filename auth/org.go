package auth

import (
	"github.com/healthgw/healthgw/registry"
)

// The organisation types are the registry's (package registry is their
// home, with their store in registry/registrystore). auth keeps these
// aliases so that token code and its callers read as before.
type (
	// Kind is the kind of an organisation.
	Kind = registry.Kind
	// Scope is an OAuth scope the gateway grants.
	Scope = registry.Scope
	// Org is a registered organisation.
	Org = registry.Org
)

// Organisation kinds.
const (
	KindHospital  = registry.KindHospital
	KindVerifier  = registry.KindVerifier
	KindRegulator = registry.KindRegulator
)

// The scope vocabulary (see registry).
const (
	ScopeRecordsRead      = registry.ScopeRecordsRead
	ScopeRecordsWrite     = registry.ScopeRecordsWrite
	ScopeConsentsRead     = registry.ScopeConsentsRead
	ScopeAuditRead        = registry.ScopeAuditRead
	ScopeCredentialsIssue = registry.ScopeCredentialsIssue
	ScopeProofsVerify     = registry.ScopeProofsVerify
)

// Kinds, KindScopes and the errors are the registry's.
var (
	Kinds           = registry.Kinds
	KindScopes      = registry.KindScopes
	ErrInvalidOrg   = registry.ErrInvalidOrg
	ErrUnknownScope = registry.ErrUnknownScope
)

// orgIDPattern is what an organisation ID looks like.
var orgIDPattern = registry.IDPattern

// ParseScopes parses a space-separated scope list (registry.ParseScopes).
func ParseScopes(s string) ([]Scope, error) { return registry.ParseScopes(s) }

// AllScopes lists the whole scope vocabulary (registry.AllScopes).
func AllScopes() []Scope { return registry.AllScopes() }

// JoinScopes renders scopes as a space-separated list (registry.JoinScopes).
func JoinScopes(scopes []Scope) string { return registry.JoinScopes(scopes) }

// CheckOrgJWKS is the gateway's registry.KeyCheck: the JWK Set parses as
// an organisation's (ParseOrgJWKS).
func CheckOrgJWKS(jwks []byte) error {
	_, err := ParseOrgJWKS(jwks)
	return err
}

// ValidateOrg checks o completely: its fields and its key set.
func ValidateOrg(o Org) error { return o.Validate(CheckOrgJWKS) }
