package openapitest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/internal/openapitest"
)

// TestDocumentValid is the document's linter: it must load as OpenAPI 3.1
// and validate, and every operation must have an ID and a summary.
func TestDocumentValid(t *testing.T) {
	doc, err := openapitest.Load(t.Context(), api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" || op.Summary == "" {
				t.Errorf("%s %s: no operationId or summary", method, path)
			}
			if ids[op.OperationID] {
				t.Errorf("%s %s: operationId %q used twice", method, path, op.OperationID)
			}
			ids[op.OperationID] = true
			if op.Responses.Default() == nil && op.Responses.Status(200) == nil {
				t.Errorf("%s %s: no default response", method, path)
			}
		}
	}
}

// TestValidatorCatchesDrift: a response that breaks the document is
// reported; one that keeps it is not.
func TestValidatorCatchesDrift(t *testing.T) {
	body := `{"status":"ok"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte(body))
		case "/v1/whoami":
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"unauthorized"}`)) // no message, no request_id
		case "/v1/undocumented":
			w.Write([]byte(`{}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"not_found","message":"Not found.","request_id":"x"}`))
		}
	}))
	defer srv.Close()
	v, err := openapitest.New(context.Background(), api.OpenAPI(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var reported []error
	c := &http.Client{Transport: &openapitest.Transport{Validator: v, Host: strings.TrimPrefix(srv.URL, "http://"), Report: func(err error) { reported = append(reported, err) }}}
	get := func(path string) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get("/healthz")
	get("/nowhere")
	if len(reported) != 0 {
		t.Fatalf("valid exchanges reported: %v", reported)
	}
	body = `{"status":"fine"}` // not in the enum
	get("/healthz")
	get("/v1/whoami")
	get("/v1/undocumented")
	if len(reported) != 3 {
		t.Fatalf("reported %d errors, want 3: %v", len(reported), reported)
	}
}
