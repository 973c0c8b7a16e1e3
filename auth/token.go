package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/healthgw/healthgw/internal/truncate"
)

// MaxTokenSize bounds every token the gateway parses: client assertions,
// access tokens and patient tokens.
const MaxTokenSize = 8 << 10

// MaxSkew is the largest clock skew Config accepts.
const MaxSkew = 60 * time.Second

// Token types in the "typ" header. Access tokens carry typAccessToken
// (RFC 9068) and nothing else does; a client assertion carrying it is
// refused, so an access token can never serve as an assertion.
const (
	typAccessToken = "at+jwt"
	typJWT         = "JWT"
	// typClientAuth is the explicit type of a client assertion
	// (draft-ietf-oauth-rfc7523bis); the media type form
	// application/client-authentication+jwt is accepted too.
	typClientAuth = "client-authentication+jwt"
)

// allowedHeaders are the only JOSE header parameters a token may carry.
// In particular x5u, jwk and x5c (keys named or embedded by the sender)
// are refused outright and never fetched; crit and b64 are refused
// because nothing here understands an extension; cty because nested
// tokens are not accepted. jku is parsed, but only client assertions
// accept it, and only when it is the organisation's registered JWKS URL
// (SMART Backend Services key resolution): it never names a URL to fetch.
var allowedHeaders = map[string]bool{"alg": true, "kid": true, "typ": true, "jku": true, "x5t": true, "x5t#S256": true}

// header is the part of a JOSE header the gateway looks at before
// verification.
type header struct {
	alg string
	kid string
	typ string
	jku string
}

// tokenParts is a compact JWS split and checked, with its header decoded
// and its (not yet verified) payload claims.
type tokenParts struct {
	hdr    header
	claims map[string]json.RawMessage
}

// defectError is a token defect. reason is for the log (fixed text and
// at most sanitised fragments, never token material); public, when set,
// is a fixed description fit for the client (error_description).
type defectError struct {
	reason string
	public string
	kind   error // a further sentinel it matches (ErrTokenExpired), or nil
}

// Is reports whether target is the defect's kind.
func (e *defectError) Is(target error) bool { return e.kind != nil && target == e.kind }

func (e *defectError) Error() string { return ErrInvalidToken.Error() + ": " + e.reason }

func (e *defectError) Unwrap() error { return ErrInvalidToken }

// errReason builds a token error whose text is a fixed reason: never any
// part of the token.
func errReason(format string, args ...any) error {
	return &defectError{reason: fmt.Sprintf(format, args...)}
}

// errPublic builds a token error whose reason is also its public
// description: fixed text that tells a client what to fix and nothing
// about the gateway's keys or state.
func errPublic(reason string) error { return &defectError{reason: reason, public: reason} }

// publicReason returns the public description of a token defect, or
// fallback when it has none.
func publicReason(err error, fallback string) string {
	var d *defectError
	if errors.As(err, &d) && d.public != "" {
		return d.public
	}
	return fallback
}

// splitToken checks that token is a compact JWS of bounded size whose three
// segments are unpadded base64url, decodes and checks the protected
// header, and decodes the payload as a JSON object. Nothing is verified
// yet: the result only selects the key to verify with.
func splitToken(token string) (tokenParts, error) {
	if len(token) > MaxTokenSize {
		return tokenParts{}, errReason("token over %d bytes", MaxTokenSize)
	}
	if token == "" {
		return tokenParts{}, errReason("empty token")
	}
	segs := strings.Split(token, ".")
	if len(segs) != 3 {
		return tokenParts{}, errReason("not a compact JWS (want 3 segments, have %d)", len(segs))
	}
	for i, s := range segs {
		if s == "" {
			return tokenParts{}, errReason("empty segment %d", i+1)
		}
		if !isBase64URL(s) {
			return tokenParts{}, errReason("segment %d is not unpadded base64url", i+1)
		}
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(segs[0])
	if err != nil {
		return tokenParts{}, errReason("header is not valid base64url")
	}
	hdr, err := parseHeader(hb)
	if err != nil {
		return tokenParts{}, err
	}
	pb, err := base64.RawURLEncoding.Strict().DecodeString(segs[1])
	if err != nil {
		return tokenParts{}, errReason("payload is not valid base64url")
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(pb, &claims); err != nil || claims == nil {
		return tokenParts{}, errReason("payload is not a JSON object")
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(segs[2]); err != nil {
		return tokenParts{}, errReason("signature is not valid base64url")
	}
	return tokenParts{hdr: hdr, claims: claims}, nil
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parseHeader decodes a JOSE header: one JSON object, no duplicate
// members, only allowedHeaders, alg and kid non-empty strings.
func parseHeader(b []byte) (header, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return header{}, errReason("header is not a JSON object")
	}
	var h header
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return header{}, errReason("header is not a JSON object")
		}
		name, _ := t.(string)
		if seen[name] {
			return header{}, errReason("duplicate header parameter %q", name)
		}
		seen[name] = true
		if !allowedHeaders[name] {
			if len(name) > 16 {
				name = name[:16]
			}
			return header{}, errReason("header parameter %q is not accepted", name)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return header{}, errReason("header is not a JSON object")
		}
		s, isString := v.(string)
		switch name {
		case "alg":
			h.alg = s
		case "kid":
			h.kid = s
		case "typ":
			h.typ = s
		case "jku":
			h.jku = s
		}
		if !isString {
			return header{}, errReason("header parameter %q is not a string", name)
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return header{}, errReason("header is not a JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return header{}, errReason("trailing data after header")
	}
	if h.alg == "" {
		return header{}, errReason("no alg")
	}
	if h.kid == "" {
		return header{}, errReason("no kid")
	}
	if len(h.kid) > 128 {
		return header{}, errReason("kid too long")
	}
	return h, nil
}

// claimString returns the string claim name, or "" when it is absent or
// not a string.
func (p tokenParts) claimString(name string) string {
	raw, ok := p.claims[name]
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return ""
	}
	return s
}

// checks are the claim checks of one kind of token.
type checks struct {
	issuer  string
	subject string // "" for any
	// audience is the one aud accepted; with audiences set instead, aud
	// must be one single value (a string, or an array of one) that is
	// among them (RFC 7523bis: no multi-valued aud).
	audience  string
	audiences []string
	// maxAhead bounds exp - now (0: no bound).
	maxAhead time.Duration
	skew     time.Duration
	now      func() time.Time
}

// verify checks the signature of token with key, the key's algorithm
// against the header's, and the claims against c. Required claims: iss,
// sub, aud, exp, jti. iat and nbf, when present, must not be in the
// future.
func verify(token string, hdr header, key verifyKey, c checks) (jwt.Token, error) {
	// The key decides the algorithm. A header naming another one (none in
	// any spelling, HS256 "signed" with the public key, …) is refused
	// before anything is verified.
	if hdr.alg != key.alg.String() {
		return nil, &defectError{
			reason: fmt.Sprintf("alg %q does not match key %q (%s)", truncate.String(hdr.alg, 16), key.kid, key.alg),
			public: fmt.Sprintf("alg does not match the key's algorithm (%s)", key.alg),
		}
	}
	opts := []jwt.ParseOption{
		jwt.WithKey(key.alg, key.raw),
		jwt.WithClock(jwt.ClockFunc(c.now)),
		jwt.WithAcceptableSkew(c.skew),
		jwt.WithIssuer(c.issuer),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.JwtIDKey),
		jwt.WithRequiredClaim(jwt.SubjectKey),
		jwt.WithRequiredClaim(jwt.AudienceKey),
	}
	if c.audience != "" {
		opts = append(opts, jwt.WithAudience(c.audience))
	}
	tok, err := jwt.ParseString(token, opts...)
	if err != nil {
		return nil, classifyJWTError(err)
	}
	if c.subject != "" {
		if sub, _ := tok.Subject(); sub != c.subject {
			return nil, errPublic("sub must equal iss")
		}
	}
	if len(c.audiences) > 0 {
		aud, _ := tok.Audience()
		switch {
		case len(aud) != 1:
			return nil, errPublic("aud must be a single value (the token endpoint URL or the issuer)")
		case !slices.Contains(c.audiences, aud[0]):
			return nil, errPublic("wrong audience: aud must be the token endpoint URL or the issuer")
		}
	}
	if c.maxAhead > 0 {
		exp, _ := tok.Expiration()
		if exp.After(c.now().Add(c.maxAhead + c.skew)) {
			return nil, errPublic(fmt.Sprintf("exp is too far ahead (at most %s)", c.maxAhead))
		}
	}
	return tok, nil
}

// classifyJWTError maps jwx's errors to a fixed reason; jwx's own text is
// not kept, so nothing from the token reaches the log.
func classifyJWTError(err error) error {
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return &defectError{reason: "token expired", public: "token expired", kind: ErrTokenExpired}
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return errPublic("token not yet valid (nbf)")
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return errPublic("token issued in the future (iat)")
	case errors.Is(err, jwt.InvalidAudienceError()):
		return errPublic("wrong audience")
	case errors.Is(err, jwt.InvalidIssuerError()):
		return errPublic("wrong issuer")
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return errPublic("a required claim is missing (iss, sub, aud, exp, jti)")
	case errors.Is(err, jwt.ValidateError()):
		return errPublic("claims not valid")
	}
	return errPublic("signature or format not valid")
}
