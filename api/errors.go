package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Error is an error with a status, a machine-readable code and a message
// that is safe to show the client. Handlers return it (or wrap domain
// errors that the errorTable knows); anything else becomes a 500 with no
// detail.
type Error struct {
	Status  int
	Code    string
	Message string
	Err     error // internal cause, logged, never sent
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Common API errors.
var (
	errNotFound     = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "Not found."}
	errUnauthorized = &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "Missing or invalid credentials."}
	errForbidden    = &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "Not allowed for this caller."}
	errTooLarge     = &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "Request body too large."}
	errInternal     = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "Internal error."}
)

// badRequest is a 400 whose message is written for the client.
func badRequest(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: msg}
}

// errorRule maps a domain error (matched with errors.Is) to a response.
// When public is set the error's own text is the message: only validation
// errors, whose text is written for the client, use that.
type errorRule struct {
	target  error
	status  int
	code    string
	message string
	public  bool
}

// errorResponse is the body of every error.
type errorResponse struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// fail is the one error boundary: it maps err to a status and public
// message, logs the detail with the request ID, and aborts the request.
func (s *Server) fail(c *gin.Context, err error) {
	e := s.classify(err)
	rid := requestID(c)
	level := slog.LevelInfo
	switch {
	case e.Status == http.StatusServiceUnavailable:
		level = slog.LevelWarn // a dependency is not ready: expected, transient
	case e.Status >= 500:
		level = slog.LevelError
	}
	s.log.LogAttrs(c.Request.Context(), level, "request failed",
		slog.String("request_id", rid),
		slog.String("route", c.FullPath()),
		slog.Int("status", e.Status),
		slog.String("code", e.Code),
		slog.String("err", err.Error()),
	)
	c.AbortWithStatusJSON(e.Status, errorResponse{Error: e.Code, Message: e.Message, RequestID: rid})
}

func (s *Server) classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	for _, r := range s.errorRules {
		if errors.Is(err, r.target) {
			msg := r.message
			if r.public {
				msg = err.Error()
			}
			return &Error{Status: r.status, Code: r.code, Message: msg}
		}
	}
	return errInternal
}
