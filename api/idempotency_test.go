package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/eligibility"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/idempotency/idemstore"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// newKeyedServer is the test server with its idempotency keys in a real
// store (SQLite).
func newKeyedServer(t *testing.T) (*testServer, *idemstore.Store) {
	t.Helper()
	keys, err := idemstore.Open(t.Context(), databasetest.SQLite(t), idemstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return newTestServer(t, WithIdempotency(keys)), keys
}

var uploadBody = map[string]any{"patient": "pat-1", "category": "labs", "content_type": "application/fhir+json", "content": json.RawMessage(labContent)}

// TestIdempotentUpload: an upload answered 503 says its outcome is unknown
// and how to find it; the retry with the same key re-makes the same write
// (the same record ID) and its 201 is replayed to every later repeat
// without calling the vault; the same key with another body is a 422.
func TestIdempotentUpload(t *testing.T) {
	ts, _ := newKeyedServer(t)
	var (
		calls int
		ids   []string
	)
	ts.vault.put = func(r records.PutRequest) (records.Record, error) {
		calls++
		ids = append(ids, r.ID)
		if calls == 1 {
			return records.Record{}, fmt.Errorf("records: register on ledger (outcome unknown): %w", ledger.ErrUnavailable)
		}
		return records.Record{ID: r.ID, Commitment: "c0ffee", LedgerIndex: 9}, nil
	}
	const key = "8e03978e-40d5-43e8-bc93-6894a57f9324"
	hdr := []string{HeaderIdempotencyKey, `"` + key + `"`}

	rec := ts.do("POST", "/v1/records", "hosp-a", uploadBody, hdr...)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("first attempt: %d %s", rec.Code, rec.Body)
	}
	e := errorOf(t, rec)
	id := ids[0]
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("the key fixed no record ID: %q", id)
	}
	want := errorResponse{
		Error: "unavailable", RequestID: e.RequestID, Outcome: "unknown", IdempotencyKey: key, Location: "/v1/records/" + id,
		Message: "The ledger is unavailable (the consortium may have lost its quorum). Retry shortly. " + outcomeUnknown + " Or look for it: GET /v1/records/" + id + ".",
	}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("503 body (-want +got):\n%s", diff)
	}
	if got := rec.Header().Get("Retry-After"); got == "" {
		t.Error("503 without Retry-After")
	}
	if got := rec.Header().Get(HeaderIdempotencyKey); got != `"`+key+`"` {
		t.Errorf("Idempotency-Key echoed as %q", got)
	}

	rec = ts.do("POST", "/v1/records", "hosp-a", uploadBody, hdr...)
	if rec.Code != http.StatusCreated || len(ids) != 2 || ids[1] != id {
		t.Fatalf("retry: %d %s; vault IDs %v, want %s twice", rec.Code, rec.Body, ids, id)
	}
	created := rec.Body.String()

	for range 2 {
		rec = ts.do("POST", "/v1/records", "hosp-a", uploadBody, hdr...)
		if rec.Code != http.StatusCreated || rec.Body.String() != created || rec.Header().Get("Location") != "/v1/records/"+id ||
			rec.Header().Get(HeaderIdempotentReplayed) != "true" || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("repeat: %d %q %v", rec.Code, rec.Body, rec.Header())
		}
	}
	if calls != 2 {
		t.Errorf("vault called %d times, want 2", calls)
	}

	other := map[string]any{"patient": "pat-2", "category": "labs", "content_type": "application/fhir+json", "content": json.RawMessage(labContent)}
	rec = ts.do("POST", "/v1/records", "hosp-a", other, hdr...)
	if e := errorOf(t, rec); rec.Code != http.StatusUnprocessableEntity || e.Error != "idempotency_key_reused" {
		t.Errorf("same key, other body: %d %+v", rec.Code, e)
	}
	// The same key on another route is another request too.
	ts.vault.shred = func(string, string) (uint64, error) { t.Error("shred ran"); return 0, nil }
	rec = ts.do("DELETE", "/v1/records/"+id, "hosp-a", nil, hdr...)
	if rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("same key, other route: %d %s", rec.Code, rec.Body)
	}
}

// TestIdempotencyKeyMade: without a key the gateway makes one, uses it and
// says it, so that a repeat of the very request is safe all the same.
func TestIdempotencyKeyMade(t *testing.T) {
	ts, _ := newKeyedServer(t)
	var ids []string
	ts.vault.put = func(r records.PutRequest) (records.Record, error) {
		ids = append(ids, r.ID)
		return records.Record{}, ledger.ErrUnavailable
	}
	rec := ts.do("POST", "/v1/records", "hosp-a", uploadBody)
	e := errorOf(t, rec)
	made := rec.Header().Get(HeaderIdempotencyKey)
	if rec.Code != 503 || made != `"`+e.IdempotencyKey+`"` || e.IdempotencyKey == "" || ids[0] == "" {
		t.Fatalf("503 %+v with key header %q, record IDs %v", e, made, ids)
	}
	rec = ts.do("POST", "/v1/records", "hosp-a", uploadBody, HeaderIdempotencyKey, made)
	if rec.Code != 503 || len(ids) != 2 || ids[1] != ids[0] {
		t.Errorf("repeat with the key made: %d, record IDs %v", rec.Code, ids)
	}
	rec = ts.do("POST", "/v1/records", "hosp-a", uploadBody)
	if len(ids) != 3 || ids[2] == ids[0] || errorOf(t, rec).IdempotencyKey == e.IdempotencyKey {
		t.Errorf("a request without a key is a new write: record IDs %v, key %q", ids, errorOf(t, rec).IdempotencyKey)
	}
}

// TestIdempotencyBadInput: a first attempt refused as bad input changed
// nothing, so its key may carry the corrected request.
func TestIdempotencyBadInput(t *testing.T) {
	ts, _ := newKeyedServer(t)
	ts.vault.put = func(r records.PutRequest) (records.Record, error) {
		if r.Patient == "bad" {
			return records.Record{}, &records.InputError{Err: records.ErrInvalid, Message: "bad patient"}
		}
		return records.Record{ID: r.ID, LedgerIndex: 1}, nil
	}
	hdr := []string{HeaderIdempotencyKey, `"k-1"`}
	bad := map[string]any{"patient": "bad", "category": "labs", "content_type": "application/fhir+json", "content": json.RawMessage(labContent)}
	if rec := ts.do("POST", "/v1/records", "hosp-a", bad, hdr...); rec.Code != 400 {
		t.Fatalf("bad input: %d %s", rec.Code, rec.Body)
	}
	if rec := ts.do("POST", "/v1/records", "hosp-a", uploadBody, hdr...); rec.Code != 201 {
		t.Fatalf("corrected request with the same key: %d %s", rec.Code, rec.Body)
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	for _, tt := range []struct {
		vals    []string
		want    string
		wantErr bool
	}{
		{nil, "", false},
		{[]string{`"abc-123"`}, "abc-123", false},
		{[]string{` "with \"quotes\" and \\" `}, `with "quotes" and \`, false},
		{[]string{`abc-123`}, "abc-123", false},
		{[]string{`""`}, "", true},
		{[]string{`"unterminated`}, "", true},
		{[]string{`"a";p=1`}, "", true},
		{[]string{`"bad \x escape"`}, "", true},
		{[]string{`two words`}, "", true},
		{[]string{`"a"`, `"b"`}, "", true},
		{[]string{`"` + strings.Repeat("k", 256) + `"`}, "", true},
		{[]string{"\"caf\u00e9\""}, "", true},
	} {
		got, err := parseIdempotencyKey(tt.vals)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseIdempotencyKey(%q) = %q, %v; want %q, error %v", tt.vals, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got != "" {
			again, err := parseIdempotencyKey([]string{sfString(got)})
			if err != nil || again != got {
				t.Errorf("sfString(%q) = %s does not parse back: %q, %v", got, sfString(got), again, err)
			}
		}
	}
	ts, _ := newKeyedServer(t)
	rec := ts.do("POST", "/v1/records", "hosp-a", uploadBody, HeaderIdempotencyKey, `"unterminated`)
	if e := errorOf(t, rec); rec.Code != 400 || !strings.Contains(e.Message, "Idempotency-Key") {
		t.Errorf("malformed key: %d %+v", rec.Code, e)
	}
}

// TestIdempotencyNotKept: a gateway without a key store refuses keyed
// requests instead of ignoring the key.
func TestIdempotencyNotKept(t *testing.T) {
	ts := newTestServer(t)
	rec := ts.do("POST", "/v1/records", "hosp-a", uploadBody, HeaderIdempotencyKey, `"k"`)
	if rec.Code != 400 {
		t.Errorf("keyed request without a key store: %d %s", rec.Code, rec.Body)
	}
}

// TestIdempotentConsents: a grant's key fixes the consent ID and the time
// its period starts; the retry says it is one; a revocation's retry
// is told to the service as such. Keys of two patients never meet.
func TestIdempotentConsents(t *testing.T) {
	ts, _ := newKeyedServer(t)
	fail := true
	ts.changes.grant = func(patient string, g consent.Grant) (consent.Grant, access.Receipt, error) {
		if fail {
			return consent.Grant{}, access.Receipt{}, ledger.ErrUnavailable
		}
		w := ts.changes.writes[len(ts.changes.writes)-1]
		return consent.Grant{ID: w.ID, Patient: patient, Grantee: g.Grantee, Effect: consent.Permit, NotBefore: w.At, NotAfter: w.At.Add(time.Hour)}, access.Receipt{}, nil
	}
	body := map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "purposes": []string{"TREAT"}}
	hdr := []string{HeaderIdempotencyKey, `"grant-1"`}
	if rec := ts.do("POST", "/v1/consents", "pat-1", body, hdr...); rec.Code != 503 || errorOf(t, rec).Location == "" {
		t.Fatalf("first attempt: %d %s", rec.Code, rec.Body)
	}
	fail = false
	rec := ts.do("POST", "/v1/consents", "pat-1", body, hdr...)
	if rec.Code != 201 {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body)
	}
	w := ts.changes.writes
	if len(w) != 2 || w[0].Retry || !w[1].Retry || w[0].ID != w[1].ID || !consent.ValidID(w[0].ID) || !w[0].At.Equal(w[1].At) || w[0].At.IsZero() {
		t.Fatalf("writes %+v, want one consent ID and start, the second a retry", w)
	}
	if got := errorOf(t, ts.do("POST", "/v1/consents", "pat-1", body, hdr...)); got.Error != "" {
		t.Fatalf("replay: %+v", got)
	}
	if len(ts.changes.writes) != 2 {
		t.Errorf("a replay reached the service")
	}
	// pat-2's key "grant-1" is its own.
	if rec := ts.do("POST", "/v1/consents", "pat-2", body, hdr...); rec.Code != 201 || len(ts.changes.writes) != 3 || ts.changes.writes[2].Retry || ts.changes.writes[2].ID == w[0].ID {
		t.Errorf("another patient's key: %d, writes %+v", rec.Code, ts.changes.writes)
	}

	revokes := 0
	ts.changes.revoke = func(patient, id string) (consent.Grant, access.Receipt, error) {
		revokes++
		if revokes == 1 {
			return consent.Grant{}, access.Receipt{}, ledger.ErrUnavailable
		}
		return consent.Grant{ID: id, Patient: patient, Revoked: true}, access.Receipt{}, nil
	}
	path := "/v1/consents/" + w[0].ID + "/revoke"
	rhdr := []string{HeaderIdempotencyKey, `"revoke-1"`}
	if rec := ts.do("POST", path, "pat-1", nil, rhdr...); rec.Code != 503 || errorOf(t, rec).Location != "/v1/consents/"+w[0].ID {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	if rec := ts.do("POST", path, "pat-1", nil, rhdr...); rec.Code != 200 {
		t.Fatalf("revoke retry: %d %s", rec.Code, rec.Body)
	}
	if last := ts.changes.writes[len(ts.changes.writes)-1]; !last.Retry || last.ID != "" {
		t.Errorf("revocation retry told as %+v", last)
	}
	// The revocation's key on another consent's path is another request.
	if rec := ts.do("POST", "/v1/consents/cns_00000000000000000000000000000000/revoke", "pat-1", nil, rhdr...); rec.Code != 422 {
		t.Errorf("revocation key on another consent: %d", rec.Code)
	}
}

// TestIdempotentShred: a shredding's retry asks the vault for ShredRetry,
// which answers a shredding logged meanwhile.
func TestIdempotentShred(t *testing.T) {
	ts, _ := newKeyedServer(t)
	ts.vault.shred = func(string, string) (uint64, error) { return 0, ledger.ErrUnavailable }
	ts.vault.shredRetry = func(holder, id string) (uint64, error) { return 12, nil }
	hdr := []string{HeaderIdempotencyKey, `"shred-1"`}
	if rec := ts.do("DELETE", "/v1/records/"+recID, "hosp-a", nil, hdr...); rec.Code != 503 {
		t.Fatalf("shred: %d %s", rec.Code, rec.Body)
	}
	rec := ts.do("DELETE", "/v1/records/"+recID, "hosp-a", nil, hdr...)
	if got := decodeBody[shredResponse](t, rec); rec.Code != 200 || got.LedgerIndex != 12 {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body)
	}
}

// TestIdempotencyInProgress: a repeat while the first attempt runs is a
// 409 with Retry-After; it runs nothing.
func TestIdempotencyInProgress(t *testing.T) {
	ts, _ := newKeyedServer(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls int
	var mu sync.Mutex
	ts.vault.put = func(r records.PutRequest) (records.Record, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		close(entered)
		<-release
		return records.Record{ID: r.ID}, nil
	}
	hdr := []string{HeaderIdempotencyKey, `"slow"`}
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- ts.do("POST", "/v1/records", "hosp-a", uploadBody, hdr...) }()
	<-entered
	rec := ts.do("POST", "/v1/records", "hosp-a", uploadBody, hdr...)
	if e := errorOf(t, rec); rec.Code != http.StatusConflict || e.Error != "request_in_progress" || rec.Header().Get("Retry-After") == "" {
		t.Errorf("concurrent repeat: %d %+v %v", rec.Code, e, rec.Header())
	}
	close(release)
	if first := <-done; first.Code != 201 {
		t.Errorf("first attempt: %d %s", first.Code, first.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("vault called %d times", calls)
	}
}

// TestVerifyRetry: a verification repeated after an unknown outcome is
// refused (its challenge is used up); a completed one is replayed.
func TestVerifyRetry(t *testing.T) {
	keys, err := idemstore.Open(t.Context(), databasetest.SQLite(t), idemstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	f := &fakeZK{verify: func(_ context.Context, _ string, proof []byte, _ time.Time) (eligibility.Result, error) {
		calls++
		if string(proof) == "down" {
			return eligibility.Result{}, fmt.Errorf("log proof verification: %w", ledger.ErrUnavailable)
		}
		return eligibility.Result{Valid: true, Statement: circuits.Age, LedgerIndex: 4}, nil
	}}
	f.t = t
	s := New(Config{}, nil, tokenAuth{}, WithClock(func() time.Time { return zkNow }), WithIdempotency(keys))
	s.MountZK(ZKDeps{Service: f})
	do := func(body, key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/v1/proofs/verify", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer ins-v")
		req.Header.Set(HeaderIdempotencyKey, key)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	if rec := do("down", `"v-1"`); rec.Code != 503 {
		t.Fatalf("down: %d %s", rec.Code, rec.Body)
	}
	rec := do("down", `"v-1"`)
	var e errorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != 409 || e.Error != "outcome_unknown" {
		t.Errorf("retry: %d %s", rec.Code, rec.Body)
	}
	if rec := do("valid", `"v-2"`); rec.Code != 200 {
		t.Fatalf("valid: %d", rec.Code)
	}
	if rec := do("valid", `"v-2"`); rec.Code != 200 || rec.Header().Get(HeaderIdempotentReplayed) != "true" {
		t.Errorf("repeat: %d %v", rec.Code, rec.Header())
	}
	if calls != 2 {
		t.Errorf("verified %d times, want 2", calls)
	}
}
