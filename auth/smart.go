package auth

// Discovery documents. Both describe the same server: what SMART Backend
// Services clients (and any RFC 8414 client) need to get and manage
// access tokens. The gateway has no authorization endpoint for
// third-party apps (the patient app's OIDC login is its own), so nothing
// here advertises one: no response types, no PKCE methods, no launch
// capabilities.

// SMARTCapabilities are the SMART App Launch 2.x capabilities the gateway
// supports: confidential clients authenticating with asymmetric keys
// (private_key_jwt), and SMART v1 (.read) and v2 (.rs) scope syntax.
var SMARTCapabilities = []string{"client-confidential-asymmetric", "permission-v1", "permission-v2"}

// SMARTConfiguration returns the content of
// GET /.well-known/smart-configuration (and of the same path under the
// FHIR base): a JSON object per SMART App Launch 2.x, section "Conformance",
// with the fields it requires and recommends for a server supporting
// SMART Backend Services, introspection and revocation.
func (x *Exchanger) SMARTConfiguration() map[string]any {
	return map[string]any{
		"issuer":                                x.cfg.Issuer,
		"jwks_uri":                              x.cfg.Issuer + JWKSPath,
		"token_endpoint":                        x.cfg.TokenEndpoint,
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": append([]string(nil), OrgSigningAlgs...),
		"grant_types_supported":                            []string{GrantClientCredentials},
		"scopes_supported":                                 x.scopesSupported(),
		"introspection_endpoint":                           x.cfg.Issuer + IntrospectionPath,
		"revocation_endpoint":                              x.cfg.Issuer + RevocationPath,
		"capabilities":                                     append([]string(nil), SMARTCapabilities...),
	}
}

// AuthorizationServerMetadata returns the content of
// GET /.well-known/oauth-authorization-server (RFC 8414).
// response_types_supported, which RFC 8414 requires, is empty: there is
// no authorization endpoint. Introspection and revocation take the same
// client authentication as the token endpoint (private_key_jwt); a
// bearer access token of the client is accepted too (RFC 7662 section
// 2.1), which RFC 8414 has no method name for.
func (x *Exchanger) AuthorizationServerMetadata() map[string]any {
	algs := func() []string { return append([]string(nil), OrgSigningAlgs...) }
	return map[string]any{
		"issuer":                                x.cfg.Issuer,
		"jwks_uri":                              x.cfg.Issuer + JWKSPath,
		"token_endpoint":                        x.cfg.TokenEndpoint,
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported":         algs(),
		"grant_types_supported":                                    []string{GrantClientCredentials},
		"response_types_supported":                                 []string{},
		"scopes_supported":                                         x.scopesSupported(),
		"introspection_endpoint":                                   x.cfg.Issuer + IntrospectionPath,
		"introspection_endpoint_auth_methods_supported":            []string{"private_key_jwt"},
		"introspection_endpoint_auth_signing_alg_values_supported": algs(),
		"revocation_endpoint":                                      x.cfg.Issuer + RevocationPath,
		"revocation_endpoint_auth_methods_supported":               []string{"private_key_jwt"},
		"revocation_endpoint_auth_signing_alg_values_supported":    algs(),
	}
}

func (x *Exchanger) scopesSupported() []string {
	scopes := make([]string, 0, len(AllScopes()))
	for _, s := range AllScopes() {
		scopes = append(scopes, string(s))
	}
	// SMART resource scopes (scopes.go): the wildcards; any record type
	// may stand for * as well.
	return append(scopes, "system/*.rs", "system/*.cud", "system/*.read", "system/*.write", "system/Consent.rs", "system/AuditEvent.rs")
}
