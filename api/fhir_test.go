package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/fhir"
	"github.com/healthgw/healthgw/fhir/fhirtest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// fhirBundle is the part of a searchset Bundle the tests look at.
type fhirBundle struct {
	ResourceType string `json:"resourceType"`
	Meta         struct {
		Extension []struct {
			URL             string `json:"url"`
			ValueIdentifier struct {
				System, Value string
			} `json:"valueIdentifier"`
		} `json:"extension"`
	} `json:"meta"`
	Type string `json:"type"`
	Link []struct {
		Relation, URL string
	} `json:"link"`
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

func (b fhirBundle) link(rel string) string {
	for _, l := range b.Link {
		if l.Relation == rel {
			return l.URL
		}
	}
	return ""
}

// fhirOK checks a 200 FHIR answer: its content type and its validity
// against the R4 JSON schema, as a resource of type want.
func fhirOK(t *testing.T, rec *httptest.ResponseRecorder, want string) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("content type %q", ct)
	}
	fhirtest.Validate(t, want, rec.Body.Bytes())
}

// outcomeOf checks an OperationOutcome answer of status and issue code
// and returns its diagnostics.
func outcomeOf(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) string {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("content type %q of %s", ct, rec.Body)
	}
	fhirtest.Validate(t, "OperationOutcome", rec.Body.Bytes())
	var o struct {
		Issue []struct{ Severity, Code, Diagnostics string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil || len(o.Issue) != 1 {
		t.Fatalf("outcome %s: %v", rec.Body, err)
	}
	if o.Issue[0].Code != code {
		t.Errorf("issue code %q, want %q: %s", o.Issue[0].Code, code, rec.Body)
	}
	return o.Issue[0].Diagnostics
}

// path is the path and query of an absolute link on the test server.
func path(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Scheme+"://"+u.Host != "http://gw.test" {
		t.Fatalf("link %q is not on the gateway", link)
	}
	return u.RequestURI()
}

func TestFHIRMetadata(t *testing.T) {
	ts := newTestServer(t)
	rec := ts.do("GET", "/fhir/metadata", "", nil)
	fhirOK(t, rec, "CapabilityStatement")
	var cs struct {
		FHIRVersion string
		Kind        string
		Rest        []struct {
			Security struct {
				Extension []struct {
					URL       string
					Extension []struct{ URL, ValueURI string }
				}
			}
			Resource []struct {
				Type        string
				Interaction []struct{ Code string }
				SearchParam []struct{ Name, Type string }
			}
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &cs); err != nil || len(cs.Rest) != 1 {
		t.Fatalf("%s: %v", rec.Body, err)
	}
	if cs.FHIRVersion != "4.0.1" || cs.Kind != "instance" {
		t.Errorf("version %q kind %q", cs.FHIRVersion, cs.Kind)
	}
	params := map[string][]string{}
	for _, r := range cs.Rest[0].Resource {
		var ix []string
		for _, i := range r.Interaction {
			ix = append(ix, i.Code)
		}
		if !cmp.Equal(ix, []string{"read", "search-type"}) {
			t.Errorf("%s interactions %v", r.Type, ix)
		}
		for _, p := range r.SearchParam {
			params[r.Type] = append(params[r.Type], p.Name+":"+p.Type)
		}
	}
	for rt, want := range map[string][]string{
		"Consent":     {"patient:reference", "status:token", "date:date"},
		"AuditEvent":  {"patient:reference", "date:date"},
		"Observation": {"patient:reference", "purpose:token", "_lastUpdated:date"},
		"Patient":     {"patient:reference", "purpose:token", "_lastUpdated:date"},
	} {
		if diff := cmp.Diff(want, params[rt]); diff != "" {
			t.Errorf("%s search parameters (-want +got):\n%s", rt, diff)
		}
	}
	if len(params) != 2+len(records.ResourceTypes()) {
		t.Errorf("%d resources, want Consent, AuditEvent and the %d record types", len(params), len(records.ResourceTypes()))
	}
	sec := cs.Rest[0].Security.Extension
	if len(sec) != 1 || sec[0].URL != "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris" || len(sec[0].Extension) == 0 || sec[0].Extension[0] != (struct{ URL, ValueURI string }{"token", "http://gw.test/oauth2/token"}) {
		t.Errorf("security extension %+v", sec)
	}
	// A server with nothing mounted says so.
	bare := New(Config{BaseURL: "http://gw.test"}, nil, testPrincipals)
	rec = httptest.NewRecorder()
	bare.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/fhir/metadata?_format=json", nil))
	fhirOK(t, rec, "CapabilityStatement")
	if strings.Contains(rec.Body.String(), `"resource"`) {
		t.Errorf("a bare server claims resources: %s", rec.Body)
	}
}

// TestFHIROperationOutcome: every error under /fhir is an OperationOutcome
// with the matching issue type; v1 errors keep their JSON shape.
func TestFHIROperationOutcome(t *testing.T) {
	ts := newTestServer(t)
	ts.gate.read = func(access.ReadRequest) (access.Result, error) { return access.Result{}, errors.New("disk on fire") }
	for _, tt := range []struct {
		name, method, path, token string
		hdr                       []string
		status                    int
		code                      string
	}{
		{"bad parameter", "GET", "/fhir/Consent?_count=many", "pat-1", nil, 400, "invalid"},
		{"bad date", "GET", "/fhir/Consent?date=ap2026", "pat-1", nil, 400, "invalid"},
		{"no token", "GET", "/fhir/Consent", "", nil, 401, "login"},
		{"bad token", "GET", "/fhir/Observation/x", "forged", nil, 401, "login"},
		{"not for this caller", "GET", "/fhir/Consent", "reg-x", nil, 403, "forbidden"},
		{"patient on record route", "GET", "/fhir/Observation?patient=p", "pat-1", nil, 403, "forbidden"},
		{"no record scope", "GET", "/fhir/Observation?patient=p", "noscope", nil, 403, "forbidden"},
		{"unknown type", "GET", "/fhir/Spaceship/1", "hosp-b", nil, 404, "not-found"},
		{"unknown route", "GET", "/fhir/Observation/1/_history", "hosp-b", nil, 404, "not-found"},
		{"bad consent id", "GET", "/fhir/Consent/nope", "pat-1", nil, 404, "not-found"},
		{"bad audit event id", "GET", "/fhir/AuditEvent/ae-01", "pat-1", nil, 404, "not-found"},
		{"method", "POST", "/fhir/Observation", "hosp-b", nil, 405, "not-supported"},
		{"method on metadata", "DELETE", "/fhir/metadata", "", nil, 405, "not-supported"},
		{"xml format", "GET", "/fhir/metadata?_format=xml", "", nil, 406, "not-supported"},
		{"xml accept", "GET", "/fhir/Consent", "pat-1", []string{"Accept", "application/fhir+xml"}, 406, "not-supported"},
		{"internal", "GET", "/fhir/Observation/1", "hosp-b", nil, 500, "exception"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := ts.do(tt.method, tt.path, tt.token, nil, tt.hdr...)
			if msg := outcomeOf(t, rec, tt.status, tt.code); msg == "" || strings.Contains(msg, "disk") {
				t.Errorf("diagnostics %q", msg)
			}
		})
	}
	// The v1 routes keep the JSON error.
	if e := errorOf(t, ts.do("GET", "/v1/consents/nope", "", nil)); e.Error != "unauthorized" {
		t.Errorf("v1 error %+v", e)
	}
	// An unavailable ledger: nothing served, 503 transient.
	ts.gate.read = func(access.ReadRequest) (access.Result, error) {
		return access.Result{}, fmt.Errorf("access: log access decision: %w", ledger.ErrUnavailable)
	}
	outcomeOf(t, ts.do("GET", "/fhir/Observation/1", "hosp-b", nil), 503, "transient")
	// A panic under /fhir is an OperationOutcome too.
	ts.gate.read = func(access.ReadRequest) (access.Result, error) { panic("boom") }
	outcomeOf(t, ts.do("GET", "/fhir/Observation/1", "hosp-b", nil), 500, "exception")
}

func TestFHIRConsentSearchAndRead(t *testing.T) {
	ts := newTestServer(t)
	revoked := grantB1
	revoked.ID, revoked.Revoked, revoked.RevokedIndex, revoked.RevokedAt = "cns_ffffffffffffffffffffffffffffffff", true, 8, tGrant.Add(time.Hour)
	revoked.GrantedAt, revoked.GrantedIndex = tGrant.AddDate(0, 1, 0), 2
	c2 := consent.EncodeCursor(grantB1.GrantedIndex)
	pages := map[string][]consent.Grant{"": {grantB1}, c2: {revoked}}
	var gotPages []consent.Page
	ts.consents.listByPatient = func(patient string, p consent.Page) ([]consent.Grant, string, error) {
		gotPages = append(gotPages, p)
		if p.Cursor == "" {
			return pages[""], c2, nil
		}
		return pages[p.Cursor], "", nil
	}
	ts.consents.grant = func(id string) (consent.Grant, error) {
		for _, g := range []consent.Grant{grantB1, revoked} {
			if g.ID == id {
				return g, nil
			}
		}
		return consent.Grant{}, consent.ErrNotFound
	}
	search := func(q string) fhirBundle {
		t.Helper()
		rec := ts.do("GET", "/fhir/Consent"+q, "pat-1", nil)
		fhirOK(t, rec, "Bundle")
		return decodeBody[fhirBundle](t, rec)
	}
	// Follow the next links to the end; each fullUrl resolves.
	var ids []string
	link := "http://gw.test/fhir/Consent?_count=1&status=active,inactive&unknown=x"
	for i := 0; link != ""; i++ {
		if i > 3 {
			t.Fatal("the next links do not end")
		}
		b := search(strings.TrimPrefix(path(t, link), "/fhir/Consent"))
		if i == 0 && b.link("self") != "http://gw.test/fhir/Consent?_count=1&status=active%2Cinactive" {
			t.Errorf("self link %q echoes what was not honoured, or misses what was", b.link("self"))
		}
		for _, e := range b.Entry {
			rec := ts.do("GET", path(t, e.FullURL), "pat-1", nil)
			fhirOK(t, rec, "Consent")
			var got, want map[string]any
			json.Unmarshal(rec.Body.Bytes(), &got)
			json.Unmarshal(e.Resource, &want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s differs from its search entry (-search +read):\n%s", e.FullURL, diff)
			}
			ids = append(ids, got["id"].(string))
		}
		link = b.link("next")
	}
	if diff := cmp.Diff([]string{"cns-0123456789abcdef0123456789abcdef", "cns-ffffffffffffffffffffffffffffffff"}, ids); diff != "" {
		t.Errorf("consents followed (-want +got):\n%s", diff)
	}
	if gotPages[0].Limit != 1 || gotPages[1].Cursor != c2 || gotPages[1].Limit != 1 {
		t.Errorf("pages asked %+v", gotPages)
	}
	count := func(b fhirBundle) int { return len(b.Entry) }
	for _, tt := range []struct {
		q    string
		want int
	}{
		{"?status=active", 1},
		{"?status=inactive", 0},
		{"?status=draft", 0},
		{"?date=2026-02-01", 1},
		{"?date=gt2026-02-01", 0},
		{"?date=ge2026-02&date=lt2026-03", 1},
		{"?date=lt2026-02-01", 0},
		{"?date=le2026-02-01T00:00:00Z", 1},
	} {
		if got := count(search(tt.q)); got != tt.want {
			t.Errorf("%s: %d entries, want %d", tt.q, got, tt.want)
		}
	}
	if got := search("?status=active&_count=9999").link("self"); got != "http://gw.test/fhir/Consent?_count=500&status=active" {
		t.Errorf("self of a clamped _count: %q", got)
	}
	outcomeOf(t, ts.do("GET", "/fhir/Consent?status=banana", "pat-1", nil), 400, "invalid")
	outcomeOf(t, ts.do("GET", "/fhir/Consent?unknown=1", "pat-1", nil, "Prefer", "handling=strict"), 400, "invalid")
	outcomeOf(t, ts.do("GET", "/fhir/Consent?_count=1&_count=2", "pat-1", nil), 400, "invalid")
	// Reads by ID: another patient's grant is not found, like a missing one.
	other := grantB1
	other.Patient = "ps_pat-2"
	ts.consents.grant = func(id string) (consent.Grant, error) {
		if id == other.ID {
			return other, nil
		}
		return consent.Grant{}, consent.ErrNotFound
	}
	hidden := ts.do("GET", "/fhir/Consent/cns-0123456789abcdef0123456789abcdef", "pat-1", nil, "X-Request-ID", "r")
	missing := ts.do("GET", "/fhir/Consent/cns-00000000000000000000000000000000", "pat-1", nil, "X-Request-ID", "r")
	outcomeOf(t, hidden, 404, "not-found")
	if sansRequestID(hidden.Body.String()) != sansRequestID(missing.Body.String()) {
		t.Errorf("hidden %s, missing %s", hidden.Body, missing.Body)
	}
	fhirOK(t, ts.do("GET", "/fhir/Consent/cns-0123456789abcdef0123456789abcdef", "pat-2", nil), "Consent")
}

func TestFHIRAuditEventSearchAndRead(t *testing.T) {
	ts := newTestServer(t)
	event2 := event1
	event2.Index, event2.Time, event2.Decision, event2.Reason = 7, tGrant.Add(-48*time.Hour), consent.Deny, consent.ReasonDenyPurpose
	all := []consent.AccessEvent{event1, event2} // newest first
	page := func(p consent.Page) ([]consent.AccessEvent, string, error) {
		before, ok, err := p.Before()
		if err != nil {
			return nil, "", err
		}
		var out []consent.AccessEvent
		for _, e := range all {
			if !ok || e.Index < before {
				out = append(out, e)
			}
		}
		if len(out) > p.Size() {
			return out[:p.Size()], consent.EncodeCursor(out[p.Size()-1].Index), nil
		}
		return out, "", nil
	}
	ts.consents.accessLog = func(patient string, p consent.Page) ([]consent.AccessEvent, string, error) {
		if patient != "ps_pat-1" {
			return nil, "", nil
		}
		return page(p)
	}
	var gotFilter consent.AuditFilter
	ts.consents.auditEvents = func(f consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error) {
		gotFilter = f
		return page(p)
	}
	for _, token := range []string{"pat-1", "reg-x"} {
		var ids []string
		link := "http://gw.test/fhir/AuditEvent?_count=1"
		for i := 0; link != ""; i++ {
			if i > 3 {
				t.Fatal("the next links do not end")
			}
			rec := ts.do("GET", path(t, link), token, nil)
			fhirOK(t, rec, "Bundle")
			b := decodeBody[fhirBundle](t, rec)
			// Every page says the ledger size it is complete for (the
			// API's as_of; the test ledger has 5 entries).
			if ext := b.Meta.Extension; len(ext) != 1 || ext[0].URL != fhir.ExtAsOf || ext[0].ValueIdentifier.System != fhir.SystemLedger || ext[0].ValueIdentifier.Value != "5" {
				t.Errorf("%s: bundle meta %+v, want as_of 5", token, b.Meta)
			}
			for _, e := range b.Entry {
				rec := ts.do("GET", path(t, e.FullURL), token, nil)
				fhirOK(t, rec, "AuditEvent")
				ids = append(ids, decodeBody[map[string]any](t, rec)["id"].(string))
			}
			link = b.link("next")
		}
		if diff := cmp.Diff([]string{"ae-9", "ae-7"}, ids); diff != "" {
			t.Errorf("%s followed (-want +got):\n%s", token, diff)
		}
	}
	rec := ts.do("GET", "/fhir/AuditEvent?org=hosp-b&date=ge2026-02-01&ignored=1", "reg-x", nil)
	fhirOK(t, rec, "Bundle")
	if b := decodeBody[fhirBundle](t, rec); len(b.Entry) != 1 || b.link("self") != "http://gw.test/fhir/AuditEvent?date=ge2026-02-01&org=hosp-b" || gotFilter.Org != "hosp-b" {
		t.Errorf("regulator's dated search: %d entries, self %q, filter %+v", len(b.Entry), b.link("self"), gotFilter)
	}
	// Another patient's event, and an index without one, are not found.
	for _, p := range []string{"/fhir/AuditEvent/ae-9", "/fhir/AuditEvent/ae-8", "/fhir/AuditEvent/ae-18446744073709551615"} {
		outcomeOf(t, ts.do("GET", p, "pat-2", nil), 404, "not-found")
	}
	outcomeOf(t, ts.do("GET", "/fhir/AuditEvent/ae-8", "reg-x", nil), 404, "not-found")
	outcomeOf(t, ts.do("GET", "/fhir/AuditEvent/ae-9", "hosp-a", nil), 403, "forbidden")
}

// fhirRecords are three Observations and a Condition of patient pat-1.
func fhirRecords() []records.Record {
	var out []records.Record
	for i, rt := range []string{"Observation", "Condition", "Observation", "Observation"} {
		r := labRecord
		r.ID = fmt.Sprintf("0b7d0a52-1d1c-4b59-8a2a-00000000000%d", i)
		r.ResourceType = rt
		r.CreatedAt = labRecord.CreatedAt.AddDate(0, 0, i)
		out = append(out, r)
	}
	return out
}

func TestFHIRRecordSearchAndRead(t *testing.T) {
	ts := newTestServer(t)
	recs := fhirRecords()
	var lists []access.ListRequest
	ts.gate.readable = func(r access.ListRequest) ([]records.Record, error) {
		lists = append(lists, r)
		out := slices.Clone(recs)
		slices.Reverse(out) // the handler orders them
		return out, nil
	}
	var reads []access.ReadRequest
	denied := recs[3].ID // revoked between the listing and the read
	ts.gate.read = func(r access.ReadRequest) (access.Result, error) {
		reads = append(reads, r)
		for _, rec := range recs {
			if rec.ID == r.RecordID && rec.ResourceType == r.ResourceType && rec.ID != denied {
				return access.Result{Record: rec, Content: []byte(`{"resourceType":"` + rec.ResourceType + `","id":"local-1","status":"final","code":{"text":"HbA1c"}}`)}, nil
			}
		}
		return access.Result{}, access.ErrNotFound
	}
	var ids []string
	link := "http://gw.test/fhir/Observation?patient=Patient/pat-1&purpose=TREAT&_count=2"
	for i := 0; link != ""; i++ {
		if i > 3 {
			t.Fatal("the next links do not end")
		}
		rec := ts.do("GET", path(t, link), "hosp-b", nil, HeaderBreakGlass, "reason", "X-Request-ID", "req-7")
		fhirOK(t, rec, "Bundle")
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("cache control %q", rec.Header().Get("Cache-Control"))
		}
		b := decodeBody[fhirBundle](t, rec)
		if i == 0 && b.link("self") != "http://gw.test/fhir/Observation?_count=2&patient=Patient%2Fpat-1&purpose=TREAT" {
			t.Errorf("self %q", b.link("self"))
		}
		for _, e := range b.Entry {
			var res struct{ ResourceType, ID string }
			json.Unmarshal(e.Resource, &res)
			if e.FullURL != "http://gw.test/fhir/Observation/"+res.ID || res.ResourceType != "Observation" {
				t.Errorf("entry %s holds %s/%s", e.FullURL, res.ResourceType, res.ID)
			}
			ids = append(ids, res.ID)
		}
		link = b.link("next")
	}
	if diff := cmp.Diff([]string{recs[0].ID, recs[2].ID}, ids); diff != "" {
		t.Errorf("records followed (-want +got):\n%s", diff)
	}
	wantList := access.ListRequest{Caller: access.Caller{Org: "hosp-b", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeRecordsRead}}, Patient: "pat-1", Purpose: consent.PurposeTreatment}
	for _, l := range lists {
		if diff := cmp.Diff(wantList, l); diff != "" {
			t.Errorf("listing (-want +got):\n%s", diff)
		}
	}
	// Every entry was read through the gate, as the Observation it is,
	// with the request's purpose, break-glass reason, the gateway's own request ID
	// and the client's alongside.
	var readIDs []string
	for _, r := range reads {
		readIDs = append(readIDs, r.RecordID)
		if r.ResourceType != "Observation" || r.Purpose != consent.PurposeTreatment || r.Justification != "reason" || r.ClientRequestID != "req-7" || r.RequestID == "req-7" || r.RequestID == "" || r.Caller.Org != "hosp-b" {
			t.Errorf("read %+v", r)
		}
	}
	if diff := cmp.Diff([]string{recs[0].ID, recs[2].ID, recs[3].ID}, readIDs); diff != "" {
		t.Errorf("reads (-want +got):\n%s", diff)
	}
	// _lastUpdated filters on when the record was stored.
	rec := ts.do("GET", "/fhir/Observation?patient=pat-1&_lastUpdated=ge"+recs[2].CreatedAt.Format("2006-01-02"), "hosp-b", nil)
	fhirOK(t, rec, "Bundle")
	if b := decodeBody[fhirBundle](t, rec); len(b.Entry) != 1 {
		t.Errorf("_lastUpdated: %d entries", len(b.Entry))
	}
	// Read by ID: a permit, and a deny identical to a missing record and
	// to a record of another type.
	reads = nil
	rec = ts.do("GET", "/fhir/Observation/"+recs[0].ID+"?purpose=TREAT", "hosp-b", nil)
	fhirOK(t, rec, "Observation")
	if got := decodeBody[map[string]any](t, rec); got["id"] != recs[0].ID || got["status"] != "final" {
		t.Errorf("read: %v", got)
	}
	if len(reads) != 1 || reads[0].ResourceType != "Observation" || reads[0].RecordID != recs[0].ID || reads[0].Purpose != consent.PurposeTreatment {
		t.Errorf("gate reads %+v", reads)
	}
	var bodies []string
	for _, p := range []string{"/fhir/Observation/" + denied, "/fhir/Observation/0b7d0a52-1d1c-4b59-8a2a-00000000dead", "/fhir/Observation/" + recs[1].ID} {
		rec := ts.do("GET", p+"?purpose=TREAT", "hosp-b", nil, "X-Request-ID", "same")
		outcomeOf(t, rec, 404, "not-found")
		bodies = append(bodies, sansRequestID(rec.Body.String()))
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("deny, missing and other type differ:\n%s", strings.Join(bodies, "\n"))
	}
	for _, tt := range []struct{ path, msg string }{
		{"/fhir/Observation", "patient is required"},
		{"/fhir/Observation?patient=pat-1&purpose=SNOOP", `purpose "SNOOP"`},
		{"/fhir/Observation/" + recs[0].ID + "?purpose=SNOOP", `purpose "SNOOP"`},
		{"/fhir/Observation?patient=pat-1&cursor=!!!", "Invalid cursor."},
		{"/fhir/Observation?patient=pat-1&_lastUpdated=soon", "date"},
	} {
		if msg := outcomeOf(t, ts.do("GET", tt.path, "hosp-b", nil), 400, "invalid"); !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: %q, want %q", tt.path, msg, tt.msg)
		}
	}
}

// TestRestrictedScopeRoutes: a token holding only system/Observation.rs
// reaches the record routes (v1 and FHIR) and its scopes reach the gate,
// which decides per resource type (access.TestReadScopes).
func TestRestrictedScopeRoutes(t *testing.T) {
	ts := newTestServer(t)
	var callers []access.Caller
	ts.gate.read = func(r access.ReadRequest) (access.Result, error) {
		callers = append(callers, r.Caller)
		if !r.Caller.MayRead(labRecord.ResourceType) {
			return access.Result{}, access.ErrNotFound
		}
		return access.Result{Record: labRecord, Content: []byte(labContent)}, nil
	}
	ts.gate.readable = func(r access.ListRequest) ([]records.Record, error) {
		callers = append(callers, r.Caller)
		return nil, nil
	}
	for _, p := range []string{"/v1/records/" + recID, "/fhir/Observation/" + recID} {
		if rec := ts.do("GET", p, "obs-only", nil); rec.Code != http.StatusOK {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body)
		}
	}
	for _, p := range []string{"/v1/patients/pat-1/records", "/fhir/Condition?patient=pat-1"} {
		if rec := ts.do("GET", p, "obs-only", nil); rec.Code != http.StatusOK {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body)
		}
	}
	want := access.Caller{Org: "hosp-b", Kind: auth.KindHospital, Scopes: []auth.Scope{"system/Observation.rs"}}
	if len(callers) != 4 {
		t.Fatalf("%d gate calls", len(callers))
	}
	for _, c := range callers {
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("caller (-want +got):\n%s", diff)
		}
	}
}

// TestPurposeHeader: the purpose of use may come in X-Purpose-Of-Use (for
// FHIR clients that cannot add a query to a read by ID), on v1 and FHIR
// routes alike; given with the query, the two must agree.
func TestPurposeHeader(t *testing.T) {
	ts := newTestServer(t)
	var got []consent.Purpose
	ts.gate.read = func(r access.ReadRequest) (access.Result, error) {
		got = append(got, r.Purpose)
		return access.Result{Record: labRecord, Content: []byte(labContent)}, nil
	}
	ts.gate.readable = func(r access.ListRequest) ([]records.Record, error) {
		got = append(got, r.Purpose)
		return nil, nil
	}
	for _, p := range []string{"/v1/records/" + recID, "/fhir/Observation/" + recID, "/v1/patients/pat-1/records", "/fhir/Observation?patient=pat-1"} {
		got = nil
		if rec := ts.do("GET", p, "hosp-b", nil, HeaderPurpose, "HPAYMT"); rec.Code != http.StatusOK || !cmp.Equal(got, []consent.Purpose{consent.PurposePayment}) {
			t.Errorf("%s with the header: %d %v %s", p, rec.Code, got, rec.Body)
		}
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		if rec := ts.do("GET", p+sep+"purpose=HPAYMT", "hosp-b", nil, HeaderPurpose, "HPAYMT"); rec.Code != http.StatusOK {
			t.Errorf("%s, query and header agree: %d %s", p, rec.Code, rec.Body)
		}
		if rec := ts.do("GET", p+sep+"purpose=TREAT", "hosp-b", nil, HeaderPurpose, "HPAYMT"); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "differ") {
			t.Errorf("%s, query and header differ: %d %s", p, rec.Code, rec.Body)
		}
		if rec := ts.do("GET", p, "hosp-b", nil, HeaderPurpose, "SNOOP"); rec.Code != http.StatusBadRequest {
			t.Errorf("%s, bad header: %d %s", p, rec.Code, rec.Body)
		}
	}
}

// FuzzRecordCursor: a record search cursor from a next link parses back
// to the record it was made after; any other input parses or is a 400,
// without panicking.
func FuzzRecordCursor(f *testing.F) {
	f.Add(recordCursor(labRecord), "")
	f.Add("!!!", "x")
	f.Add("MTIzLg", "")
	f.Fuzz(func(t *testing.T, cur, id string) {
		if ns, got, err := parseRecordCursor(cur); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
				t.Fatalf("parseRecordCursor(%q): %v", cur, err)
			}
		} else if recordCursor(records.Record{ID: got, CreatedAt: time.Unix(0, ns)}) == "" {
			t.Fatalf("parseRecordCursor(%q): empty round trip", cur)
		}
		r := records.Record{ID: id, CreatedAt: labRecord.CreatedAt}
		ns, got, err := parseRecordCursor(recordCursor(r))
		if err != nil || got != id || ns != r.CreatedAt.UnixNano() {
			t.Fatalf("round trip of %q: %d %q %v", id, ns, got, err)
		}
	})
}

// TestFHIRConsentHospitalPaging: a hospital's search by patient (which the
// queries answer whole) honours _count and its next links, newest first.
func TestFHIRConsentHospitalPaging(t *testing.T) {
	ts := newTestServer(t)
	var grants []consent.Grant
	for i := range 5 {
		g := grantB1
		g.ID = fmt.Sprintf("cns_%032x", i+1)
		g.GrantedIndex = uint64(10 + i)
		grants = append(grants, g)
	}
	ts.consents.grantsFor = func(patient, org string, kind auth.Kind) ([]consent.Grant, error) {
		return slices.Clone(grants), nil
	}
	var ids []string
	link := "http://gw.test/fhir/Consent?patient=pat-1&_count=2"
	for i := 0; link != ""; i++ {
		if i > 5 {
			t.Fatal("the next links do not end")
		}
		rec := ts.do("GET", path(t, link), "hosp-a", nil)
		fhirOK(t, rec, "Bundle")
		b := decodeBody[fhirBundle](t, rec)
		if len(b.Entry) > 2 {
			t.Errorf("page %d holds %d entries, _count is 2", i, len(b.Entry))
		}
		for _, e := range b.Entry {
			ids = append(ids, strings.TrimPrefix(e.FullURL, "http://gw.test/fhir/Consent/"))
		}
		link = b.link("next")
	}
	want := []string{"cns-00000000000000000000000000000005", "cns-00000000000000000000000000000004", "cns-00000000000000000000000000000003", "cns-00000000000000000000000000000002", "cns-00000000000000000000000000000001"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("followed (-want +got):\n%s", diff)
	}
}

// sansRequestID is an error body without its request ID, which differs
// between any two requests (the gateway's own).
func sansRequestID(s string) string {
	return requestIDValue.ReplaceAllString(s, `"valueString":"…"`)
}

var requestIDValue = regexp.MustCompile(`"valueString":"[0-9a-f-]{36}"`)
