package client_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/client"
)

// gateway is a stand-in for the gateway: it records the requests and
// answers from a table.
func gateway(t *testing.T, answers map[string]func(r *http.Request, body []byte) (int, any)) *client.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"not_found","message":"Not found.","request_id":"r0"}`)
			return
		}
		status, v := h(r, body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if s, ok := v.(string); ok {
			io.WriteString(w, s)
			return
		}
		json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(srv.Close)
	return client.New(srv.URL+"/", nil)
}

func TestClientCalls(t *testing.T) {
	c := gateway(t, map[string]func(*http.Request, []byte) (int, any){
		"POST /v1/records": func(r *http.Request, b []byte) (int, any) {
			var u client.RecordUpload
			if err := json.Unmarshal(b, &u); err != nil || u.Patient != "pat-1" || r.Header.Get("Authorization") != "Bearer tok-a" || r.Header.Get("Content-Type") != "application/json" {
				return 400, client.Error{Error: "invalid_request", Message: "bad upload"}
			}
			return 201, client.RecordCreated{ID: "rec-1", Commitment: "c0", LedgerIndex: 3}
		},
		"GET /v1/records/rec-1": func(r *http.Request, _ []byte) (int, any) {
			if r.URL.Query().Get("purpose") != "ETREAT" || r.Header.Get(client.HeaderBreakGlass) != "unconscious, needs labs" {
				return 404, client.Error{Error: "not_found", Message: "Not found."}
			}
			return 200, client.RecordContent{Record: client.Record{ID: "rec-1"}, Content: json.RawMessage(`{"resourceType":"Observation"}`)}
		},
		"POST /v1/consents": func(_ *http.Request, b []byte) (int, any) {
			return 201, client.ConsentResponse{Consent: client.Consent{ID: "cns_1", Status: "active"}, Receipt: client.EntryProof{Index: 4, TreeSize: 5}}
		},
		"POST /v1/consents/cns_1/revoke": func(*http.Request, []byte) (int, any) {
			return 200, client.ConsentResponse{Consent: client.Consent{ID: "cns_1", Status: "revoked"}}
		},
		"GET /v1/me/access-log": func(*http.Request, []byte) (int, any) {
			return 200, client.EventList{Events: []client.AccessEvent{{LedgerIndex: 9, Decision: "permit"}}}
		},
		"GET /v1/audit/events": func(r *http.Request, _ []byte) (int, any) {
			return 200, client.EventList{NextCursor: r.URL.Query().Get("patient")}
		},
		"GET /v1/consents": func(*http.Request, []byte) (int, any) {
			return 200, client.ConsentList{Consents: []client.Consent{{ID: "cns_1"}}}
		},
		"GET /v1/patients/pat 1/records": func(*http.Request, []byte) (int, any) {
			return 200, client.RecordList{Records: []client.Record{{ID: "rec-1"}}}
		},
		"GET /v1/whoami":                   func(*http.Request, []byte) (int, any) { return 200, client.Whoami{Org: "hosp-a"} },
		"GET /v1/ledger/entries/not-json":  func(*http.Request, []byte) (int, any) { return 502, "<html>bad gateway</html>" },
		"GET /v1/ledger/entries/bad-reply": func(*http.Request, []byte) (int, any) { return 200, "{" },
	})
	ctx := t.Context()
	created, err := c.PutRecord(ctx, "tok-a", client.RecordUpload{Patient: "pat-1", Category: "labs", ContentType: "application/fhir+json", Content: json.RawMessage(`{}`)})
	if err != nil || created.ID != "rec-1" {
		t.Fatalf("PutRecord = %+v, %v", created, err)
	}
	rec, err := c.ReadRecord(ctx, "tok-b", "rec-1", "ETREAT", "unconscious, needs labs")
	if err != nil || string(rec.Content) != `{"resourceType":"Observation"}` {
		t.Errorf("ReadRecord = %+v, %v", rec, err)
	}
	_, err = c.ReadRecord(ctx, "tok-b", "rec-1", "TREAT", "")
	var se *client.StatusError
	if !errors.Is(err, client.ErrNotFound) || !errors.As(err, &se) || se.Body.Message != "Not found." || se.Status != 404 {
		t.Errorf("denied read: %v", err)
	}
	if gr, err := c.Grant(ctx, "tok-p", client.ConsentRequest{Grantee: client.Grantee{Org: "hosp-b"}, Purposes: []string{"TREAT"}}); err != nil || gr.Receipt.Index != 4 {
		t.Errorf("Grant = %+v, %v", gr, err)
	}
	if rv, err := c.Revoke(ctx, "tok-p", "cns_1"); err != nil || rv.Consent.Status != "revoked" {
		t.Errorf("Revoke = %+v, %v", rv, err)
	}
	if l, err := c.AccessLog(ctx, "tok-p", nil); err != nil || len(l.Events) != 1 {
		t.Errorf("AccessLog = %+v, %v", l, err)
	}
	if l, err := c.AuditEvents(ctx, "tok-r", url.Values{"patient": {"pat-1"}}); err != nil || l.NextCursor != "pat-1" {
		t.Errorf("AuditEvents = %+v, %v", l, err)
	}
	if l, err := c.Consents(ctx, "tok-p", url.Values{"limit": {"5"}}); err != nil || len(l.Consents) != 1 {
		t.Errorf("Consents = %+v, %v", l, err)
	}
	if l, err := c.PatientRecords(ctx, "tok-a", "pat 1", "TREAT"); err != nil || len(l.Records) != 1 {
		t.Errorf("PatientRecords = %+v, %v", l, err)
	}
	if w, err := c.Whoami(ctx, "tok-a"); err != nil || w.Org != "hosp-a" {
		t.Errorf("Whoami = %+v, %v", w, err)
	}
	err = c.Do(ctx, "GET", "/v1/ledger/entries/not-json", "", nil, 200, nil)
	if !errors.As(err, &se) || se.Status != 502 || !strings.Contains(err.Error(), "bad gateway") || errors.Is(err, client.ErrNotFound) {
		t.Errorf("non-JSON error answer: %v", err)
	}
	var out map[string]any
	if err := c.Do(ctx, "GET", "/v1/ledger/entries/bad-reply", "", nil, 200, &out); err == nil {
		t.Error("a malformed answer decoded")
	}
}

func TestExchange(t *testing.T) {
	var form url.Values
	c := gateway(t, map[string]func(*http.Request, []byte) (int, any){
		"POST /oauth2/token": func(r *http.Request, b []byte) (int, any) {
			form, _ = url.ParseQuery(string(b))
			if form.Get("client_assertion") != "good" {
				return 401, map[string]string{"error": "invalid_client", "error_description": "signature does not verify"}
			}
			return 200, client.TokenResponse{AccessToken: "at", TokenType: "Bearer", ExpiresIn: 300, Scope: "system/records.read"}
		},
	})
	tr, err := c.Exchange(t.Context(), "", "good", "system/records.read")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(client.TokenResponse{AccessToken: "at", TokenType: "Bearer", ExpiresIn: 300, Scope: "system/records.read"}, tr); diff != "" {
		t.Errorf("token (-want +got):\n%s", diff)
	}
	want := url.Values{
		"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {"good"}, "scope": {"system/records.read"},
	}
	if diff := cmp.Diff(want, form); diff != "" {
		t.Errorf("form (-want +got):\n%s", diff)
	}
	if _, err := c.Exchange(t.Context(), "", "bad", ""); err == nil || !strings.Contains(err.Error(), "invalid_client: signature does not verify") {
		t.Errorf("refused assertion: %v", err)
	}
	if _, err := c.Exchange(t.Context(), c.BaseURL()+"/elsewhere", "good", ""); err == nil {
		t.Error("a 404 HTML answer gave a token")
	}
}
