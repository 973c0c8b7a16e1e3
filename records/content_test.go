package records

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseContent(t *testing.T) {
	tests := []struct {
		name    string
		ct      string
		raw     string
		want    Content
		wantErr string // substring of the message; empty for success
	}{
		{
			name: "FHIR resource",
			ct:   "application/fhir+json",
			raw:  `{"resourceType":"Observation","status":"final"}`,
			want: Content{ContentType: "application/fhir+json", ResourceType: "Observation", Data: []byte(`{"resourceType":"Observation","status":"final"}`)},
		},
		{
			name: "FHIR with fhirVersion parameter and odd case",
			ct:   "Application/FHIR+JSON; fhirVersion=4.0",
			raw:  ` {"status":"final", "resourceType" : "Patient"} `,
			want: Content{ContentType: "application/fhir+json; fhirversion=4.0", ResourceType: "Patient", Data: []byte(`{"status":"final", "resourceType" : "Patient"}`)},
		},
		{
			name: "base64 PDF",
			ct:   "application/pdf",
			raw:  `"JVBERi0xLjQK"`,
			want: Content{ContentType: "application/pdf", Data: []byte("%PDF-1.4\n")},
		},
		{name: "FHIR without resourceType", ct: "application/fhir+json", raw: `{"status":"final"}`, wantErr: "no resourceType"},
		{name: "FHIR empty resourceType", ct: "application/fhir+json", raw: `{"resourceType":""}`, wantErr: "resourceType is empty"},
		{name: "FHIR numeric resourceType", ct: "application/fhir+json", raw: `{"resourceType":7}`, wantErr: "must be a string"},
		{name: "FHIR lower-case resourceType", ct: "application/fhir+json", raw: `{"resourceType":"observation"}`, wantErr: "not a resource type name"},
		{name: "FHIR duplicate resourceType", ct: "application/fhir+json", raw: `{"resourceType":"Patient","resourceType":"Observation"}`, wantErr: "duplicate"},
		{name: "FHIR array", ct: "application/fhir+json", raw: `[{"resourceType":"Patient"}]`, wantErr: "must be a FHIR resource"},
		{name: "FHIR as base64", ct: "application/fhir+json", raw: `"eyJyZXNvdXJjZVR5cGUiOiJQYXRpZW50In0="`, wantErr: "must be a FHIR resource"},
		{name: "FHIR trailing data", ct: "application/fhir+json", raw: `{"resourceType":"Patient"}{}`, wantErr: "trailing data"},
		{name: "FHIR unterminated", ct: "application/fhir+json", raw: `{"resourceType":"Patient"`, wantErr: "not a valid JSON object"},
		{name: "FHIR bad nested value", ct: "application/fhir+json", raw: `{"resourceType":"Patient","x":[1,}`, wantErr: "not a valid JSON object"},
		{name: "FHIR invalid UTF-8", ct: "application/fhir+json", raw: "{\"resourceType\":\"Patient\",\"n\":\"\xff\"}", wantErr: "UTF-8"},
		{name: "bad base64", ct: "application/pdf", raw: `"not base64!"`, wantErr: "not valid base64"},
		{name: "unpadded base64", ct: "application/pdf", raw: `"JVBERi0xLjQ"`, wantErr: "not valid base64"},
		{name: "url-safe base64", ct: "application/octet-stream", raw: `"_-8="`, wantErr: "not valid base64"},
		{name: "empty base64", ct: "application/pdf", raw: `""`, wantErr: "content is empty"},
		{name: "object for non-FHIR type", ct: "application/json", raw: `{"a":1}`, wantErr: "must be a base64 string"},
		{name: "number", ct: "application/pdf", raw: `12`, wantErr: "must be a base64 string"},
		{name: "null", ct: "application/pdf", raw: `null`, wantErr: "content is required"},
		{name: "missing", ct: "application/pdf", raw: ``, wantErr: "content is required"},
		{name: "no content type", ct: "", raw: `"AA=="`, wantErr: "content_type is required"},
		{name: "bad content type", ct: "pdf", raw: `"AA=="`, wantErr: "not a media type"},
		{name: "long content type", ct: "application/" + strings.Repeat("x", 300), raw: `"AA=="`, wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseContent(tt.ct, json.RawMessage(tt.raw))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %q, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseContent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseContentMessagesDoNotEchoContent(t *testing.T) {
	secret := "Jane-Doe-1970-01-01"
	for _, raw := range []string{
		`{"resourceType":"` + secret + `"}`,
		`{"` + secret + `":1,"` + secret + `":2}`,
		`"` + secret + `"`,
	} {
		_, err := ParseContent(FHIRContentType, json.RawMessage(raw))
		if err == nil {
			_, err = ParseContent("application/pdf", json.RawMessage(raw))
		}
		if err == nil {
			t.Fatalf("%s: accepted", raw)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error message echoes the content: %q", err)
		}
	}
}

func TestCategories(t *testing.T) {
	for _, c := range Categories() {
		if !ValidCategory(string(c)) {
			t.Errorf("%s is listed but not valid", c)
		}
	}
	for _, s := range []string{"", "Labs", "lab", "mental health", "other"} {
		if ValidCategory(s) {
			t.Errorf("ValidCategory(%q) = true", s)
		}
	}
	var sensitive []Category
	for _, c := range Categories() {
		if c.Sensitive() {
			sensitive = append(sensitive, c)
		}
	}
	want := []Category{CategoryMentalHealth, CategorySexualHealth, CategorySubstanceUse, CategoryGenomics}
	if diff := cmp.Diff(want, sensitive); diff != "" {
		t.Errorf("sensitive categories (-want +got):\n%s", diff)
	}
}

// FuzzParseContent: ParseContent never panics, and what it accepts is
// consistent with its contract.
func FuzzParseContent(f *testing.F) {
	f.Add(FHIRContentType, []byte(`{"resourceType":"Patient"}`))
	f.Add(FHIRContentType, []byte(`{"resourceType":"Patient","a":{"b":[1,2,{"c":null}]}}`))
	f.Add("application/pdf", []byte(`"JVBERi0xLjQK"`))
	f.Add("text/plain; charset=utf-8", []byte(`"aGVsbG8="`))
	f.Add(FHIRContentType, []byte(`{"resourceType":"A","resourceType":"B"}`))
	f.Fuzz(func(t *testing.T, ct string, raw []byte) {
		c, err := ParseContent(ct, raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if len(c.Data) == 0 {
			t.Fatal("accepted empty content")
		}
		if IsFHIR(c.ContentType) {
			if !json.Valid(c.Data) {
				t.Fatal("accepted invalid JSON as FHIR")
			}
			var m map[string]any
			if err := json.Unmarshal(c.Data, &m); err != nil {
				t.Fatalf("accepted FHIR that is not an object: %v", err)
			}
			if m["resourceType"] != c.ResourceType || c.ResourceType == "" {
				t.Fatalf("resource type %q, document says %v", c.ResourceType, m["resourceType"])
			}
		} else if c.ResourceType != "" {
			t.Fatal("resource type for non-FHIR content")
		}
	})
}
