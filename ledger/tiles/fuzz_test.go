package tiles_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/ledger/tiles"
)

// newMemLog returns the shared in-memory log with n entries (raw leaves:
// the handler serves any bytes), published under a checkpoint.
func newMemLog(t testing.TB, n int) *ledgertest.MemLog {
	skey, _, err := ledger.GenerateCheckpointKey("example.org/fuzz")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	m := &ledgertest.MemLog{Signer: s}
	for i := range n {
		if _, err := m.MemStore().AppendRaw(fmt.Appendf(nil, "entry %d", i), ledger.Envelope{}); err != nil {
			t.Fatal(err)
		}
	}
	m.Publish()
	return m
}

// FuzzHandler: request paths are untrusted. The handler never panics or
// fails with 500, and serves only canonical tile paths of the right size.
func FuzzHandler(f *testing.F) {
	h := tiles.New(newMemLog(f, 600), tiles.Options{Prefix: "/ledger"})
	for _, p := range []string{"checkpoint", "tile/0/000", "tile/0/002.p/88", "tile/1/000.p/2", "tile/entries/001",
		"tile/entries/x001/234.p/5", "tile/0/x000/000", "tile/00/000", "tile/0/000.p/0"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = "/ledger/" + p
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusNotFound:
		default:
			t.Fatalf("%q: status %d", p, rec.Code)
		}
		if rec.Code != http.StatusOK || p == "checkpoint" {
			return
		}
		if rest, ok := strings.CutPrefix(p, "tile/entries/"); ok {
			n, w, err := layout.ParseTileIndexPartial(rest)
			if err != nil || layout.EntriesPath(n, w) != p {
				t.Fatalf("served a non-canonical bundle path %q", p)
			}
			return
		}
		level, index, _ := strings.Cut(strings.TrimPrefix(p, "tile/"), "/")
		l, n, w, err := layout.ParseTileLevelIndexPartial(level, index)
		if err != nil || layout.TilePath(l, n, w) != p {
			t.Fatalf("served a non-canonical tile path %q", p)
		}
		want := int(w)
		if w == 0 {
			want = layout.TileWidth
		}
		if rec.Body.Len() != want*tlog.HashSize {
			t.Fatalf("%q: %d bytes, want %d", p, rec.Body.Len(), want*tlog.HashSize)
		}
	})
}
