package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/auth"
)

// ClientAuthenticator authenticates a client by a private_key_jwt client
// assertion for one of the gateway's OAuth endpoints (auth.Exchanger).
type ClientAuthenticator interface {
	AuthenticateClient(ctx context.Context, assertionType, assertion, clientID, endpoint string) (auth.Org, error)
}

// TokenIntrospector introspects and revokes access tokens for the client
// they were issued to (auth.Authenticator).
type TokenIntrospector interface {
	Introspect(ctx context.Context, caller, token string) (auth.TokenInfo, error)
	Revoke(ctx context.Context, caller, token string) error
}

// MountTokenManagement mounts POST /oauth2/introspect (RFC 7662) and
// POST /oauth2/revoke (RFC 7009). Both require client authentication:
// either the client assertion of the token endpoint (private_key_jwt,
// form parameters client_assertion_type and client_assertion; aud may be
// the issuer, the token endpoint or this endpoint's URL), or a bearer
// access token of a registered organisation (RFC 7662 section 2.1 allows
// either; RFC 6749 forbids using both at once). A client introspects and
// revokes only tokens issued to it.
func (s *Server) MountTokenManagement(clients ClientAuthenticator, tokens TokenIntrospector) {
	s.engine.POST(auth.IntrospectionPath, s.limitBody(maxTokenForm), func(c *gin.Context) {
		s.tokenManagement(c, clients, auth.IntrospectionPath, func(ctx context.Context, caller, token string) {
			info, err := tokens.Introspect(ctx, caller, token)
			if err != nil {
				s.oauthFail(c, err)
				return
			}
			c.JSON(http.StatusOK, introspectionOf(info))
		})
	})
	s.engine.POST(auth.RevocationPath, s.limitBody(maxTokenForm), func(c *gin.Context) {
		s.tokenManagement(c, clients, auth.RevocationPath, func(ctx context.Context, caller, token string) {
			if err := tokens.Revoke(ctx, caller, token); err != nil {
				s.oauthFail(c, err)
				return
			}
			// This gateway's verified-token cache must not keep serving it.
			s.verified.forget(token)
			c.Status(http.StatusOK)
		})
	})
}

// introspectionResponse is an RFC 7662 section 2.2 response.
type introspectionResponse struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Issuer    string `json:"iss,omitempty"`
	Audience  string `json:"aud,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	JTI       string `json:"jti,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	Expires   int64  `json:"exp,omitempty"`
	OrgKind   string `json:"org_kind,omitempty"`
}

func introspectionOf(t auth.TokenInfo) introspectionResponse {
	if !t.Active {
		return introspectionResponse{}
	}
	r := introspectionResponse{
		Active: true, Scope: t.Scope, ClientID: t.ClientID, Subject: t.Subject, Issuer: t.Issuer,
		Audience: t.Audience, TokenType: t.TokenType, JTI: t.JTI, Expires: t.Expires.Unix(), OrgKind: string(t.OrgKind),
	}
	if !t.IssuedAt.IsZero() {
		r.IssuedAt = t.IssuedAt.Unix()
	}
	return r
}

// tokenManagement parses an introspection or revocation request,
// authenticates the client and calls do with the caller's org ID and the
// token parameter.
func (s *Server) tokenManagement(c *gin.Context, clients ClientAuthenticator, path string, do func(ctx context.Context, caller, token string)) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	if c.ContentType() != "application/x-www-form-urlencoded" {
		s.oauthFail(c, &auth.OAuthError{Code: auth.CodeInvalidRequest, Description: "content type must be application/x-www-form-urlencoded", Status: http.StatusBadRequest})
		return
	}
	if err := c.Request.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(c, errTooLarge)
			return
		}
		s.oauthFail(c, &auth.OAuthError{Code: auth.CodeInvalidRequest, Description: "malformed form body", Status: http.StatusBadRequest})
		return
	}
	form := c.Request.PostForm
	params := map[string]string{}
	for _, name := range []string{"token", "token_type_hint", "client_assertion_type", "client_assertion", "client_id"} {
		switch v := form[name]; len(v) {
		case 0:
		case 1:
			params[name] = v[0]
		default:
			s.oauthFail(c, &auth.OAuthError{Code: auth.CodeInvalidRequest, Description: "parameter " + name + " given more than once", Status: http.StatusBadRequest})
			return
		}
	}
	ctx := c.Request.Context()
	var caller string
	scheme, bearer, hasAuth := strings.Cut(c.GetHeader("Authorization"), " ")
	switch {
	case hasAuth && params["client_assertion"] != "":
		s.oauthFail(c, &auth.OAuthError{Code: auth.CodeInvalidRequest, Description: "use one client authentication method, not two", Status: http.StatusBadRequest})
		return
	case hasAuth:
		if !strings.EqualFold(scheme, "Bearer") || bearer == "" || len(bearer) > MaxTokenSize {
			s.bearerFail(c, errors.New("not a bearer token"))
			return
		}
		p, err := s.auth.Authenticate(ctx, bearer)
		if err != nil || !p.IsOrg() {
			s.bearerFail(c, err)
			return
		}
		caller = p.Org
	default:
		o, err := clients.AuthenticateClient(ctx, params["client_assertion_type"], params["client_assertion"], params["client_id"], s.cfg.BaseURL+path)
		if err != nil {
			s.oauthFail(c, err)
			return
		}
		caller = o.ID
	}
	token := params["token"]
	if token == "" {
		s.oauthFail(c, &auth.OAuthError{Code: auth.CodeInvalidRequest, Description: "token is required", Status: http.StatusBadRequest})
		return
	}
	if len(token) > MaxTokenSize {
		// No token of ours is that long: nothing to introspect or revoke.
		token = "-"
	}
	do(ctx, caller, token)
}

// oauthFail answers an RFC 6749 section 5.2 error. invalid_client gets no
// WWW-Authenticate: the client authenticated in the body.
func (s *Server) oauthFail(c *gin.Context, err error) {
	var oe *auth.OAuthError
	if !errors.As(err, &oe) {
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "oauth endpoint", slog.String("request_id", requestID(c)), slog.String("err", err.Error()))
		oe = &auth.OAuthError{Code: auth.CodeServerError, Description: "internal error", Status: http.StatusInternalServerError}
	}
	s.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "oauth request refused",
		slog.String("request_id", requestID(c)), slog.String("route", c.FullPath()), slog.String("error", oe.Code), slog.String("reason", oe.Description))
	c.AbortWithStatusJSON(oe.Status, tokenError{Error: oe.Code, Description: oe.Description})
}

// bearerFail answers a refused bearer token (RFC 6750 section 3).
func (s *Server) bearerFail(c *gin.Context, err error) {
	if err == nil {
		err = errors.New("not an organisation token")
	}
	s.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "oauth request refused",
		slog.String("request_id", requestID(c)), slog.String("route", c.FullPath()), slog.String("err", err.Error()))
	c.Header("WWW-Authenticate", `Bearer realm="healthgw", error="invalid_token"`)
	c.AbortWithStatusJSON(http.StatusUnauthorized, tokenError{Error: auth.CodeInvalidToken, Description: "the bearer token is not a valid access token of a registered organisation"})
}

// forget drops token from the verified-token cache (after revocation).
func (c *tokenCache) forget(token string) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}
