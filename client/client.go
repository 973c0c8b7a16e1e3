package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Paths and headers of the API.
const (
	TokenPath        = "/oauth2/token"
	HeaderBreakGlass = "X-Break-Glass-Reason"
	// MaxResponse bounds a response body the client reads.
	MaxResponse = 32 << 20
)

// DefaultTimeout is the HTTP client timeout when New is given none.
const DefaultTimeout = 30 * time.Second

// Client calls one gateway. It is safe for concurrent use; tokens are
// passed per call (one client serves several organisations and patients).
type Client struct {
	base string
	http *http.Client
}

// New returns a client of the gateway at base (e.g.
// http://127.0.0.1:8080). A nil hc uses an http.Client with
// DefaultTimeout.
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc}
}

// BaseURL returns the gateway's base URL.
func (c *Client) BaseURL() string { return c.base }

// HTTPClient returns the underlying HTTP client.
func (c *Client) HTTPClient() *http.Client { return c.http }

// StatusError is an answer with an unexpected status. Body is the error
// body when the gateway sent one.
type StatusError struct {
	Method, Path string
	Status       int
	Body         Error
	Raw          string // the start of a body that is not an error body
}

func (e *StatusError) Error() string {
	msg := e.Body.Message
	if msg == "" {
		msg = e.Raw
	}
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Status, msg)
}

// ErrNotFound is what a 404 answer is (errors.Is): the gateway gives it
// both for what does not exist and for what the caller may not see.
var ErrNotFound = errors.New("not found")

// Is makes a 404 StatusError match ErrNotFound.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// Do sends a request with a bearer token (none when token is "") and a
// JSON body (none when body is nil; a json.RawMessage is sent as is),
// checks that the answer has status want and decodes it into out (when
// not nil). hdr are header name and value pairs.
func (c *Client) Do(ctx context.Context, method, path, token string, body any, want int, out any, hdr ...string) error {
	status, b, err := c.Raw(ctx, method, path, token, body, hdr...)
	if err != nil {
		return err
	}
	if status != want {
		return statusError(method, path, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// Raw sends a request like Do and returns the status and body, whatever
// the status.
func (c *Client) Raw(ctx context.Context, method, path, token string, body any, hdr ...string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// Exchange posts a client_credentials request with a JWT client assertion
// to the token endpoint (endpoint "" is BaseURL + TokenPath) and returns
// the access token. scope "" asks for every scope of the organisation.
func (c *Client) Exchange(ctx context.Context, endpoint, assertion, scope string) (TokenResponse, error) {
	if endpoint == "" {
		endpoint = c.base + TokenPath
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return TokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return TokenResponse{}, fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return TokenResponse{}, fmt.Errorf("token endpoint: %w", err)
	}
	var tr struct {
		TokenResponse
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return TokenResponse{}, fmt.Errorf("token endpoint: status %d, not a JSON answer", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		desc := tr.ErrorDescription
		if desc == "" {
			desc = tr.Message
		}
		return TokenResponse{}, &TokenError{Status: resp.StatusCode, Code: tr.Error, Description: desc}
	}
	return tr.TokenResponse, nil
}

// TokenError is the token endpoint's error answer (RFC 6749 section 5.2).
type TokenError struct {
	Status      int
	Code        string // "invalid_client", …
	Description string
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("token endpoint: status %d: %s: %s", e.Status, e.Code, e.Description)
}

// Whoami returns the token's principal.
func (c *Client) Whoami(ctx context.Context, token string) (Whoami, error) {
	var w Whoami
	return w, c.Do(ctx, "GET", "/v1/whoami", token, nil, http.StatusOK, &w)
}

// PutRecord uploads a record (a hospital token).
func (c *Client) PutRecord(ctx context.Context, token string, r RecordUpload) (RecordCreated, error) {
	var out RecordCreated
	return out, c.Do(ctx, "POST", "/v1/records", token, r, http.StatusCreated, &out)
}

// ReadRecord reads a record under consent for purpose; justification,
// when not "", is a break-glass reason (purpose ETREAT). A deny is
// ErrNotFound, like a record that does not exist.
func (c *Client) ReadRecord(ctx context.Context, token, id, purpose, justification string) (RecordContent, error) {
	var hdr []string
	if justification != "" {
		hdr = []string{HeaderBreakGlass, justification}
	}
	var out RecordContent
	return out, c.Do(ctx, "GET", "/v1/records/"+url.PathEscape(id)+"?purpose="+url.QueryEscape(purpose), token, nil, http.StatusOK, &out, hdr...)
}

// ReadHeldRecord reads a record held by org holder through this gateway
// (GET /v1/holders/{holder}/records/{id}): at the holder's home gateway if
// that is another member, which decides and logs the read. A deny is
// ErrNotFound; a holder that could not be asked is a *StatusError with
// status 502 (holder_unreachable, holder_failed) or 503
// (holder_unavailable), never ErrNotFound.
func (c *Client) ReadHeldRecord(ctx context.Context, token, holder, id, purpose, justification string) (RecordContent, error) {
	var hdr []string
	if justification != "" {
		hdr = []string{HeaderBreakGlass, justification}
	}
	var out RecordContent
	return out, c.Do(ctx, "GET", "/v1/holders/"+url.PathEscape(holder)+"/records/"+url.PathEscape(id)+"?purpose="+url.QueryEscape(purpose), token, nil, http.StatusOK, &out, hdr...)
}

// PatientRecords lists the metadata of a patient's records the caller may
// read for purpose, across the consortium: each with its holder, the
// holder's endpoint and the path to read it at this gateway (ReadPath).
// In a consortium the listing comes from the custodian's gateway; an
// *Error with code locator_unreachable, locator_unavailable or
// locator_failed says it could not be made.
// It is the first page (of the default size); PatientRecordsPage goes on.
func (c *Client) PatientRecords(ctx context.Context, token, patient, purpose string) (RecordList, error) {
	return c.PatientRecordsPage(ctx, token, patient, purpose, "", 0)
}

// PatientRecordsPage is one page of PatientRecords: cursor is the
// NextCursor of the page before ("" for the first), limit the page size
// (0 for the gateway's default).
func (c *Client) PatientRecordsPage(ctx context.Context, token, patient, purpose, cursor string, limit int) (RecordList, error) {
	q := url.Values{"purpose": {purpose}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out RecordList
	return out, c.Do(ctx, "GET", "/v1/patients/"+url.PathEscape(patient)+"/records?"+q.Encode(), token, nil, http.StatusOK, &out)
}

// Grant records a consent (a patient token) and returns it with its
// receipt.
func (c *Client) Grant(ctx context.Context, token string, r ConsentRequest) (ConsentResponse, error) {
	var out ConsentResponse
	return out, c.Do(ctx, "POST", "/v1/consents", token, r, http.StatusCreated, &out)
}

// Revoke revokes a consent (the granting patient's token) and returns it
// with the revocation's receipt.
func (c *Client) Revoke(ctx context.Context, token, id string) (ConsentResponse, error) {
	var out ConsentResponse
	return out, c.Do(ctx, "POST", "/v1/consents/"+url.PathEscape(id)+"/revoke", token, nil, http.StatusOK, &out)
}

// Consents lists the consents the caller may see (query: cursor, limit).
func (c *Client) Consents(ctx context.Context, token string, query url.Values) (ConsentList, error) {
	var out ConsentList
	return out, c.Do(ctx, "GET", "/v1/consents"+encodeQuery(query), token, nil, http.StatusOK, &out)
}

// AccessLog returns a page of the patient's access log.
func (c *Client) AccessLog(ctx context.Context, token string, query url.Values) (EventList, error) {
	var out EventList
	return out, c.Do(ctx, "GET", "/v1/me/access-log"+encodeQuery(query), token, nil, http.StatusOK, &out)
}

// AuditEvents returns a page of access events for a regulator (query:
// patient, org, decision, break_glass, since, until, cursor, limit).
func (c *Client) AuditEvents(ctx context.Context, token string, query url.Values) (EventList, error) {
	var out EventList
	return out, c.Do(ctx, "GET", "/v1/audit/events"+encodeQuery(query), token, nil, http.StatusOK, &out)
}

// Entry returns ledger entry index with its inclusion proof in the latest
// checkpoint, and its header and opening when the caller is entitled to
// the body (check it with VerifyEntry).
func (c *Client) Entry(ctx context.Context, token string, index uint64) (EntryProof, error) {
	var out EntryProof
	return out, c.Do(ctx, "GET", "/v1/ledger/entries/"+strconv.FormatUint(index, 10), token, nil, http.StatusOK, &out)
}

func encodeQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
