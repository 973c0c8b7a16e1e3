// Package openapitest checks HTTP exchanges against the gateway's OpenAPI
// 3.1 document (api.OpenAPI) with github.com/getkin/kin-openapi, which
// validates 3.1 documents with its JSON Schema 2020-12 validator. Tests
// wrap their client's transport with Transport so that every response
// they see is validated, and the document cannot drift from the code.
package openapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Load parses and validates an OpenAPI document: the linter step.
func Load(ctx context.Context, doc []byte) (*openapi3.T, error) {
	l := openapi3.NewLoader()
	l.IsExternalRefsAllowed = false
	t, err := l.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI document: %w", err)
	}
	if !t.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("OpenAPI document is version %s, want 3.1", t.OpenAPI)
	}
	if err := t.Validate(ctx); err != nil {
		return nil, fmt.Errorf("invalid OpenAPI document: %w", err)
	}
	return t, nil
}

// Validator checks requests and responses against a document served at
// one base URL.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// registerDecoders teaches openapi3filter (a process-wide table) the
// gateway's other media types: sealed records and FHIR JSON.
var registerDecoders = sync.OnceFunc(func() {
	openapi3filter.RegisterBodyDecoder("application/jose", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/fhir+json", openapi3filter.JSONBodyDecoder)
})

// New loads doc (see Load) for a gateway at baseURL.
func New(ctx context.Context, doc []byte, baseURL string) (*Validator, error) {
	registerDecoders()
	t, err := Load(ctx, doc)
	if err != nil {
		return nil, err
	}
	t.Servers = openapi3.Servers{{URL: strings.TrimRight(baseURL, "/")}}
	r, err := gorillamux.NewRouter(t)
	if err != nil {
		return nil, fmt.Errorf("route OpenAPI document: %w", err)
	}
	return &Validator{doc: t, router: r}, nil
}

// ErrUndocumented is returned for a request to a route the document does
// not describe that the server nonetheless answered.
var ErrUndocumented = errors.New("undocumented route")

// Check validates one exchange: the response always (status, headers,
// content type and body); the request only when the server accepted it
// (2xx), since tests send malformed requests on purpose and a request the
// server accepts but the document forbids is drift too.
func (v *Validator) Check(ctx context.Context, req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		// Unknown routes answer 404 or 405; the tiles API has paths with
		// slashes under /ledger/, documented as one prefix.
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed || strings.HasPrefix(req.URL.Path, "/ledger/") {
			return nil
		}
		return fmt.Errorf("%w: %s %s answered %d", ErrUndocumented, req.Method, req.URL.Path, status)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: cloneWithBody(req, reqBody), PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	var errs []error
	if status >= 200 && status < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("request accepted with %d but not as documented: %w", status, err))
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("response %d not as documented: %w", status, err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, errors.Join(errs...))
	}
	return nil
}

func cloneWithBody(r *http.Request, body []byte) *http.Request {
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(bytes.NewReader(body))
	c.ContentLength = int64(len(body))
	c.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return c
}

// Transport is an http.RoundTripper that validates every exchange with a
// Validator and reports failures to Report (t.Errorf in tests). Requests
// to other hosts than base pass through unchecked.
type Transport struct {
	Base      http.RoundTripper // nil: http.DefaultTransport
	Validator *Validator
	Host      string // host:port of the gateway
	Report    func(err error)

	mu   sync.Mutex
	seen int
}

// Checked is the number of exchanges validated so far.
func (t *Transport) Checked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen
}

// RoundTrip sends req and validates the exchange.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if req.URL.Host != t.Host {
		return base.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil // the caller sees the truncated body; nothing to check
	}
	if req.Method == http.MethodHead {
		return resp, nil
	}
	u := *req.URL
	vreq := req.Clone(req.Context())
	vreq.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if err := t.Validator.Check(req.Context(), vreq, reqBody, resp.StatusCode, resp.Header, body); err != nil && t.Report != nil {
		t.Report(err)
	}
	t.mu.Lock()
	t.seen++
	t.mu.Unlock()
	return resp, nil
}
