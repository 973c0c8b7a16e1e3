package main

import (
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
)

// benchClient is an HTTP client that keeps enough idle connections for the
// parallel benchmarks.
func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
}

func benchGet(b *testing.B, c *http.Client, url, token string, want int) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("GET %s: %d, want %d", url, resp.StatusCode, want)
	}
}

// parallelism64 makes b.RunParallel use 64 goroutines on any machine.
func parallelism64(b *testing.B) {
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
}

// BenchmarkAuthenticatedNoop measures authenticated requests through the
// whole middleware stack (request ID, recovery, metrics, token
// verification) to a route that does nothing else, with 64 concurrent
// clients over loopback HTTP.
func BenchmarkAuthenticatedNoop(b *testing.B) {
	g := newTestGateway(b)
	tok := g.token(g.register("hosp-a", auth.KindHospital), "")
	c := benchClient()
	url := g.url + "/v1/whoami"
	parallelism64(b)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchGet(b, c, url, tok, http.StatusOK)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkConsentGatedRead measures the full consent-gated read path of
// another hospital's record with 64 concurrent clients: authenticate,
// decide, append access.decided durably, decrypt, respond.
func BenchmarkConsentGatedRead(b *testing.B) {
	g := newTestGateway(b)
	atok := g.token(g.register("hosp-a", auth.KindHospital), "")
	btok := g.token(g.register("hosp-b", auth.KindHospital), "")
	rec := g.putRecord(atok, "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	if status, body := g.do("POST", "/v1/consents", g.patientToken("pat-1"), map[string]any{
		"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"},
	}); status != http.StatusCreated {
		b.Fatalf("grant: %d %s", status, body)
	}
	c := benchClient()
	url := g.url + "/v1/records/" + rec.ID + "?purpose=TREAT"
	benchGet(b, c, url, btok, http.StatusOK)
	parallelism64(b)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchGet(b, c, url, btok, http.StatusOK)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
}
