package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/ledger"
)

// TestStreamedRecords uploads a record streamed (POST /v1/records/upload)
// larger than --max-record-bytes and reads it back streamed (GET
// /v1/records/{id}/content), through the real vault and gate, every
// exchange checked against the OpenAPI document. It needs
// records.Vault.PutStream and ReadStream.
func TestStreamedRecords(t *testing.T) {
	g := newTestGateway(t, func(c *serveConfig) { c.MaxRecord = 1 << 20 })
	a := g.register("hosp-a", auth.KindHospital)
	tok := g.token(a, "")
	c := client.New(g.url, g.httpClient())
	content := make([]byte, 3<<20+7) // several STREAM chunks, over MaxRecord
	for i := range content {
		content[i] = byte(i*7 + i/251)
	}
	sum := sha256.Sum256(content)
	meta := client.UploadMeta{Patient: "pat-1", Category: "imaging", Size: int64(len(content)), IdempotencyKey: "scan-0001"}

	before := g.size()
	rec, err := c.UploadRecord(t.Context(), tok, meta, "application/pdf", bytes.NewReader(content), sum[:])
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if got := g.size(); got != before+1 {
		t.Errorf("ledger grew by %d entries, want 1", got-before)
	}
	regs := g.entries(ledger.TypeRecordRegistered)
	if len(regs) == 0 || regs[len(regs)-1].Body.(*ledger.RecordRegistered).Commitment != rec.Commitment {
		t.Errorf("record.registered entries %+v, want the commitment %s", regs, rec.Commitment)
	}
	// The repeat under the key is the same record, replayed.
	again, err := c.UploadRecord(t.Context(), tok, meta, "application/pdf", bytes.NewReader(content), sum[:])
	if err != nil || again != rec || g.size() != before+1 {
		t.Errorf("repeat: %+v %v, ledger size %d", again, err, g.size())
	}

	body, ct, size, err := c.ReadRecordContent(t.Context(), tok, rec.ID, "TREAT", "")
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	got, err := io.ReadAll(body)
	body.Close()
	if err != nil || !bytes.Equal(got, content) || ct != "application/pdf" || size != int64(len(content)) {
		t.Errorf("read back %d bytes (%q, size %d, %v), want the %d uploaded", len(got), ct, size, err, len(content))
	}
	// The JSON read does not answer it inline.
	_, err = c.ReadRecord(t.Context(), tok, rec.ID, "TREAT", "")
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusNotAcceptable || se.Body.Error != "too_large_inline" {
		t.Errorf("JSON read of a large record: %v", err)
	}

	// Content that differs from its digest is refused, nothing kept.
	other := sha256.Sum256([]byte("other"))
	size0 := g.size()
	_, err = c.UploadRecord(t.Context(), tok, client.UploadMeta{Patient: "pat-1", Category: "imaging"}, "application/pdf", bytes.NewReader(content), other[:])
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || g.size() != size0 {
		t.Errorf("digest mismatch: %v, ledger grew by %d", err, g.size()-size0)
	}
	g.verifyLedger()
}

// BenchmarkRecordTransfer: one record through the gateway over loopback
// HTTP on SQLite, the holder uploading and reading it: as JSON (base64,
// POST /v1/records and GET /v1/records/{id}, 16 MiB at most) and
// streamed (POST /v1/records/upload, GET /v1/records/{id}/content), at
// 16 MiB for both and 256 MiB streamed. B/op is the benchmark process's,
// the gateway's included.
func BenchmarkRecordTransfer(b *testing.B) {
	g := newTestGateway(b, func(c *serveConfig) { c.MaxRecord = 16 << 20 })
	a := g.register("hosp-a", auth.KindHospital)
	tok := g.token(a, "")
	c := client.New(g.url, &http.Client{})
	content := make([]byte, 256<<20)
	for i := range content {
		content[i] = byte(i*7 + i/251)
	}
	ids := map[string]string{}
	for _, bc := range []struct {
		name string
		size int
		json bool
	}{{"json/16MiB", 16 << 20, true}, {"stream/16MiB", 16 << 20, false}, {"stream/256MiB", 256 << 20, false}} {
		body := content[:bc.size]
		b.Run("upload/"+bc.name, func(b *testing.B) {
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			for b.Loop() {
				var rec client.RecordCreated
				var err error
				if bc.json {
					raw, _ := json.Marshal(body) // base64, as a JSON string
					rec, err = c.PutRecord(b.Context(), tok, client.RecordUpload{Patient: "pat-1", Category: "imaging", ContentType: "application/pdf", Content: raw})
				} else {
					rec, err = c.UploadRecord(b.Context(), tok, client.UploadMeta{Patient: "pat-1", Category: "imaging", Size: int64(len(body))}, "application/pdf", bytes.NewReader(body), nil)
				}
				if err != nil {
					b.Fatal(err)
				}
				ids[bc.name] = rec.ID
			}
		})
		b.Run("read/"+bc.name, func(b *testing.B) {
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			for b.Loop() {
				if bc.json {
					got, err := c.ReadRecord(b.Context(), tok, ids[bc.name], "TREAT", "")
					if err != nil || len(got.Content) < bc.size {
						b.Fatalf("read: %d bytes, %v", len(got.Content), err)
					}
					continue
				}
				r, _, _, err := c.ReadRecordContent(b.Context(), tok, ids[bc.name], "TREAT", "")
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, r)
				r.Close()
				if err != nil || n != int64(bc.size) {
					b.Fatalf("read %d bytes: %v", n, err)
				}
			}
		})
	}
}
