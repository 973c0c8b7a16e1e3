// Package auth verifies and issues the tokens healthgw accepts: SMART
// Backend Services client assertions (private_key_jwt) from registered
// organisations, the gateway's own short-lived access tokens, and patient
// tokens from a configured identity provider. It defines organisations,
// their kinds and the scope vocabulary (docs/scopes.md), and the Principal
// a valid token becomes.
//
// The pieces, all transport-agnostic:
//
//   - Exchanger is the token endpoint: Exchange checks a client assertion
//     against the organisation's registered keys (OrgSource) and a
//     persistent jti replay cache (ReplayCache, see auth/authstore) and
//     signs an access token with the gateway's SigningKey.
//   - Authenticator turns a bearer token into a Principal: a gateway access
//     token gives an organisation, a patient IdP token a patient.
//   - SigningKey, DevIdP, NewClientAssertion and the key file helpers
//     create and load keys; auth/authtest builds keys and hostile tokens
//     for tests.
//
// Every token is checked the same way before any signature: compact
// serialisation only, at most MaxTokenSize bytes, unpadded base64url, a
// header of alg, kid and typ (x5u, jwk, x5c, crit and anything else
// refused, never fetched), then the key named by kid decides the
// algorithm. Verification itself is jwx/v3's, with issuer, audience,
// exp, jti and sub required and a bounded clock skew. Errors are
// *OAuthError values with RFC 6749/6750 codes; their text never holds
// token material.
//
// Client assertions follow SMART Backend Services and RFC 7523 as
// current clients send them: aud is one value, the token endpoint URL or
// the issuer (RFC 7523bis; a multi-valued aud is refused); typ is absent,
// JWT or client-authentication+jwt; a jku header is honoured only when it
// is the organisation's registered JWKS URL and refused otherwise, so no
// URL a token names is ever fetched; registered JWKS URLs must be https
// unless Config.AllowInsecureJWKSURL (development) says otherwise. Each
// invalid_client carries a fixed error_description saying what to fix
// (wrong audience, expired, exp too far ahead, unknown kid, replayed jti,
// …) and nothing about the gateway's state.
package auth
