package api

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/fhir"
	"github.com/healthgw/healthgw/ledger"
)

var (
	tGrant  = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	grantB1 = consent.Grant{
		ID: "cns_0123456789abcdef0123456789abcdef", Patient: "ps_pat-1", Grantee: consent.Grantee{Org: "hosp-b"},
		Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead}, Categories: []string{"labs"},
		Purposes: []consent.Purpose{consent.PurposeTreatment}, NotBefore: tGrant, NotAfter: tGrant.AddDate(1, 0, 0),
		GrantedIndex: 4, GrantedAt: tGrant,
	}
	event1 = consent.AccessEvent{
		Index: 9, Time: tGrant, Requester: "hosp-b", RecordID: recID, Patient: "ps_pat-1", Category: "labs",
		Purpose: consent.PurposeTreatment, Decision: consent.Permit, Reason: consent.ReasonPermitGrant, GrantID: grantB1.ID, RequestID: "r1",
	}
)

// receiptOf is a receipt for the fake ledger's grant (entry 2).
func receiptOf(t *testing.T, l *fakeLedger) access.Receipt {
	t.Helper()
	cp, err := l.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r, err := ledger.MakeReceipt(t.Context(), l, entryGrant)
	if err != nil {
		t.Fatal(err)
	}
	root, err := ledger.TreeHash(t.Context(), l, r.TreeSize)
	if err != nil {
		t.Fatal(err)
	}
	if r.TreeSize != fakeLedgerSize || len(r.Header) == 0 || len(r.Opening) == 0 || string(r.Checkpoint) != string(cp) {
		t.Fatalf("receipt %+v", r)
	}
	return access.Receipt{Receipt: r, RootHash: root}
}

func TestPostConsent(t *testing.T) {
	ts := newTestServer(t)
	rc := receiptOf(t, ts.ledger)
	var gotPatient string
	var got consent.Grant
	ts.changes.grant = func(patient string, g consent.Grant) (consent.Grant, access.Receipt, error) {
		gotPatient, got = patient, g
		if len(g.Purposes) > 0 && g.Purposes[0] == "FUN" {
			// what consent.Grant.Validate answers, through the service's wrapping
			return consent.Grant{}, access.Receipt{}, &consent.ValidationError{Field: "purposes", Message: "item 0 must be one of TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH"}
		}
		return grantB1, rc, nil
	}
	nb := tGrant.Add(time.Hour)
	rec := ts.do("POST", "/v1/consents", "pat-1", map[string]any{
		"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"},
		"decision": "permit", "actions": []string{"read"}, "not_before": nb,
	})
	if rec.Code != http.StatusCreated || rec.Header().Get("Location") != "/v1/consents/"+grantB1.ID {
		t.Fatalf("grant: %d %s", rec.Code, rec.Body)
	}
	want := consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{"read"}, Categories: []string{"labs"}, Purposes: []consent.Purpose{"TREAT"}, NotBefore: nb}
	if diff := cmp.Diff(want, got); diff != "" || gotPatient != "ps_pat-1" {
		t.Errorf("grant asked of the service for %q (-want +got):\n%s", gotPatient, diff)
	}
	body := decodeBody[consentResponse](t, rec)
	if diff := cmp.Diff(viewGrant(grantB1, ts.nowUTC()), body.Consent); diff != "" {
		t.Errorf("consent view (-want +got):\n%s", diff)
	}
	if body.Receipt.Index != 2 || body.Receipt.TreeSize != 5 || body.Receipt.LeafHash != tlog.RecordHash(rc.Entry) || body.Receipt.RootHash != rc.RootHash {
		t.Errorf("receipt %+v", body.Receipt)
	}
	if err := tlog.CheckRecord(body.Receipt.Proof, 5, body.Receipt.RootHash, 2, body.Receipt.LeafHash); err != nil {
		t.Errorf("receipt proof: %v", err)
	}
	// The receipt opens the entry: the grant the patient signed for,
	// checked against the leaf in the signed tree.
	v, err := ledger.ParseVerifierKey(ts.ledger.vkey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := client.VerifyEntry(body.Receipt, v, "api.test/log")
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	if g, ok := st.Body.(*ledger.ConsentGrantedV2); !ok || g.ConsentID != grantB1.ID || g.Grantee.Org != "hosp-b" {
		t.Errorf("receipt statement %+v", st.Body)
	}

	// A bad purpose is a 400 whose message names the field, without any
	// package prefix.
	rec = ts.do("POST", "/v1/consents", "pat-1", map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "purposes": []string{"FUN"}})
	e := errorOf(t, rec)
	if rec.Code != http.StatusBadRequest || e.Message != "purposes: item 0 must be one of TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH." {
		t.Errorf("bad purpose: %d %q", rec.Code, e.Message)
	}
	if strings.Contains(e.Message, "consent:") || strings.Contains(e.Message, "invalid grant") {
		t.Errorf("bad purpose message carries the error chain: %q", e.Message)
	}
	for _, tt := range []struct {
		name, token string
		body        any
		status      int
	}{
		{"both org and kind", "pat-1", map[string]any{"grantee": map[string]string{"org": "hosp-b", "kind": "hospital"}}, 400},
		{"neither", "pat-1", map[string]any{"grantee": map[string]string{}}, 400},
		{"mass assignment", "pat-1", map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "status": "active"}, 400},
		{"hospital", "hosp-a", map[string]any{"grantee": map[string]string{"org": "hosp-b"}}, 403},
		{"anonymous", "", map[string]any{"grantee": map[string]string{"org": "hosp-b"}}, 401},
		{"too large", "pat-1", strings.Repeat(" ", DefaultMaxJSONBody+1), 413},
	} {
		rec := ts.do("POST", "/v1/consents", tt.token, tt.body)
		if e := errorOf(t, rec); rec.Code != tt.status || e.Message == "" {
			t.Errorf("%s: %d %+v, want %d", tt.name, rec.Code, e, tt.status)
		}
	}
	ts.changes.grant = func(string, consent.Grant) (consent.Grant, access.Receipt, error) {
		return consent.Grant{}, access.Receipt{}, errors.Join(errors.New("access: receipt"), ledger.ErrUnavailable)
	}
	if rec := ts.do("POST", "/v1/consents", "pat-1", map[string]any{"grantee": map[string]string{"org": "hosp-b"}}); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("ledger down: %d", rec.Code)
	}
}

func TestRevokeConsent(t *testing.T) {
	ts := newTestServer(t)
	rc := receiptOf(t, ts.ledger)
	ts.changes.revoke = func(patient, id string) (consent.Grant, access.Receipt, error) {
		switch {
		case patient != "ps_pat-1" || id != grantB1.ID:
			return consent.Grant{}, access.Receipt{}, consent.ErrNotFound
		}
		g := grantB1
		g.Revoked, g.RevokedIndex, g.RevokedAt = true, 2, tGrant.Add(time.Hour)
		return g, rc, nil
	}
	path := "/v1/consents/" + grantB1.ID + "/revoke"
	for _, body := range []any{nil, "{}"} {
		rec := ts.do("POST", path, "pat-1", body)
		if rec.Code != http.StatusOK {
			t.Fatalf("revoke with body %v: %d %s", body, rec.Code, rec.Body)
		}
		v := decodeBody[consentResponse](t, rec)
		if v.Consent.Status != "revoked" || v.Consent.RevokedIndex == nil || *v.Consent.RevokedIndex != 2 || v.Receipt.Index != 2 {
			t.Errorf("revocation %+v", v)
		}
	}
	for _, tt := range []struct {
		name, token, path string
		body              any
		status            int
	}{
		{"another patient", "pat-2", path, nil, 404},
		{"hospital", "hosp-b", path, nil, 403},
		{"a body", "pat-1", path, `{"reason":"x"}`, 400},
	} {
		rec := ts.do("POST", tt.path, tt.token, tt.body)
		if rec.Code != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, rec.Code, rec.Body, tt.status)
		}
	}
	ts.changes.revoke = func(string, string) (consent.Grant, access.Receipt, error) {
		return consent.Grant{}, access.Receipt{}, consent.ErrAlreadyRevoked
	}
	rec := ts.do("POST", path, "pat-1", nil)
	if e := errorOf(t, rec); rec.Code != http.StatusConflict || e.Message != "The consent is already revoked." {
		t.Errorf("twice: %d %+v", rec.Code, e)
	}
}

func TestListAndGetConsents(t *testing.T) {
	ts := newTestServer(t)
	ts.consents.listByPatient = func(patient string, p consent.Page) ([]consent.Grant, string, error) {
		if p.Cursor == "bad" {
			return nil, "", consent.ErrInvalidCursor
		}
		if patient == "ps_pat-1" {
			return []consent.Grant{grantB1}, "next-1", nil
		}
		return nil, "", nil
	}
	ts.consents.listForGrantee = func(org string, kind auth.Kind, p consent.Page) ([]consent.Grant, string, error) {
		if org == "hosp-a" && p.Limit == 10 {
			return []consent.Grant{grantB1}, "", nil
		}
		return nil, "", nil
	}
	ts.consents.grant = func(id string) (consent.Grant, error) {
		if id == grantB1.ID {
			return grantB1, nil
		}
		return consent.Grant{}, consent.ErrNotFound
	}
	list := func(token, query string) (int, grantList) {
		t.Helper()
		rec := ts.do("GET", "/v1/consents"+query, token, nil)
		if rec.Code != http.StatusOK {
			return rec.Code, grantList{}
		}
		return rec.Code, decodeBody[grantList](t, rec)
	}
	if _, l := list("pat-1", ""); len(l.Consents) != 1 || l.NextCursor != "next-1" || l.Consents[0].ID != grantB1.ID {
		t.Errorf("patient's list %+v", l)
	}
	if _, l := list("pat-2", ""); l.Consents == nil || len(l.Consents) != 0 {
		t.Errorf("another patient's list %+v, want an empty array", l)
	}
	if _, l := list("hosp-a", "?limit=10"); len(l.Consents) != 1 {
		t.Errorf("hospital's list %+v", l)
	}
	for _, tt := range []struct {
		token, query string
		status       int
	}{
		{"hosp-b", "", 403}, // no consents.read
		{"reg-x", "", 403},
		{"pat-1", "?limit=0", 400},
		{"pat-1", "?limit=501", 400},
		{"pat-1", "?limit=x", 400},
		{"pat-1", "?cursor=bad", 400},
	} {
		if status, _ := list(tt.token, tt.query); status != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.token, tt.query, status, tt.status)
		}
	}
	for _, tt := range []struct {
		token, id string
		status    int
	}{
		{"pat-1", grantB1.ID, 200},
		{"hosp-a", grantB1.ID, 404}, // the grant names hosp-b
		{"pat-2", grantB1.ID, 404},
		{"pat-1", "cns_ffffffffffffffffffffffffffffffff", 404},
	} {
		rec := ts.do("GET", "/v1/consents/"+tt.id, tt.token, nil)
		if rec.Code != tt.status {
			t.Errorf("GET %s as %s: %d, want %d", tt.id, tt.token, rec.Code, tt.status)
		}
	}
	hospB := testPrincipals["hosp-b"]
	hospB.Scopes = append(hospB.Scopes, auth.ScopeConsentsRead)
	ts.auth = fakeAuth{"hosp-b2": hospB}
	if rec := ts.do("GET", "/v1/consents/"+grantB1.ID, "hosp-b2", nil); rec.Code != http.StatusOK {
		t.Errorf("the named hospital: %d", rec.Code)
	}
}

func TestAccessLogAndAudit(t *testing.T) {
	ts := newTestServer(t)
	ts.consents.accessLog = func(patient string, p consent.Page) ([]consent.AccessEvent, string, error) {
		if patient == "ps_pat-1" {
			return []consent.AccessEvent{event1}, "", nil
		}
		return nil, "", nil
	}
	var gotFilter consent.AuditFilter
	ts.consents.auditEvents = func(f consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error) {
		gotFilter = f
		return []consent.AccessEvent{event1}, "c2", nil
	}
	rec := ts.do("GET", "/v1/me/access-log", "pat-1", nil)
	// as_of: the log size the list is complete for (the projections
	// were caught up to it).
	want := eventList{Events: []accessEventView{viewEvent(event1)}, AsOf: 5}
	if diff := cmp.Diff(want, decodeBody[eventList](t, rec)); rec.Code != http.StatusOK || diff != "" {
		t.Errorf("access log: %d (-want +got):\n%s", rec.Code, diff)
	}
	if len(ts.sync.calls) != 1 || ts.sync.calls[0] != 5 {
		t.Errorf("projections caught up to %v, want [5]", ts.sync.calls)
	}
	if rec := ts.do("GET", "/v1/me/access-log", "pat-2", nil); rec.Body.String() != `{"events":[],"as_of":5}` {
		t.Errorf("another patient's log: %s", rec.Body)
	}
	if rec := ts.do("GET", "/v1/me/access-log", "hosp-a", nil); rec.Code != http.StatusForbidden {
		t.Errorf("hospital on the patient's log: %d", rec.Code)
	}
	rec = ts.do("GET", "/v1/audit/events?patient=pat-1&org=hosp-b&decision=permit&break_glass=false&since=2026-01-01T00:00:00Z&until=2026-03-01T00:00:00Z&limit=5", "reg-x", nil)
	if rec.Code != http.StatusOK || decodeBody[eventList](t, rec).NextCursor != "c2" {
		t.Fatalf("audit: %d %s", rec.Code, rec.Body)
	}
	bg := false
	wantFilter := consent.AuditFilter{Patient: "ps_pat-1", Org: "hosp-b", Decision: consent.Permit, BreakGlass: &bg, Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	if diff := cmp.Diff(wantFilter, gotFilter); diff != "" {
		t.Errorf("audit filter (-want +got):\n%s", diff)
	}
	ps := "ps_" + strings.Repeat("ab", 32)
	ts.do("GET", "/v1/audit/events?patient="+ps, "reg-x", nil)
	if gotFilter.Patient != ps {
		t.Errorf("a pseudonym is passed as is: %q", gotFilter.Patient)
	}
	for _, tt := range []struct {
		token, query string
		status       int
		msg          string
	}{
		{"reg-x", "?decision=maybe", 400, "decision must be permit or deny."},
		{"reg-x", "?since=2026-03-01T00:00:00Z&until=2026-01-01T00:00:00Z", 400, "until must be after since."},
		{"reg-x", "?since=yesterday", 400, "since must be an RFC 3339 time."},
		{"reg-x", "?break_glass=perhaps", 400, "break_glass must be true or false."},
		{"reg-x", "?limit=-1", 400, "limit must be between 1 and 500."},
		{"hosp-a", "", 403, "Not allowed for this kind of organisation."},
		{"pat-1", "", 403, "This route is for organisations."},
	} {
		rec := ts.do("GET", "/v1/audit/events"+tt.query, tt.token, nil)
		if e := errorOf(t, rec); rec.Code != tt.status || e.Message != tt.msg {
			t.Errorf("%s %s: %d %q, want %d %q", tt.token, tt.query, rec.Code, e.Message, tt.status, tt.msg)
		}
	}
	ts.sync.sync = func(uint64) error { return errors.New("projection broken") }
	if rec := ts.do("GET", "/v1/audit/events", "reg-x", nil); rec.Code != http.StatusInternalServerError {
		t.Errorf("projection failure: %d", rec.Code)
	}
	if rec := ts.do("GET", "/v1/me/access-log", "pat-1", nil); rec.Code != http.StatusInternalServerError {
		t.Errorf("projection failure: %d", rec.Code)
	}
}

func TestFHIRConsent(t *testing.T) {
	ts := newTestServer(t)
	ts.consents.listByPatient = func(patient string, p consent.Page) ([]consent.Grant, string, error) {
		return []consent.Grant{grantB1}, "n1", nil
	}
	var gotFor []string
	ts.consents.grantsFor = func(patient, org string, kind auth.Kind) ([]consent.Grant, error) {
		gotFor = []string{patient, org, string(kind)}
		return []consent.Grant{grantB1}, nil
	}
	ts.consents.listForGrantee = func(string, auth.Kind, consent.Page) ([]consent.Grant, string, error) { return nil, "", nil }
	rec := ts.do("GET", "/fhir/Consent", "pat-1", nil)
	b := decodeBody[map[string]any](t, rec)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/fhir+json" || b["resourceType"] != "Bundle" || b["type"] != "searchset" {
		t.Fatalf("patient's Consent search: %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(rec.Body.String(), grantB1.ID) || !strings.Contains(rec.Body.String(), "http://gw.test/fhir/Consent?cursor=n1") {
		t.Errorf("bundle lacks the grant or the next link: %s", rec.Body)
	}
	// A patient asking about another patient sees nothing.
	if rec := ts.do("GET", "/fhir/Consent?patient=pat-2", "pat-1", nil); strings.Contains(rec.Body.String(), grantB1.ID) {
		t.Errorf("a patient sees another's grants: %s", rec.Body)
	}
	// A hospital with consents.read searches by patient.
	rec = ts.do("GET", "/fhir/Consent?patient=pat-1", "hosp-a", nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), grantB1.ID) || !cmp.Equal(gotFor, []string{"ps_pat-1", "hosp-a", "hospital"}) {
		t.Errorf("hospital's search: %d %v %s", rec.Code, gotFor, rec.Body)
	}
	if rec := ts.do("GET", "/fhir/Consent", "reg-x", nil); rec.Code != http.StatusForbidden {
		t.Errorf("regulator: %d", rec.Code)
	}
	if rec := ts.do("GET", "/fhir/Consent?_count=0", "pat-1", nil); rec.Code != http.StatusBadRequest {
		t.Errorf("bad limit: %d", rec.Code)
	}
	if rec := ts.do("GET", "/fhir/Consent", "", nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", rec.Code)
	}
}

func TestFHIRAuditEvent(t *testing.T) {
	ts := newTestServer(t)
	ts.consents.accessLog = func(patient string, p consent.Page) ([]consent.AccessEvent, string, error) {
		return []consent.AccessEvent{event1}, "", nil
	}
	ts.consents.auditEvents = func(f consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error) {
		if f.Org != "hosp-b" {
			return nil, "", nil
		}
		return []consent.AccessEvent{event1}, "", nil
	}
	for _, tt := range []struct {
		token, query string
		status       int
		hasEvent     bool
	}{
		{"pat-1", "", 200, true},
		{"pat-1", "?patient=pat-1", 200, true},
		{"pat-1", "?patient=pat-2", 200, false},
		{"reg-x", "?org=hosp-b", 200, true},
		{"reg-x", "?org=hosp-z", 200, false},
		{"reg-x", "?decision=maybe", 400, false},
		{"hosp-a", "", 403, false},
		{"pat-1", "?_count=x", 400, false},
	} {
		rec := ts.do("GET", "/fhir/AuditEvent"+tt.query, tt.token, nil)
		if rec.Code != tt.status || strings.Contains(rec.Body.String(), `"AuditEvent"`) != tt.hasEvent {
			t.Errorf("%s %s: %d %s", tt.token, tt.query, rec.Code, rec.Body)
		}
		if tt.status == 200 && rec.Header().Get("Content-Type") != "application/fhir+json" {
			t.Errorf("%s %s: content type %q", tt.token, tt.query, rec.Header().Get("Content-Type"))
		}
	}

	// A break-glass event shows its justification commitment to all who
	// see the event, and the reason, opened from it, to regulators only.
	j, err := ledger.NewJustification("unconscious in ED, suspected DKA")
	if err != nil {
		t.Fatal(err)
	}
	ts.openings[j.Commitment().String()] = j
	glass := event1
	glass.Purpose, glass.Reason, glass.BreakGlass, glass.JustificationCommitment = consent.PurposeEmergencyTreatment, consent.ReasonPermitBreakGlass, true, j.Commitment().String()
	ts.consents.accessLog = func(string, consent.Page) ([]consent.AccessEvent, string, error) {
		return []consent.AccessEvent{glass}, "", nil
	}
	ts.consents.auditEvents = func(consent.AuditFilter, consent.Page) ([]consent.AccessEvent, string, error) {
		return []consent.AccessEvent{glass}, "", nil
	}
	for _, tok := range []string{"pat-1", "reg-x"} {
		rec := ts.do("GET", "/fhir/AuditEvent", tok, nil)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, fhir.ExtJustificationCommitment) || !strings.Contains(body, j.Commitment().String()) {
			t.Errorf("%s: break-glass event without its commitment: %d %s", tok, rec.Code, body)
		}
		if got := strings.Contains(body, j.Reason); got != (tok == "reg-x") {
			t.Errorf("%s: reason shown %v: %s", tok, got, body)
		}
	}

	ts.sync.sync = func(uint64) error { return errors.New("projection broken") }
	if rec := ts.do("GET", "/fhir/AuditEvent", "pat-1", nil); rec.Code != http.StatusInternalServerError {
		t.Errorf("projection failure: %d", rec.Code)
	}
}
