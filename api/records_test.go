package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

const recID = "0b7d0a52-1d1c-4b59-8a2a-000000000001"

var labRecord = records.Record{
	ID: recID, Holder: "hosp-a", Patient: "ps_pat-1", Category: "labs", ResourceType: "Observation",
	ContentType: "application/fhir+json", Size: 30, Commitment: "ab", LedgerIndex: 7,
	CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
}

const labContent = `{"resourceType":"Observation"}`

func TestPostRecord(t *testing.T) {
	ts := newTestServer(t)
	var got records.PutRequest
	ts.vault.put = func(r records.PutRequest) (records.Record, error) {
		got = r
		if r.Patient == "bad" {
			return records.Record{}, &records.InputError{Err: records.ErrInvalid, Message: "patient must be 1-256 characters"}
		}
		return records.Record{ID: recID, Commitment: "c0ffee", LedgerIndex: 3}, nil
	}
	body := map[string]any{"patient": "pat-1", "category": "labs", "content_type": "application/fhir+json", "content": json.RawMessage(labContent)}
	rec := ts.do("POST", "/v1/records", "hosp-a", body)
	if rec.Code != http.StatusCreated || rec.Header().Get("Location") != "/v1/records/"+recID {
		t.Fatalf("post: %d %s", rec.Code, rec.Body)
	}
	if diff := cmp.Diff(recordCreated{ID: recID, Commitment: "c0ffee", LedgerIndex: 3}, decodeBody[recordCreated](t, rec)); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	want := records.PutRequest{Holder: "hosp-a", Patient: "pat-1", Category: "labs", ContentType: "application/fhir+json", Content: []byte(labContent), ResourceType: "Observation"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("put request (-want +got):\n%s", diff)
	}
	pdf := map[string]any{"patient": "pat-1", "category": "notes", "content_type": "application/pdf", "resource_type": "DocumentReference", "content": "JVBERg=="}
	if rec := ts.do("POST", "/v1/records", "hosp-a", pdf); rec.Code != http.StatusCreated || got.ResourceType != "DocumentReference" || string(got.Content) != "%PDF" {
		t.Errorf("PDF upload: %d, put %+v", rec.Code, got)
	}
	for _, tt := range []struct {
		name   string
		token  string
		body   any
		status int
		msg    string
	}{
		{"no patient", "hosp-a", map[string]any{"category": "labs", "content_type": "application/pdf", "content": "AAAA"}, 400, "patient is required."},
		{"no category", "hosp-a", map[string]any{"patient": "p", "content_type": "application/pdf", "content": "AAAA"}, 400, "category is required."},
		{"unknown category", "hosp-a", map[string]any{"patient": "p", "category": "astrology", "content_type": "application/pdf", "content": "AAAA"}, 400, `category "astrology" is not one of the record categories.`},
		{"no content type", "hosp-a", map[string]any{"patient": "p", "category": "labs", "content": "AAAA"}, 400, "content_type is required."},
		{"no content", "hosp-a", map[string]any{"patient": "p", "category": "labs", "content_type": "application/pdf"}, 400, "content is required."},
		{"bad base64", "hosp-a", map[string]any{"patient": "p", "category": "labs", "content_type": "application/pdf", "content": "!!"}, 400, "content is not valid base64 (standard alphabet, padded): bad input at offset 0"},
		{"vault refuses", "hosp-a", map[string]any{"patient": "bad", "category": "labs", "content_type": "application/pdf", "content": "AAAA"}, 400, "patient must be 1-256 characters"},
		{"unknown field", "hosp-a", map[string]any{"patient": "p", "holder": "hosp-z"}, 400, `Unknown field "holder".`},
		{"not JSON", "hosp-a", "{", 400, "Request body is empty or truncated."},
		{"two values", "hosp-a", `{"patient":"p"} {}`, 400, "Request body must hold exactly one JSON value."},
		{"syntax error", "hosp-a", `{"patient": x}`, 400, "Malformed JSON at byte 13."},
		{"wrong type", "hosp-a", `{"patient":7}`, 400, `Field "patient" has the wrong type.`},
		{"patient token", "pat-1", body, 403, "This route is for organisations."},
		{"regulator", "reg-x", body, 403, "Not allowed for this kind of organisation."},
		{"no write scope", "hosp-b", body, 403, "The token lacks scope system/records.write."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := ts.do("POST", "/v1/records", tt.token, tt.body)
			e := errorOf(t, rec)
			if rec.Code != tt.status || e.Message != tt.msg {
				t.Errorf("%d %q, want %d %q", rec.Code, e.Message, tt.status, tt.msg)
			}
			if strings.Contains(e.Message, "invalid record") || strings.Contains(e.Message, "records:") {
				t.Errorf("message %q carries an error chain's prefix", e.Message)
			}
		})
	}
	rec = ts.do("POST", "/v1/records", "hosp-a", "{}", "Content-Type", "text/plain")
	if rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d", rec.Code)
	}
	ts.vault.put = func(records.PutRequest) (records.Record, error) {
		return records.Record{}, &records.InputError{Err: records.ErrTooLarge, Message: "2000000 bytes; the limit is 1048576"}
	}
	rec = ts.do("POST", "/v1/records", "hosp-a", body)
	if e := errorOf(t, rec); rec.Code != http.StatusRequestEntityTooLarge || e.Message != "2000000 bytes; the limit is 1048576" {
		t.Errorf("too large: %d %+v", rec.Code, e)
	}
	ts.vault.put = func(records.PutRequest) (records.Record, error) {
		return records.Record{}, errors.Join(errors.New("records: register on ledger"), ledger.ErrUnavailable)
	}
	rec = ts.do("POST", "/v1/records", "hosp-a", body)
	if e := errorOf(t, rec); rec.Code != http.StatusServiceUnavailable || e.Outcome != "unknown" ||
		e.Message != "The ledger is unavailable (the consortium may have lost its quorum). Retry shortly. "+outcomeUnknownNoKey {
		t.Errorf("ledger down: %d %+v", rec.Code, e)
	}
}

func TestGetRecord(t *testing.T) {
	ts := newTestServer(t)
	var got access.ReadRequest
	ts.gate.read = func(r access.ReadRequest) (access.Result, error) {
		got = r
		if r.RecordID != recID || r.Caller.Org != "hosp-a" && r.Purpose != consent.PurposeTreatment {
			return access.Result{}, access.ErrNotFound
		}
		rec := labRecord
		content := labContent
		if r.RecordID == recID && r.Purpose == consent.PurposePayment {
			rec.ContentType, content = "application/pdf", "%PDF"
		}
		return access.Result{Record: rec, Content: []byte(content), Decision: consent.Decision{Effect: consent.Permit}}, nil
	}
	rec := ts.do("GET", "/v1/records/"+recID+"?purpose=TREAT", "hosp-b", nil, HeaderBreakGlass, "reason", "X-Request-ID", "req-9")
	if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("read: %d %s", rec.Code, rec.Body)
	}
	want := access.ReadRequest{Caller: access.Caller{Org: "hosp-b", Kind: "hospital", Scopes: []auth.Scope{auth.ScopeRecordsRead}}, RecordID: recID, Purpose: "TREAT", Justification: "reason", RequestID: rec.Header().Get("X-Request-ID"), ClientRequestID: "req-9"}
	if got.RequestID == "req-9" || got.RequestID == "" {
		t.Errorf("the gate got the client's request ID %q as the gateway's", got.RequestID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gate request (-want +got):\n%s", diff)
	}
	body := decodeBody[recordResponse](t, rec)
	if diff := cmp.Diff(metaOf(labRecord, ""), body.Record); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	if string(body.Content) != labContent {
		t.Errorf("FHIR content %s, want inline JSON", body.Content)
	}
	// Non-FHIR content is base64.
	rec = ts.do("GET", "/v1/records/"+recID+"?purpose=HPAYMT", "hosp-a", nil)
	if body := decodeBody[recordResponse](t, rec); string(body.Content) != `"`+base64.StdEncoding.EncodeToString([]byte("%PDF"))+`"` {
		t.Errorf("PDF content %s", body.Content)
	}
	// A deny and a missing record answer the same.
	denied := ts.do("GET", "/v1/records/"+recID+"?purpose=HPAYMT", "hosp-b", nil, "X-Request-ID", "r")
	missing := ts.do("GET", "/v1/records/0b7d0a52-1d1c-4b59-8a2a-00000000dead?purpose=HPAYMT", "hosp-b", nil, "X-Request-ID", "r")
	de, me := errorOf(t, denied), errorOf(t, missing)
	de.RequestID, me.RequestID = "", "" // the gateway's own, fresh per request
	if denied.Code != http.StatusNotFound || de != me || missing.Code != denied.Code {
		t.Errorf("deny %d %s, missing %d %s", denied.Code, denied.Body, missing.Code, missing.Body)
	}
	for _, tt := range []struct {
		name, token, path string
		status            int
		msg               string
	}{
		{"unknown purpose", "hosp-b", "/v1/records/" + recID + "?purpose=SNOOP", 400, `purpose "SNOOP" is not one of TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH.`},
		{"patient token", "pat-1", "/v1/records/" + recID, 403, "This route is for organisations."},
		{"regulator", "reg-x", "/v1/records/" + recID, 403, "Not allowed for this kind of organisation."},
		{"no read scope", "noscope", "/v1/records/" + recID, 403, "The token lacks scope system/records.read (or system/<ResourceType>.rs)."},
	} {
		rec := ts.do("GET", tt.path, tt.token, nil)
		if e := errorOf(t, rec); rec.Code != tt.status || e.Message != tt.msg {
			t.Errorf("%s: %d %q, want %d %q", tt.name, rec.Code, e.Message, tt.status, tt.msg)
		}
	}
	// The gate's failure to log is a 503 and serves nothing.
	ts.gate.read = func(access.ReadRequest) (access.Result, error) {
		return access.Result{}, errors.Join(errors.New("access: log access decision"), ledger.ErrUnavailable)
	}
	rec = ts.do("GET", "/v1/records/"+recID+"?purpose=TREAT", "hosp-b", nil)
	if e := errorOf(t, rec); rec.Code != http.StatusServiceUnavailable || e.Error != "unavailable" {
		t.Errorf("log failure: %d %+v", rec.Code, e)
	}
}

// TestGetRecordSealed: Accept: application/jose seals the content to the
// caller's registered encryption key; without one the answer is 406
// before anything is read.
func TestGetRecordSealed(t *testing.T) {
	ts := newTestServer(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.Import(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{jwk.KeyUsageKey: "enc", jwk.AlgorithmKey: jwa.ECDH_ES_A256KW(), jwk.KeyIDKey: "enc-1"} {
		if err := pub.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	ts.keys.key = func(org string) (jwk.Key, bool, error) {
		if org == "hosp-b" {
			return pub, true, nil
		}
		return nil, false, nil
	}
	reads := 0
	ts.gate.read = func(access.ReadRequest) (access.Result, error) {
		reads++
		return access.Result{Record: labRecord, Content: []byte(labContent)}, nil
	}
	rec := ts.do("GET", "/v1/records/"+recID+"?purpose=TREAT", "hosp-b", nil, "Accept", "text/html, application/jose;q=0.9")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/jose" {
		t.Fatalf("sealed read: %d %s", rec.Code, rec.Body)
	}
	pt, err := jwe.Decrypt(rec.Body.Bytes(), jwe.WithKey(jwa.ECDH_ES_A256KW(), priv))
	if err != nil || string(pt) != labContent {
		t.Errorf("decrypt: %q %v", pt, err)
	}
	rec = ts.do("GET", "/v1/records/"+recID+"?purpose=TREAT", "hosp-a", nil, "Accept", "application/jose")
	if e := errorOf(t, rec); rec.Code != http.StatusNotAcceptable || e.Error != "not_acceptable" || reads != 1 {
		t.Errorf("no encryption key: %d %+v after %d reads", rec.Code, e, reads)
	}
	ts.keys.key = func(string) (jwk.Key, bool, error) { return nil, false, errors.New("registry down") }
	if rec := ts.do("GET", "/v1/records/"+recID+"?purpose=TREAT", "hosp-b", nil, "Accept", "application/jose"); rec.Code != http.StatusInternalServerError {
		t.Errorf("key lookup failure: %d", rec.Code)
	}
}

func TestDeleteRecord(t *testing.T) {
	ts := newTestServer(t)
	ts.vault.shred = func(holder, id string) (uint64, error) {
		if holder != "hosp-a" || id != recID {
			return 0, records.ErrNotFound
		}
		return 11, nil
	}
	rec := ts.do("DELETE", "/v1/records/"+recID, "hosp-a", nil)
	if diff := cmp.Diff(shredResponse{ID: recID, Shredded: true, LedgerIndex: 11}, decodeBody[shredResponse](t, rec)); rec.Code != http.StatusOK || diff != "" {
		t.Errorf("shred: %d (-want +got):\n%s", rec.Code, diff)
	}
	if rec := ts.do("DELETE", "/v1/records/"+recID, "hosp-c-missing", nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("unknown token: %d", rec.Code)
	}
	ts.vault.shred = func(string, string) (uint64, error) { return 0, records.ErrNotFound }
	if rec := ts.do("DELETE", "/v1/records/"+recID, "hosp-a", nil); rec.Code != http.StatusNotFound {
		t.Errorf("another holder's record: %d", rec.Code)
	}
}

func TestListPatientRecords(t *testing.T) {
	ts := newTestServer(t)
	var got access.ListRequest
	ts.gate.readable = func(r access.ListRequest) ([]records.Record, error) {
		got = r
		if r.Caller.Org == "hosp-a" {
			return []records.Record{labRecord}, nil
		}
		return nil, nil
	}
	rec := ts.do("GET", "/v1/patients/pat-1/records?purpose=TREAT", "hosp-a", nil)
	if diff := cmp.Diff(recordList{Records: []recordMeta{metaOf(labRecord, "pat-1")}}, decodeBody[recordList](t, rec)); rec.Code != http.StatusOK || diff != "" {
		t.Errorf("holder's listing: %d (-want +got):\n%s", rec.Code, diff)
	}
	want := access.ListRequest{Caller: access.Caller{Org: "hosp-a", Kind: "hospital", Scopes: testPrincipals["hosp-a"].Scopes}, Patient: "pat-1", Purpose: "TREAT"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("list request (-want +got):\n%s", diff)
	}
	rec = ts.do("GET", "/v1/patients/pat-1/records?purpose=TREAT", "hosp-b", nil)
	if rec.Code != http.StatusOK || rec.Body.String() != `{"records":[]}` {
		t.Errorf("nothing readable: %d %s", rec.Code, rec.Body)
	}
	if rec := ts.do("GET", "/v1/patients/pat-1/records?purpose=NOPE", "hosp-b", nil); rec.Code != http.StatusBadRequest {
		t.Errorf("bad purpose: %d", rec.Code)
	}
	// Pages, newest first, continued by next_cursor.
	three := []records.Record{labRecord, labRecord, labRecord}
	for i := range three {
		three[i].ID, three[i].LedgerIndex = fmt.Sprintf("rec-%d", i), uint64(5+i)
	}
	ts.gate.readable = func(access.ListRequest) ([]records.Record, error) { return three, nil }
	rec = ts.do("GET", "/v1/patients/pat-1/records?purpose=TREAT&limit=2", "hosp-a", nil)
	first := decodeBody[recordList](t, rec)
	if rec.Code != http.StatusOK || len(first.Records) != 2 || first.Records[0].ID != "rec-2" || first.Records[1].ID != "rec-1" || first.NextCursor == "" {
		t.Errorf("first page: %d %s", rec.Code, rec.Body)
	}
	rec = ts.do("GET", "/v1/patients/pat-1/records?purpose=TREAT&limit=2&cursor="+first.NextCursor, "hosp-a", nil)
	if second := decodeBody[recordList](t, rec); rec.Code != http.StatusOK || len(second.Records) != 1 || second.Records[0].ID != "rec-0" || second.NextCursor != "" {
		t.Errorf("second page: %d %s", rec.Code, rec.Body)
	}
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "cursor=forged"} {
		if rec := ts.do("GET", "/v1/patients/pat-1/records?purpose=TREAT&"+q, "hosp-a", nil); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, rec.Code, rec.Body)
		}
	}
	ts.gate.readable = func(access.ListRequest) ([]records.Record, error) {
		return nil, &records.InputError{Err: records.ErrInvalid, Message: "patient must be 1-256 characters, without control characters or surrounding spaces"}
	}
	if rec := ts.do("GET", "/v1/patients/%20x/records", "hosp-b", nil); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "patient must be") {
		t.Errorf("bad patient: %d %s", rec.Code, rec.Body)
	}
}

// TestRecordMetadataNamesNoPseudonym: no record response carries the
// vault's patient pseudonym (one value for a patient at every hospital):
// a read of one record names no patient, a listing the patient ID the
// caller named.
func TestRecordMetadataNamesNoPseudonym(t *testing.T) {
	ts := newTestServer(t)
	ts.gate.read = func(access.ReadRequest) (access.Result, error) {
		return access.Result{Record: labRecord, Content: []byte(labContent), Decision: consent.Decision{Effect: consent.Permit}}, nil
	}
	ts.gate.readable = func(access.ListRequest) ([]records.Record, error) { return []records.Record{labRecord}, nil }
	for _, tt := range []struct{ path, want string }{
		{"/v1/records/" + recID + "?purpose=TREAT", ""},
		{"/v1/patients/pat-1/records?purpose=TREAT", "pat-1"},
	} {
		rec := ts.do("GET", tt.path, "hosp-b", nil)
		if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), labRecord.Patient) {
			t.Errorf("GET %s: %d, pseudonym in %s", tt.path, rec.Code, rec.Body)
		}
		var body struct {
			Patient *string `json:"patient"`
			Records []struct {
				Patient *string `json:"patient"`
			} `json:"records"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		got := body.Patient
		if len(body.Records) == 1 {
			got = body.Records[0].Patient
		}
		if (tt.want == "") != (got == nil) || got != nil && *got != tt.want {
			t.Errorf("GET %s: patient %v, want %q", tt.path, got, tt.want)
		}
	}
}
