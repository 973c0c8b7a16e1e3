package consent

// Index keys let a store load, for a request, only the grants that can
// decide it instead of every grant of the patient that names the
// requester. They follow Decide's matching rules: a grant is filed under
// one grantee key and under the values of one of its record restrictions
// (the most selective non-empty one: record IDs, else categories, else
// resource types; "*" for none); a request looks up its two grantee keys
// and four scope keys. Every grant that Decide would consider for the
// request (same patient, grantee naming the requester or its kind,
// covering the record) shares a grantee key and a scope key with it, so
// deciding on the grants found under the request's keys (in ledger order)
// gives exactly the decision on all of the patient's grants. Action,
// purpose and period are not indexed: Decide needs the grants that fail
// them for its deny reasons (revoked, expired, not yet valid, purpose).
//
// A deny grant also covers a request whose attribute is unknown (""), so
// a deny grant restricted on a dimension is filed under that dimension's
// "unknown" key too, which a request with the attribute empty looks up.

// Scope key prefixes.
const (
	keyAny           = "*"
	keyRecord        = "r:"
	keyCategory      = "c:"
	keyResourceType  = "t:"
	keyUnknownSuffix = "?"
	keyGranteeOrg    = "o:"
	keyGranteeKind   = "k:"
	// keyNoGrantee files a grant that names neither an organisation nor
	// a kind: it matches no request, and no request looks it up.
	keyNoGrantee = "-"
)

// IndexKeys returns the keys g is filed under: its grantee key and its
// scope keys (at least one, without duplicates). See RequestKeys.
func (g Grant) IndexKeys() (grantee string, scopes []string) {
	switch {
	case g.Grantee.Org != "":
		grantee = keyGranteeOrg + g.Grantee.Org
	case g.Grantee.Kind != "":
		grantee = keyGranteeKind + string(g.Grantee.Kind)
	default:
		grantee = keyNoGrantee
	}
	var (
		prefix string
		values []string
	)
	switch {
	case len(g.RecordIDs) > 0:
		prefix, values = keyRecord, g.RecordIDs
	case len(g.Categories) > 0:
		prefix, values = keyCategory, g.Categories
	case len(g.ResourceTypes) > 0:
		prefix, values = keyResourceType, g.ResourceTypes
	default:
		return grantee, []string{keyAny}
	}
	seen := make(map[string]bool, len(values)+1)
	for _, v := range values {
		k := prefix + v
		if !seen[k] {
			seen[k] = true
			scopes = append(scopes, k)
		}
	}
	if g.Effect == Deny {
		// covers: an unknown attribute is covered by a deny grant.
		scopes = append(scopes, prefix[:1]+keyUnknownSuffix)
	}
	return grantee, scopes
}

// RequestKeys returns the keys to look r up under: a grant can match r
// only if its grantee key is one of grantees and one of its scope keys is
// one of scopes (see Grant.IndexKeys). The counts are fixed, so that a
// store's query has one shape. A missing requester or kind gives a key no
// grant is filed under.
func (r Request) RequestKeys() (grantees [2]string, scopes [4]string) {
	grantees = [2]string{keyGranteeOrg + r.Requester, keyGranteeKind + string(r.RequesterKind)}
	scopes = [4]string{
		keyAny,
		scopeKey(keyRecord, r.RecordID),
		scopeKey(keyCategory, r.Category),
		scopeKey(keyResourceType, r.ResourceType),
	}
	return grantees, scopes
}

func scopeKey(prefix, v string) string {
	if v == "" {
		return prefix[:1] + keyUnknownSuffix
	}
	return prefix + v
}
