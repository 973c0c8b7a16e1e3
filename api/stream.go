package api

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"
	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/idempotency"
	"github.com/healthgw/healthgw/records"
)

// Headers of a streamed upload (POST /v1/records/upload): the body is the
// record's content and its media type the Content-Type; the rest of the
// record's metadata comes in these headers.
const (
	HeaderRecordPatient      = "X-Record-Patient"
	HeaderRecordCategory     = "X-Record-Category"
	HeaderRecordResourceType = "X-Record-Resource-Type"
	// HeaderContentDigest is RFC 9530's Content-Digest, a Structured
	// Fields dictionary such as sha-256=:<base64 of the SHA-256>:. Of
	// its algorithms the gateway verifies sha-256.
	HeaderContentDigest = "Content-Digest"
)

// DefaultStreamIdleTimeout is how long a streamed upload or download may
// go without moving a byte before the gateway gives up on the client.
const DefaultStreamIdleTimeout = time.Minute

// ctxUpload holds a streamed upload's parsed headers (uploadRequest).
const ctxUpload = "healthgw.upload"

// ctxUploadBytes holds a streamed upload's stored content length.
const ctxUploadBytes = "healthgw.upload.bytes"

// uploadRequest is a streamed upload's metadata, from its headers.
type uploadRequest struct {
	Patient      string
	Category     string
	ResourceType string
	ContentType  string // normalised (records.NormalizeContentType)
	// Digest is the Content-Digest's sha-256 (nil if none was sent).
	Digest []byte
}

// Errors of streamed uploads and downloads.
var (
	errDigestNeeded = badRequest("An upload with an Idempotency-Key needs a Content-Digest (sha-256=:<base64>:): without it, a retry with other content could not be told from the request it repeats.")
	errStreamSealed = &Error{Status: http.StatusNotAcceptable, Code: "not_acceptable", Message: "GET /v1/records/{id}/content serves the record's content as it is; sealed answers (Accept: application/jose) are given by GET /v1/records/{id} only."}
)

// parseUpload reads and checks a streamed upload's headers; it reads
// nothing of the body.
func parseUpload(c *gin.Context) (uploadRequest, error) {
	h := c.Request.Header
	r := uploadRequest{
		Patient:      h.Get(HeaderRecordPatient),
		Category:     strings.TrimSpace(h.Get(HeaderRecordCategory)),
		ResourceType: strings.TrimSpace(h.Get(HeaderRecordResourceType)),
	}
	for _, name := range []string{HeaderRecordPatient, HeaderRecordCategory, HeaderRecordResourceType} {
		if len(h.Values(name)) > 1 {
			return r, badRequest(name + " is repeated.")
		}
	}
	switch {
	case r.Patient == "":
		return r, badRequest(HeaderRecordPatient + " is required (the patient's identifier).")
	case r.Category == "":
		return r, badRequest(HeaderRecordCategory + " is required.")
	case !records.ValidCategory(r.Category):
		return r, badRequest(fmt.Sprintf("%s %q is not one of the record categories.", HeaderRecordCategory, r.Category))
	}
	if err := records.ValidatePatient(r.Patient); err != nil {
		return r, err
	}
	if ce := strings.TrimSpace(h.Get("Content-Encoding")); ce != "" && !strings.EqualFold(ce, "identity") {
		return r, &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "Content-Encoding is not supported here: send the record's content as it is."}
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		return r, &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "Content-Type is required: it is the record's media type."}
	}
	ct, err := records.NormalizeContentType(ct)
	if err != nil {
		return r, err
	}
	r.ContentType = ct
	if r.Digest, err = parseContentDigest(h.Values(HeaderContentDigest)); err != nil {
		return r, err
	}
	if c.Request.ContentLength == 0 {
		return r, badRequest("The request body is the record's content, and it is empty.")
	}
	return r, nil
}

// parseContentDigest returns the sha-256 of a Content-Digest (RFC 9530)
// header's values, nil if there are none. A malformed dictionary, a
// sha-256 member that is not 32 bytes, or a dictionary without sha-256 is
// an error.
func parseContentDigest(vals []string) ([]byte, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	const want = "Send " + HeaderContentDigest + ": sha-256=:<base64 of the content's SHA-256>:."
	d, err := httpsfv.UnmarshalDictionary(vals)
	if err != nil {
		return nil, badRequest(HeaderContentDigest + " is not a Structured Fields dictionary (RFC 9530). " + want)
	}
	m, ok := d.Get("sha-256")
	if !ok {
		return nil, badRequest(HeaderContentDigest + " has no sha-256 digest, the only algorithm this gateway verifies. " + want)
	}
	item, ok := m.(httpsfv.Item)
	if !ok {
		return nil, badRequest(HeaderContentDigest + "'s sha-256 is not a byte sequence. " + want)
	}
	sum, ok := item.Value.([]byte)
	if !ok || len(sum) != sha256.Size {
		return nil, badRequest(HeaderContentDigest + "'s sha-256 is not a byte sequence of 32 bytes. " + want)
	}
	return sum, nil
}

// uploadHeaders parses a streamed upload's headers (before its key is
// taken, so that a bad request costs nothing).
func (s *Server) uploadHeaders(c *gin.Context) {
	r, err := parseUpload(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxUpload, r)
	c.Next()
}

// uploadFingerprint is the fingerprint of a streamed upload: the method,
// path and query and the record's headers with the Content-Digest, never
// the body (which is not held). The client's own key needs a digest:
// without one two uploads of other content would look alike.
func uploadFingerprint(c *gin.Context, clientKey bool) ([32]byte, error) {
	r, _ := c.Get(ctxUpload)
	up, ok := r.(uploadRequest)
	if !ok {
		return [32]byte{}, errors.New("upload headers not parsed")
	}
	if clientKey && up.Digest == nil {
		return [32]byte{}, errDigestNeeded
	}
	meta, err := json.Marshal(struct {
		Patient, Category, ResourceType, ContentType string
		SHA256                                       []byte
	}{up.Patient, up.Category, up.ResourceType, up.ContentType, up.Digest})
	if err != nil {
		return [32]byte{}, err
	}
	return idempotency.Fingerprint(c.Request.Method, c.Request.URL.Path, c.Request.URL.RawQuery, append([]byte("streamed upload\n"), meta...)), nil
}

// uploadRecord streams the body into the vault (PutStream): the content
// is never held whole.
func (s *Server) uploadRecord(c *gin.Context) {
	r, _ := c.Get(ctxUpload)
	up, _ := r.(uploadRequest)
	body := &countingReader{r: s.streamReader(c)}
	rec, err := s.vault.PutStream(c.Request.Context(), records.PutRequest{
		ID:            idemClaim(c).ResourceID, // fixed by the Idempotency-Key: a repeat is the same record
		Holder:        principal(c).Org,
		Patient:       up.Patient,
		Category:      records.Category(up.Category),
		ContentType:   up.ContentType,
		ResourceType:  up.ResourceType,
		ContentSHA256: up.Digest,
	}, body)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxUploadBytes, body.n)
	c.Header("Location", "/v1/records/"+rec.ID)
	c.JSON(http.StatusCreated, recordCreated{ID: rec.ID, Commitment: rec.Commitment, LedgerIndex: rec.LedgerIndex})
}

// getRecordContent is GET /v1/records/{id} with the content as the body,
// streamed: the same gate, the same decision logged first, the same 404.
func (s *Server) getRecordContent(c *gin.Context) {
	ctx := c.Request.Context()
	if wantsJOSE(c) {
		// Known before anything is decided or read: a 406 says nothing
		// about the record.
		s.fail(c, errStreamSealed)
		return
	}
	req, err := readRequestOf(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.gate.ReadStream(ctx, req)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer res.Body.Close()
	h := c.Writer.Header()
	h.Set("Content-Type", res.Record.ContentType)
	h.Set("Content-Length", strconv.FormatInt(res.Record.Size, 10))
	h.Set("Cache-Control", "no-store")
	// Content from the gateway's origin must never render as a page (an
	// uploaded HTML or SVG file would be stored cross-site scripting).
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", "attachment")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	c.Status(http.StatusOK)
	n, err := io.Copy(s.streamWriter(c), res.Body)
	if err == nil && n != res.Record.Size {
		err = fmt.Errorf("content is %d bytes, the record says %d", n, res.Record.Size)
	}
	if err != nil {
		// The headers (and some content) are gone: the response must not
		// look complete. Cutting the connection short of Content-Length
		// tells the client.
		level := slog.LevelError
		if !errors.Is(err, records.ErrDecrypt) {
			level = slog.LevelWarn // most likely the client went away
		}
		s.log.LogAttrs(ctx, level, "record content stream cut",
			slog.String("request_id", requestID(c)),
			slog.String("client_request_id", clientRequestID(c)),
			slog.String("route", c.FullPath()),
			slog.String("record_id", res.Record.ID),
			slog.Int64("sent", n),
			slog.Int64("size", res.Record.Size),
			slog.String("err", err.Error()),
		)
		panic(http.ErrAbortHandler)
	}
}

// streamReader is the request body of a streamed upload, each read
// pushing the connection's read deadline StreamIdleTimeout ahead: a
// whole-request ReadTimeout of the server does not cut a long upload
// that keeps moving, and a client that stops does not hold it forever.
// The write deadline moves with it, so that the answer can still be
// written after a long upload (WriteTimeout counts from the request's
// start).
func (s *Server) streamReader(c *gin.Context) io.Reader {
	rc := http.NewResponseController(c.Writer)
	set := func(t time.Time) error {
		if err := rc.SetReadDeadline(t); err != nil {
			return err
		}
		return rc.SetWriteDeadline(t)
	}
	return &deadlineReader{r: c.Request.Body, d: newDeadline(set, s.cfg.StreamIdleTimeout)}
}

// streamWriter is the response writer of a streamed download, each write
// pushing the connection's write deadline StreamIdleTimeout ahead (see
// streamReader).
func (s *Server) streamWriter(c *gin.Context) io.Writer {
	rc := http.NewResponseController(c.Writer)
	return &deadlineWriter{w: c.Writer, d: newDeadline(rc.SetWriteDeadline, s.cfg.StreamIdleTimeout)}
}

// deadline pushes a connection deadline ahead as a stream moves. The
// deadlines are of the wall clock (time.Now), never the server's
// replaceable clock.
type deadline struct {
	set     func(time.Time) error
	idle    time.Duration
	renewAt time.Time
	off     bool // the writer has no deadlines (a test recorder)
}

func newDeadline(set func(time.Time) error, idle time.Duration) *deadline {
	d := &deadline{set: set, idle: idle}
	d.push()
	return d
}

// push extends the deadline, at most every quarter of the idle time.
func (d *deadline) push() {
	if d.off {
		return
	}
	now := time.Now()
	if now.Before(d.renewAt) {
		return
	}
	if err := d.set(now.Add(d.idle)); err != nil {
		d.off = errors.Is(err, http.ErrNotSupported)
		return
	}
	d.renewAt = now.Add(d.idle / 4)
}

type deadlineReader struct {
	r io.Reader
	d *deadline
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	r.d.push()
	return r.r.Read(p)
}

type deadlineWriter struct {
	w io.Writer
	d *deadline
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.d.push()
	return w.w.Write(p)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}
