package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records/recordstore"
	"github.com/healthgw/healthgw/registry"
)

const labFHIR = `{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"valueQuantity":{"value":7.1,"unit":"%"}}`

type created = client.RecordCreated

type recordBody = client.RecordContent

func (g *testGateway) putRecord(token, patient, category, contentType string, content any) created {
	g.t.Helper()
	status, body := g.do("POST", "/v1/records", token, map[string]any{
		"patient": patient, "category": category, "content_type": contentType, "content": content,
	})
	if status != http.StatusCreated {
		g.t.Fatalf("put record: %d %s", status, body)
	}
	return decode[created](g.t, body)
}

// TestRecordsRoundTrip stores FHIR and binary records through the API on
// SQLite and PostgreSQL and reads them back.
func TestRecordsRoundTrip(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		g := newTestGateway(t, func(c *serveConfig) { c.DB = dsn })
		a := g.register("hosp-a", auth.KindHospital)
		tok := g.token(a, "")
		before := g.size()
		fhirRec := g.putRecord(tok, "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
		bin := []byte("\x00\x01 scanned discharge letter \xff")
		binRec := g.putRecord(tok, "pat-1", "notes", "application/pdf", base64.StdEncoding.EncodeToString(bin))
		if got := g.size(); got != before+2 {
			t.Errorf("ledger grew by %d entries, want 2", got-before)
		}
		regs := g.entries(ledger.TypeRecordRegistered)
		if len(regs) != 2 || regs[0].Body.(*ledger.RecordRegistered).Commitment != fhirRec.Commitment {
			t.Fatalf("record.registered entries %+v", regs)
		}
		if p := regs[0].Body.(*ledger.RecordRegistered).Patient; p == "pat-1" || !strings.HasPrefix(p, "ps_") {
			t.Errorf("ledger holds patient %q, want a pseudonym", p)
		}

		status, body := g.do("GET", "/v1/records/"+fhirRec.ID, tok, nil)
		if status != http.StatusOK {
			t.Fatalf("get: %d %s", status, body)
		}
		got := decode[recordBody](t, body)
		var want, have any
		json.Unmarshal([]byte(labFHIR), &want)
		json.Unmarshal(got.Content, &have)
		if diff := cmp.Diff(want, have); diff != "" || got.Commitment != fhirRec.Commitment || got.Holder != "hosp-a" {
			t.Errorf("FHIR round trip (-want +got):\n%s %+v", diff, got)
		}
		status, body = g.do("GET", "/v1/records/"+binRec.ID, tok, nil)
		var b64 string
		if status != http.StatusOK || json.Unmarshal(decode[recordBody](t, body).Content, &b64) != nil {
			t.Fatalf("get binary: %d %s", status, body)
		}
		if raw, _ := base64.StdEncoding.DecodeString(b64); !bytes.Equal(raw, bin) {
			t.Errorf("binary round trip: got %q", raw)
		}
		g.verifyLedger()
	})
}

// TestRecordsBadInput: each malformed upload gets a clear 4xx, and nothing
// is stored and nothing appended.
func TestRecordsBadInput(t *testing.T) {
	g := newTestGateway(t, func(c *serveConfig) { c.MaxRecord = 1 << 10 })
	a := g.register("hosp-a", auth.KindHospital)
	tok := g.token(a, "")
	big := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), 2<<10))
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"malformed JSON", `{"patient":"pat-1",`, 400},
		{"not JSON at all", `patient=pat-1`, 400},
		{"FHIR without resourceType", `{"patient":"pat-1","category":"labs","content_type":"application/fhir+json","content":{"status":"final"}}`, 400},
		{"FHIR content that is not an object", `{"patient":"pat-1","category":"labs","content_type":"application/fhir+json","content":"abc"}`, 400},
		{"bad base64", `{"patient":"pat-1","category":"notes","content_type":"application/pdf","content":"!!not base64!!"}`, 400},
		{"unknown category", `{"patient":"pat-1","category":"astrology","content_type":"application/pdf","content":"AAAA"}`, 400},
		{"no patient", `{"category":"labs","content_type":"application/pdf","content":"AAAA"}`, 400},
		{"unknown field", `{"patient":"pat-1","category":"labs","content_type":"application/pdf","content":"AAAA","holder":"hosp-b"}`, 400},
		{"mass assignment of a ledger index", `{"patient":"pat-1","category":"labs","content_type":"application/pdf","content":"AAAA","ledger_index":7}`, 400},
		{"two JSON values", `{"patient":"pat-1","category":"labs","content_type":"application/pdf","content":"AAAA"}{}`, 400},
		{"content over the record limit", `{"patient":"pat-1","category":"notes","content_type":"application/pdf","content":"` + big + `"}`, 413},
		{"body over the body limit", `{"patient":"pat-1","category":"notes","content_type":"application/pdf","content":"` + strings.Repeat("A", 200<<10) + `"}`, 413},
	}
	before := g.size()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := g.do("POST", "/v1/records", tok, tt.body)
			e := decode[apiError](t, body)
			if status != tt.status || e.Message == "" || e.RequestID == "" {
				t.Errorf("got %d %s, want %d with a message", status, body, tt.status)
			}
		})
	}
	if got := g.size(); got != before {
		t.Errorf("ledger grew from %d to %d on bad input", before, got)
	}
	var n int64
	if err := g.db.Table("records").Where("id <> ?", recordstore.DecoyID).Count(&n).Error; err != nil || n != 0 {
		t.Errorf("records table holds %d rows (%v), want 0", n, err)
	}
}

// TestRecordsSealed reads a record as a JWE sealed to the caller's
// registered encryption key; an org without one gets 406.
func TestRecordsSealed(t *testing.T) {
	g := newTestGateway(t)
	a := g.register("hosp-a", auth.KindHospital)
	tok := g.token(a, "")
	rec := g.putRecord(tok, "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	status, body := g.do("GET", "/v1/records/"+rec.ID, tok, nil, "Accept", "application/jose")
	if status != http.StatusOK {
		t.Fatalf("sealed get: %d %s", status, body)
	}
	plain, err := jwe.Decrypt(body, jwe.WithKey(jwa.ECDH_ES_A256KW(), a.EncKey))
	if err != nil {
		t.Fatalf("decrypt JWE with hosp-a's key: %v", err)
	}
	if !bytes.Equal(plain, []byte(labFHIR)) {
		t.Errorf("sealed content %q", plain)
	}

	// An org whose JWKS has no encryption key.
	noEnc := authtest.NewOrg(t, "hosp-c", auth.KindHospital, "ES256")
	jwks, err := auth.PublicJWKS(noEnc.Key)
	if err != nil {
		t.Fatal(err)
	}
	noEnc.JWKS = string(jwks)
	if _, err := registry.Register(t.Context(), g.ledger, g.follower, auth.CheckOrgJWKS, noEnc.Org); err != nil {
		t.Fatal(err)
	}
	ctok := g.token(noEnc, "")
	if status, body := g.do("GET", "/v1/records/"+rec.ID, ctok, nil, "Accept", "application/jose"); status != http.StatusNotAcceptable {
		t.Errorf("no encryption key: %d %s, want 406", status, body)
	}
}

// TestRecordsShred crypto-shreds a record: later reads get 404, the ledger
// holds record.shredded and still verifies, only the holder may shred.
func TestRecordsShred(t *testing.T) {
	g := newTestGateway(t)
	a := g.register("hosp-a", auth.KindHospital)
	b := g.register("hosp-b", auth.KindHospital)
	tok, btok := g.token(a, ""), g.token(b, "")
	rec := g.putRecord(tok, "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	if status, _ := g.do("DELETE", "/v1/records/"+rec.ID, btok, nil); status != http.StatusNotFound {
		t.Errorf("another hospital shreds: %d, want 404", status)
	}
	if status, body := g.do("DELETE", "/v1/records/"+rec.ID, tok, nil); status != http.StatusOK {
		t.Fatalf("shred: %d %s", status, body)
	}
	if status, _ := g.do("GET", "/v1/records/"+rec.ID, tok, nil); status != http.StatusNotFound {
		t.Errorf("read after shred: %d, want 404", status)
	}
	if status, _ := g.do("DELETE", "/v1/records/"+rec.ID, tok, nil); status != http.StatusNotFound {
		t.Errorf("second shred: %d, want 404", status)
	}
	sh := g.entries(ledger.TypeRecordShredded)
	if len(sh) != 1 || sh[0].Body.(*ledger.RecordShredded).RecordID != rec.ID {
		t.Errorf("record.shredded entries: %+v", sh)
	}
	var row struct {
		Ciphertext []byte
		WrappedKey []byte
	}
	if err := g.db.Table("records").Where("id = ?", rec.ID).Select("ciphertext, wrapped_key").Scan(&row).Error; err != nil {
		t.Fatal(err)
	}
	if len(row.Ciphertext) != 0 || len(row.WrappedKey) != 0 {
		t.Errorf("tombstone still holds %d ciphertext and %d key bytes", len(row.Ciphertext), len(row.WrappedKey))
	}
	g.verifyLedger()
}
