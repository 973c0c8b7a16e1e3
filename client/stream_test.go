package client_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/client"
)

// TestUploadRecord: the content goes as the body, with its metadata in
// headers; the gateway's error answers are StatusErrors.
func TestUploadRecord(t *testing.T) {
	content := bytes.Repeat([]byte("%PDF-1.7 "), 100_000)
	sum := sha256.Sum256(content)
	var got http.Header
	var gotLen int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, gotLen = r.Header.Clone(), r.ContentLength
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.Method != "POST" || r.URL.Path != "/v1/records/upload" || n != int64(len(content)) || !bytes.Equal(h.Sum(nil), sum[:]) {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_request","message":"bad upload","request_id":"r1"}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(client.RecordCreated{ID: "rec-1", Commitment: "c0", LedgerIndex: 4})
	}))
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, nil)

	// A reader whose length net/http does not know: sent chunked, or
	// with Size as its Content-Length.
	for _, size := range []int64{0, int64(len(content))} {
		meta := client.UploadMeta{Patient: "pat-1", Category: "labs", ResourceType: "DocumentReference", Size: size, IdempotencyKey: "k-1"}
		out, err := c.UploadRecord(t.Context(), "tok-a", meta, "application/pdf", io.MultiReader(bytes.NewReader(content)), sum[:])
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(client.RecordCreated{ID: "rec-1", Commitment: "c0", LedgerIndex: 4}, out); diff != "" {
			t.Errorf("created (-want +got):\n%s", diff)
		}
		want := map[string]string{
			"Authorization": "Bearer tok-a", "Content-Type": "application/pdf", client.HeaderRecordPatient: "pat-1", client.HeaderRecordCategory: "labs",
			client.HeaderRecordResourceType: "DocumentReference", client.HeaderIdempotencyKey: `"k-1"`,
			client.HeaderContentDigest: "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":",
		}
		for k, v := range want {
			if got.Get(k) != v {
				t.Errorf("size %d: %s: %q, want %q", size, k, got.Get(k), v)
			}
		}
		if wantLen := map[bool]int64{true: -1, false: size}[size == 0]; gotLen != wantLen {
			t.Errorf("size %d: Content-Length %d, want %d", size, gotLen, wantLen)
		}
	}
	_, err := c.UploadRecord(t.Context(), "tok-a", client.UploadMeta{Patient: "pat-1", Category: "labs"}, "application/pdf", strings.NewReader("other"), nil)
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || se.Body.Message != "bad upload" {
		t.Errorf("refused upload: %v", err)
	}
	if got.Get(client.HeaderContentDigest) != "" || got.Get(client.HeaderIdempotencyKey) != "" || got.Get(client.HeaderRecordResourceType) != "" {
		t.Errorf("headers sent without being asked: %v", got)
	}
}

// TestReadRecordContent: the content as a reader with its type and size;
// a 404 is ErrNotFound; a stream the gateway cuts short ends in an error.
func TestReadRecordContent(t *testing.T) {
	content := strings.Repeat("0123456789", 10_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/records/rec-1/content" && r.URL.Query().Get("purpose") == "ETREAT" && r.Header.Get(client.HeaderBreakGlass) == "unconscious":
			w.Header().Set("Content-Type", "application/pdf")
			w.Header().Set("Content-Length", "100000")
			io.WriteString(w, content)
		case r.URL.Path == "/v1/records/rec-cut/content":
			w.Header().Set("Content-Type", "application/pdf")
			w.Header().Set("Content-Length", "100000")
			io.WriteString(w, content[:1000])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"not_found","message":"Not found.","request_id":"r0"}`)
		}
	}))
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, nil)
	body, ct, size, err := c.ReadRecordContent(t.Context(), "tok-b", "rec-1", "ETREAT", "unconscious")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil || string(b) != content || ct != "application/pdf" || size != int64(len(content)) {
		t.Errorf("read: %d bytes, %q, size %d, %v", len(b), ct, size, err)
	}
	if _, _, _, err := c.ReadRecordContent(t.Context(), "tok-b", "rec-1", "TREAT", ""); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("deny: %v, want ErrNotFound", err)
	}
	body, _, _, err = c.ReadRecordContent(t.Context(), "tok-b", "rec-cut", "TREAT", "")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if b, err := io.ReadAll(body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut stream: %d bytes, %v; want io.ErrUnexpectedEOF", len(b), err)
	}
}
