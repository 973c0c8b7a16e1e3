package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/internal/openapitest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// patterned is a body of n bytes made as it is read (never held whole),
// which counts what was read of it.
type patterned struct {
	n, served int64
}

func (p *patterned) Read(b []byte) (int, error) {
	if p.served == p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.served)]
	for i := range b {
		b[i] = byte((p.served + int64(i)) % 251)
	}
	p.served += int64(len(b))
	return len(b), nil
}

// patternSHA256 is the SHA-256 of a patterned body of n bytes.
func patternSHA256(t *testing.T, n int64) []byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, &patterned{n: n}); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

func digestHeader(sum []byte) string {
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum) + ":"
}

// upload sends POST /v1/records/upload with body (of length n, -1 for
// unknown: chunked) and the record headers of pat-1's lab PDF, changed or
// removed (value "-") by hdr.
func (ts *testServer) upload(token string, body io.Reader, n int64, hdr ...string) *httptest.ResponseRecorder {
	ts.t.Helper()
	req := httptest.NewRequestWithContext(ts.t.Context(), "POST", "/v1/records/upload", body)
	req.ContentLength = n
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/pdf")
	req.Header.Set(HeaderRecordPatient, "pat-1")
	req.Header.Set(HeaderRecordCategory, "labs")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "-" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, req)
	return rec
}

// streamingVault is a PutStream that reads its content through and checks
// that it is streamed: that the request body was not read ahead of it by
// more than a read buffer (the handler holds no copy of it).
type streamingVault struct {
	t    *testing.T
	body *patterned // the request body, as the client sends it
	// got is the last request, sum the SHA-256 and n the length of the
	// content read; reads counts the Read calls.
	got      records.PutRequest
	sum      []byte
	n        int64
	reads    int
	maxAhead int64
}

const maxReadAhead = 64 << 10

func (v *streamingVault) putStream(r records.PutRequest, content io.Reader) (records.Record, error) {
	v.got, v.n, v.reads, v.maxAhead = r, 0, 0, 0
	if r.Content != nil {
		v.t.Error("PutStream was handed the content whole")
	}
	switch content.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader:
		v.t.Errorf("PutStream was handed a buffer (%T)", content)
	}
	h := sha256.New()
	buf := make([]byte, 32<<10)
	for {
		if ahead := v.body.served - v.n; ahead > v.maxAhead {
			v.maxAhead = ahead
		}
		n, err := content.Read(buf)
		v.reads++
		h.Write(buf[:n])
		v.n += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return records.Record{}, fmt.Errorf("records: read content: %w", err)
		}
	}
	v.sum = h.Sum(nil)
	if r.ContentSHA256 != nil && !bytes.Equal(r.ContentSHA256, v.sum) {
		return records.Record{}, &records.InputError{Err: records.ErrInvalid, Message: "the content's SHA-256 differs from its Content-Digest"}
	}
	return records.Record{ID: "0b7d0a52-1d1c-4b59-8a2a-0000000000ff", Commitment: "c0ffee", LedgerIndex: 12}, nil
}

// TestUploadStreams: the body of a streamed upload goes to the vault as a
// reader, read as the vault reads it: an 8 MiB + 1 body passes through
// without the handler reading ahead of the vault, with a key and
// without.
func TestUploadStreams(t *testing.T) {
	const size = 8<<20 + 1
	sum := patternSHA256(t, size)
	plain := newTestServer(t)
	keyed, _ := newKeyedServer(t)
	for _, tt := range []struct {
		name   string
		ts     *testServer
		chunk  bool
		hdr    []string
		digest []byte
		keyed  bool
	}{
		{name: "no key store", ts: plain, hdr: []string{HeaderRecordResourceType, "DocumentReference"}},
		{name: "no key store, chunked", ts: plain, chunk: true},
		{name: "gateway's key", ts: keyed, hdr: []string{HeaderContentDigest, digestHeader(sum)}, digest: sum, keyed: true},
		{name: "client's key", ts: keyed, hdr: []string{HeaderContentDigest, digestHeader(sum), HeaderIdempotencyKey, `"up-1"`}, digest: sum, keyed: true},
		{name: "client's key, chunked", ts: keyed, chunk: true, hdr: []string{HeaderContentDigest, "sha-512=:" + base64.StdEncoding.EncodeToString(make([]byte, 64)) + ":, sha-256=:" + base64.StdEncoding.EncodeToString(sum) + ":", HeaderIdempotencyKey, `"up-2"`}, digest: sum, keyed: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := &patterned{n: size}
			v := &streamingVault{t: t, body: body}
			tt.ts.vault.putStream = v.putStream
			n := int64(size)
			if tt.chunk {
				n = -1
			}
			rec := tt.ts.upload("hosp-a", body, n, append([]string{"Content-Type", "Application/PDF"}, tt.hdr...)...)
			if rec.Code != http.StatusCreated {
				t.Fatalf("upload: %d %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Location"); got != "/v1/records/0b7d0a52-1d1c-4b59-8a2a-0000000000ff" {
				t.Errorf("Location %q", got)
			}
			if diff := cmp.Diff(recordCreated{ID: "0b7d0a52-1d1c-4b59-8a2a-0000000000ff", Commitment: "c0ffee", LedgerIndex: 12}, decodeBody[recordCreated](t, rec)); diff != "" {
				t.Errorf("created (-want +got):\n%s", diff)
			}
			if v.n != size || !bytes.Equal(v.sum, sum) {
				t.Errorf("vault read %d bytes (SHA-256 %x), want %d (%x)", v.n, v.sum, size, sum)
			}
			if v.reads < size/(32<<10) {
				t.Errorf("vault read the content in %d reads", v.reads)
			}
			if v.maxAhead > maxReadAhead {
				t.Errorf("the request body was read %d bytes ahead of the vault", v.maxAhead)
			}
			want := records.PutRequest{
				ID: v.got.ID, Holder: "hosp-a", Patient: "pat-1", Category: "labs", ContentType: "application/pdf",
				ResourceType: map[bool]string{true: "DocumentReference"}[tt.name == "no key store"], ContentSHA256: tt.digest,
			}
			if diff := cmp.Diff(want, v.got); diff != "" {
				t.Errorf("put request (-want +got):\n%s", diff)
			}
			if (v.got.ID != "") != tt.keyed {
				t.Errorf("record ID %q: keyed %v", v.got.ID, tt.keyed)
			}
			if tt.keyed && rec.Header().Get(HeaderIdempotencyKey) == "" {
				t.Error("no Idempotency-Key in the answer")
			}
		})
	}
}

// TestUploadRefused: bad headers, sizes and keys are refused before the
// vault is called (a nil putStream fails the test), with clear messages.
func TestUploadRefused(t *testing.T) {
	plain := newTestServer(t)
	limit := plain.vault.MaxStreamSize()
	keyed, _ := newKeyedServer(t)
	sum := patternSHA256(t, 100)
	b64 := base64.StdEncoding.EncodeToString
	for _, tt := range []struct {
		name   string
		ts     *testServer
		token  string
		n      int64
		hdr    []string
		status int
		code   string
		msg    string
	}{
		{"no patient", plain, "hosp-a", 100, []string{HeaderRecordPatient, "-"}, 400, "invalid_request", "X-Record-Patient is required (the patient's identifier)."},
		{"no category", plain, "hosp-a", 100, []string{HeaderRecordCategory, "-"}, 400, "invalid_request", "X-Record-Category is required."},
		{"unknown category", plain, "hosp-a", 100, []string{HeaderRecordCategory, "astrology"}, 400, "invalid_request", `X-Record-Category "astrology" is not one of the record categories.`},
		{"bad patient", plain, "hosp-a", 100, []string{HeaderRecordPatient, strings.Repeat("p", 300)}, 400, "invalid_request", "patient must be 1-256 characters, without control characters or surrounding spaces"},
		{"no content type", plain, "hosp-a", 100, []string{"Content-Type", "-"}, 415, "unsupported_media_type", "Content-Type is required: it is the record's media type."},
		{"bad content type", plain, "hosp-a", 100, []string{"Content-Type", "not a type"}, 400, "invalid_request", ""},
		{"compressed", plain, "hosp-a", 100, []string{"Content-Encoding", "gzip"}, 415, "unsupported_media_type", "Content-Encoding is not supported here: send the record's content as it is."},
		{"empty body", plain, "hosp-a", 0, nil, 400, "invalid_request", "The request body is the record's content, and it is empty."},
		{"malformed digest", plain, "hosp-a", 100, []string{HeaderContentDigest, "sha-256=" + b64(sum)}, 400, "invalid_request", "Content-Digest is not a Structured Fields dictionary (RFC 9530). Send Content-Digest: sha-256=:<base64 of the content's SHA-256>:."},
		{"digest not bytes", plain, "hosp-a", 100, []string{HeaderContentDigest, `sha-256="abc"`}, 400, "invalid_request", "Content-Digest's sha-256 is not a byte sequence of 32 bytes. Send Content-Digest: sha-256=:<base64 of the content's SHA-256>:."},
		{"short digest", plain, "hosp-a", 100, []string{HeaderContentDigest, "sha-256=:" + b64(sum[:16]) + ":"}, 400, "invalid_request", "Content-Digest's sha-256 is not a byte sequence of 32 bytes. Send Content-Digest: sha-256=:<base64 of the content's SHA-256>:."},
		{"inner list digest", plain, "hosp-a", 100, []string{HeaderContentDigest, "sha-256=(:" + b64(sum) + ":)"}, 400, "invalid_request", "Content-Digest's sha-256 is not a byte sequence. Send Content-Digest: sha-256=:<base64 of the content's SHA-256>:."},
		{"unknown algorithms only", plain, "hosp-a", 100, []string{HeaderContentDigest, "sha-512=:" + b64(make([]byte, 64)) + ":, md5=:AAAA:"}, 400, "invalid_request", "Content-Digest has no sha-256 digest, the only algorithm this gateway verifies. Send Content-Digest: sha-256=:<base64 of the content's SHA-256>:."},
		{"declared too large", plain, "hosp-a", limit + 1, nil, 413, "too_large", "Request body too large."},
		{"patient token", plain, "pat-1", 100, nil, 403, "forbidden", "This route is for organisations."},
		{"no write scope", plain, "hosp-b", 100, nil, 403, "insufficient_scope", "The token lacks scope system/records.write."},
		{"key without digest", keyed, "hosp-a", 100, []string{HeaderIdempotencyKey, `"k-1"`}, 400, "invalid_request", errDigestNeeded.Message},
		{"key without key store", plain, "hosp-a", 100, []string{HeaderIdempotencyKey, `"k-1"`, HeaderContentDigest, digestHeader(sum)}, 400, "invalid_request", errKeysNotKept.Message},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := &patterned{n: max(tt.n, 0)}
			rec := tt.ts.upload(tt.token, body, tt.n, tt.hdr...)
			e := errorOf(t, rec)
			if rec.Code != tt.status || e.Error != tt.code || (tt.msg != "" && e.Message != tt.msg) {
				t.Errorf("%d %s %q, want %d %s %q", rec.Code, e.Error, e.Message, tt.status, tt.code, tt.msg)
			}
			if body.served != 0 {
				t.Errorf("%d bytes of the refused body were read", body.served)
			}
		})
	}
}

// TestUploadVaultErrors: what the vault refuses, and a chunked body over
// the limit (only found as it is read).
func TestUploadVaultErrors(t *testing.T) {
	ts := newTestServer(t)
	sum := patternSHA256(t, 100)
	v := &streamingVault{t: t}
	ts.vault.putStream = func(r records.PutRequest, content io.Reader) (records.Record, error) { return v.putStream(r, content) }

	v.body = &patterned{n: ts.vault.MaxStreamSize() + 1}
	rec := ts.upload("hosp-a", v.body, -1)
	if e := errorOf(t, rec); rec.Code != http.StatusRequestEntityTooLarge || e.Error != "too_large" {
		t.Errorf("chunked body over the limit: %d %+v", rec.Code, e)
	}
	other := sha256.Sum256([]byte("other"))
	v.body = &patterned{n: 100}
	rec = ts.upload("hosp-a", v.body, 100, HeaderContentDigest, digestHeader(other[:]))
	if e := errorOf(t, rec); rec.Code != http.StatusBadRequest || e.Message != "the content's SHA-256 differs from its Content-Digest" {
		t.Errorf("digest mismatch: %d %+v", rec.Code, e)
	}
	ts.vault.putStream = func(records.PutRequest, io.Reader) (records.Record, error) {
		return records.Record{}, &records.InputError{Err: records.ErrTooLarge, Message: "over 1048576 bytes"}
	}
	rec = ts.upload("hosp-a", &patterned{n: 100}, 100, HeaderContentDigest, digestHeader(sum))
	if e := errorOf(t, rec); rec.Code != http.StatusRequestEntityTooLarge || e.Message != "over 1048576 bytes" {
		t.Errorf("vault's too large: %d %+v", rec.Code, e)
	}
	ts.vault.putStream = func(records.PutRequest, io.Reader) (records.Record, error) {
		return records.Record{}, fmt.Errorf("records: register on ledger: %w", ledger.ErrUnavailable)
	}
	rec = ts.upload("hosp-a", &patterned{n: 100}, 100)
	if e := errorOf(t, rec); rec.Code != http.StatusServiceUnavailable || e.Outcome != "unknown" {
		t.Errorf("ledger down: %d %+v", rec.Code, e)
	}
}

// TestIdempotentStreamedUpload: a streamed upload's key covers its
// headers and Content-Digest: the retry of an unknown outcome re-makes
// the same record, a repeat of the completed one is replayed without the
// vault (nor reading the body), and the key with another digest or other
// headers is a 422.
func TestIdempotentStreamedUpload(t *testing.T) {
	ts, _ := newKeyedServer(t)
	const size = 1 << 20
	sum := patternSHA256(t, size)
	var ids []string
	hdr := []string{HeaderIdempotencyKey, `"up-key"`, HeaderContentDigest, digestHeader(sum)}
	ts.vault.putStream = func(r records.PutRequest, content io.Reader) (records.Record, error) {
		ids = append(ids, r.ID)
		if _, err := io.Copy(io.Discard, content); err != nil {
			return records.Record{}, err
		}
		if len(ids) == 1 {
			// The attempt holds an upload's lease, longer than the
			// vault's bound on an upload: a repeat meanwhile waits.
			rec := ts.upload("hosp-a", &patterned{n: size}, size, hdr...)
			after, _ := strconv.Atoi(rec.Header().Get("Retry-After"))
			if rec.Code != http.StatusConflict || time.Duration(after)*time.Second < records.DefaultPendingTimeout {
				t.Errorf("a repeat during the attempt: %d, Retry-After %q; want 409 for longer than %v", rec.Code, rec.Header().Get("Retry-After"), records.DefaultPendingTimeout)
			}
			return records.Record{}, fmt.Errorf("records: register on ledger (outcome unknown): %w", ledger.ErrUnavailable)
		}
		return records.Record{ID: r.ID, Commitment: "c0ffee", LedgerIndex: 9}, nil
	}
	rec := ts.upload("hosp-a", &patterned{n: size}, size, hdr...)
	if e := errorOf(t, rec); rec.Code != http.StatusServiceUnavailable || e.Outcome != "unknown" || e.IdempotencyKey != "up-key" || e.Location != "/v1/records/"+ids[0] {
		t.Fatalf("first attempt: %d %+v", rec.Code, e)
	}
	rec = ts.upload("hosp-a", &patterned{n: size}, size, hdr...)
	if rec.Code != http.StatusCreated || len(ids) != 2 || ids[1] != ids[0] {
		t.Fatalf("retry: %d %s; vault IDs %v", rec.Code, rec.Body, ids)
	}
	created := rec.Body.String()
	body := &patterned{n: size}
	rec = ts.upload("hosp-a", body, size, hdr...)
	if rec.Code != http.StatusCreated || rec.Body.String() != created || rec.Header().Get(HeaderIdempotentReplayed) != "true" || rec.Header().Get("Location") != "/v1/records/"+ids[0] {
		t.Errorf("repeat: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if len(ids) != 2 || body.served != 0 {
		t.Errorf("the replay ran the vault (%d calls) or read %d bytes of the body", len(ids), body.served)
	}
	other := sha256.Sum256([]byte("other content"))
	for name, h := range map[string][]string{
		"other digest":       {HeaderIdempotencyKey, `"up-key"`, HeaderContentDigest, digestHeader(other[:])},
		"other patient":      append([]string{HeaderRecordPatient, "pat-2"}, hdr...),
		"other category":     append([]string{HeaderRecordCategory, "notes"}, hdr...),
		"other content type": append([]string{"Content-Type", "image/png"}, hdr...),
		"resource type":      append([]string{HeaderRecordResourceType, "DocumentReference"}, hdr...),
	} {
		rec := ts.upload("hosp-a", &patterned{n: size}, size, h...)
		if e := errorOf(t, rec); rec.Code != http.StatusUnprocessableEntity || e.Error != "idempotency_key_reused" {
			t.Errorf("same key, %s: %d %+v", name, rec.Code, e)
		}
	}
	// The key of a JSON upload is another request's.
	rec = ts.do("POST", "/v1/records", "hosp-a", uploadBody, HeaderIdempotencyKey, `"up-key"`)
	if rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("same key on POST /v1/records: %d %s", rec.Code, rec.Body)
	}
	if len(ids) != 2 {
		t.Errorf("vault called %d times, want 2", len(ids))
	}
}

func TestParseContentDigest(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	for _, tt := range []struct {
		vals    []string
		want    []byte
		wantErr bool
	}{
		{nil, nil, false},
		{[]string{"sha-256=:" + b64 + ":"}, sum[:], false},
		{[]string{"sha-512=:" + base64.StdEncoding.EncodeToString(make([]byte, 64)) + ":", "sha-256=:" + b64 + ":"}, sum[:], false}, // split over two lines
		{[]string{"sha-256=:" + b64 + ":;p=1"}, sum[:], false},
		{[]string{"SHA-256=:" + b64 + ":"}, nil, true}, // keys are lowercase
		{[]string{"sha-256=:" + b64}, nil, true},
		{[]string{"sha-256"}, nil, true}, // true, not bytes
		{[]string{"sha-256=:" + b64 + ":,"}, nil, true},
		{[]string{""}, nil, true},
		{[]string{"sha-256=:" + b64[:len(b64)-4] + ":"}, nil, true},
	} {
		got, err := parseContentDigest(tt.vals)
		if !bytes.Equal(got, tt.want) || (err != nil) != tt.wantErr {
			t.Errorf("parseContentDigest(%q) = %x, %v; want %x, error %v", tt.vals, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseContentDigest(f *testing.F) {
	f.Add("sha-256=:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ":")
	f.Add("sha-512=:AAAA:, sha-256=(:AAAA:)")
	f.Add(`sha-256="x";a=?1`)
	f.Fuzz(func(t *testing.T, v string) {
		got, err := parseContentDigest([]string{v})
		if err == nil && len(got) != sha256.Size {
			t.Fatalf("parseContentDigest(%q) = %x without error", v, got)
		}
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.Status != http.StatusBadRequest) {
			t.Fatalf("parseContentDigest(%q): %v is not a 400", v, err)
		}
	})
}

// closeTracker is a record content stream that says whether it was
// closed; after fail bytes it fails (with ErrDecrypt).
type closeTracker struct {
	r      io.Reader
	fail   int64
	n      int64
	closed bool
	mu     sync.Mutex
}

func (c *closeTracker) Read(p []byte) (int, error) {
	if c.fail > 0 {
		if c.n >= c.fail {
			return 0, fmt.Errorf("%w: content chunk 3 fails authentication", records.ErrDecrypt)
		}
		p = p[:min(int64(len(p)), c.fail-c.n)]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *closeTracker) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *closeTracker) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// TestGetRecordContent: a permitted read streams the content with headers
// that keep it from rendering; the gate is asked as GET /v1/records/{id}
// asks it; a deny and a missing record answer exactly as there.
func TestGetRecordContent(t *testing.T) {
	ts := newTestServer(t)
	htmlRecord := labRecord
	htmlRecord.ContentType, htmlRecord.Size = "text/html", int64(len("<script>alert(1)</script>"))
	var (
		got  access.ReadRequest
		body *closeTracker
	)
	ts.gate.readStream = func(r access.ReadRequest) (access.Result, error) {
		got = r
		if r.RecordID != recID || r.Purpose != consent.PurposeTreatment {
			return access.Result{}, access.ErrNotFound
		}
		body = &closeTracker{r: strings.NewReader("<script>alert(1)</script>")}
		return access.Result{Record: htmlRecord, Body: body, Decision: consent.Decision{Effect: consent.Permit}}, nil
	}
	ts.gate.read = func(r access.ReadRequest) (access.Result, error) {
		if r.RecordID != recID || r.Purpose != consent.PurposeTreatment {
			return access.Result{}, access.ErrNotFound
		}
		return access.Result{Record: labRecord, Content: []byte(labContent)}, nil
	}
	rec := ts.do("GET", "/v1/records/"+recID+"/content?purpose=TREAT", "hosp-b", nil, HeaderBreakGlass, "reason", "X-Request-ID", "req-9")
	if rec.Code != http.StatusOK || rec.Body.String() != "<script>alert(1)</script>" {
		t.Fatalf("read: %d %q", rec.Code, rec.Body)
	}
	wantHdr := map[string]string{
		"Content-Type": "text/html", "Content-Length": fmt.Sprint(htmlRecord.Size), "Cache-Control": "no-store",
		"X-Content-Type-Options": "nosniff", "Content-Disposition": "attachment", "Content-Security-Policy": "default-src 'none'; sandbox",
		"X-Client-Request-Id": "req-9",
	}
	for k, v := range wantHdr {
		if g := rec.Header().Get(k); g != v {
			t.Errorf("%s: %q, want %q", k, g, v)
		}
	}
	if !body.isClosed() {
		t.Error("the content stream was not closed")
	}
	want := access.ReadRequest{Caller: access.Caller{Org: "hosp-b", Kind: "hospital", Scopes: []auth.Scope{auth.ScopeRecordsRead}}, RecordID: recID, Purpose: "TREAT", Justification: "reason", RequestID: rec.Header().Get("X-Request-ID"), ClientRequestID: "req-9"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gate request (-want +got):\n%s", diff)
	}
	// The purpose may come as a header.
	if rec := ts.do("GET", "/v1/records/"+recID+"/content", "hosp-b", nil, HeaderPurpose, "TREAT"); rec.Code != http.StatusOK || got.Purpose != "TREAT" {
		t.Errorf("purpose header: %d, gate purpose %q", rec.Code, got.Purpose)
	}
	// A deny and a missing record: the same 404 as the JSON read's.
	var bodies []errorResponse
	for _, path := range []string{
		"/v1/records/" + recID + "/content?purpose=HPAYMT",
		"/v1/records/0b7d0a52-1d1c-4b59-8a2a-00000000dead/content?purpose=TREAT",
		"/v1/records/" + recID + "?purpose=HPAYMT",
	} {
		rec := ts.do("GET", path, "hosp-b", nil, "X-Request-ID", "r")
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d", path, rec.Code)
		}
		e := errorOf(t, rec)
		e.RequestID = ""
		bodies = append(bodies, e)
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("deny, missing and the JSON read's deny differ: %+v", bodies)
	}
	for _, tt := range []struct {
		name, token, path string
		hdr               []string
		status            int
		code              string
	}{
		{"sealed", "hosp-b", "/v1/records/" + recID + "/content?purpose=TREAT", []string{"Accept", "application/jose"}, 406, "not_acceptable"},
		{"unknown purpose", "hosp-b", "/v1/records/" + recID + "/content?purpose=SNOOP", nil, 400, "invalid_request"},
		{"purposes differ", "hosp-b", "/v1/records/" + recID + "/content?purpose=TREAT", []string{HeaderPurpose, "HPAYMT"}, 400, "invalid_request"},
		{"patient token", "pat-1", "/v1/records/" + recID + "/content", nil, 403, "forbidden"},
		{"no read scope", "noscope", "/v1/records/" + recID + "/content", nil, 403, "insufficient_scope"},
	} {
		ts.gate.readStream = nil // not asked
		rec := ts.do("GET", tt.path, tt.token, nil, tt.hdr...)
		if e := errorOf(t, rec); rec.Code != tt.status || e.Error != tt.code {
			t.Errorf("%s: %d %+v, want %d %s", tt.name, rec.Code, e, tt.status, tt.code)
		}
		if tt.name == "sealed" && errorOf(t, rec).Message != errStreamSealed.Message {
			t.Errorf("sealed: %s", rec.Body)
		}
	}
	ts.gate.readStream = func(access.ReadRequest) (access.Result, error) {
		return access.Result{}, errors.Join(errors.New("access: log access decision"), ledger.ErrUnavailable)
	}
	if rec := ts.do("GET", "/v1/records/"+recID+"/content?purpose=TREAT", "hosp-b", nil); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("log failure: %d %s", rec.Code, rec.Body)
	}
}

// TestGetRecordInlineTooLarge: the JSON read of a record too large to
// answer inline points to the content route.
func TestGetRecordInlineTooLarge(t *testing.T) {
	ts := newTestServer(t)
	ts.gate.read = func(access.ReadRequest) (access.Result, error) {
		return access.Result{}, fmt.Errorf("records: read: %w", records.ErrInlineTooLarge)
	}
	rec := ts.do("GET", "/v1/records/"+recID+"?purpose=TREAT", "hosp-b", nil)
	if e := errorOf(t, rec); rec.Code != http.StatusNotAcceptable || e.Error != "too_large_inline" || !strings.Contains(e.Message, "GET /v1/records/{id}/content") {
		t.Errorf("too large inline: %d %+v", rec.Code, e)
	}
}

// TestGetRecordContentCut: content that fails mid-way leaves the client
// with an error, not a complete 200; a large body streams whole.
func TestGetRecordContentCut(t *testing.T) {
	ts := newTestServer(t)
	var logs lockedBuffer
	ts.Server.log = slog.New(slog.NewJSONHandler(&logs, nil))
	srv := httptest.NewServer(ts.Handler())
	t.Cleanup(srv.Close)
	const size = 4 << 20
	var body *closeTracker
	ts.gate.readStream = func(access.ReadRequest) (access.Result, error) {
		body = &closeTracker{r: &patterned{n: size}, fail: 1 << 20}
		rec := labRecord
		rec.ContentType, rec.Size = "application/pdf", size
		return access.Result{Record: rec, Body: body}, nil
	}
	get := func() (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/v1/records/"+recID+"/content?purpose=TREAT", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer hosp-b")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	resp, b, err := get()
	if !errors.Is(err, io.ErrUnexpectedEOF) || int64(len(b)) >= size {
		t.Errorf("cut stream: status %d, %d bytes, error %v; want io.ErrUnexpectedEOF short of %d", resp.StatusCode, len(b), err, size)
	}
	if !body.isClosed() {
		t.Error("the content stream was not closed")
	}
	// Said in the log, with the request and record and no content.
	line := logs.String()
	for _, want := range []string{`"level":"ERROR"`, `"msg":"record content stream cut"`, `"record_id":"` + recID + `"`, `"size":4194304`, "fails authentication", `"request_id":"` + resp.Header.Get("X-Request-ID") + `"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log %s lacks %s", line, want)
		}
	}
	if strings.Contains(line, string(patternTail(1000, 50))) {
		t.Errorf("log %s holds content", line)
	}
	body = nil
	ts.gate.readStream = func(access.ReadRequest) (access.Result, error) {
		body = &closeTracker{r: &patterned{n: size}}
		rec := labRecord
		rec.ContentType, rec.Size = "application/pdf", size
		return access.Result{Record: rec, Body: body}, nil
	}
	resp, b, err = get()
	if err != nil || resp.StatusCode != http.StatusOK || len(b) != size || !bytes.Equal(b[size-10:], patternTail(size, 10)) {
		t.Errorf("whole stream: status %d, %d bytes, %v", resp.StatusCode, len(b), err)
	}
}

func patternTail(n, k int64) []byte {
	out := make([]byte, k)
	for i := range out {
		out[i] = byte((n - k + int64(i)) % 251)
	}
	return out
}

// TestStreamsOutliveServerTimeouts: a streamed upload is not cut by the
// server's whole-request ReadTimeout: each read pushes the deadline
// ahead. The timeout is a microsecond (the headers get a
// ReadHeaderTimeout of their own), so it has passed by the time the
// handler reads the body past the server's buffer: without the push that
// read fails (a read waits for the body, so it meets the deadline). No
// pause is needed, loaded machine or not. A write to a socket that does
// not block may not meet a deadline just passed, so the download's
// deadlines are checked directly (TestStreamsPushDeadlines).
func TestStreamsOutliveServerTimeouts(t *testing.T) {
	ts := newTestServer(t)
	srv := httptest.NewUnstartedServer(ts.Handler())
	srv.Config.ReadHeaderTimeout = time.Minute
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = time.Microsecond, time.Minute
	srv.Start()
	t.Cleanup(srv.Close)
	// Larger than the server's read and write buffers: the connection is
	// read and written after the headers.
	content := bytes.Repeat([]byte("a"), 256<<10)

	var n int64
	ts.vault.putStream = func(_ records.PutRequest, body io.Reader) (records.Record, error) {
		var err error
		n, err = io.Copy(io.Discard, body)
		if err != nil {
			return records.Record{}, fmt.Errorf("records: read content: %w", err)
		}
		return records.Record{ID: recID}, nil
	}
	req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/v1/records/upload", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer hosp-a")
	req.Header.Set("Content-Type", "application/pdf")
	req.Header.Set(HeaderRecordPatient, "pat-1")
	req.Header.Set(HeaderRecordCategory, "labs")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || n != int64(len(content)) {
		t.Errorf("upload: %d, vault read %d bytes", resp.StatusCode, n)
	}

}

// deadlineRecorder is a ResponseRecorder with connection deadlines, as
// http.ResponseController finds them: it records every deadline set and
// how much of the body had been written or read by then.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	body          *countedBody
	reads, writes []deadlineSet
}

type deadlineSet struct {
	at   time.Time
	done int // body bytes written (writes) or read (reads) before it
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.writes = append(d.writes, deadlineSet{at: t, done: d.Body.Len()})
	return nil
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	n := 0
	if d.body != nil {
		n = d.body.n
	}
	d.reads = append(d.reads, deadlineSet{at: t, done: n})
	return nil
}

// countedBody counts what the handler read of a request body.
type countedBody struct {
	r io.Reader
	n int
}

func (c *countedBody) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += k
	return k, err
}

// TestStreamsPushDeadlines: the streamed routes set the connection's
// deadlines StreamIdleTimeout ahead before they read the first byte of
// an upload or write the first byte of the content, and again as the
// stream moves (every quarter of the idle time at most, so a transfer
// that keeps moving is never cut; TestStreamsOutliveServerTimeouts shows
// it over a real server).
func TestStreamsPushDeadlines(t *testing.T) {
	ts := newTestServer(t)
	idle := DefaultStreamIdleTimeout
	content := bytes.Repeat([]byte("a"), 256<<10)
	within := func(what string, d deadlineSet, before, after time.Time) {
		t.Helper()
		if d.at.Before(before.Add(idle)) || d.at.After(after.Add(idle)) {
			t.Errorf("%s: deadline %v, want %v after the request (between %v and %v)", what, d.at, idle, before, after)
		}
	}

	ts.vault.putStream = func(_ records.PutRequest, body io.Reader) (records.Record, error) {
		if _, err := io.Copy(io.Discard, body); err != nil {
			return records.Record{}, err
		}
		return records.Record{ID: recID}, nil
	}
	body := &countedBody{r: bytes.NewReader(content)}
	req := httptest.NewRequestWithContext(t.Context(), "POST", "/v1/records/upload", body)
	req.ContentLength = int64(len(content))
	req.Header.Set("Authorization", "Bearer hosp-a")
	req.Header.Set("Content-Type", "application/pdf")
	req.Header.Set(HeaderRecordPatient, "pat-1")
	req.Header.Set(HeaderRecordCategory, "labs")
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder(), body: body}
	before := time.Now()
	ts.Handler().ServeHTTP(rec, req)
	after := time.Now()
	if rec.Code != http.StatusCreated {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body)
	}
	if len(rec.reads) == 0 || rec.reads[0].done != 0 {
		t.Fatalf("upload: read deadlines %+v; want one set before the body is read", rec.reads)
	}
	within("upload read", rec.reads[0], before, after)
	if len(rec.writes) == 0 {
		t.Fatal("upload: no write deadline set: the 201 could be cut by WriteTimeout")
	}
	within("upload write", rec.writes[0], before, after)

	ts.gate.readStream = func(access.ReadRequest) (access.Result, error) {
		r := labRecord
		r.ContentType, r.Size = "application/pdf", int64(len(content))
		return access.Result{Record: r, Body: io.NopCloser(bytes.NewReader(content))}, nil
	}
	req = httptest.NewRequestWithContext(t.Context(), "GET", "/v1/records/"+recID+"/content?purpose=TREAT", nil)
	req.Header.Set("Authorization", "Bearer hosp-b")
	rec = &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	before = time.Now()
	ts.Handler().ServeHTTP(rec, req)
	after = time.Now()
	if rec.Code != http.StatusOK || rec.Body.Len() != len(content) {
		t.Fatalf("download: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	if len(rec.writes) == 0 || rec.writes[0].done != 0 {
		t.Fatalf("download: write deadlines %+v; want one set before the content is written", rec.writes)
	}
	within("download write", rec.writes[0], before, after)
}

// TestStreamRoutesDocumented: the streamed routes' exchanges are as the
// OpenAPI document describes them.
func TestStreamRoutesDocumented(t *testing.T) {
	ts, _ := newKeyedServer(t)
	srv := httptest.NewServer(ts.Handler())
	t.Cleanup(srv.Close)
	v, err := openapitest.New(t.Context(), OpenAPI(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &openapitest.Transport{Validator: v, Host: strings.TrimPrefix(srv.URL, "http://"), Report: func(err error) { t.Errorf("OpenAPI: %v", err) }}
	c := client.New(srv.URL, &http.Client{Transport: tr})
	content := []byte("%PDF-1.7 a small document")
	sum := sha256.Sum256(content)
	ts.vault.putStream = func(r records.PutRequest, body io.Reader) (records.Record, error) {
		if _, err := io.Copy(io.Discard, body); err != nil {
			return records.Record{}, err
		}
		return records.Record{ID: recID, Commitment: "c0ffee", LedgerIndex: 3}, nil
	}
	meta := client.UploadMeta{Patient: "pat-1", Category: "labs", ResourceType: "DocumentReference", IdempotencyKey: "doc-1"}
	if _, err := c.UploadRecord(t.Context(), "hosp-a", meta, "application/pdf", bytes.NewReader(content), sum[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadRecord(t.Context(), "hosp-a", meta, "application/pdf", bytes.NewReader(content), nil); err == nil {
		t.Error("a keyed upload without a digest was taken")
	}
	ts.gate.readStream = func(r access.ReadRequest) (access.Result, error) {
		if r.Purpose != consent.PurposeTreatment {
			return access.Result{}, access.ErrNotFound
		}
		rec := labRecord
		rec.ContentType, rec.Size = "application/pdf", int64(len(content))
		return access.Result{Record: rec, Body: io.NopCloser(bytes.NewReader(content))}, nil
	}
	body, ct, size, err := c.ReadRecordContent(t.Context(), "hosp-b", recID, "TREAT", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil || !bytes.Equal(b, content) || ct != "application/pdf" || size != int64(len(content)) {
		t.Errorf("read: %q %q %d %v", b, ct, size, err)
	}
	if _, _, _, err := c.ReadRecordContent(t.Context(), "hosp-b", recID, "HPAYMT", ""); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("deny: %v", err)
	}
	st, _, err := c.Raw(t.Context(), "GET", "/v1/records/"+recID+"/content?purpose=TREAT", "hosp-b", nil, "Accept", "application/jose")
	if err != nil || st != http.StatusNotAcceptable {
		t.Errorf("sealed: %d %v", st, err)
	}
	if tr.Checked() != 5 {
		t.Errorf("%d exchanges checked, want 5", tr.Checked())
	}
}

type fakeObserver struct {
	mu    sync.Mutex
	bytes map[string]int64
}

func (o *fakeObserver) TokenFailure(string) {}

func (o *fakeObserver) RecordBytes(direction string, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bytes[direction] += n
}

// TestStreamRecordBytes: the streamed routes count the record bytes they
// move, chunked uploads too.
func TestStreamRecordBytes(t *testing.T) {
	obs := &fakeObserver{bytes: map[string]int64{}}
	ts := newTestServer(t, WithObserver(obs))
	v := &streamingVault{t: t}
	ts.vault.putStream = v.putStream
	v.body = &patterned{n: 5000}
	if rec := ts.upload("hosp-a", v.body, -1); rec.Code != http.StatusCreated {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body)
	}
	ts.gate.readStream = func(access.ReadRequest) (access.Result, error) {
		rec := labRecord
		rec.ContentType, rec.Size = "application/pdf", 300
		return access.Result{Record: rec, Body: io.NopCloser(&patterned{n: 300})}, nil
	}
	if rec := ts.do("GET", "/v1/records/"+recID+"/content?purpose=TREAT", "hosp-b", nil); rec.Code != http.StatusOK {
		t.Fatalf("read: %d", rec.Code)
	}
	if diff := cmp.Diff(map[string]int64{"in": 5000, "out": 300}, obs.bytes); diff != "" {
		t.Errorf("record bytes (-want +got):\n%s", diff)
	}
}

// lockedBuffer is a log sink written from the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
