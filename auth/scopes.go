package auth

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/healthgw/healthgw/internal/truncate"
)

// SMART App Launch resource scopes (docs/scopes.md). Besides the
// gateway's own scope names (system/records.read, …), a token request may
// name SMART Backend Services scopes on FHIR resource types:
//
//	system/<ResourceType>.<permissions>   system/*.<permissions>
//
// with SMART v2 permissions (a non-empty ordered subset of c, r, u, d, s:
// "rs", "cruds", …) or SMART v1 ones (read, write, *). They map onto the
// gateway's scopes:
//
//   - system/*.rs (or .read, .r, .s) implies every read scope the
//     organisation's kind reads with: system/records.read and
//     system/consents.read for a hospital, audit.read for a regulator;
//   - system/*.c, .u, .d (or .write) implies system/records.write;
//   - system/Consent.rs implies system/consents.read and
//     system/AuditEvent.rs audit.read; writing them is not offered
//     (patients grant consent, the ledger writes audit events);
//   - system/<record type>.rs (Observation, Condition, … every type of
//     records.ResourceTypes) reads records of that type only, and .cud
//     writes them only: it needs system/records.read (resp. .write) to be
//     registered for the org but does not grant the unrestricted scope.
//
// A granted wildcard, Consent or AuditEvent scope is listed in the
// token's scope together with the gateway scopes it implied; a
// type-restricted one alone.
var smartScopePattern = regexp.MustCompile(`^system/(\*|[A-Z][A-Za-z]{1,63})\.([a-z*]{1,5})$`)

// SMARTScope is a parsed SMART resource scope.
type SMARTScope struct {
	// Resource is a FHIR resource type, or "*" for all.
	Resource string
	// Read covers SMART v2 r and s (v1 read); Write c, u and d (v1
	// write).
	Read, Write bool
}

// ParseSMARTScope parses a SMART resource scope (system/ only: this
// gateway has no patient or user context for organisations).
func ParseSMARTScope(s string) (SMARTScope, bool) {
	m := smartScopePattern.FindStringSubmatch(s)
	if m == nil {
		return SMARTScope{}, false
	}
	sc := SMARTScope{Resource: m[1]}
	switch perms := m[2]; perms {
	case "read":
		sc.Read = true
	case "write":
		sc.Write = true
	case "*":
		sc.Read, sc.Write = true, true
	default:
		// SMART v2: each of c, r, u, d, s at most once, in that order.
		last := -1
		for _, c := range perms {
			i := strings.IndexRune("cruds", c)
			if i <= last {
				return SMARTScope{}, false
			}
			last = i
			if c == 'r' || c == 's' {
				sc.Read = true
			} else {
				sc.Write = true
			}
		}
	}
	if (sc.Resource == "Consent" || sc.Resource == "AuditEvent") && sc.Write {
		return SMARTScope{}, false
	}
	return sc, true
}

// unrestricted reports whether the scope is the whole of the gateway
// scopes it requires (a wildcard, Consent, AuditEvent), which are then
// granted with it; a record type scope restricts them instead.
func (s SMARTScope) unrestricted() bool {
	return s.Resource == "*" || s.Resource == "Consent" || s.Resource == "AuditEvent"
}

// readScopes are the gateway scopes a wildcard SMART read scope may imply.
var readScopes = []Scope{ScopeRecordsRead, ScopeConsentsRead, ScopeAuditRead}

// requires returns the gateway scopes a SMART scope needs (at least one
// of them, for a wildcard read) and, for wildcards, implies.
func (s SMARTScope) requires(kind Kind) []Scope {
	var out []Scope
	switch s.Resource {
	case "Consent":
		out = append(out, ScopeConsentsRead)
	case "AuditEvent":
		out = append(out, ScopeAuditRead)
	case "*":
		if s.Read {
			for _, r := range readScopes {
				if slices.Contains(KindScopes[kind], r) {
					out = append(out, r)
				}
			}
		}
		if s.Write {
			out = append(out, ScopeRecordsWrite)
		}
	default:
		if s.Read {
			out = append(out, ScopeRecordsRead)
		}
		if s.Write {
			out = append(out, ScopeRecordsWrite)
		}
	}
	return out
}

// Covers reports whether the scope lets its holder read (write false) or
// write records of FHIR resource type rt.
func (s SMARTScope) Covers(rt string, write bool) bool {
	if s.Resource != "*" && s.Resource != rt {
		return false
	}
	if write {
		return s.Write
	}
	return s.Read
}

// parseRequestedScopes parses a token request's scope parameter: gateway
// scopes and SMART resource scopes; duplicates dropped, order kept.
func parseRequestedScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.Fields(s) {
		sc := Scope(f)
		if _, smart := ParseSMARTScope(f); !sc.Valid() && !smart {
			return nil, fmt.Errorf("%w: %q", ErrUnknownScope, truncate.String(f, 64))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// expandScopes checks requested scopes against what o may hold and
// returns the scopes to grant: the requested ones plus, for wildcard
// SMART scopes, the gateway scopes they imply. The second result names
// the first scope that cannot be granted.
func expandScopes(o Org, requested []Scope) ([]Scope, Scope) {
	var out []Scope
	add := func(s Scope) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range requested {
		sm, smart := ParseSMARTScope(string(s))
		if !smart {
			if !o.HasScope(s) {
				return nil, s
			}
			add(s)
			continue
		}
		var held []Scope
		for _, r := range sm.requires(o.Kind) {
			if o.HasScope(r) {
				held = append(held, r)
			}
		}
		// A wildcard read is granted with the read scopes the org holds;
		// everything else needs all it requires.
		if len(held) == 0 || (!(sm.Resource == "*" && sm.Read && !sm.Write) && len(held) != len(sm.requires(o.Kind))) {
			return nil, s
		}
		add(s)
		if sm.unrestricted() {
			for _, r := range held {
				add(r)
			}
		}
	}
	return out, ""
}

// scopeAllowedForKind reports whether an access token of an org of kind
// may carry s.
func scopeAllowedForKind(s Scope, kind Kind) bool {
	if slices.Contains(KindScopes[kind], s) {
		return true
	}
	sm, ok := ParseSMARTScope(string(s))
	if !ok {
		return false
	}
	req := sm.requires(kind)
	if len(req) == 0 {
		return false
	}
	for _, r := range req {
		if !slices.Contains(KindScopes[kind], r) {
			return false
		}
	}
	return true
}

// MayReadResource reports whether p may read records of FHIR resource type
// rt: with system/records.read, or a SMART scope covering rt. Consent
// still decides each read.
func (p Principal) MayReadResource(rt string) bool { return p.mayResource(rt, false) }

// MayWriteResource reports whether p may store records of FHIR resource
// type rt: with system/records.write, or a SMART scope covering rt.
func (p Principal) MayWriteResource(rt string) bool { return p.mayResource(rt, true) }

func (p Principal) mayResource(rt string, write bool) bool {
	if !p.IsOrg() {
		return false
	}
	base := ScopeRecordsRead
	if write {
		base = ScopeRecordsWrite
	}
	if p.HasScope(base) {
		return true
	}
	for _, s := range p.Scopes {
		// Unrestricted scopes count through the gateway scopes they were
		// granted with; only record type scopes are looked at here.
		if sm, ok := ParseSMARTScope(string(s)); ok && !sm.unrestricted() && sm.Covers(rt, write) {
			return true
		}
	}
	return false
}

// MayReadRecords reports whether p may read records of some resource
// type: with system/records.read, or a SMART scope on a record resource
// type (system/Observation.rs). MayReadResource says which.
func (p Principal) MayReadRecords() bool {
	if p.HasScope(ScopeRecordsRead) {
		return true
	}
	for _, s := range p.Scopes {
		if sm, ok := ParseSMARTScope(string(s)); ok && p.IsOrg() && !sm.unrestricted() && sm.Read {
			return true
		}
	}
	return false
}
