package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/fhir/fhirtest"
	"github.com/healthgw/healthgw/ledger"
)

const conditionFHIR = `{"resourceType":"Condition","subject":{"reference":"Patient/pat-1"},"code":{"text":"Type 2 diabetes"}}`

// fhirGet GETs a FHIR path and checks the answer against the R4 schema
// (an OperationOutcome for every error) and its content type.
func (w *world) fhirGet(t *testing.T, path, token string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", w.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatalf("GET %s: %d, body not JSON: %v", path, resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("GET %s: content type %q", path, ct)
	}
	want := "OperationOutcome"
	if resp.StatusCode == http.StatusOK {
		want = ""
	}
	fhirtest.Validate(t, want, b)
	return resp.StatusCode, b
}

// accessEntries returns the access.decided bodies appended since size.
func (w *world) accessEntries(t *testing.T, since uint64) []*ledger.AccessDecided {
	t.Helper()
	read, err := w.ledger.Read(t.Context(), since, w.size())
	if err != nil {
		t.Fatal(err)
	}
	var out []*ledger.AccessDecided
	for _, e := range read {
		if ad, ok := e.Body.(*ledger.AccessDecided); ok {
			out = append(out, ad)
		}
	}
	return out
}

// TestFHIRGatedRead: on a real gateway, GET /fhir/Observation/{id} is
// decided and logged exactly like GET /v1/records/{id} (the same ledger
// entry), a deny answers the same OperationOutcome as a missing record,
// a search reads (and logs) every entry it returns and its next links
// end, and a token holding only system/Observation.rs reads Observations
// and nothing else, over v1 and FHIR. On SQLite and PostgreSQL.
func TestFHIRGatedRead(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		testFHIRGatedRead(t, newWorld(t, func(c *serveConfig) { c.DB = dsn }))
	})
}

func testFHIRGatedRead(t *testing.T, w *world) {
	obsPath := "/fhir/Observation/" + w.rec.ID + "?purpose=TREAT"

	// Deny (no consent): logged, and the same 404 as a missing record.
	before := w.size()
	status, denied := w.fhirGet(t, obsPath, w.btok, "X-Request-ID", "rq-1")
	_, missing := w.fhirGet(t, "/fhir/Observation/0b7d0a52-1d1c-4b59-8a2a-00000000dead?purpose=TREAT", w.btok, "X-Request-ID", "rq-1")
	if status != http.StatusNotFound || sansRequestID(string(denied)) != sansRequestID(string(missing)) {
		t.Errorf("deny %d %s, missing %s", status, denied, missing)
	}
	if es := w.accessEntries(t, before); len(es) != 2 || es[0].Decision != "deny" || es[0].RecordID != w.rec.ID || es[0].Requester != "hosp-b" || es[0].Purpose != "TREAT" ||
		es[1].Decision != "deny" || es[1].Reason != "deny.not-found" || es[1].Patient != "" {
		t.Errorf("access entries of a deny and a missing read: %+v", es)
	}

	// Permit under consent: the same entry as the v1 read.
	cond := w.putRecord(w.atok, "pat-1", "conditions", "application/fhir+json", json.RawMessage(conditionFHIR))
	obs2 := w.putRecord(w.atok, "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "purposes": []string{"TREAT"}, "categories": []string{"labs", "conditions"}})
	before = w.size()
	status, body := w.fhirGet(t, obsPath, w.btok)
	var obs map[string]any
	json.Unmarshal(body, &obs)
	if status != http.StatusOK || obs["resourceType"] != "Observation" || obs["id"] != w.rec.ID || obs["status"] != "final" {
		t.Fatalf("permitted FHIR read: %d %s", status, body)
	}
	if s, b := w.read(w.btok, "TREAT"); s != http.StatusOK {
		t.Fatalf("v1 read: %d %s", s, b)
	}
	es := w.accessEntries(t, before)
	if len(es) != 2 {
		t.Fatalf("%d access entries for a FHIR and a v1 read, want 2", len(es))
	}
	fhirEntry, v1Entry := *es[0], *es[1]
	if fhirEntry.RequestID == "" || fhirEntry.RequestID == v1Entry.RequestID {
		t.Errorf("request IDs %q %q", fhirEntry.RequestID, v1Entry.RequestID)
	}
	fhirEntry.RequestID, v1Entry.RequestID = "", ""
	if fhirEntry != v1Entry || fhirEntry.Decision != "permit" || fhirEntry.GrantID == "" {
		t.Errorf("FHIR read logged %+v, v1 read %+v", fhirEntry, v1Entry)
	}

	// Search: follow next to the end; every entry resolves and was logged.
	before = w.size()
	var ids []string
	link := w.url + "/fhir/Observation?patient=pat-1&purpose=TREAT&_count=1"
	for i := 0; link != ""; i++ {
		if i > 4 {
			t.Fatal("the next links do not end")
		}
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		status, body := w.fhirGet(t, u.RequestURI(), w.btok)
		var b struct {
			Link  []struct{ Relation, URL string }
			Entry []struct {
				FullURL  string
				Resource struct{ ID string }
			}
		}
		if err := json.Unmarshal(body, &b); status != http.StatusOK || err != nil {
			t.Fatalf("search page %d: %d %s", i, status, body)
		}
		link = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				link = l.URL
			}
		}
		for _, e := range b.Entry {
			if e.FullURL != w.url+"/fhir/Observation/"+e.Resource.ID {
				t.Errorf("fullUrl %s for %s", e.FullURL, e.Resource.ID)
			}
			ids = append(ids, e.Resource.ID)
		}
	}
	if len(ids) != 2 || !(ids[0] == w.rec.ID && ids[1] == obs2.ID) {
		t.Errorf("search found %v, want %s then %s", ids, w.rec.ID, obs2.ID)
	}
	if es := w.accessEntries(t, before); len(es) != 2 || es[0].Decision != "permit" || es[1].Decision != "permit" {
		t.Errorf("search logged %+v, want a permit per entry", es)
	}

	// A token holding only system/Observation.rs.
	otok := w.token(w.register("hosp-c", auth.KindHospital), "system/Observation.rs")
	w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-c"}, "purposes": []string{"TREAT"}, "categories": []string{"labs", "conditions"}})
	for _, p := range []string{"/v1/records/" + w.rec.ID + "?purpose=TREAT", obsPath} {
		if s, b := w.do("GET", p, otok, nil); s != http.StatusOK {
			t.Errorf("Observation-only token, %s: %d %s", p, s, b)
		}
	}
	before = w.size()
	for _, p := range []string{"/v1/records/" + cond.ID + "?purpose=TREAT", "/fhir/Condition/" + cond.ID + "?purpose=TREAT"} {
		if s, b := w.do("GET", p, otok, nil); s != http.StatusNotFound {
			t.Errorf("Observation-only token, %s: %d %s", p, s, b)
		}
	}
	// Refused by scope, a record reads exactly as a missing one: the
	// not-found decision is logged, naming no patient and no category.
	for _, e := range w.accessEntries(t, before) {
		if e.Decision != "deny" || e.Reason != "deny.not-found" || e.Patient != "" || e.Category != "" {
			t.Errorf("refused by scope, logged %+v; want a not-found deny naming nothing", e)
		}
	}
	if n := len(w.accessEntries(t, before)); n != 2 {
		t.Errorf("refused by scope, %d access decisions were logged, want 2 (as for missing records)", n)
	}
	// The full-scope token reads the Condition.
	if s, b := w.fhirGet(t, "/fhir/Condition/"+cond.ID+"?purpose=TREAT", w.btok); s != http.StatusOK || !strings.Contains(string(b), "Type 2 diabetes") {
		t.Errorf("Condition read: %d %s", s, b)
	}
	if s, b := w.fhirGet(t, "/fhir/Condition?patient=pat-1&purpose=TREAT", otok); s != http.StatusOK || strings.Contains(string(b), cond.ID) {
		t.Errorf("Observation-only Condition search: %d %s", s, b)
	}
	// Metadata, anonymously.
	if s, _ := w.fhirGet(t, "/fhir/metadata", ""); s != http.StatusOK {
		t.Errorf("metadata: %d", s)
	}
}

// sansRequestID is an error body without its request ID, which differs
// between any two requests (the gateway's own).
func sansRequestID(s string) string {
	return requestIDValue.ReplaceAllString(s, `"valueString":"…"`)
}

var requestIDValue = regexp.MustCompile(`"valueString":"[0-9a-f-]{36}"`)
