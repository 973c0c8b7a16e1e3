package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// errNotExist is a 404 from the log.
var errNotExist = errors.New("not found")

// maxResponse bounds one tile or bundle (a full bundle of maximal entries
// is 256 * 64 KiB).
const maxResponse = 256*(ledger.MaxEntrySize+2) + 1024

// fetcher reads a tlog-tiles log over HTTP.
type fetcher struct {
	c    *http.Client
	base *url.URL
}

func (f *fetcher) get(ctx context.Context, p string) ([]byte, error) {
	u := f.base.JoinPath(p)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", p, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("fetch %s: %w", p, errNotExist)
	default:
		return nil, fmt.Errorf("fetch %s: HTTP %d", p, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", p, err)
	}
	if len(b) > maxResponse {
		return nil, fmt.Errorf("fetch %s: response too large", p)
	}
	return b, nil
}

// partial returns the tlog-tiles partial width for a tile of w hashes.
func partial(w int) uint8 {
	if w >= layout.TileWidth {
		return 0
	}
	return uint8(w)
}

// fetchTile fetches a hash tile, falling back from a partial tile to the
// full one (C2SP tlog-tiles lets servers drop partial tiles).
func (f *fetcher) fetchTile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	b, err := f.get(ctx, layout.TilePath(uint64(t.L), uint64(t.N), partial(t.W)))
	if errors.Is(err, errNotExist) && t.W < layout.TileWidth {
		b, err = f.get(ctx, layout.TilePath(uint64(t.L), uint64(t.N), 0))
	}
	if err != nil {
		return nil, err
	}
	if len(b) < t.W*tlog.HashSize {
		return nil, fmt.Errorf("tile %s: %d bytes, want %d", t.Path(), len(b), t.W*tlog.HashSize)
	}
	return b[:t.W*tlog.HashSize], nil
}

// fetchBundle fetches the first w entries of entry bundle n.
func (f *fetcher) fetchBundle(ctx context.Context, n uint64, w int) ([][]byte, error) {
	b, err := f.get(ctx, layout.EntriesPath(n, partial(w)))
	if errors.Is(err, errNotExist) && w < layout.EntryBundleWidth {
		b, err = f.get(ctx, layout.EntriesPath(n, 0))
	}
	if err != nil {
		return nil, err
	}
	var eb api.EntryBundle
	if err := eb.UnmarshalText(b); err != nil {
		return nil, fmt.Errorf("entry bundle %d: %w", n, err)
	}
	if len(eb.Entries) < w {
		return eb.Entries, nil
	}
	return eb.Entries[:w], nil
}

// tileReader is a tlog.TileReader over HTTP that keeps authenticated
// tiles above the leaves (and partial ones), which every leaf tile's
// authentication needs again.
type tileReader struct {
	ctx   context.Context
	f     *fetcher
	mu    sync.Mutex
	saved map[tlog.Tile][]byte
}

func (r *tileReader) Height() int { return layout.TileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		r.mu.Lock()
		b, ok := r.saved[t]
		r.mu.Unlock()
		if ok {
			out[i] = b
			continue
		}
		b, err := r.f.fetchTile(r.ctx, t)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, t := range tiles {
		if t.L > 0 || t.W < layout.TileWidth {
			r.saved[t] = data[i]
		}
	}
}

// Remote audits the log served in the C2SP tlog-tiles layout under base
// (for example "https://gateway.example/ledger/"). It needs o.Verifier.
// client may be nil (http.DefaultClient). With o.Envelopes it also checks
// every entry the checkpoint covers with the bodies o.Bodies serves.
func Remote(ctx context.Context, base string, client *http.Client, o Options) (*Result, error) {
	if o.Verifier == nil {
		return nil, errors.New("verify: a verifier key is required")
	}
	if o.Envelopes && o.Bodies == nil {
		return nil, errors.New("verify: checking envelopes over the tiles needs the bodies (Options.Bodies: a regulator's API)")
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("verify: log URL: %w", err)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if client == nil {
		client = http.DefaultClient
	}
	f := &fetcher{c: client, base: u}

	raw, err := f.get(ctx, layout.CheckpointPath)
	if errors.Is(err, errNotExist) && o.Trusted != nil {
		// The log once had a checkpoint (the trusted one) and now serves
		// none.
		return nil, fail(KindMissing, -1, err, "the log serves no checkpoint although a trusted one exists")
	}
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	latest, err := openCheckpoint(raw, o, "latest checkpoint")
	if err != nil {
		return nil, err
	}
	res := &Result{Checkpoint: latest, Signed: true}
	var checker *entryChecker
	if o.Envelopes {
		checker = newEntryChecker(o, res)
	}
	if res.Cosigned, err = checkWitnesses(raw, o); err != nil {
		return nil, err
	}
	tr := &tileReader{ctx: ctx, f: f, saved: map[tlog.Tile][]byte{}}
	thr := tlog.TileHashReader(tlog.Tree{N: int64(latest.Size), Hash: latest.Hash}, tr)

	if o.Trusted != nil {
		tc, err := openCheckpoint(o.Trusted, o, "trusted checkpoint")
		if err != nil {
			return nil, err
		}
		res.Trusted = &tc
		if tc.Origin != latest.Origin {
			return nil, fail(KindSignature, -1, ledger.ErrWrongOrigin,
				"the trusted checkpoint is for log %q but the log serves one for %q", tc.Origin, latest.Origin)
		}
		if err := checkConsistency(tc, latest, thr); err != nil {
			return nil, err
		}
	}

	rp := newReplay()
	size := latest.Size
	for n := uint64(0); n*layout.EntryBundleWidth < size; n++ {
		first := n * layout.EntryBundleWidth
		w := int(min(size-first, layout.EntryBundleWidth))
		entries, err := f.fetchBundle(ctx, n, w)
		if errors.Is(err, errNotExist) {
			return nil, firstMissing(ctx, f, n, w)
		}
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		if len(entries) < w {
			return nil, fail(KindMissing, int64(first)+int64(len(entries)), nil,
				"entry bundle %d holds %d entries, the checkpoint covers %d", n, len(entries), w)
		}
		xs := make([]int64, w)
		for i := range xs {
			xs[i] = tlog.StoredHashIndex(0, int64(first)+int64(i))
		}
		leaves, err := thr.ReadHashes(xs)
		if errors.Is(err, errNotExist) {
			// A tile the checkpoint needs is gone; its entries are too.
			return nil, missingFrom(ctx, f, n, size, err)
		}
		if err != nil {
			return nil, locateBadTile(ctx, f, n, w, entries, err)
		}
		// The tree first; the bodies of the entries before the first
		// failure then, so that the first bad index is named.
		var treeFail error
		good := len(entries)
		for i, e := range entries {
			leaf, err := rp.add(e, nil)
			if err == nil && leaf != leaves[i] {
				err = fail(KindEntry, int64(first)+int64(i), nil,
					"entry bytes do not match the leaf hash that the signed checkpoint commits to")
			}
			if err != nil {
				treeFail, good = err, i
				break
			}
			if res.Trusted != nil && rp.size() == res.Trusted.Size {
				if err := rp.checkRoot(*res.Trusted, "trusted checkpoint", 0); err != nil {
					treeFail, good = err, i+1
					break
				}
			}
		}
		if checker != nil && good > 0 {
			bodies, err := o.Bodies.Bodies(ctx, first, first+uint64(good))
			if err != nil {
				return nil, fmt.Errorf("verify: bodies [%d, %d): %w", first, first+uint64(good), err)
			}
			if len(bodies) != good {
				return nil, fmt.Errorf("verify: %d bodies for entries [%d, %d)", len(bodies), first, first+uint64(good))
			}
			f, err := checker.checkBodies(first, entries[:good], bodies)
			if err != nil {
				return nil, err
			}
			if f != nil {
				return nil, f
			}
		}
		if treeFail != nil {
			return nil, treeFail
		}
		if o.Progress != nil {
			o.Progress(rp.size(), size)
		}
	}
	if err := rp.checkRoot(latest, "latest checkpoint", 0); err != nil {
		return nil, err
	}
	res.Entries = rp.size()
	res.Types = rp.types
	return res, nil
}

// checkConsistency proves, with hashes authenticated against latest, that
// trusted's tree is a prefix of latest's.
func checkConsistency(trusted, latest ledger.Checkpoint, hr tlog.HashReader) error {
	switch {
	case trusted.Size > latest.Size:
		return fail(KindMissing, int64(latest.Size), nil,
			"the latest checkpoint covers %d entries but the trusted one %d: entries [%d, %d) are gone",
			latest.Size, trusted.Size, latest.Size, trusted.Size)
	case trusted.Size == 0:
		return nil
	case trusted.Size == latest.Size:
		if trusted.Hash != latest.Hash {
			return fail(KindConsistency, -1, nil, "the latest and the trusted checkpoint both have size %d but different roots", latest.Size)
		}
		return nil
	}
	p, err := tlog.ProveTree(int64(latest.Size), int64(trusted.Size), hr)
	if err != nil {
		return fail(KindConsistency, -1, err, "cannot build the consistency proof %d -> %d from the log's tiles", trusted.Size, latest.Size)
	}
	if err := ledger.VerifyConsistency(trusted, latest, p); err != nil {
		return fail(KindConsistency, -1, err,
			"consistency proof failed: the latest checkpoint (size %d) is not an extension of the trusted one (size %d)",
			latest.Size, trusted.Size)
	}
	return nil
}

// firstMissing names the first entry of bundle n (of width w) that the
// server cannot serve, by bisecting partial bundles.
func firstMissing(ctx context.Context, f *fetcher, n uint64, w int) error {
	lo, hi := 0, w // bundle n .p/lo is served (0: trivially); .p/hi is not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if _, err := f.get(ctx, layout.EntriesPath(n, uint8(mid))); err == nil {
			lo = mid
		} else if errors.Is(err, errNotExist) {
			hi = mid
		} else {
			return fmt.Errorf("verify: %w", err)
		}
	}
	first := n * layout.EntryBundleWidth
	return fail(KindMissing, int64(first)+int64(lo), nil, "the log does not serve this entry although the checkpoint covers it")
}

// missingFrom names the first entry at or after bundle n that the server
// cannot serve.
func missingFrom(ctx context.Context, f *fetcher, n, size uint64, cause error) error {
	for ; n*layout.EntryBundleWidth < size; n++ {
		w := int(min(size-n*layout.EntryBundleWidth, layout.EntryBundleWidth))
		_, err := f.fetchBundle(ctx, n, w)
		if errors.Is(err, errNotExist) {
			return firstMissing(ctx, f, n, w)
		}
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	return fail(KindMissing, -1, cause, "a hash tile that the signed checkpoint needs is missing")
}

// locateBadTile explains a leaf tile that does not authenticate against
// the checkpoint: if it disagrees with the entries, the first entry whose
// leaf hash differs is named; otherwise a hash tile above it is wrong.
func locateBadTile(ctx context.Context, f *fetcher, n uint64, w int, entries [][]byte, cause error) error {
	first := int64(n * layout.EntryBundleWidth)
	data, err := f.fetchTile(ctx, tlog.Tile{H: layout.TileHeight, L: 0, N: int64(n), W: w})
	if errors.Is(err, errNotExist) {
		return fail(KindMissing, first, err, "the log does not serve the hash tile for entries [%d, %d)", first, first+int64(w))
	}
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for i, e := range entries {
		var served tlog.Hash
		copy(served[:], data[i*tlog.HashSize:])
		if tlog.RecordHash(e) != served {
			return fail(KindHash, first+int64(i), cause,
				"the log's leaf hash does not match the entry, and its tiles do not match the signed checkpoint")
		}
	}
	return fail(KindRoot, first, cause,
		"the hash tiles above entries [%d, %d) do not match the signed checkpoint", first, first+int64(w))
}
