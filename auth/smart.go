package auth

// SMARTConfiguration returns the content of
// GET /.well-known/smart-configuration: a JSON object (string keys, JSON
// values) describing the token endpoint for SMART Backend Services
// clients.
func (x *Exchanger) SMARTConfiguration() map[string]any {
	scopes := make([]string, 0, len(AllScopes()))
	for _, s := range AllScopes() {
		scopes = append(scopes, string(s))
	}
	return map[string]any{
		"issuer":                                x.cfg.Issuer,
		"jwks_uri":                              x.cfg.Issuer + JWKSPath,
		"token_endpoint":                        x.cfg.TokenEndpoint,
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": append([]string(nil), OrgSigningAlgs...),
		"grant_types_supported":                            []string{GrantClientCredentials},
		"scopes_supported":                                 scopes,
		"response_types_supported":                         []string{"token"},
		"capabilities":                                     []string{"client-confidential-asymmetric"},
	}
}
