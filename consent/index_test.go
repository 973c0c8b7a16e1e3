package consent_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/healthgw/healthgw/consent"
)

// indexed returns the grants a store using the index keys loads for req:
// those of req's patient that share a grantee key and a scope key with it,
// in their order.
func indexed(req consent.Request, grants []consent.Grant) []consent.Grant {
	gk, sk := req.RequestKeys()
	var out []consent.Grant
	for _, g := range grants {
		grantee, scopes := g.IndexKeys()
		if g.Patient != req.Patient || !slices.Contains(gk[:], grantee) {
			continue
		}
		if slices.ContainsFunc(scopes, func(s string) bool { return slices.Contains(sk[:], s) }) {
			out = append(out, g)
		}
	}
	return out
}

// checkIndexedDecision checks that deciding on the indexed grants gives the
// decision on all of them, on the scenario data describes.
func checkIndexedDecision(t *testing.T, data []byte) {
	g := &gen{b: data}
	req, policy := g.request(), g.policy()
	now := t0.Add(time.Duration(g.n(3)-1) * time.Hour)
	grants := make([]consent.Grant, g.n(12))
	for i := range grants {
		grants[i] = g.grant("g" + string(rune('a'+i)))
	}
	want := consent.Decide(req, grants, now, policy)
	sub := indexed(req, grants)
	if got := consent.Decide(req, sub, now, policy); got != want {
		t.Fatalf("request %+v at %v:\ndecision on the indexed grants %+v\non all grants %+v\nindexed %d of %d", req, now, got, want, len(sub), len(grants))
	}
}

// FuzzIndexedDecision checks that the index keys never lose a grant that
// decides.
func FuzzIndexedDecision(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("deny with an unknown category and resource type"))
	f.Fuzz(checkIndexedDecision)
}

// TestIndexedDecision runs FuzzIndexedDecision's check on many
// pseudo-random scenarios (fixed seed).
func TestIndexedDecision(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	rng := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 256)
	defer func() {
		if t.Failed() {
			t.Logf("scenario bytes (add to a FuzzIndexedDecision corpus to replay): %x", buf)
		}
	}()
	for range n {
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		checkIndexedDecision(t, buf)
	}
}

// TestIndexKeys pins the keys of typical grants and requests.
func TestIndexKeys(t *testing.T) {
	for _, tt := range []struct {
		name        string
		g           consent.Grant
		wantGrantee string
		wantScopes  []string
	}{
		{"any record", consent.Grant{Grantee: consent.Grantee{Org: "h"}, Effect: consent.Permit}, "o:h", []string{"*"}},
		{"records win over categories", consent.Grant{Grantee: consent.Grantee{Kind: "hospital"}, Effect: consent.Permit,
			RecordIDs: []string{"r1", "r2", "r1"}, Categories: []string{"lab"}}, "k:hospital", []string{"r:r1", "r:r2"}},
		{"deny of a category covers an unknown one", consent.Grant{Grantee: consent.Grantee{Org: "h"}, Effect: consent.Deny,
			Categories: []string{"lab"}}, "o:h", []string{"c:lab", "c?"}},
		{"resource types", consent.Grant{Grantee: consent.Grantee{Org: "h"}, Effect: consent.Permit,
			ResourceTypes: []string{"Observation"}}, "o:h", []string{"t:Observation"}},
		{"no grantee", consent.Grant{Effect: consent.Permit}, "-", []string{"*"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			grantee, scopes := tt.g.IndexKeys()
			if grantee != tt.wantGrantee || !slices.Equal(scopes, tt.wantScopes) {
				t.Errorf("IndexKeys() = %q, %q; want %q, %q", grantee, scopes, tt.wantGrantee, tt.wantScopes)
			}
		})
	}
	gk, sk := consent.Request{Requester: "h", RequesterKind: "hospital", RecordID: "r1", Category: "lab"}.RequestKeys()
	if want := [2]string{"o:h", "k:hospital"}; gk != want {
		t.Errorf("request grantee keys %q, want %q", gk, want)
	}
	if want := [4]string{"*", "r:r1", "c:lab", "t?"}; sk != want {
		t.Errorf("request scope keys %q, want %q", sk, want)
	}
}
