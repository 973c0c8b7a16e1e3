// Package fhirtest validates FHIR JSON in tests against the official FHIR
// R4 JSON schema vendored in fhir/testdata (fhir.schema.json, from the
// HL7 FHIR R4 specification's downloads; see its README). Any package's
// tests that produce FHIR responses use it.
package fhirtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SchemaPath is the vendored R4 JSON schema, found next to this package's
// source.
func SchemaPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "fhir.schema.json")
}

var compiler = sync.OnceValues(func() (*jsonschema.Compiler, error) {
	f, err := os.Open(SchemaPath())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("fhir.schema.json", doc); err != nil {
		return nil, err
	}
	return c, nil
})

var (
	mu      sync.Mutex
	schemas = map[string]*jsonschema.Schema{}
)

// Schema returns the compiled R4 schema definition of a resource type.
func Schema(resourceType string) (*jsonschema.Schema, error) {
	c, err := compiler()
	if err != nil {
		return nil, fmt.Errorf("R4 schema: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if s, ok := schemas[resourceType]; ok {
		return s, nil
	}
	s, err := c.Compile("fhir.schema.json#/definitions/" + resourceType)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", resourceType, err)
	}
	schemas[resourceType] = s
	return s, nil
}

// Check validates one FHIR JSON document against the R4 schema definition
// of its resourceType (a Bundle's entries with it) and returns the
// resource type.
func Check(doc []byte) (string, error) {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	if head.ResourceType == "" {
		return "", fmt.Errorf("no resourceType")
	}
	s, err := Schema(head.ResourceType)
	if err != nil {
		return head.ResourceType, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return head.ResourceType, err
	}
	// Erratum: the R4 (4.0.1) JSON schema's FHIRVersion enumeration stops
	// at 4.0.0, so it refuses the CapabilityStatement.fhirVersion 4.0.1
	// that R4 servers must claim. Only that value is let through.
	if m, ok := inst.(map[string]any); ok && head.ResourceType == "CapabilityStatement" && m["fhirVersion"] == "4.0.1" {
		m["fhirVersion"] = "4.0.0"
	}
	if err := s.Validate(inst); err != nil {
		return head.ResourceType, fmt.Errorf("%s is not valid against the FHIR R4 JSON schema: %w", head.ResourceType, err)
	}
	return head.ResourceType, nil
}

// Validate fails t unless doc is a valid R4 resource of type want ("" for
// any); it returns the resource type.
func Validate(t testing.TB, want string, doc []byte) string {
	t.Helper()
	rt, err := Check(doc)
	if err != nil {
		t.Errorf("%v\n%s", err, doc)
		return rt
	}
	if want != "" && rt != want {
		t.Errorf("resourceType %s, want %s: %s", rt, want, doc)
	}
	return rt
}
