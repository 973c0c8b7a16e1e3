package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// TestReadyzAfterRefusedCheckpoint: a stored hash edited under the running
// gateway makes the next checkpoint inconsistent with the previous one;
// the gateway signs nothing and /readyz answers 503.
func TestReadyzAfterRefusedCheckpoint(t *testing.T) {
	g, err := openTestGatewayCfg(t, filepath.Join(t.TempDir(), "data"), "127.0.0.1:18080", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Close cannot publish a final checkpoint either, and says so.
		if err := g.close(); !errors.Is(err, gormlog.ErrInconsistent) {
			t.Errorf("close = %v, want ErrInconsistent", err)
		}
	}()
	readyz := func() (int, string) {
		rec := httptest.NewRecorder()
		g.api.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	l := g.store.(*gormlog.Log)
	ctx := t.Context()
	if code, _ := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz = %d before the edit", code)
	}
	for n, _ := l.Size(ctx); n < 17; n++ {
		if _, err := g.ledger.Append(ctx, ledgertest.Entry(int(n))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.WaitCheckpoint(ctx, 17); err != nil {
		t.Fatal(err)
	}
	var blobs [][]byte
	if err := g.db.Raw("SELECT hashes FROM ledger_entries WHERE idx = 16").Scan(&blobs).Error; err != nil || len(blobs) != 1 {
		t.Fatalf("read hashes: %v", err)
	}
	h := bytes.Clone(blobs[0])
	h[0] ^= 1
	if err := g.db.Exec("UPDATE ledger_entries SET hashes = ? WHERE idx = 16", h).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := g.ledger.Append(ctx, ledgertest.Entry(17)); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := l.WaitCheckpoint(wctx, 18); !errors.Is(err, gormlog.ErrInconsistent) {
		t.Fatalf("WaitCheckpoint = %v, want ErrInconsistent", err)
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d %s after a refused checkpoint, want 503", code, body)
	}
}

// TestServeRefusesRolledBackLog: a database rolled back with its
// checkpoints kept stops the gateway from starting, naming the entry.
func TestServeRefusesRolledBackLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	g, err := openTestGatewayCfg(t, dir, "127.0.0.1:18080", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"hosp-a", "hosp-b", "hosp-c"} {
		registerTestOrg(t, g, id)
	}
	if err := g.close(); err != nil {
		t.Fatal(err)
	}
	raw, err := database.Open(t.Context(), filepath.Join(dir, "healthgw.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Exec("DELETE FROM ledger_entries WHERE idx >= 1").Error; err != nil {
		t.Fatal(err)
	}
	if err := raw.Exec("UPDATE ledger_head SET size = 1").Error; err != nil {
		t.Fatal(err)
	}
	_ = database.Close(raw)
	_, err = openTestGatewayCfg(t, dir, "127.0.0.1:18081", nil)
	if !errors.Is(err, gormlog.ErrInconsistent) || !strings.Contains(err.Error(), "entry 1:") {
		t.Fatalf("start on a rolled-back log: %v, want a refusal naming entry 1", err)
	}
}
