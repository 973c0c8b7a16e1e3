package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/internal/openapitest"
)

// openAPIClient is the test gateways' HTTP client: every exchange with the
// gateway at baseURL is validated against the OpenAPI document, and a
// mismatch fails the test.
func openAPIClient(t testing.TB, baseURL string) *http.Client {
	t.Helper()
	v, err := openapitest.New(t.Context(), api.OpenAPI(), baseURL)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &openapitest.Transport{
		Validator: v,
		Host:      strings.TrimPrefix(strings.TrimPrefix(baseURL, "http://"), "https://"),
		Report:    func(err error) { t.Errorf("OpenAPI: %v", err) },
	}}
}

// TestOpenAPIServed: GET /openapi.json serves the embedded document.
func TestOpenAPIServed(t *testing.T) {
	g := newTestGateway(t)
	st, body := g.do("GET", "/openapi.json", "", nil)
	if st != http.StatusOK || string(body) != string(api.OpenAPI()) {
		t.Fatalf("GET /openapi.json: %d, %d bytes", st, len(body))
	}
	if _, err := openapitest.Load(t.Context(), body); err != nil {
		t.Fatal(err)
	}
}

// httpClient is the gateway's validating client (see openAPIClient).
func (g *testGateway) httpClient() *http.Client {
	g.once.Do(func() {
		if g.client == nil {
			g.client = openAPIClient(g.t, g.url)
		}
	})
	return g.client
}
