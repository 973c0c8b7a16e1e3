package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Principal is who a request comes from: an organisation (Org, Kind,
// Scopes) or a patient (Patient). Its fields match api.Principal, so
// api.Principal(p) converts.
type Principal struct {
	Org     string
	Kind    Kind
	Scopes  []Scope
	Patient string
	// Expires is when the token this principal came from expires.
	Expires time.Time
}

// IsPatient reports whether p is a patient.
func (p Principal) IsPatient() bool { return p.Patient != "" }

// IsOrg reports whether p is an organisation.
func (p Principal) IsOrg() bool { return p.Org != "" && p.Patient == "" }

// HasScope reports whether an organisation principal was granted s.
func (p Principal) HasScope(s Scope) bool { return p.IsOrg() && slices.Contains(p.Scopes, s) }

// RequireOrg returns nil if p is an organisation of one of kinds (any kind
// when none are given) holding scope (none when scope is ""); otherwise an
// *OAuthError with code insufficient_scope and status 403.
func (p Principal) RequireOrg(scope Scope, kinds ...Kind) error {
	switch {
	case !p.IsOrg():
		return &OAuthError{Code: CodeInsufficientScope, Description: "an organisation token is required", Status: http.StatusForbidden}
	case len(kinds) > 0 && !slices.Contains(kinds, p.Kind):
		return &OAuthError{Code: CodeInsufficientScope, Description: "not allowed for this kind of organisation", Status: http.StatusForbidden}
	case scope != "" && !p.HasScope(scope):
		return &OAuthError{Code: CodeInsufficientScope, Description: "the token lacks scope " + string(scope), Status: http.StatusForbidden}
	}
	return nil
}

// RequirePatient returns nil if p is a patient; otherwise an *OAuthError
// with code insufficient_scope and status 403.
func (p Principal) RequirePatient() error {
	if !p.IsPatient() {
		return &OAuthError{Code: CodeInsufficientScope, Description: "a patient token is required", Status: http.StatusForbidden}
	}
	return nil
}

// PatientIdP is a patient identity provider the gateway trusts: tokens
// with iss = Issuer and aud = Audience, signed by one of its keys, whose
// sub is the patient ID.
type PatientIdP struct {
	Issuer string
	// Audience is the aud the IdP puts in tokens for the gateway (default
	// Config.Issuer, the gateway's base URL).
	Audience string
	// Keys are the IdP's keys (ParseIdPJWKS); or JWKSURL serves them.
	Keys    *KeySet
	JWKSURL string
}

// LoadPatientIdP configures an IdP from an issuer and a JWKS file or URL
// (http:// or https://; fetched when needed, never from a token).
func LoadPatientIdP(issuer, jwksFileOrURL, audience string) (PatientIdP, error) {
	idp := PatientIdP{Issuer: issuer, Audience: audience}
	if issuer == "" {
		return idp, errors.New("patient IdP: issuer is required")
	}
	if strings.HasPrefix(jwksFileOrURL, "https://") || strings.HasPrefix(jwksFileOrURL, "http://") {
		idp.JWKSURL = jwksFileOrURL
		return idp, nil
	}
	b, err := os.ReadFile(jwksFileOrURL)
	if err != nil {
		return idp, fmt.Errorf("patient IdP JWKS: %w", err)
	}
	if idp.Keys, err = ParseIdPJWKS(b); err != nil {
		return idp, fmt.Errorf("patient IdP JWKS %s: %w", jwksFileOrURL, err)
	}
	return idp, nil
}

// MaxPatientIDLength bounds a patient token's sub.
const MaxPatientIDLength = 255

// Authenticator turns bearer tokens into principals.
type Authenticator struct {
	cfg    Config
	key    *SigningKey
	idps   []PatientIdP
	remote *jwksFetcher
}

// NewAuthenticator returns an authenticator that accepts the gateway's own
// access tokens (signed by key) and tokens of the given patient IdPs.
func NewAuthenticator(cfg Config, key *SigningKey, idps ...PatientIdP) (*Authenticator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("auth: authenticator needs the access-token key")
	}
	for i := range idps {
		if idps[i].Issuer == "" || (idps[i].Keys == nil) == (idps[i].JWKSURL == "") {
			return nil, fmt.Errorf("auth: patient IdP %d needs an issuer and exactly one of keys and a JWKS URL", i)
		}
		if idps[i].Issuer == cfg.Issuer {
			return nil, errors.New("auth: a patient IdP cannot share the gateway's issuer")
		}
		if idps[i].Audience == "" {
			idps[i].Audience = cfg.Issuer
		}
	}
	return &Authenticator{cfg: cfg, key: key, idps: idps, remote: newJWKSFetcher(cfg.HTTPClient, cfg.Now)}, nil
}

// Authenticate verifies a bearer token: a gateway access token gives an
// organisation principal, a patient IdP token a patient principal. Any
// other token, or any defect, is an *OAuthError with code invalid_token
// and status 401 (its Err says why, for the log).
func (a *Authenticator) Authenticate(ctx context.Context, bearer string) (Principal, error) {
	p, kid, err := a.authenticate(ctx, bearer)
	if err != nil {
		var oe *OAuthError
		if !errors.As(err, &oe) {
			oe = serverError(err)
		}
		a.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "bearer token rejected",
			slog.String("kid", kid), slog.String("reason", reasonOf(oe)))
		return Principal{}, oe
	}
	return p, nil
}

func (a *Authenticator) authenticate(ctx context.Context, bearer string) (Principal, string, error) {
	parts, err := splitToken(bearer)
	if err != nil {
		return Principal{}, "", invalidToken("malformed token", err)
	}
	kid := logSafe(parts.hdr.kid)
	if parts.hdr.jku != "" {
		// Only client assertions may name a (registered) key set URL.
		return Principal{}, kid, invalidToken("malformed token", errReason("header parameter %q is not accepted", "jku"))
	}
	iss := parts.claimString("iss")
	if iss == a.cfg.Issuer {
		p, tok, err := a.accessToken(bearer, parts)
		if err != nil {
			return p, kid, err
		}
		if err := a.checkRevoked(ctx, tok); err != nil {
			return Principal{}, kid, err
		}
		return p, kid, nil
	}
	for i := range a.idps {
		if a.idps[i].Issuer == iss {
			p, err := a.patientToken(ctx, bearer, parts, &a.idps[i])
			return p, kid, err
		}
	}
	return Principal{}, kid, invalidToken("unknown issuer", errReason("iss is neither the gateway nor a patient IdP"))
}

// checkRevoked refuses an access token whose jti was revoked.
func (a *Authenticator) checkRevoked(ctx context.Context, tok jwt.Token) error {
	if a.cfg.Revocations == nil {
		return nil
	}
	jti, _ := tok.JwtID()
	revoked, err := a.cfg.Revocations.Revoked(ctx, jti)
	if err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	if revoked {
		return invalidToken("access token was revoked", errReason("token revoked"))
	}
	return nil
}

// accessToken verifies one of the gateway's own access tokens (not its
// revocation).
func (a *Authenticator) accessToken(bearer string, parts tokenParts) (Principal, jwt.Token, error) {
	if !strings.EqualFold(parts.hdr.typ, typAccessToken) {
		return Principal{}, nil, invalidToken("not an access token", errReason("typ is not at+jwt"))
	}
	if parts.hdr.kid != a.key.verify.kid {
		return Principal{}, nil, invalidToken("unknown kid", errReason("kid is not the access-token key"))
	}
	tok, err := verify(bearer, parts.hdr, a.key.verify, checks{
		issuer:   a.cfg.Issuer,
		audience: a.cfg.Issuer,
		maxAhead: a.cfg.AccessTokenTTL,
		skew:     a.cfg.Skew,
		now:      a.cfg.Now,
	})
	if err != nil {
		return Principal{}, nil, invalidToken("access token is not valid", err)
	}
	sub, _ := tok.Subject()
	var clientID, kind, scope string
	if tok.Get(claimClientID, &clientID) != nil || tok.Get(claimOrgKind, &kind) != nil || tok.Get(claimScope, &scope) != nil {
		return Principal{}, nil, invalidToken("access token is not valid", errReason("client_id, org_kind or scope missing"))
	}
	if clientID != sub || !orgIDPattern.MatchString(sub) || !Kind(kind).Valid() {
		return Principal{}, nil, invalidToken("access token is not valid", errReason("bad sub, client_id or org_kind"))
	}
	scopes, err := parseRequestedScopes(scope)
	if err != nil || len(scopes) == 0 {
		return Principal{}, nil, invalidToken("access token is not valid", errReason("bad scope"))
	}
	for _, s := range scopes {
		if !scopeAllowedForKind(s, Kind(kind)) {
			return Principal{}, nil, invalidToken("access token is not valid", errReason("scope not allowed for the org kind"))
		}
	}
	exp, _ := tok.Expiration()
	return Principal{Org: sub, Kind: Kind(kind), Scopes: scopes, Expires: exp}, tok, nil
}

// patientToken verifies a token of a patient IdP.
func (a *Authenticator) patientToken(ctx context.Context, bearer string, parts tokenParts, idp *PatientIdP) (Principal, error) {
	set := idp.Keys
	if set == nil {
		if err := a.cfg.checkJWKSURL(idp.JWKSURL); err != nil {
			return Principal{}, invalidToken("patient IdP keys unavailable", err)
		}
		var err error
		if set, err = a.remote.keys(ctx, idp.JWKSURL, idpPolicy, parts.hdr.kid); err != nil {
			return Principal{}, invalidToken("patient IdP keys unavailable", err)
		}
	}
	key, ok := set.lookup(parts.hdr.kid)
	if !ok {
		return Principal{}, invalidToken("unknown kid", errReason("kid not among the patient IdP's keys"))
	}
	tok, err := verify(bearer, parts.hdr, key, checks{
		issuer:   idp.Issuer,
		audience: idp.Audience,
		skew:     a.cfg.Skew,
		now:      a.cfg.Now,
	})
	if err != nil {
		return Principal{}, invalidToken("patient token is not valid", err)
	}
	sub, _ := tok.Subject()
	if !validPatientID(sub) {
		return Principal{}, invalidToken("patient token is not valid", errReason("sub is not a valid patient ID"))
	}
	exp, _ := tok.Expiration()
	return Principal{Patient: sub, Expires: exp}, nil
}

// validPatientID accepts 1 to MaxPatientIDLength printable ASCII
// characters without spaces.
func validPatientID(s string) bool {
	if s == "" || len(s) > MaxPatientIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
