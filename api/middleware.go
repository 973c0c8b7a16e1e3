package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/healthgw/healthgw/auth"
)

const (
	headerRequestID       = "X-Request-ID"
	headerClientRequestID = "X-Client-Request-ID"
	ctxRequestID          = "healthgw.request_id"
	ctxClientRequestID    = "healthgw.client_request_id"
	ctxPrincipal          = "healthgw.principal"
)

// requestIDPattern is what a client's X-Request-ID must look like to be
// kept: bounded, and of a charset that is safe in logs, headers and JSON.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestIDMiddleware gives every request the gateway's own ID, a fresh
// random UUID: it goes on the ledger, in every error body and log line,
// and in the X-Request-ID response header. A client's well-formed
// X-Request-ID is kept alongside as the client request ID (echoed in
// X-Client-Request-ID, logged and recorded as client-supplied), so no
// client can make its entries carry another's request ID. A malformed one
// is dropped.
func (s *Server) requestIDMiddleware(c *gin.Context) {
	rid := uuid.NewString()
	c.Set(ctxRequestID, rid)
	c.Request = c.Request.WithContext(ContextWithRequestID(c.Request.Context(), rid))
	c.Header(headerRequestID, rid)
	if crid := c.GetHeader(headerRequestID); requestIDPattern.MatchString(crid) {
		c.Set(ctxClientRequestID, crid)
		c.Header(headerClientRequestID, crid)
	}
	c.Next()
}

// requestID is the gateway's own ID of the request.
func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// clientRequestID is the caller's X-Request-ID ("" if none or malformed).
func clientRequestID(c *gin.Context) string { return c.GetString(ctxClientRequestID) }

// recoverMiddleware turns a panic into a 500 without detail; the stack goes
// to the log with the request ID.
func (s *Server) recoverMiddleware(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.LogAttrs(c.Request.Context(), slog.LevelError, "panic",
				slog.String("request_id", requestID(c)),
				slog.String("route", c.FullPath()),
				slog.String("panic", fmt.Sprint(r)),
				slog.String("stack", string(debug.Stack())),
			)
			if !c.Writer.Written() {
				writeError(c, errInternal, requestID(c))
			} else {
				c.Abort()
			}
		}
	}()
	c.Next()
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "healthgw_http_requests_total",
			Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "healthgw_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route template.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"method", "route"}),
	}
	r.MustRegister(m.requests, m.duration)
	return m
}

// metricsMiddleware labels by route template (never the raw path, which
// holds IDs).
func (s *Server) metricsMiddleware(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	method := c.Request.Method
	if !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}, method) {
		method = "other"
	}
	s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(c.Writer.Status())).Inc()
	s.metrics.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
}

// MaxTokenSize bounds a bearer token's length.
const MaxTokenSize = 8 << 10

// authenticate requires a valid bearer token and stores the principal.
func (s *Server) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="healthgw"`)
		s.fail(c, errUnauthorized)
		return
	}
	if len(token) > MaxTokenSize {
		c.Header("WWW-Authenticate", `Bearer realm="healthgw", error="invalid_token"`)
		s.fail(c, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "Missing or invalid credentials.", Err: errors.New("token over size limit")})
		return
	}
	now := s.now()
	p, ok := s.verified.get(token, now)
	var err error
	if !ok {
		if p, err = s.auth.Authenticate(c.Request.Context(), token); err == nil {
			s.verified.put(token, p, now)
		}
	}
	if err != nil {
		challenge, e := bearerRefusal(err)
		c.Header("WWW-Authenticate", challenge)
		s.fail(c, e)
		return
	}
	c.Set(ctxPrincipal, p)
	if !s.limitPrincipal(c, p) {
		return
	}
	c.Next()
}

func principal(c *gin.Context) Principal {
	p, _ := c.Get(ctxPrincipal)
	pr, _ := p.(Principal)
	return pr
}

// requireOrg admits org principals of one of kinds holding scope (scope ""
// for none). Patients and other kinds get 403: they are authenticated but
// not allowed this whole class of action.
func (s *Server) requireOrg(scope auth.Scope, kinds ...auth.Kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := principal(c)
		if p.IsPatient() || p.Org == "" {
			s.fail(c, &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "This route is for organisations.", Err: errors.New("patient on org route")})
			return
		}
		if len(kinds) > 0 && !slices.Contains(kinds, p.Kind) {
			s.fail(c, &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "Not allowed for this kind of organisation.", Err: fmt.Errorf("kind %s", p.Kind)})
			return
		}
		if scope != "" && !p.HasScope(scope) {
			s.fail(c, &Error{Status: http.StatusForbidden, Code: "insufficient_scope", Message: "The token lacks scope " + string(scope) + ".", Err: fmt.Errorf("missing scope %s", scope)})
			return
		}
		c.Next()
	}
}

// requireRecordReader admits hospitals whose token reads records of some
// resource type (auth.Principal.MayReadRecords: system/records.read, or
// system/Observation.rs and the like); which records, access.Service
// decides (Caller.Scopes).
func (s *Server) requireRecordReader(c *gin.Context) {
	p := principal(c)
	if p.IsPatient() || p.Org == "" {
		s.fail(c, &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "This route is for organisations.", Err: errors.New("patient on org route")})
		return
	}
	if p.Kind != auth.KindHospital {
		s.fail(c, &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "Not allowed for this kind of organisation.", Err: fmt.Errorf("kind %s", p.Kind)})
		return
	}
	if !p.MayReadRecords() {
		s.fail(c, &Error{Status: http.StatusForbidden, Code: "insufficient_scope", Message: "The token lacks scope system/records.read (or system/<ResourceType>.rs).", Err: errors.New("no record read scope")})
		return
	}
	c.Next()
}

// requirePatient admits only patient principals.
func (s *Server) requirePatient(c *gin.Context) {
	if !principal(c).IsPatient() {
		s.fail(c, &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "This route is for patients.", Err: errors.New("org on patient route")})
		return
	}
	c.Next()
}

// limitBody bounds the request body: a declared Content-Length over the
// limit is refused at once, before anything is read; otherwise reading
// past the limit fails (and the error boundary answers 413).
func (s *Server) limitBody(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > limit {
			c.Header("Connection", "close")
			s.fail(c, errTooLarge)
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		c.Next()
	}
}

// validator is implemented by request types.
type validator interface{ Validate() error }

// decodeJSON reads one JSON value into v, rejecting unknown fields,
// trailing data and a non-JSON content type, then runs v.Validate.
func decodeJSON(c *gin.Context, v validator) error {
	ct := c.ContentType()
	if ct != "application/json" && !strings.HasSuffix(ct, "+json") {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "Content-Type must be application/json."}
	}
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return badRequest(jsonErrorMessage(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return badRequest("Request body must hold exactly one JSON value.")
	}
	if err := v.Validate(); err != nil {
		return err
	}
	return nil
}

// jsonErrorMessage describes a decoding error without echoing the body.
func jsonErrorMessage(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("Malformed JSON at byte %d.", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("Field %q has the wrong type.", typ.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "Request body is empty or truncated."
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "Unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + "."
	}
	return "Malformed JSON."
}
