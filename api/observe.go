package api

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Observer receives the API's operational events (metrics.Gateway).
type Observer interface {
	// TokenFailure counts a refused token request by its error code.
	TokenFailure(reason string)
	// RecordBytes counts record bytes: "in" for uploads, "out" for reads.
	RecordBytes(direction string, n int64)
}

// WithObserver reports token failures and record bytes to o.
func WithObserver(o Observer) Option { return func(s *Server) { s.observer = o } }

// observeMiddleware feeds the Observer from the routes' outcomes, so that
// the handlers need not know about metrics.
func (s *Server) observeMiddleware(c *gin.Context) {
	switch route := c.FullPath(); {
	case route == tokenPath && c.Request.Method == http.MethodPost:
		w := &codeCapture{ResponseWriter: c.Writer}
		c.Writer = w
		c.Next()
		if st := c.Writer.Status(); st >= 400 {
			s.observer.TokenFailure(w.code(st))
		}
	case route == "/v1/records" && c.Request.Method == http.MethodPost:
		c.Next()
		if c.Writer.Status() == http.StatusCreated && c.Request.ContentLength > 0 {
			s.observer.RecordBytes("in", c.Request.ContentLength)
		}
	case route == "/v1/records/upload" && c.Request.Method == http.MethodPost:
		c.Next()
		if c.Writer.Status() == http.StatusCreated {
			if n := c.GetInt64(ctxUploadBytes); n > 0 {
				s.observer.RecordBytes("in", n)
			}
		}
	case route == "/v1/records/:id/content" && c.Request.Method == http.MethodGet:
		// A stream cut short panics (http.ErrAbortHandler) past this.
		c.Next()
		if c.Writer.Status() == http.StatusOK {
			s.observer.RecordBytes("out", int64(c.Writer.Size()))
		}
	case route == "/v1/records/:id" && c.Request.Method == http.MethodGet:
		c.Next()
		if c.Writer.Status() == http.StatusOK {
			s.observer.RecordBytes("out", int64(c.Writer.Size()))
		}
	default:
		c.Next()
	}
}

// codeCapture keeps the start of a token response to read its error code.
type codeCapture struct {
	gin.ResponseWriter
	head []byte
}

const maxCapture = 256

func (w *codeCapture) Write(b []byte) (int, error) {
	if n := maxCapture - len(w.head); n > 0 {
		w.head = append(w.head, b[:min(n, len(b))]...)
	}
	return w.ResponseWriter.Write(b)
}

func (w *codeCapture) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// code is the response's RFC 6749 error code, or a status class when the
// body has none.
func (w *codeCapture) code(status int) string {
	var e struct {
		Error string `json:"error"`
	}
	if dec := json.NewDecoder(bytes.NewReader(w.head)); dec.Decode(&e) == nil {
		switch e.Error {
		case "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope", "server_error", "rate_limited", "too_large":
			return e.Error
		}
	}
	if status >= 500 {
		return "server_error"
	}
	return "other"
}
