package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/ledger"
)

// LedgerReader is what the ledger routes need from a backend. A reader
// that also opens its entries (EntryOpener: ledger.Node) serves each
// entry's body to the callers entitled to it.
type LedgerReader interface {
	ledger.Reader
	ledger.Prover
}

// EntryOpener opens an entry for serving its body (ledger.Node.Open); it
// returns ledger.ErrNotRecipient for an entry sealed to other gateways.
type EntryOpener interface {
	Open(ctx context.Context, index uint64) (ledger.Opened, error)
}

var _ EntryOpener = (*ledger.Node)(nil)

// EntryBodies decides which opening of an entry a caller may see
// (access.Queries.Body): none (false) unless the caller is entitled.
type EntryBodies interface {
	Body(ctx context.Context, v auth.Principal, o ledger.Opened) (ledger.Opening, bool, error)
}

var _ EntryBodies = (*access.Queries)(nil)

// MountLedger mounts the authenticated ledger read API under /v1/ledger
// and, when tiles is not nil, the public C2SP tlog-tiles API under
// /ledger/.
func (s *Server) MountLedger(l LedgerReader, tiles http.Handler) {
	s.ledger = l
	s.addErrorRules(
		errorRule{target: ledger.ErrNotFound, status: http.StatusNotFound, code: "not_found", message: "No such entry or tree size."},
		errorRule{target: ledger.ErrInvalidRange, status: http.StatusBadRequest, code: "invalid_request", message: "Invalid index or tree size."},
		errorRule{target: ledger.ErrUnavailable, status: http.StatusServiceUnavailable, code: "unavailable", message: "The ledger is unavailable. If this was a write, its outcome is unknown: it may still be recorded, so look it up (list your records or consents) before you repeat it."},
		errorRule{target: ledger.ErrClosed, status: http.StatusServiceUnavailable, code: "unavailable", message: "The ledger is shutting down."},
	)
	g := s.engine.Group("/v1/ledger", s.authenticate)
	g.GET("/checkpoint", s.getCheckpoint)
	g.GET("/entries/:index", s.getEntry)
	g.GET("/proofs/consistency", s.getConsistency)
	if tiles != nil {
		h := gin.WrapH(http.StripPrefix("/ledger", tiles))
		s.engine.GET("/ledger/*path", h)
		s.engine.HEAD("/ledger/*path", h)
	}
}

func (s *Server) getCheckpoint(c *gin.Context) {
	note, err := s.ledger.Checkpoint(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "text/plain; charset=utf-8", note)
}

// EntryProof is an entry with its inclusion proof (see client.EntryProof).
type EntryProof = client.EntryProof

func parseUint(s, name string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, badRequest(name + " must be a non-negative integer.")
	}
	return n, nil
}

func (s *Server) getEntry(c *gin.Context) {
	index, err := parseUint(c.Param("index"), "index")
	if err != nil {
		s.fail(c, err)
		return
	}
	var size uint64
	if v := c.Query("tree_size"); v != "" {
		if size, err = parseUint(v, "tree_size"); err != nil {
			s.fail(c, err)
			return
		}
	}
	ctx := c.Request.Context()
	p, err := s.entryProof(ctx, index, size)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.addBody(ctx, principal(c), &p); err != nil {
		s.fail(c, err)
		return
	}
	s.exactJSON(c, http.StatusOK, p)
}

// addBody adds entry p's header and opening when the caller is entitled
// to its body (EntryBodies). Every caller's request opens the entry, so
// that the work does not depend on who asks; one not entitled gets the
// leaf and the proof only, exactly as for an entry this gateway cannot
// open, never an error that would say the body is interesting.
func (s *Server) addBody(ctx context.Context, v Principal, p *EntryProof) error {
	o, ok := s.ledger.(EntryOpener)
	if !ok {
		return nil
	}
	op, err := o.Open(ctx, p.Index)
	switch {
	case errors.Is(err, ledger.ErrNotRecipient):
		return nil
	case err != nil:
		return err
	}
	bodies, ok := s.consent.Queries.(EntryBodies)
	if !ok {
		return nil
	}
	opening, ok, err := bodies.Body(ctx, v, op)
	if err != nil || !ok {
		return err
	}
	b, err := ledger.EncodeOpening(opening)
	if err != nil {
		return err
	}
	p.Header, p.Opening = op.Header, b
	return nil
}

// exactJSON writes v as JSON without escaping HTML characters, so that the
// canonical bytes an EntryProof carries (json.RawMessage: the leaf, the
// header and the opening, whose statement may hold "<", ">" or "&") reach
// the client byte for byte, as their hashes need; gin's JSON would
// rewrite them as \u003c and so on.
func (s *Server) exactJSON(c *gin.Context, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.fail(c, fmt.Errorf("encode response: %w", err))
		return
	}
	c.Data(status, "application/json; charset=utf-8", buf.Bytes())
}

// receiptTimeout bounds the wait for a checkpoint that covers a new entry.
const receiptTimeout = 5 * time.Second

// entryProof proves entry index in the tree of size (0: the latest
// checkpoint's, waiting for one that covers the entry if needed).
func (s *Server) entryProof(ctx context.Context, index, size uint64) (EntryProof, error) {
	ctx, cancel := context.WithTimeout(ctx, receiptTimeout)
	defer cancel()
	n, err := s.ledger.Size(ctx)
	if err != nil {
		return EntryProof{}, err
	}
	if index >= n || size > n {
		return EntryProof{}, errNotFound
	}
	r, err := ledger.ProveEntry(ctx, s.ledger, index, size)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return EntryProof{}, fmt.Errorf("%w: %w", ledger.ErrUnavailable, err)
		}
		return EntryProof{}, err
	}
	root, err := ledger.TreeHash(ctx, s.ledger, r.TreeSize)
	if err != nil {
		return EntryProof{}, err
	}
	cp := r.Checkpoint
	if cp == nil {
		if cp, err = s.ledger.Checkpoint(ctx); err != nil {
			return EntryProof{}, err
		}
	}
	proof := r.Proof
	if proof == nil {
		proof = tlog.RecordProof{}
	}
	return EntryProof{
		Index: r.Index, TreeSize: r.TreeSize, Entry: r.Entry, LeafHash: tlog.RecordHash(r.Entry),
		Proof: proof, RootHash: root, Checkpoint: string(cp),
	}, nil
}

// ConsistencyProof is a consistency proof (see client.ConsistencyProof).
type ConsistencyProof = client.ConsistencyProof

func (s *Server) getConsistency(c *gin.Context) {
	from, err := parseUint(c.Query("from"), "from")
	if err != nil {
		s.fail(c, err)
		return
	}
	var to uint64 // 0: the latest checkpoint
	if v := c.Query("to"); v != "" {
		if to, err = parseUint(v, "to"); err != nil {
			s.fail(c, err)
			return
		}
	}
	if from == 0 || (to != 0 && from > to) {
		s.fail(c, badRequest("Need 0 < from <= to."))
		return
	}
	ctx := c.Request.Context()
	proof, to, err := ledger.ProveConsistency(ctx, s.ledger, from, to)
	if err != nil {
		s.fail(c, err)
		return
	}
	fromRoot, err := ledger.TreeHash(ctx, s.ledger, from)
	if err != nil {
		s.fail(c, err)
		return
	}
	toRoot, err := ledger.TreeHash(ctx, s.ledger, to)
	if err != nil {
		s.fail(c, err)
		return
	}
	if proof == nil {
		proof = []tlog.Hash{}
	}
	c.JSON(http.StatusOK, ConsistencyProof{From: from, To: to, FromRoot: fromRoot, ToRoot: toRoot, Proof: proof})
}
