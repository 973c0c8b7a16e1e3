package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Token request parameters (RFC 6749, RFC 7523, SMART Backend Services).
const (
	GrantClientCredentials = "client_credentials"
	AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// MaxJTILength bounds a client assertion's jti.
	MaxJTILength = 255
)

// OrgSource looks organisations up by ID. It returns an error wrapping
// ErrUnknownOrg when none is registered under id. registry.Store
// implements it.
type OrgSource interface {
	Org(ctx context.Context, id string) (Org, error)
}

// ReplayCache remembers the jti of every accepted client assertion.
// authstore.Store implements it.
type ReplayCache interface {
	// Claim records (issuer, jti) until the given time and returns nil,
	// or returns an error wrapping ErrReplay when it is already recorded
	// and not yet expired. It MUST be atomic: of two concurrent claims of
	// one pair, at most one succeeds. Records MUST survive a restart.
	Claim(ctx context.Context, issuer, jti string, until time.Time) error
}

// TokenRequest is a token endpoint request.
type TokenRequest struct {
	GrantType           string
	ClientAssertionType string
	ClientAssertion     string
	Scope               string
	// ClientID is optional; when given it must be the assertion's issuer.
	ClientID string
}

// TokenRequestFromForm reads a token request from its form parameters. A
// parameter given more than once is an invalid_request (RFC 6749 section
// 3.2), as is an unknown one among the assertion parameters.
func TokenRequestFromForm(form url.Values) (TokenRequest, error) {
	one := func(name string) (string, error) {
		v := form[name]
		if len(v) > 1 {
			return "", invalidRequest("parameter " + name + " given more than once")
		}
		if len(v) == 0 {
			return "", nil
		}
		return v[0], nil
	}
	var r TokenRequest
	var err error
	for _, p := range []struct {
		name string
		dst  *string
	}{
		{"grant_type", &r.GrantType},
		{"client_assertion_type", &r.ClientAssertionType},
		{"client_assertion", &r.ClientAssertion},
		{"scope", &r.Scope},
		{"client_id", &r.ClientID},
	} {
		if *p.dst, err = one(p.name); err != nil {
			return TokenRequest{}, err
		}
	}
	return r, nil
}

// AccessToken is a successful token response.
type AccessToken struct {
	Token     string // the access token (a JWT)
	TokenType string // "Bearer"
	ExpiresIn int    // seconds, at most 300
	Scope     string // the granted scopes, space-separated
	Org       string // who it was issued to (for logs and metrics)
}

// Exchanger is the token endpoint: it authenticates organisations by
// their client assertions (private_key_jwt) and issues access tokens.
type Exchanger struct {
	cfg    Config
	key    *SigningKey
	orgs   OrgSource
	replay ReplayCache
	remote *jwksFetcher
}

// NewExchanger returns the token endpoint logic. key signs access tokens;
// orgs resolves client assertion issuers; replay remembers used jtis.
func NewExchanger(cfg Config, key *SigningKey, orgs OrgSource, replay ReplayCache) (*Exchanger, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if key == nil || orgs == nil || replay == nil {
		return nil, errors.New("auth: exchanger needs a signing key, an org source and a replay cache")
	}
	return &Exchanger{cfg: cfg, key: key, orgs: orgs, replay: replay, remote: newJWKSFetcher(cfg.HTTPClient, cfg.Now)}, nil
}

// TokenEndpoint returns the token endpoint's URL.
func (x *Exchanger) TokenEndpoint() string { return x.cfg.TokenEndpoint }

// Audiences returns the values a client assertion's aud may take: the
// token endpoint URL (RFC 7523, SMART Backend Services) or the issuer
// (RFC 7523bis, what openid-client and oauth4webapi send). aud must be
// exactly one of them: a multi-valued aud is refused.
func (x *Exchanger) Audiences() []string { return []string{x.cfg.TokenEndpoint, x.cfg.Issuer} }

// acceptedAssertionTyp reports whether typ is acceptable for a client
// assertion: absent, JWT, or client-authentication+jwt (RFC 7523bis, in
// either its short or its application/ form), compared case-insensitively
// as media types are.
func acceptedAssertionTyp(typ string) bool {
	t := strings.ToLower(typ)
	return t == "" || t == "jwt" || t == "application/jwt" || t == typClientAuth || t == "application/"+typClientAuth
}

// Exchange checks a token request and issues an access token. Every
// failure is an *OAuthError: unsupported_grant_type, invalid_request,
// invalid_client (any defect of the assertion, an unknown org, a replayed
// jti) or invalid_scope; server_error when a store fails.
func (x *Exchanger) Exchange(ctx context.Context, req TokenRequest) (AccessToken, error) {
	g, err := x.authorize(ctx, req)
	if err == nil {
		var at AccessToken
		if at, err = x.issue(g); err == nil {
			x.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "access token issued",
				slog.String("org", g.org.ID), slog.String("kid", g.kid), slog.String("scope", at.Scope))
			return at, nil
		}
	}
	var oe *OAuthError
	if !errors.As(err, &oe) {
		oe = serverError(err)
	}
	level := slog.LevelInfo
	if oe.Status >= 500 {
		level = slog.LevelError
	}
	x.cfg.Logger.LogAttrs(ctx, level, "token request rejected",
		slog.String("org", g.logOrg), slog.String("kid", g.kid),
		slog.String("code", oe.Code), slog.String("reason", reasonOf(oe)))
	return AccessToken{}, oe
}

// grant is the outcome of an authorised token request. logOrg and kid are
// set as soon as known (sanitised) for the log.
type grant struct {
	logOrg string
	kid    string
	org    Org
	scopes []Scope
}

func (x *Exchanger) authorize(ctx context.Context, req TokenRequest) (grant, error) {
	var g grant
	switch {
	case req.GrantType == "":
		return g, invalidRequest("grant_type is required")
	case req.GrantType != GrantClientCredentials:
		return g, &OAuthError{Code: CodeUnsupportedGrantType, Description: "only client_credentials is supported", Status: http.StatusBadRequest}
	case req.ClientAssertionType == "" || req.ClientAssertion == "":
		return g, invalidRequest("client_assertion_type and client_assertion are required")
	case req.ClientAssertionType != AssertionTypeJWTBearer:
		return g, invalidRequest("client_assertion_type must be " + AssertionTypeJWTBearer)
	}
	a, err := x.checkAssertion(ctx, &g, req.ClientAssertion, req.ClientID, x.Audiences())
	if err != nil {
		return g, err
	}
	if g.scopes, err = grantScopes(a.org, req.Scope); err != nil {
		return g, err
	}
	// Only now is the jti used up: a request refused for its scope can be
	// retried with the same assertion.
	if err := x.claim(ctx, a); err != nil {
		return g, err
	}
	g.org = a.org
	return g, nil
}

// assertion is a client assertion that verified, not yet claimed.
type assertion struct {
	org Org
	jti string
	exp time.Time
}

// checkAssertion verifies a client assertion (private_key_jwt) against the
// registered keys of its issuer: typ, iss = sub = a registered org,
// client_id (when given) = iss, jku only when registered, the signature,
// aud one of audiences, exp within MaxAssertionLifetime, a jti. It sets
// g.logOrg and g.kid as soon as known. The jti is not claimed yet.
func (x *Exchanger) checkAssertion(ctx context.Context, g *grant, token, clientID string, audiences []string) (assertion, error) {
	parts, err := splitToken(token)
	if err != nil {
		return assertion{}, invalidClient("client assertion is malformed: "+reasonText(err), err)
	}
	g.kid = logSafe(parts.hdr.kid)
	iss := parts.claimString("iss")
	if !orgIDPattern.MatchString(iss) {
		return assertion{}, invalidClient("client assertion has no valid iss", errReason("iss is not an organisation ID"))
	}
	g.logOrg = iss
	if !acceptedAssertionTyp(parts.hdr.typ) {
		// In particular an access token (typ at+jwt) is never an assertion.
		return assertion{}, invalidClient("client assertion typ must be JWT or client-authentication+jwt",
			errReason("typ %q is not an assertion type", logSafe(parts.hdr.typ)))
	}
	if clientID != "" && clientID != iss {
		return assertion{}, invalidClient("client_id does not match the assertion's iss", errReason("client_id is not iss"))
	}
	o, err := x.orgs.Org(ctx, iss)
	if errors.Is(err, ErrUnknownOrg) {
		return assertion{}, invalidClient("unknown client", err)
	}
	if err != nil {
		return assertion{}, fmt.Errorf("look up org: %w", err)
	}
	if parts.hdr.jku != "" && (o.JWKSURL == "" || parts.hdr.jku != o.JWKSURL) {
		// SMART key resolution: a jku is honoured only when it is the
		// client's registered JWKS URL; no other URL is ever fetched.
		return assertion{}, invalidClient("client assertion jku is not the client's registered JWKS URL",
			errReason("jku is not the registered JWKS URL"))
	}
	key, err := x.orgKey(ctx, o, parts.hdr.kid)
	if err != nil {
		return assertion{}, err
	}
	tok, err := verify(token, parts.hdr, key, checks{
		issuer:    o.ID,
		subject:   o.ID,
		audiences: audiences,
		maxAhead:  MaxAssertionLifetime,
		skew:      x.cfg.Skew,
		now:       x.cfg.Now,
	})
	if err != nil {
		return assertion{}, invalidClient("client assertion: "+publicReason(err, "not valid"), err)
	}
	jti, _ := tok.JwtID()
	if jti == "" || len(jti) > MaxJTILength {
		return assertion{}, invalidClient(fmt.Sprintf("client assertion jti must be 1 to %d characters", MaxJTILength), errReason("bad jti"))
	}
	exp, _ := tok.Expiration()
	return assertion{org: o, jti: jti, exp: exp}, nil
}

// claim uses up an assertion's jti.
func (x *Exchanger) claim(ctx context.Context, a assertion) error {
	// Keep the jti until the assertion can no longer pass the exp check.
	if err := x.replay.Claim(ctx, a.org.ID, a.jti, a.exp.Add(x.cfg.Skew+time.Second)); err != nil {
		if errors.Is(err, ErrReplay) {
			return invalidClient("client assertion was already used (replayed jti)", err)
		}
		return fmt.Errorf("replay cache: %w", err)
	}
	return nil
}

// AuthenticateClient authenticates a client by a private_key_jwt client
// assertion, as at the token endpoint, for another endpoint of the
// gateway (introspection, revocation): aud may also be that endpoint's
// URL. The jti is used up. Failures are *OAuthError (invalid_client,
// invalid_request).
func (x *Exchanger) AuthenticateClient(ctx context.Context, assertionType, token, clientID, endpoint string) (Org, error) {
	var g grant
	err := func() error {
		switch {
		case assertionType == "" || token == "":
			return &OAuthError{Code: CodeInvalidClient, Description: "client authentication is required (private_key_jwt or a bearer token)", Status: http.StatusUnauthorized}
		case assertionType != AssertionTypeJWTBearer:
			return invalidRequest("client_assertion_type must be " + AssertionTypeJWTBearer)
		}
		a, err := x.checkAssertion(ctx, &g, token, clientID, append(x.Audiences(), endpoint))
		if err != nil {
			return err
		}
		if err := x.claim(ctx, a); err != nil {
			return err
		}
		g.org = a.org
		return nil
	}()
	if err == nil {
		return g.org, nil
	}
	var oe *OAuthError
	if !errors.As(err, &oe) {
		oe = serverError(err)
	}
	x.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "client authentication rejected",
		slog.String("org", g.logOrg), slog.String("kid", g.kid),
		slog.String("code", oe.Code), slog.String("reason", reasonOf(oe)))
	return Org{}, oe
}

// orgKey returns the organisation's signature key kid: from its inline
// JWKS, or from its JWKS URL (cached).
func (x *Exchanger) orgKey(ctx context.Context, o Org, kid string) (verifyKey, error) {
	var set *KeySet
	var err error
	if o.JWKS != "" {
		set, err = ParseOrgJWKS([]byte(o.JWKS))
	} else if err = x.cfg.checkJWKSURL(o.JWKSURL); err != nil {
		return verifyKey{}, invalidClient("the client's registered JWKS URL does not use https", err)
	} else {
		set, err = x.remote.keys(ctx, o.JWKSURL, orgPolicy, kid)
	}
	if err != nil {
		return verifyKey{}, invalidClient("the client's keys are unavailable", err)
	}
	k, ok := set.lookup(kid)
	if !ok {
		return verifyKey{}, invalidClient("client assertion kid: unknown kid (not among the client's registered signature keys)", errReason("kid not among the client's signature keys"))
	}
	return k, nil
}

// EncryptionKey returns the public encryption key ("use": "enc") that
// organisation orgID registered, to seal JWE responses to. ok is false
// when it registered none.
func (x *Exchanger) EncryptionKey(ctx context.Context, orgID string) (k jwk.Key, ok bool, err error) {
	o, err := x.orgs.Org(ctx, orgID)
	if err != nil {
		return nil, false, err
	}
	var set *KeySet
	if o.JWKS != "" {
		set, err = ParseOrgJWKS([]byte(o.JWKS))
	} else if err = x.cfg.checkJWKSURL(o.JWKSURL); err == nil {
		set, err = x.remote.keys(ctx, o.JWKSURL, orgPolicy, "")
	}
	if err != nil {
		return nil, false, err
	}
	k, ok = set.EncryptionKey()
	return k, ok, nil
}

// grantScopes returns the scopes to grant for a request (gateway scopes
// and SMART resource scopes, see scopes.go), or all of the org's scopes
// when none are requested.
func grantScopes(o Org, requested string) ([]Scope, error) {
	want, err := parseRequestedScopes(requested)
	if err != nil {
		return nil, &OAuthError{Code: CodeInvalidScope, Description: "unknown scope requested", Status: http.StatusBadRequest, Err: err}
	}
	if len(want) == 0 {
		if len(o.Scopes) == 0 {
			return nil, &OAuthError{Code: CodeInvalidScope, Description: "the client holds no scopes", Status: http.StatusBadRequest}
		}
		return slices.Clone(o.Scopes), nil
	}
	granted, refused := expandScopes(o, want)
	if refused != "" {
		return nil, &OAuthError{Code: CodeInvalidScope, Description: "scope " + string(refused) + " is not granted to this client", Status: http.StatusBadRequest}
	}
	return granted, nil
}

// Access token claims beyond the registered ones (RFC 9068).
const (
	claimClientID = "client_id"
	claimScope    = "scope"
	claimOrgKind  = "org_kind"
)

func (x *Exchanger) issue(g grant) (AccessToken, error) {
	now := x.cfg.Now()
	exp := now.Add(x.cfg.AccessTokenTTL)
	scope := JoinScopes(g.scopes)
	tok, err := x.key.sign(typAccessToken, map[string]any{
		"iss":         x.cfg.Issuer,
		"aud":         x.cfg.Issuer,
		"sub":         g.org.ID,
		claimClientID: g.org.ID,
		claimOrgKind:  string(g.org.Kind),
		claimScope:    scope,
		"jti":         newJTI(),
		"iat":         now.Unix(),
		"exp":         exp.Unix(),
	})
	if err != nil {
		return AccessToken{}, fmt.Errorf("sign access token: %w", err)
	}
	return AccessToken{
		Token:     tok,
		TokenType: "Bearer",
		ExpiresIn: int(exp.Unix() - now.Unix()),
		Scope:     scope,
		Org:       g.org.ID,
	}, nil
}

func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// reasonText returns the fixed reason of a token defect (the text of a
// splitToken error: no token material, header names quoted and cut).
func reasonText(err error) string {
	var d *defectError
	if errors.As(err, &d) {
		return d.reason
	}
	return "not a JWT"
}

// reasonOf returns the internal reason of an OAuth error for the log.
func reasonOf(e *OAuthError) string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Description
}

// logSafe returns s if it is short printable ASCII, else a placeholder:
// values from unverified tokens go to the log only in this form.
func logSafe(s string) string {
	if len(s) > 128 {
		return "(too long)"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return "(not printable)"
		}
	}
	return s
}
