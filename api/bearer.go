package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/healthgw/healthgw/auth"
)

// bearerRefusal is the 401 for a bearer token that did not authenticate:
// the RFC 6750 challenge (WWW-Authenticate) and the error body. An
// expired token says so (error_description), so that a client knows to
// get a new one; every other defect gets the same answer.
func bearerRefusal(err error) (challenge string, e *Error) {
	if errors.Is(err, auth.ErrTokenExpired) {
		return `Bearer realm="healthgw", error="invalid_token", error_description="The access token expired"`,
			&Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "The access token expired; get a new one.", Err: fmt.Errorf("%w: %w", errAuth, err)}
	}
	return `Bearer realm="healthgw", error="invalid_token"`,
		&Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "Missing or invalid credentials.", Err: fmt.Errorf("%w: %w", errAuth, err)}
}
