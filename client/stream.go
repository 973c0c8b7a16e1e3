package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// Headers of a streamed upload (POST /v1/records/upload).
const (
	HeaderRecordPatient      = "X-Record-Patient"
	HeaderRecordCategory     = "X-Record-Category"
	HeaderRecordResourceType = "X-Record-Resource-Type"
	HeaderContentDigest      = "Content-Digest"
	HeaderIdempotencyKey     = "Idempotency-Key"
)

// UploadMeta is a streamed upload's metadata; the content type and the
// content are UploadRecord's arguments.
type UploadMeta struct {
	Patient      string
	Category     string
	ResourceType string // optional
	// Size is the content's length when known (> 0): sent as
	// Content-Length, so that a record over the gateway's limit is refused
	// before it is sent. Otherwise the body is sent chunked (unless the
	// reader is a *bytes.Reader, *bytes.Buffer or *strings.Reader, whose
	// length net/http knows).
	Size int64
	// IdempotencyKey, when not "", makes the upload safe to repeat; it
	// needs a digest (the gateway refuses a key without one).
	IdempotencyKey string
}

// ContentDigest formats a SHA-256 as an RFC 9530 Content-Digest value.
func ContentDigest(sha256 []byte) string {
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sha256) + ":"
}

// UploadRecord streams content, of media type contentType, as a new record
// (POST /v1/records/upload, a hospital token): the gateway reads it as it
// arrives, and neither side holds it whole. digest, when not nil, is the
// content's SHA-256, sent as Content-Digest: the gateway refuses content
// that differs. The http.Client's Timeout bounds the whole upload: for
// large records give New a client without one and bound ctx instead.
func (c *Client) UploadRecord(ctx context.Context, token string, meta UploadMeta, contentType string, content io.Reader, digest []byte) (RecordCreated, error) {
	const path = "/v1/records/upload"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, content)
	if err != nil {
		return RecordCreated{}, err
	}
	if meta.Size > 0 {
		req.ContentLength = meta.Size
	}
	h := req.Header
	h.Set("Content-Type", contentType)
	h.Set("Authorization", "Bearer "+token)
	h.Set(HeaderRecordPatient, meta.Patient)
	h.Set(HeaderRecordCategory, meta.Category)
	if meta.ResourceType != "" {
		h.Set(HeaderRecordResourceType, meta.ResourceType)
	}
	if digest != nil {
		h.Set(HeaderContentDigest, ContentDigest(digest))
	}
	if meta.IdempotencyKey != "" {
		h.Set(HeaderIdempotencyKey, strconv.Quote(meta.IdempotencyKey))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return RecordCreated{}, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	if err != nil {
		return RecordCreated{}, fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return RecordCreated{}, statusError("POST", path, resp.StatusCode, b)
	}
	var out RecordCreated
	if err := json.Unmarshal(b, &out); err != nil {
		return RecordCreated{}, fmt.Errorf("POST %s: %w", path, err)
	}
	return out, nil
}

// ReadRecordContent reads a record's content under consent for purpose
// (GET /v1/records/{id}/content), streamed: it returns the content as a
// reader, which the caller must close, with its media type and size.
// justification, when not "", is a break-glass reason (purpose ETREAT).
// A deny is ErrNotFound, like a record that does not exist. A content
// stream that the gateway cuts short (a damaged record) ends in an error
// (io.ErrUnexpectedEOF), never in io.EOF.
func (c *Client) ReadRecordContent(ctx context.Context, token, id, purpose, justification string) (io.ReadCloser, string, int64, error) {
	path := "/v1/records/" + url.PathEscape(id) + "/content?purpose=" + url.QueryEscape(purpose)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if justification != "" {
		req.Header.Set(HeaderBreakGlass, justification)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, "", 0, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return nil, "", 0, fmt.Errorf("GET %s: %w", path, err)
		}
		return nil, "", 0, statusError("GET", path, resp.StatusCode, b)
	}
	if resp.ContentLength < 0 {
		resp.Body.Close()
		return nil, "", 0, fmt.Errorf("GET %s: the answer has no Content-Length", path)
	}
	return resp.Body, resp.Header.Get("Content-Type"), resp.ContentLength, nil
}

// statusError is the *StatusError of an answer with an unexpected status.
func statusError(method, path string, status int, body []byte) error {
	se := &StatusError{Method: method, Path: path, Status: status}
	if json.Unmarshal(body, &se.Body) != nil || se.Body.Error == "" {
		se.Raw = truncate(string(body), 300)
	}
	return se
}
