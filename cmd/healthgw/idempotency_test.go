package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/ledger"
)

// TestIdempotentWrites: on the wired gateway, every appending write
// repeated with its Idempotency-Key answers as the first time and
// appends nothing; the key with another request is refused; a write sent
// without a key is given one.
func TestIdempotentWrites(t *testing.T) {
	g := newTestGateway(t)
	a := g.register("hosp-a", auth.KindHospital)
	g.register("hosp-b", auth.KindHospital)
	atok, ptok := g.token(a, ""), g.patientToken("pat-1")
	key := func(k string) []string { return []string{api.HeaderIdempotencyKey, `"` + k + `"`} }
	upload := map[string]any{"patient": "pat-1", "category": "labs", "content_type": "application/fhir+json", "content": json.RawMessage(labFHIR)}

	twice := func(name string, want int, method, path, token string, body any, hdr []string) []byte {
		t.Helper()
		st, first := g.do(method, path, token, body, hdr...)
		if st != want {
			t.Fatalf("%s: %d %s", name, st, first)
		}
		size := g.size()
		st2, again := g.do(method, path, token, body, hdr...)
		if st2 != st || string(again) != string(first) {
			t.Errorf("%s repeated: %d %s, first %d %s", name, st2, again, st, first)
		}
		if got := g.size(); got != size {
			t.Errorf("%s repeated: appended %d entries", name, got-size)
		}
		return first
	}
	rec := decode[created](t, twice("upload", http.StatusCreated, "POST", "/v1/records", atok, upload, key("up-1")))
	if n := len(g.entries(ledger.TypeRecordRegistered)); n != 1 {
		t.Errorf("%d registrations, want 1", n)
	}
	other := map[string]any{"patient": "pat-2", "category": "labs", "content_type": "application/fhir+json", "content": json.RawMessage(labFHIR)}
	if st, body := g.do("POST", "/v1/records", atok, other, key("up-1")...); st != http.StatusUnprocessableEntity || decode[apiError](t, body).Error != "idempotency_key_reused" {
		t.Errorf("same key, other record: %d %s", st, body)
	}

	grant := map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"}}
	gr := decode[struct {
		Consent struct {
			ID string `json:"id"`
		} `json:"consent"`
	}](t, twice("grant", http.StatusCreated, "POST", "/v1/consents", ptok, grant, key("grant-1")))
	if n := len(g.entries(ledger.TypeConsentGranted)); n != 1 {
		t.Errorf("%d grants, want 1", n)
	}
	// The patient's key and the hospital's are apart.
	if st, body := g.do("POST", "/v1/consents", g.patientToken("pat-2"), grant, key("grant-1")...); st != http.StatusCreated {
		t.Errorf("another patient's grant under the same key: %d %s", st, body)
	}
	revoke := "/v1/consents/" + gr.Consent.ID + "/revoke"
	twice("revoke", http.StatusOK, "POST", revoke, ptok, nil, key("revoke-1"))
	if st, body := g.do("POST", revoke, ptok, nil, key("revoke-2")...); st != http.StatusConflict {
		t.Errorf("a new revocation of a revoked consent: %d %s", st, body)
	}
	if n := len(g.entries(ledger.TypeConsentRevoked)); n != 1 {
		t.Errorf("%d revocations, want 1", n)
	}
	twice("shred", http.StatusOK, "DELETE", "/v1/records/"+rec.ID, atok, nil, key("shred-1"))
	if n := len(g.entries(ledger.TypeRecordShredded)); n != 1 {
		t.Errorf("%d shreddings, want 1", n)
	}

	// Without a key, the gateway makes one and says it.
	b, err := json.Marshal(grant)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), "POST", g.url+"/v1/consents", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+ptok)
	resp, err := g.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if k := resp.Header.Get(api.HeaderIdempotencyKey); resp.StatusCode != http.StatusCreated || len(k) < 3 || k[0] != '"' {
		t.Errorf("keyless grant: %d, Idempotency-Key %q", resp.StatusCode, k)
	}
}
