// Package tiles serves a ledger in the C2SP tlog-tiles layout
// (https://c2sp.org/tlog-tiles) over net/http, so that standard
// transparency-log clients, witnesses and `healthgw ledger verify` can
// follow and audit it:
//
//	checkpoint                   the latest signed checkpoint (text/plain)
//	tile/<L>/<N>[.p/<W>]         hash tiles of height 8
//	tile/entries/<N>[.p/<W>]     entry bundles: per entry, a 2-byte
//	                             big-endian length and the entry's bytes
//
// N is written in groups of three digits ("x001/x234/067"). Full tiles
// never change and are served as immutable; partial tiles and the
// checkpoint are short-lived. Paths are parsed with tessera's api/layout
// and hash tiles are read with golang.org/x/mod/sumdb/tlog.ReadTileData.
package tiles

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// Log is what the handler reads.
type Log interface {
	Size(ctx context.Context) (uint64, error)
	Entries(ctx context.Context, start, end uint64) ([][]byte, error)
	Checkpoint(ctx context.Context) ([]byte, error)
	tlog.HashReader
}

// contextHashReader is implemented by logs whose hash reads can be bound
// to a request's context (gormlog.Log).
type contextHashReader interface {
	HashReader(ctx context.Context) tlog.HashReader
}

// Cache-Control values.
const (
	CacheImmutable = "public, max-age=31536000, immutable"
	CachePartial   = "public, max-age=5"
	CacheNone      = "no-cache"
)

// Options configures the handler.
type Options struct {
	// Prefix is stripped from request paths before they are matched, for
	// example "/ledger" when mounted at /ledger/. Default: none.
	Prefix string
	// Logger: default slog.Default().
	Logger *slog.Logger
}

// Handler serves one log.
type Handler struct {
	log    Log
	prefix string
	logger *slog.Logger
}

var _ http.Handler = (*Handler)(nil)

// New returns a handler serving l.
func New(l Log, opts Options) *Handler {
	h := &Handler{log: l, prefix: strings.TrimSuffix(opts.Prefix, "/"), logger: opts.Logger}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	p = strings.TrimPrefix(p, "/")
	switch {
	case p == layout.CheckpointPath:
		h.serveCheckpoint(w, r)
	case strings.HasPrefix(p, "tile/entries/"):
		h.serveBundle(w, r, strings.TrimPrefix(p, "tile/entries/"))
	case strings.HasPrefix(p, "tile/"):
		level, index, _ := strings.Cut(strings.TrimPrefix(p, "tile/"), "/")
		h.serveTile(w, r, level, index)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := h.log.Checkpoint(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", CacheNone)
	h.write(w, r, "text/plain; charset=utf-8", cp)
}

// width returns how many of a tile's 256 slots are requested and the
// cache policy for it.
func width(p uint8) (uint64, string) {
	if p == 0 {
		return layout.TileWidth, CacheImmutable
	}
	return uint64(p), CachePartial
}

func (h *Handler) serveBundle(w http.ResponseWriter, r *http.Request, index string) {
	n, p, err := layout.ParseTileIndexPartial(index)
	// Only the canonical spelling of a path is served (no "x000/" prefix).
	if err != nil || n > (1<<62)/layout.EntryBundleWidth || layout.EntriesPath(n, p) != "tile/entries/"+index {
		http.NotFound(w, r)
		return
	}
	wd, cache := width(p)
	start := n * layout.EntryBundleWidth
	size, err := h.log.Size(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if start+wd > size {
		http.NotFound(w, r)
		return
	}
	entries, err := h.log.Entries(r.Context(), start, start+wd)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	total := 0
	for _, e := range entries {
		total += 2 + len(e)
	}
	body := make([]byte, 0, total)
	for _, e := range entries {
		if len(e) > 0xffff {
			h.fail(w, r, errors.New("entry too large for a bundle"))
			return
		}
		body = binary.BigEndian.AppendUint16(body, uint16(len(e)))
		body = append(body, e...)
	}
	w.Header().Set("Cache-Control", cache)
	h.write(w, r, "application/octet-stream", body)
}

func (h *Handler) serveTile(w http.ResponseWriter, r *http.Request, level, index string) {
	l, n, p, err := layout.ParseTileLevelIndexPartial(level, index)
	if err != nil || l > 6 || n > (1<<62)/layout.TileWidth || layout.TilePath(l, n, p) != "tile/"+level+"/"+index {
		http.NotFound(w, r)
		return
	}
	wd, cache := width(p)
	size, err := h.log.Size(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Hashes stored at tree level 8l.
	if n*layout.TileWidth+wd > size>>(layout.TileHeight*l) {
		http.NotFound(w, r)
		return
	}
	hr := tlog.HashReader(h.log)
	if c, ok := h.log.(contextHashReader); ok {
		hr = c.HashReader(r.Context())
	}
	t := tlog.Tile{H: layout.TileHeight, L: int(l), N: int64(n), W: int(wd)}
	data, err := tlog.ReadTileData(t, hr)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", cache)
	h.write(w, r, "application/octet-stream", data)
}

func (h *Handler) write(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ledger.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if r.Context().Err() != nil {
		return
	}
	h.logger.Error("ledger tiles", slog.String("path", r.URL.Path), slog.String("err", err.Error()))
	http.Error(w, "internal error", http.StatusInternalServerError)
}
