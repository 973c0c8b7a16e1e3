package access_test

import (
	"context"
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
			// As a missing record: not found, the not-found decision logged.
			if !errors.Is(err, access.ErrNotFound) || res.Content != nil || after != before+1 || res.Decision.Reason != consent.ReasonDenyNotFound {
				t.Errorf("read: %v (reason %q, content %q, %d entries); want not found, logged as not found", err, res.Decision.Reason, res.Content, after-before)
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
		if tt.permit != (err == nil) || logged != 1 {
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

// TestAccessEvent: one access event by ledger index, for a viewer who may
// see it; another patient's, an index without one and anyone but a
// patient or regulator get not found or forbidden.
func TestAccessEvent(t *testing.T) {
	w := newWorld(t, consent.Policy{})
	res := access.Result{Index: 7}
	events := []consent.AccessEvent{ // newest first
		{Index: 9, Patient: pseudonym("pat-2"), RecordID: notesID, Decision: consent.Permit},
		{Index: 7, Patient: pseudonym("pat-1"), RecordID: labID, Decision: consent.Deny},
		{Index: 3, Patient: pseudonym("pat-1"), RecordID: labID, Decision: consent.Permit},
	}
	store := &pagedEvents{queryStore: &queryStore{projection: w.proj, events: events}}
	q := access.NewQueries(access.QueriesConfig{Store: store, Pseud: fakePseud{}, Log: w.log, Sync: w.proj})
	pat1 := auth.Principal{Patient: "pat-1"}
	reg := auth.Principal{Org: "reg-x", Kind: auth.KindRegulator, Scopes: []auth.Scope{auth.ScopeAuditRead}}
	for _, v := range []auth.Principal{pat1, reg} {
		e, err := q.AccessEvent(t.Context(), v, res.Index)
		if err != nil || e.Index != res.Index || e.RecordID != labID || e.Decision != consent.Deny {
			t.Errorf("%+v: %+v %v", v, e, err)
		}
	}
	for _, tt := range []struct {
		v     auth.Principal
		index uint64
		want  error
	}{
		{auth.Principal{Patient: "pat-2"}, res.Index, consent.ErrNotFound},
		{pat1, res.Index + 1, consent.ErrNotFound},
		{pat1, 8, consent.ErrNotFound},
		{auth.Principal{Patient: "pat-1"}, 9, consent.ErrNotFound},
		{reg, 0, consent.ErrNotFound},
		{reg, ^uint64(0), consent.ErrNotFound},
		{auth.Principal{Org: "hosp-a", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeRecordsRead, auth.ScopeConsentsRead}}, res.Index, access.ErrForbidden},
	} {
		if _, err := q.AccessEvent(t.Context(), tt.v, tt.index); !errors.Is(err, tt.want) {
			t.Errorf("%+v at %d: %v, want %v", tt.v, tt.index, err, tt.want)
		}
	}
}

// pagedEvents pages the access events as the store does: newest first,
// below the cursor's index.
type pagedEvents struct{ *queryStore }

func (s *pagedEvents) page(events []consent.AccessEvent, p consent.Page) ([]consent.AccessEvent, string, error) {
	before, ok, err := p.Before()
	if err != nil {
		return nil, "", err
	}
	var out []consent.AccessEvent
	for _, e := range events {
		if !ok || e.Index < before {
			out = append(out, e)
		}
	}
	if len(out) > p.Size() {
		return out[:p.Size()], consent.EncodeCursor(out[p.Size()-1].Index), nil
	}
	return out, "", nil
}

func (s *pagedEvents) AccessLog(_ context.Context, patient string, p consent.Page) ([]consent.AccessEvent, string, error) {
	var mine []consent.AccessEvent
	for _, e := range s.events {
		if e.Patient == patient {
			mine = append(mine, e)
		}
	}
	return s.page(mine, p)
}

func (s *pagedEvents) AuditEvents(_ context.Context, _ consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error) {
	return s.page(s.events, p)
}
