package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
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
	if err := getStatus(c, url, token, want); err != nil {
		b.Fatal(err)
	}
}

// getStatus is one authenticated GET answered with status want; for
// goroutines that may not call b.Fatal.
func getStatus(c *http.Client, url, token string, want int) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: %d, want %d", url, resp.StatusCode, want)
	}
	return nil
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
	g := newTestGateway(b, noRateLimits)
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
	g := newTestGateway(b, noRateLimits)
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

// benchRecordBody is a 1 MiB binary record as an upload body.
func benchRecordBody(b *testing.B, size int) []byte {
	return binaryRecordBody(b, "pat-1", size)
}

// binaryRecordBody is an upload of size bytes of binary content (an imaging
// record) for patient.
func binaryRecordBody(tb testing.TB, patient string, size int) []byte {
	tb.Helper()
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(i * 31)
	}
	body, err := json.Marshal(map[string]any{
		"patient": patient, "category": "imaging", "content_type": "application/dicom",
		"content": base64.StdEncoding.EncodeToString(content),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// BenchmarkRecordUpload measures POST /v1/records of 1 MiB records through
// the API (base64 JSON, encryption, storage, durable ledger entry), four
// concurrent clients; MB/s counts plaintext bytes.
func BenchmarkRecordUpload(b *testing.B) {
	g := newTestGateway(b, noRateLimits)
	tok := g.token(g.register("hosp-a", auth.KindHospital), "")
	const size = 1 << 20
	body := benchRecordBody(b, size)
	c := benchClient()
	b.SetBytes(size)
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, g.url+"/v1/records", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Fatalf("upload: %d", resp.StatusCode)
			}
		}
	})
}

// BenchmarkRecordDownload measures GET /v1/records/{id} of a 1 MiB record
// by its holder (logged, decrypted, base64 JSON), four concurrent clients.
func BenchmarkRecordDownload(b *testing.B) {
	g := newTestGateway(b, noRateLimits)
	tok := g.token(g.register("hosp-a", auth.KindHospital), "")
	const size = 1 << 20
	status, resp := g.do("POST", "/v1/records", tok, benchRecordBody(b, size))
	if status != http.StatusCreated {
		b.Fatalf("upload: %d %s", status, resp)
	}
	rec := decode[created](b, resp)
	c := benchClient()
	b.SetBytes(size)
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchGet(b, c, g.url+"/v1/records/"+rec.ID, tok, http.StatusOK)
		}
	})
}

// noRateLimits turns the API's rate limits off: a benchmark's one client
// sends far more than a principal's default rate, and would measure 429s.
func noRateLimits(c *serveConfig) { c.RateLimit = false }
