package fhirtest_test

import (
	"testing"

	"github.com/healthgw/healthgw/fhir/fhirtest"
)

// TestCheck: Check accepts valid resources (a CapabilityStatement claiming
// 4.0.1, despite the schema's erratum) and refuses invalid ones.
func TestCheck(t *testing.T) {
	for _, doc := range []string{
		`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"Not found."}]}`,
		`{"resourceType":"CapabilityStatement","status":"active","date":"2026-03-01","kind":"instance","fhirVersion":"4.0.1","format":["json"]}`,
		`{"resourceType":"Bundle","type":"searchset","entry":[{"fullUrl":"http://x/fhir/Observation/1","resource":{"resourceType":"Observation","id":"1","status":"final","code":{"text":"x"}}}]}`,
	} {
		if _, err := fhirtest.Check([]byte(doc)); err != nil {
			t.Errorf("Check(%s): %v", doc, err)
		}
	}
	for name, doc := range map[string]string{
		"not JSON":                     `{`,
		"no resourceType":              `{"id":"1"}`,
		"unknown type":                 `{"resourceType":"NotARealType"}`,
		"bad issue code":               `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"oops"}]}`,
		"another fhirVersion":          `{"resourceType":"CapabilityStatement","status":"active","date":"2026-03-01","kind":"instance","fhirVersion":"9.9.9","format":["json"]}`,
		"bad status in a Bundle entry": `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Observation","status":"banana","code":{"text":"x"}}}]}`,
	} {
		if _, err := fhirtest.Check([]byte(doc)); err == nil {
			t.Errorf("%s: Check accepted %s", name, doc)
		}
	}
}
