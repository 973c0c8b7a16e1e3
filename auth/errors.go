package auth

import (
	"errors"
	"net/http"
)

// OAuth 2.0 error codes (RFC 6749 section 5.2, RFC 6750 section 3.1).
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidScope         = "invalid_scope"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeInvalidToken         = "invalid_token"
	CodeInsufficientScope    = "insufficient_scope"
	CodeServerError          = "server_error"
)

// OAuthError is an error the token endpoint or the authenticator answers
// with. Code and Description are safe to send to the client (as "error"
// and "error_description"); Status is the HTTP status. Err is the
// internal cause, for errors.Is and the log; it never holds token
// material, but it is not meant for the client either.
type OAuthError struct {
	Code        string
	Description string
	Status      int
	Err         error
}

func (e *OAuthError) Error() string {
	s := e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *OAuthError) Unwrap() error { return e.Err }

// Sentinel errors, wrapped in an *OAuthError's Err where they apply.
var (
	// ErrUnknownOrg: no organisation is registered under that ID.
	ErrUnknownOrg = errors.New("auth: unknown organisation")
	// ErrReplay: the assertion's jti was already used by that issuer.
	ErrReplay = errors.New("auth: jti already used")
	// ErrInvalidKey: a JWK or JWK Set is not acceptable.
	ErrInvalidKey = errors.New("auth: invalid key")
	// ErrInvalidToken: a token is malformed, wrongly signed or not valid
	// now; the wrapping error says why.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrTokenExpired: a token is past its exp (it matches
	// ErrInvalidToken too).
	ErrTokenExpired = errors.New("auth: token expired")
)

func invalidClient(desc string, err error) *OAuthError {
	return &OAuthError{Code: CodeInvalidClient, Description: desc, Status: http.StatusUnauthorized, Err: err}
}

func invalidRequest(desc string) *OAuthError {
	return &OAuthError{Code: CodeInvalidRequest, Description: desc, Status: http.StatusBadRequest}
}

func invalidToken(desc string, err error) *OAuthError {
	return &OAuthError{Code: CodeInvalidToken, Description: desc, Status: http.StatusUnauthorized, Err: err}
}

func serverError(err error) *OAuthError {
	return &OAuthError{Code: CodeServerError, Description: "internal error", Status: http.StatusInternalServerError, Err: err}
}
