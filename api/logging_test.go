package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestRequestIDHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(RequestIDHandler(slog.NewJSONHandler(&buf, nil))).With("component", "x")
	ctx := ContextWithRequestID(context.Background(), "rid-1")
	log.InfoContext(ctx, "from a request")
	log.InfoContext(ctx, "already has one", "request_id", "rid-1")
	log.InfoContext(context.Background(), "no request")
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		got = append(got, m)
	}
	if got[0]["request_id"] != "rid-1" || got[0]["component"] != "x" {
		t.Errorf("line 1: %v", got[0])
	}
	if n := strings.Count(strings.Split(buf.String(), "\n")[1], "request_id"); n != 1 {
		t.Errorf("line 2 has request_id %d times", n)
	}
	if _, ok := got[2]["request_id"]; ok {
		t.Errorf("line 3: %v", got[2])
	}
}
