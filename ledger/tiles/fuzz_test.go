package tiles_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/tiles"
)

// memLog is a fake tiles.Log: tlog's stored hashes in a slice.
type memLog struct {
	entries [][]byte
	hashes  []tlog.Hash
}

func newMemLog(n int) *memLog {
	m := &memLog{}
	for i := range n {
		data := []byte(fmt.Sprintf("entry %d", i))
		hs, err := tlog.StoredHashes(int64(i), data, m)
		if err != nil {
			panic(err)
		}
		m.hashes = append(m.hashes, hs...)
		m.entries = append(m.entries, data)
	}
	return m
}

func (m *memLog) ReadHashes(xs []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(xs))
	for i, x := range xs {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, ledger.ErrNotFound
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memLog) Size(context.Context) (uint64, error) { return uint64(len(m.entries)), nil }

func (m *memLog) Entries(_ context.Context, start, end uint64) ([][]byte, error) {
	if start > end || end > uint64(len(m.entries)) {
		return nil, ledger.ErrNotFound
	}
	return m.entries[start:end], nil
}

func (m *memLog) Checkpoint(context.Context) ([]byte, error) { return []byte("cp\n"), nil }

// FuzzHandler: request paths are untrusted. The handler never panics or
// fails with 500, and serves only canonical tile paths of the right size.
func FuzzHandler(f *testing.F) {
	h := tiles.New(newMemLog(600), tiles.Options{Prefix: "/ledger"})
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
