package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/healthgw/healthgw/auth"
)

// BenchmarkRefusedRead measures, one at a time in the handler (no
// network), the two reads a caller who may not read cannot tell apart: of
// a record that does not exist, and denied reads of existing records of
// 1 KiB of FHIR JSON and of 1 MiB. Each answers 404. Profile one side with
// -bench 'BenchmarkRefusedRead/missing' -cpuprofile and compare.
func BenchmarkRefusedRead(b *testing.B) {
	g := newTestGateway(b, noRateLimits)
	atok := g.token(g.register("hosp-a", auth.KindHospital), "")
	ctok := g.token(g.register("hosp-c", auth.KindHospital), "")
	small := g.putRecord(atok, "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	status, resp := g.do("POST", "/v1/records", atok, benchRecordBody(b, 1<<20))
	if status != http.StatusCreated {
		b.Fatalf("upload: %d %s", status, resp)
	}
	large := decode[created](b, resp)
	h := g.api.Handler()
	for _, bc := range []struct{ name, path string }{
		{"missing", "/v1/records/0b7d0a52-1d1c-4b59-8a2a-00000000dead?purpose=TREAT"},
		{"denied", "/v1/records/" + small.ID + "?purpose=TREAT"},
		{"denied-1MiB", "/v1/records/" + large.ID + "?purpose=TREAT"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				req := httptest.NewRequestWithContext(context.Background(), "GET", bc.path, nil)
				req.Header.Set("Authorization", "Bearer "+ctok)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusNotFound {
					b.Fatalf("GET %s: %d, want 404", bc.path, rec.Code)
				}
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/read")
		})
	}
}
