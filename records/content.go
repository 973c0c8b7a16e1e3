package records

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
)

// FHIRContentType is the media type of FHIR R4 JSON content. Content of
// this type must be a FHIR resource: a JSON object with a non-empty string
// "resourceType".
const FHIRContentType = "application/fhir+json"

// maxContentTypeLen bounds a content type (it is stored and logged as
// metadata).
const maxContentTypeLen = 255

// resourceTypePattern matches FHIR resource type names (Patient,
// Observation, MedicationRequest, …).
var resourceTypePattern = regexp.MustCompile(`^[A-Z][A-Za-z]{0,63}$`)

// Content is validated record content, ready for Vault.Put.
type Content struct {
	// ContentType is the normalised media type (lower-case type and
	// parameter names, canonical parameter syntax).
	ContentType string
	// ResourceType is the FHIR resource type when ContentType is FHIR, and
	// empty otherwise.
	ResourceType string
	// Data is the content: the FHIR JSON bytes exactly as sent, or the
	// decoded base64 bytes.
	Data []byte
}

// ParseContent validates the "content" member of a record upload against
// its content type. For application/fhir+json, raw must be a FHIR R4
// resource: a JSON object with a non-empty string resourceType and no
// duplicate top-level members. For any other content type, raw must be a
// JSON string holding standard (RFC 4648 §4, padded) base64. Errors wrap
// ErrInvalid with a message fit for the client; the size limit is the
// vault's to enforce (Vault.Put), and so is the full FHIR R4 validation,
// which needs the patient and category (ValidateFHIR).
func ParseContent(contentType string, raw json.RawMessage) (Content, error) {
	ct, err := NormalizeContentType(contentType)
	if err != nil {
		return Content{}, err
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return Content{}, invalidf("content is required")
	}
	if IsFHIR(ct) {
		if raw[0] != '{' {
			return Content{}, invalidf("content of type %s must be a FHIR resource (a JSON object)", FHIRContentType)
		}
		rt, err := FHIRResourceType(raw)
		if err != nil {
			return Content{}, err
		}
		return Content{ContentType: ct, ResourceType: rt, Data: bytes.Clone(raw)}, nil
	}
	if raw[0] != '"' {
		return Content{}, invalidf("content of type %s must be a base64 string (JSON objects are accepted only as %s)", ct, FHIRContentType)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return Content{}, invalidf("content is not a valid JSON string")
	}
	data, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return Content{}, invalidf("content is not valid base64 (standard alphabet, padded): bad input at offset %d", int64(ce))
		}
		return Content{}, invalidf("content is not valid base64")
	}
	if len(data) == 0 {
		return Content{}, invalidf("content is empty")
	}
	return Content{ContentType: ct, Data: data}, nil
}

// NormalizeContentType parses a media type (RFC 2045 syntax) and returns
// its canonical form, or an error wrapping ErrInvalid.
func NormalizeContentType(contentType string) (string, error) {
	if strings.TrimSpace(contentType) == "" {
		return "", invalidf("content_type is required")
	}
	if len(contentType) > maxContentTypeLen {
		return "", invalidf("content_type is longer than %d bytes", maxContentTypeLen)
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.Contains(mt, "/") {
		return "", invalidf("content_type is not a media type (type/subtype)")
	}
	ct := mime.FormatMediaType(mt, params)
	if ct == "" || len(ct) > maxContentTypeLen {
		return "", invalidf("content_type is not a media type (type/subtype)")
	}
	return ct, nil
}

// IsFHIR reports whether a (normalised or not) content type is FHIR JSON,
// with or without parameters such as fhirVersion.
func IsFHIR(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == FHIRContentType
}

// FHIRResourceType checks that data is one JSON object (UTF-8, no trailing
// data, no duplicate top-level members) with a string resourceType naming
// a FHIR resource type, and returns that type. Duplicate members are
// refused because JSON parsers disagree on which one wins, and the
// resource type is used for consent.
func FHIRResourceType(data []byte) (string, error) {
	if !utf8.Valid(data) {
		return "", invalidf("FHIR content must be UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	bad := func(what string) (string, error) {
		return "", invalidf("FHIR content is not a valid JSON object: %s", what)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad("does not start with an object")
	}
	seen := map[string]bool{}
	var (
		rt    string
		hasRT bool
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("malformed member name")
		}
		name, ok := tok.(string)
		if !ok {
			return bad("malformed member name")
		}
		if seen[name] {
			return "", invalidf("FHIR content has a duplicate top-level member")
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return bad("malformed value")
		}
		if name == "resourceType" {
			hasRT = true
			if err := json.Unmarshal(v, &rt); err != nil {
				return "", invalidf("FHIR resourceType must be a string")
			}
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return bad("unterminated object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("trailing data after the object")
	}
	switch {
	case !hasRT:
		return "", invalidf("FHIR resource has no resourceType")
	case rt == "":
		return "", invalidf("FHIR resourceType is empty")
	case !resourceTypePattern.MatchString(rt):
		return "", invalidf("FHIR resourceType is not a resource type name (like Observation)")
	}
	return rt, nil
}

// ValidationError is record content refused by validation. Message is
// written for the client that sent the content and is safe to show it:
// it names the element (a FHIRPath-like location such as
// Observation.status) and the rule broken, never a value from the content
// (which is PHI), except a resource type name. It matches ErrInvalid with
// errors.Is.
type ValidationError struct {
	// Element is the location of the problem (resourceType,
	// Observation.status, Patient.birthDate, Observation.subject, …);
	// empty when the problem is the record as a whole.
	Element string
	// Message is the public description, naming Element.
	Message string
}

func (e *ValidationError) Error() string { return ErrInvalid.Error() + ": " + e.Message }

// PublicMessage is the message the API shows the client.
func (e *ValidationError) PublicMessage() string { return e.Message }

// Is makes a ValidationError match ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalidElement(element, format string, args ...any) *ValidationError {
	return &ValidationError{Element: element, Message: fmt.Sprintf(format, args...)}
}

// r4 is the FHIR R4 JSON parser and validator: cardinality, required
// elements, primitive formats, code values, reference target types and
// unknown elements, per the R4 StructureDefinitions compiled into
// github.com/google/fhir/go. It is built once; parsing does not modify it.
var r4 = sync.OnceValues(func() (*jsonformat.Unmarshaller, error) {
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		return nil, err
	}
	u.MaxNestingDepth = maxFHIRDepth
	return u, nil
})

// maxFHIRDepth bounds the nesting of FHIR content (stack and time spent
// on hostile input).
const maxFHIRDepth = 64

// fhirErrorPattern reads the location and the PHI-free details out of a
// google/fhir/go unmarshal error ("error at \"Observation.status\": code
// type mismatch"). Its diagnostics, which may hold PHI, are not part of
// the error text.
var fhirErrorPattern = regexp.MustCompile(`^error at "([^"]*)": (.*)$`)

// ValidateFHIR validates FHIR content for a record of patient filed under
// category and returns its resource type. The content must be
//
//   - one JSON object with a resourceType (FHIRResourceType's checks);
//   - a valid FHIR R4 resource: known resource type and elements, required
//     elements present, primitives well-formed (dates, codes, decimals),
//     references to allowed target types;
//   - of a type that fits category (CategoriesFor: a Patient is
//     demographics, not labs);
//   - about patient: its subject or patient reference, when present, is
//     Patient/<patient> (relative or absolute) or carries patient as its
//     identifier; a Patient resource's id, when present, is patient (or
//     one of its identifiers' values is).
//
// Errors are *ValidationError (matching ErrInvalid) naming the element.
func ValidateFHIR(data []byte, patient string, category Category) (string, error) {
	rt, err := FHIRResourceType(data)
	if err != nil {
		return "", &ValidationError{Element: "", Message: strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")}
	}
	u, err := r4()
	if err != nil {
		return "", fmt.Errorf("FHIR R4 validator: %w", err)
	}
	if _, err := u.Unmarshal(data); err != nil {
		return "", fhirError(rt, err)
	}
	if !category.Fits(rt) {
		cs := CategoriesFor(rt)
		if len(cs) == 0 {
			return "", invalidElement("resourceType", "resourceType %s is not accepted as a record; accepted types: %s", rt, strings.Join(ResourceTypes(), ", "))
		}
		names := make([]string, len(cs))
		for i, c := range cs {
			names[i] = string(c)
		}
		return "", invalidElement("resourceType", "resourceType %s does not fit category %q; it may be filed under %s", rt, category, strings.Join(names, ", "))
	}
	if err := checkPatient(rt, data, patient); err != nil {
		return "", err
	}
	return rt, nil
}

// fhirError turns a google/fhir/go error into a ValidationError.
func fhirError(rt string, err error) *ValidationError {
	lines := strings.Split(err.Error(), "\n")
	m := fhirErrorPattern.FindStringSubmatch(lines[0])
	if m == nil {
		return invalidElement("", "not a valid FHIR R4 %s resource", rt)
	}
	path, details := m[1], m[2]
	if details == "unknown resource type" && path == rt {
		return invalidElement("resourceType", "resourceType %q is not a FHIR R4 resource type", rt)
	}
	if path == "" {
		path = rt
	}
	msg := fmt.Sprintf("not a valid FHIR R4 resource: %s: %s", path, details)
	if more := len(lines) - 1; more > 0 {
		msg += fmt.Sprintf(" (and %d more)", more)
	}
	return invalidElement(path, "%s", msg)
}

// fhirReference is the part of a FHIR Reference that names its target.
type fhirReference struct {
	Reference  string `json:"reference"`
	Identifier *struct {
		Value string `json:"value"`
	} `json:"identifier"`
}

// checkPatient checks that the resource (already valid R4) is about
// patient.
func checkPatient(rt string, data []byte, patient string) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return invalidElement("", "FHIR content is not a JSON object")
	}
	if rt == "Patient" {
		var p struct {
			ID         string `json:"id"`
			Identifier []struct {
				Value string `json:"value"`
			} `json:"identifier"`
		}
		if err := json.Unmarshal(data, &p); err != nil {
			return invalidElement("Patient", "Patient is not valid")
		}
		if p.ID == "" || p.ID == patient {
			return nil
		}
		for _, id := range p.Identifier {
			if id.Value == patient {
				return nil
			}
		}
		return invalidElement("Patient.id", "Patient.id is not the patient the record is filed under (and no Patient.identifier is)")
	}
	for _, name := range []string{"subject", "patient"} {
		raw, ok := top[name]
		if !ok {
			continue
		}
		element := rt + "." + name
		var ref fhirReference
		if err := json.Unmarshal(raw, &ref); err != nil {
			return invalidElement(element, "%s is not a Reference", element)
		}
		switch {
		case ref.Reference != "":
			if !referencesPatient(ref.Reference, patient) {
				return invalidElement(element, "%s must reference the patient the record is filed under, as Patient/<patient>", element)
			}
		case ref.Identifier != nil && ref.Identifier.Value != "":
			if ref.Identifier.Value != patient {
				return invalidElement(element, "%s.identifier is not the patient the record is filed under", element)
			}
		}
	}
	return nil
}

// referencesPatient reports whether a FHIR literal reference (relative,
// absolute, with or without a _history version) names Patient/<patient>.
func referencesPatient(ref, patient string) bool {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	want := "Patient/" + patient
	if ref == want {
		return true
	}
	if !strings.HasPrefix(ref, "https://") && !strings.HasPrefix(ref, "http://") {
		return false
	}
	return strings.HasSuffix(ref, "/"+want)
}
