package fhir

import (
	"net/http"
)

// FHIRVersion is the FHIR version this package speaks.
const FHIRVersion = "4.0.1"

// OperationOutcome is a FHIR R4 OperationOutcome: every error of the FHIR
// endpoint is one.
type OperationOutcome struct {
	ResourceType string      `json:"resourceType"`
	Extension    []Extension `json:"extension,omitempty"`
	Issue        []Issue     `json:"issue"`
}

// Issue is OperationOutcome.issue.
type Issue struct {
	Severity    string           `json:"severity"`
	Code        string           `json:"code"`
	Details     *CodeableConcept `json:"details,omitempty"`
	Diagnostics string           `json:"diagnostics,omitempty"`
}

// IssueType returns the FHIR issue type (http://hl7.org/fhir/issue-type)
// of an HTTP error status.
func IssueType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid"
	case http.StatusUnauthorized:
		return "login"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not-found"
	case http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusUnsupportedMediaType:
		return "not-supported"
	case http.StatusConflict:
		return "conflict"
	case http.StatusGone:
		return "deleted"
	case http.StatusRequestEntityTooLarge:
		return "too-costly"
	case http.StatusTooManyRequests:
		return "throttled"
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return "transient"
	}
	return "exception"
}

// NewOperationOutcome returns the OperationOutcome of an error answered
// with status: one issue of severity error (fatal for 5xx), the error code
// as details (in SystemErrorCode), the public message as diagnostics and
// the request ID in ExtRequestID.
func NewOperationOutcome(status int, code, message, requestID string) *OperationOutcome {
	sev := "error"
	if status >= 500 {
		sev = "fatal"
	}
	o := &OperationOutcome{ResourceType: "OperationOutcome", Issue: []Issue{{
		Severity:    sev,
		Code:        IssueType(status),
		Diagnostics: message,
	}}}
	if code != "" {
		o.Issue[0].Details = &CodeableConcept{Coding: []Coding{{System: SystemErrorCode, Code: code}}, Text: message}
	}
	if requestID != "" {
		o.Extension = []Extension{{URL: ExtRequestID, ValueString: requestID}}
	}
	return o
}

// SystemErrorCode is the code system of healthgw's error codes (the
// "error" of its JSON errors: not_found, invalid_request, …).
const SystemErrorCode = "urn:healthgw:error"

// CapabilityStatement is a FHIR R4 CapabilityStatement (the elements
// this package fills).
type CapabilityStatement struct {
	ResourceType   string              `json:"resourceType"`
	Status         string              `json:"status"`
	Date           string              `json:"date"`
	Publisher      string              `json:"publisher,omitempty"`
	Kind           string              `json:"kind"`
	Software       *CapabilitySoftware `json:"software,omitempty"`
	Implementation *CapabilityImpl     `json:"implementation,omitempty"`
	FHIRVersion    string              `json:"fhirVersion"`
	Format         []string            `json:"format"`
	Rest           []CapabilityRest    `json:"rest"`
}

// CapabilitySoftware is CapabilityStatement.software.
type CapabilitySoftware struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// CapabilityImpl is CapabilityStatement.implementation.
type CapabilityImpl struct {
	Description string `json:"description"`
	URL         string `json:"url,omitempty"`
}

// CapabilityRest is CapabilityStatement.rest.
type CapabilityRest struct {
	Mode          string               `json:"mode"`
	Documentation string               `json:"documentation,omitempty"`
	Security      *CapabilitySecurity  `json:"security,omitempty"`
	Resource      []CapabilityResource `json:"resource,omitempty"`
}

// CapabilitySecurity is CapabilityStatement.rest.security.
type CapabilitySecurity struct {
	Extension   []SecurityExtension `json:"extension,omitempty"`
	CORS        bool                `json:"cors"`
	Service     []CodeableConcept   `json:"service,omitempty"`
	Description string              `json:"description,omitempty"`
}

// SecurityExtension is the SMART oauth-uris extension (and its
// sub-extensions, which carry valueUri).
type SecurityExtension struct {
	URL       string              `json:"url"`
	Extension []SecurityExtension `json:"extension,omitempty"`
	ValueURI  string              `json:"valueUri,omitempty"`
}

// CapabilityResource is CapabilityStatement.rest.resource.
type CapabilityResource struct {
	Type          string                  `json:"type"`
	Documentation string                  `json:"documentation,omitempty"`
	Interaction   []CapabilityInteraction `json:"interaction"`
	ReadHistory   bool                    `json:"readHistory"`
	UpdateCreate  bool                    `json:"updateCreate"`
	SearchParam   []CapabilitySearchParam `json:"searchParam,omitempty"`
}

// CapabilityInteraction is CapabilityStatement.rest.resource.interaction.
type CapabilityInteraction struct {
	Code string `json:"code"`
}

// CapabilitySearchParam is CapabilityStatement.rest.resource.searchParam.
type CapabilitySearchParam struct {
	Name          string `json:"name"`
	Definition    string `json:"definition,omitempty"`
	Type          string `json:"type"`
	Documentation string `json:"documentation,omitempty"`
}

// SMARTOAuthURIs is the URL of the SMART App Launch extension that names
// the OAuth endpoints in a CapabilityStatement.
const SMARTOAuthURIs = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"

// OAuthURIs are the OAuth endpoints named in the CapabilityStatement.
type OAuthURIs struct {
	Token, Introspect, Revoke string
}

// NewCapabilityStatement returns the CapabilityStatement of a server at
// base (its FHIR base URL) that serves resources, secured with SMART
// Backend Services at uris; date is the statement's date.
func NewCapabilityStatement(base, version, date string, uris OAuthURIs, resources []CapabilityResource) *CapabilityStatement {
	oauth := SecurityExtension{URL: SMARTOAuthURIs}
	for _, u := range []struct{ name, uri string }{{"token", uris.Token}, {"introspect", uris.Introspect}, {"revoke", uris.Revoke}} {
		if u.uri != "" {
			oauth.Extension = append(oauth.Extension, SecurityExtension{URL: u.name, ValueURI: u.uri})
		}
	}
	return &CapabilityStatement{
		ResourceType: "CapabilityStatement",
		Status:       "active",
		Date:         date,
		Publisher:    Observer,
		Kind:         "instance",
		Software:     &CapabilitySoftware{Name: Observer, Version: version},
		Implementation: &CapabilityImpl{
			Description: "healthgw: consent-gated, ledger-logged reads of health records held by the hospitals of a consortium",
			URL:         base,
		},
		FHIRVersion: FHIRVersion,
		Format:      []string{"json", ContentType},
		Rest: []CapabilityRest{{
			Mode:          "server",
			Documentation: "Read-only. Every record read is decided on the patient's consent and logged on the ledger before any byte is served; a record the caller may not read is answered exactly like one that does not exist (404). Pages are cursor-based: follow the next link.",
			Security: &CapabilitySecurity{
				Extension: []SecurityExtension{oauth},
				Service: []CodeableConcept{{Coding: []Coding{{
					System: "http://terminology.hl7.org/CodeSystem/restful-security-service", Code: "SMART-on-FHIR", Display: "SMART-on-FHIR",
				}}}},
				Description: "SMART Backend Services: client_credentials with a private_key_jwt client assertion at the token endpoint; bearer access tokens. Scopes: system/<ResourceType>.rs, system/*.rs and the gateway's own (see /.well-known/smart-configuration).",
			},
			Resource: resources,
		}},
	}
}
