package records

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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

// TestValidateFHIRExamples: resources from the FHIR R4 examples
// (hl7.org/fhir/R4, narratives shortened) are accepted, filed under the
// patient they reference and a category their type fits.
func TestValidateFHIRExamples(t *testing.T) {
	tests := []struct {
		file     string
		patient  string
		category Category
		wantType string
	}{
		{"observation-f001.json", "f001", CategoryLabs, "Observation"},
		{"condition-example.json", "example", CategoryConditions, "Condition"},
		{"medicationrequest-medrx0302.json", "pat1", CategoryMedications, "MedicationRequest"},
		{"immunization-example.json", "example", CategoryImmunizations, "Immunization"},
		{"patient-example.json", "example", CategoryDemographics, "Patient"},
		// The MR number is one of the example Patient's identifiers.
		{"patient-example.json", "12345", CategoryDemographics, "Patient"},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.patient, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "fhir", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ValidateFHIR(data, tt.patient, tt.category)
			if err != nil {
				t.Fatalf("ValidateFHIR: %v", err)
			}
			if got != tt.wantType {
				t.Errorf("resource type %q, want %q", got, tt.wantType)
			}
		})
	}
}

// TestValidateFHIRRefused: each invalid resource is refused with a
// ValidationError naming the element, and the message holds no value
// from the content.
func TestValidateFHIRRefused(t *testing.T) {
	obs := func(extra string) string {
		return `{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"}` + extra + `}`
	}
	tests := []struct {
		name     string
		raw      string
		patient  string
		category Category
		element  string
		// msg is a fragment of the public message.
		msg string
		// secret must not appear in the message.
		secret string
	}{
		{name: "unknown resource type", raw: `{"resourceType":"NotARealType"}`, category: CategoryLabs, element: "resourceType", msg: `resourceType "NotARealType" is not a FHIR R4 resource type`},
		{name: "bad status code", raw: `{"resourceType":"Observation","status":"banana","code":{"text":"x"}}`, category: CategoryLabs, element: "Observation.status", msg: "Observation.status", secret: "banana"},
		{name: "impossible birth date", raw: `{"resourceType":"Patient","birthDate":"1990-13-45"}`, category: CategoryDemographics, element: "Patient.birthDate", msg: "Patient.birthDate", secret: "1990-13-45"},
		{name: "Patient filed under labs", raw: `{"resourceType":"Patient","birthDate":"1990-01-01"}`, category: CategoryLabs, element: "resourceType", msg: `does not fit category "labs"; it may be filed under demographics`},
		{name: "Observation about another patient", raw: obs(`,"subject":{"reference":"Patient/someone-else"}`), category: CategoryLabs, element: "Observation.subject", msg: "Observation.subject must reference the patient", secret: "someone-else"},
		{name: "Observation about another patient (absolute URL)", raw: obs(`,"subject":{"reference":"https://ehr.example/fhir/Patient/other-7"}`), category: CategoryLabs, element: "Observation.subject", secret: "other-7"},
		{name: "Observation whose subject is a group", raw: obs(`,"subject":{"reference":"Group/g1"}`), category: CategoryLabs, element: "Observation.subject"},
		{name: "Observation subject by another identifier", raw: obs(`,"subject":{"identifier":{"value":"mrn-99"}}`), category: CategoryLabs, element: "Observation.subject", secret: "mrn-99"},
		{name: "Immunization for another patient", raw: `{"resourceType":"Immunization","status":"completed","vaccineCode":{"text":"x"},"occurrenceDateTime":"2020-01-01","patient":{"reference":"Patient/p2"}}`, category: CategoryImmunizations, element: "Immunization.patient"},
		{name: "Patient resource of someone else", raw: `{"resourceType":"Patient","id":"p2"}`, category: CategoryDemographics, element: "Patient.id"},
		{name: "missing required element", raw: `{"resourceType":"Observation","code":{"text":"x"}}`, category: CategoryLabs, element: "Observation", msg: `missing required field "status"`},
		{name: "unknown element", raw: obs(`,"colour":"red"`), category: CategoryLabs, element: "Observation", msg: "unknown field", secret: "red"},
		{name: "reference to a wrong target type", raw: obs(`,"subject":{"reference":"Practitioner/1"}`), category: CategoryLabs, element: "Observation.subject", msg: "invalid reference"},
		{name: "bad decimal", raw: obs(`,"valueQuantity":{"value":"seven"}`), category: CategoryLabs, element: "Observation.valueQuantity.value", secret: "seven"},
		{name: "wrong primitive type", raw: `{"resourceType":"Patient","name":[{"family":42}]}`, category: CategoryDemographics, element: "Patient.name[0].family"},
		{name: "resource type not accepted as a record", raw: `{"resourceType":"Organization","name":"Acme"}`, category: CategoryNotes, element: "resourceType", msg: "is not accepted as a record"},
		{name: "contained unknown type", raw: `{"resourceType":"Patient","contained":[{"resourceType":"Bogus"}]}`, category: CategoryDemographics, element: "Patient.contained[0].Bogus"},
		{name: "not an object", raw: `{"resourceType":"Patient"`, category: CategoryDemographics, msg: "not a valid JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			patient := tt.patient
			if patient == "" {
				patient = "pat-1"
			}
			_, err := ValidateFHIR([]byte(tt.raw), patient, tt.category)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("err %v does not match ErrInvalid", err)
			}
			if ve.Element != tt.element {
				t.Errorf("Element = %q, want %q (message %q)", ve.Element, tt.element, ve.Message)
			}
			if tt.element != "" && !strings.Contains(ve.Message, tt.element) {
				t.Errorf("Message %q does not name the element %q", ve.Message, tt.element)
			}
			if !strings.Contains(ve.Message, tt.msg) {
				t.Errorf("Message %q, want it to say %q", ve.Message, tt.msg)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q repeats a value from the content (%q)", err, tt.secret)
			}
		})
	}
}

// TestFHIRReferencePatient: the accepted spellings of a reference to the
// record's patient.
func TestFHIRReferencePatient(t *testing.T) {
	for _, tt := range []struct {
		ref  string
		want bool
	}{
		{"Patient/pat-1", true},
		{"Patient/pat-1/_history/3", true},
		{"https://ehr.example/fhir/Patient/pat-1", true},
		{"http://ehr.example/Patient/pat-1/_history/1", true},
		{"Patient/pat-12", false},
		{"Patient/pat", false},
		{"urn:uuid:6b5c1a9e-0000-4000-8000-000000000000", false},
		{"#p1", false},
		{"xPatient/pat-1", false},
		{"Group/pat-1", false},
		{"https://ehr.example/fhir/Group/Patient/pat-1x", false},
	} {
		if got := referencesPatient(tt.ref, "pat-1"); got != tt.want {
			t.Errorf("referencesPatient(%q) = %v, want %v", tt.ref, got, tt.want)
		}
	}
}

// TestCategoryTable: every category has at least one resource type and
// every table entry is a known category.
func TestCategoryTable(t *testing.T) {
	used := map[Category]bool{}
	for _, rt := range ResourceTypes() {
		cs := CategoriesFor(rt)
		if len(cs) == 0 {
			t.Errorf("%s has no category", rt)
		}
		for _, c := range cs {
			if !c.Valid() {
				t.Errorf("%s: unknown category %q", rt, c)
			}
			used[c] = true
		}
	}
	for _, c := range Categories() {
		if !used[c] {
			t.Errorf("no resource type may be filed under %s", c)
		}
	}
	if !CategoryDemographics.Fits("Patient") || CategoryLabs.Fits("Patient") {
		t.Error("a Patient is demographics, not labs")
	}
	if CategoriesFor("NotARealType") != nil {
		t.Error("an unknown type has categories")
	}
}

// FuzzValidateFHIR: arbitrary content never panics, and anything
// refused is a ValidationError.
func FuzzValidateFHIR(f *testing.F) {
	for _, name := range []string{"observation-f001.json", "patient-example.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "fhir", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"resourceType":"Observation","status":"banana"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ValidateFHIR(data, "f001", CategoryLabs)
		var ve *ValidationError
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("error %v is not a ValidationError", err)
		}
	})
}

func BenchmarkValidateFHIR(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "fhir", "observation-f001.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ValidateFHIR(data, "f001", CategoryLabs); err != nil {
			b.Fatal(err)
		}
	}
}
