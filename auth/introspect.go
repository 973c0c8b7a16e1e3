package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Revocations remembers revoked access tokens by jti until they expire
// (RFC 7009). authstore.Store implements it.
type Revocations interface {
	// Revoke records jti as revoked until the given time. Revoking a jti
	// twice is not an error. Records MUST survive a restart.
	Revoke(ctx context.Context, jti string, until time.Time) error
	// Revoked reports whether jti is recorded as revoked.
	Revoked(ctx context.Context, jti string) (bool, error)
}

// Paths of the token management endpoints under the issuer URL.
const (
	// IntrospectionPath is the RFC 7662 introspection endpoint.
	IntrospectionPath = "/oauth2/introspect"
	// RevocationPath is the RFC 7009 revocation endpoint.
	RevocationPath = "/oauth2/revoke"
)

// TokenInfo is an introspection response (RFC 7662 section 2.2). Only
// Active is meaningful when Active is false.
type TokenInfo struct {
	Active    bool
	Scope     string
	ClientID  string
	Subject   string
	Issuer    string
	Audience  string
	TokenType string // "Bearer"
	JTI       string
	IssuedAt  time.Time
	Expires   time.Time
	OrgKind   Kind
}

// ErrNotTokenOwner: a client asked to revoke a token issued to another
// client (RFC 7009 section 2.1 refuses the request).
var ErrNotTokenOwner = errors.New("auth: token was issued to another client")

// Introspect describes token to caller, the organisation that
// authenticated the introspection request. A token is active when it is
// one of the gateway's access tokens, valid now, not revoked, and issued
// to caller: a client learns nothing about other clients' tokens (they
// are reported inactive, as unknown ones are). Errors are for failing
// stores only.
func (a *Authenticator) Introspect(ctx context.Context, caller, token string) (TokenInfo, error) {
	parts, err := splitToken(token)
	if err != nil || parts.claimString("iss") != a.cfg.Issuer || parts.hdr.jku != "" {
		return TokenInfo{}, nil
	}
	p, tok, err := a.accessToken(token, parts)
	if err != nil || p.Org != caller {
		return TokenInfo{}, nil
	}
	if err := a.checkRevoked(ctx, tok); err != nil {
		var oe *OAuthError
		if errors.As(err, &oe) {
			return TokenInfo{}, nil
		}
		return TokenInfo{}, err
	}
	jti, _ := tok.JwtID()
	iat, _ := tok.IssuedAt()
	return TokenInfo{
		Active:    true,
		Scope:     JoinScopes(p.Scopes),
		ClientID:  p.Org,
		Subject:   p.Org,
		Issuer:    a.cfg.Issuer,
		Audience:  a.cfg.Issuer,
		TokenType: "Bearer",
		JTI:       jti,
		IssuedAt:  iat,
		Expires:   p.Expires,
		OrgKind:   p.Kind,
	}, nil
}

// Revoke revokes token for caller, the organisation that authenticated
// the revocation request (RFC 7009): from then on the Authenticator
// refuses it, on every gateway sharing the revocation store, until it
// expires. A token that is not a valid access token of this gateway
// (unknown, malformed, expired, already revoked) needs nothing and is not
// an error, as RFC 7009 asks; one issued to another client is refused
// with ErrNotTokenOwner (an *OAuthError, unauthorized_client).
func (a *Authenticator) Revoke(ctx context.Context, caller, token string) error {
	if a.cfg.Revocations == nil {
		return &OAuthError{Code: "unsupported_token_type", Description: "this gateway does not revoke tokens", Status: http.StatusBadRequest}
	}
	parts, err := splitToken(token)
	if err != nil || parts.claimString("iss") != a.cfg.Issuer || parts.hdr.jku != "" {
		return nil
	}
	p, tok, err := a.accessToken(token, parts)
	if err != nil {
		return nil
	}
	if p.Org != caller {
		return &OAuthError{Code: "unauthorized_client", Description: "the token was not issued to this client", Status: http.StatusBadRequest, Err: ErrNotTokenOwner}
	}
	jti, _ := tok.JwtID()
	// Keep the jti as long as the token could pass the exp check.
	if err := a.cfg.Revocations.Revoke(ctx, jti, p.Expires.Add(a.cfg.Skew+time.Second)); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	a.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "access token revoked", slog.String("org", caller), slog.String("jti", jti))
	return nil
}
