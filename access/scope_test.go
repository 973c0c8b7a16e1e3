package access_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
)

// TestReadScopes: a token restricted to a resource type
// (system/Observation.rs) reads and lists records of that type only, the
// holder's own included; the others are not found, as if missing, and no
// decision is logged for them. A token with no record scope reads nothing.
func TestReadScopes(t *testing.T) {
	obsOnly := func(org string) access.Caller {
		return access.Caller{Org: org, Kind: auth.KindHospital, Scopes: []auth.Scope{"system/Observation.rs"}}
	}
	condOnly := access.Caller{Org: "hosp-b", Kind: auth.KindHospital, Scopes: []auth.Scope{"system/Condition.rs"}}
	none := access.Caller{Org: "hosp-a", Kind: auth.KindHospital}
	w := newWorld(t, consent.Policy{})
	w.grant(t, "pat-1", consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead}, Purposes: []consent.Purpose{consent.PurposeTreatment}})
	for _, tt := range []struct {
		name   string
		caller access.Caller
		id     string
		permit bool
	}{
		{"Observation scope, Observation record, holder", obsOnly("hosp-a"), labID, true},
		{"Observation scope, Observation record, grantee", obsOnly("hosp-b"), labID, true},
		{"Observation scope, non-FHIR record, holder", obsOnly("hosp-a"), notesID, false},
		{"Observation scope, non-FHIR record, grantee", obsOnly("hosp-b"), notesID, false},
		{"Condition scope, Observation record", condOnly, labID, false},
		{"no scope, own record", none, labID, false},
		{"records.read, non-FHIR record", hospB, notesID, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(w.log.decoded(t, ledger.TypeAccessDecided))
			res, err := w.Read(t.Context(), read(tt.id, tt.caller, consent.PurposeTreatment))
			after := len(w.log.decoded(t, ledger.TypeAccessDecided))
			if tt.permit {
				if err != nil || !res.Decision.Permitted() || after != before+1 {
					t.Errorf("read: %v %+v, %d entries logged; want a logged permit", err, res.Decision, after-before)
				}
				return
			}
			if !errors.Is(err, access.ErrNotFound) || res.Logged || res.Content != nil || after != before {
				t.Errorf("read: %v (logged %v, content %q, %d entries); want not found, nothing logged", err, res.Logged, res.Content, after-before)
			}
		})
	}
	// A read of one resource type does not find a record of another.
	for _, tt := range []struct {
		rt     string
		permit bool
	}{{"Observation", true}, {"Condition", false}} {
		before := len(w.log.decoded(t, ledger.TypeAccessDecided))
		req := read(labID, hospB, consent.PurposeTreatment)
		req.ResourceType = tt.rt
		_, err := w.Read(t.Context(), req)
		logged := len(w.log.decoded(t, ledger.TypeAccessDecided)) - before
		if tt.permit != (err == nil) || logged != map[bool]int{true: 1, false: 0}[tt.permit] {
			t.Errorf("read of the Observation as %s: %v, %d entries logged", tt.rt, err, logged)
		}
	}
	list := func(c access.Caller) []string {
		t.Helper()
		recs, err := w.Readable(t.Context(), access.ListRequest{Caller: c, Patient: "pat-1", Purpose: consent.PurposeTreatment})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		return ids
	}
	for _, c := range []access.Caller{obsOnly("hosp-a"), obsOnly("hosp-b")} {
		if diff := cmp.Diff([]string{labID}, list(c)); diff != "" {
			t.Errorf("%s with system/Observation.rs lists (-want +got):\n%s", c.Org, diff)
		}
	}
	if got := list(condOnly); len(got) != 0 {
		t.Errorf("system/Condition.rs lists %v", got)
	}
	if got := list(none); len(got) != 0 {
		t.Errorf("no scope lists %v", got)
	}
}
