package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/auth"
)

// maxTokenForm bounds a token request body.
const maxTokenForm = 64 << 10

// TokenService is the token endpoint's domain side (auth.Exchanger).
type TokenService interface {
	Exchange(ctx context.Context, req auth.TokenRequest) (auth.AccessToken, error)
	SMARTConfiguration() map[string]any
	AuthorizationServerMetadata() map[string]any
}

// MountAuth mounts POST /oauth2/token, the discovery documents and the
// gateway's public JWK Set (jwks: the access-token key and the checkpoint
// key). The SMART configuration is served at the server root and at the
// FHIR base (/fhir), where SMART clients look for it; RFC 8414 metadata
// at /.well-known/oauth-authorization-server.
func (s *Server) MountAuth(tokens TokenService, jwks jwk.Set) {
	s.tokens = tokens
	s.engine.POST("/oauth2/token", s.limitBody(maxTokenForm), s.token)
	discovery := func(doc map[string]any) gin.HandlerFunc {
		body, err := json.Marshal(doc)
		if err != nil {
			s.log.Error("marshal discovery document", slog.String("err", err.Error()))
			return func(c *gin.Context) { s.fail(c, errInternal) }
		}
		return func(c *gin.Context) {
			c.Header("Cache-Control", "public, max-age=300")
			c.Header("Access-Control-Allow-Origin", "*")
			c.Data(http.StatusOK, "application/json", body)
		}
	}
	smart := discovery(tokens.SMARTConfiguration())
	s.engine.GET("/.well-known/smart-configuration", smart)
	s.engine.GET("/fhir/.well-known/smart-configuration", smart)
	s.engine.GET("/.well-known/oauth-authorization-server", discovery(tokens.AuthorizationServerMetadata()))
	body, err := json.Marshal(jwks)
	if err != nil {
		body = []byte(`{"keys":[]}`)
		s.log.Error("marshal JWKS", slog.String("err", err.Error()))
	}
	s.engine.GET("/.well-known/jwks.json", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, "application/json", body)
	})
}

// tokenError is an RFC 6749 section 5.2 error response.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// tokenResponse is an RFC 6749 section 5.1 token response.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

func (s *Server) token(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	fail := func(e *auth.OAuthError) {
		s.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "token request refused",
			slog.String("request_id", requestID(c)), slog.String("error", e.Code), slog.String("reason", e.Description))
		// No WWW-Authenticate: the client authenticated with an assertion
		// in the body, not with an Authorization header (RFC 6749 section
		// 5.2 asks for it only then), and clients such as openid-client
		// hide the error body when the header is present.
		c.AbortWithStatusJSON(e.Status, tokenError{Error: e.Code, Description: e.Description})
	}
	if c.ContentType() != "application/x-www-form-urlencoded" {
		fail(&auth.OAuthError{Code: auth.CodeInvalidRequest, Description: "content type must be application/x-www-form-urlencoded", Status: http.StatusBadRequest})
		return
	}
	if err := c.Request.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(c, errTooLarge)
			return
		}
		fail(&auth.OAuthError{Code: auth.CodeInvalidRequest, Description: "malformed form body", Status: http.StatusBadRequest})
		return
	}
	req, err := auth.TokenRequestFromForm(c.Request.PostForm)
	if err == nil {
		var at auth.AccessToken
		if at, err = s.tokens.Exchange(c.Request.Context(), req); err == nil {
			c.JSON(http.StatusOK, tokenResponse{AccessToken: at.Token, TokenType: at.TokenType, ExpiresIn: at.ExpiresIn, Scope: at.Scope})
			return
		}
	}
	var oe *auth.OAuthError
	if errors.As(err, &oe) {
		if oe.Status >= 500 {
			s.log.LogAttrs(c.Request.Context(), slog.LevelError, "token endpoint", slog.String("request_id", requestID(c)), slog.String("err", err.Error()))
		}
		fail(oe)
		return
	}
	s.log.LogAttrs(c.Request.Context(), slog.LevelError, "token endpoint", slog.String("request_id", requestID(c)), slog.String("err", err.Error()))
	fail(&auth.OAuthError{Code: auth.CodeServerError, Description: "internal error", Status: http.StatusInternalServerError})
}
