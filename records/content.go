package records

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"regexp"
	"strings"
	"unicode/utf8"
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
// vault's to enforce (Vault.Put).
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
