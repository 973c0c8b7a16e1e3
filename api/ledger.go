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
	tlogfmt "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// LedgerReader is what the ledger routes need from a backend.
type LedgerReader interface {
	ledger.Reader
	ledger.Prover
}

// MountLedger mounts the authenticated ledger read API under /v1/ledger
// and, when tiles is not nil, the public C2SP tlog-tiles API under
// /ledger/.
func (s *Server) MountLedger(l LedgerReader, tiles http.Handler) {
	s.ledger = l
	s.addErrorRules(
		errorRule{target: ledger.ErrNotFound, status: http.StatusNotFound, code: "not_found", message: "No such entry or tree size."},
		errorRule{target: ledger.ErrInvalidRange, status: http.StatusBadRequest, code: "invalid_request", message: "Invalid index or tree size."},
		errorRule{target: ledger.ErrUnavailable, status: http.StatusServiceUnavailable, code: "unavailable", message: "The ledger is unavailable; nothing was recorded."},
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

// checkpointSize parses the tree size out of a signed checkpoint note. The
// signature is not checked: the note is our own backend's.
func checkpointSize(note []byte) (uint64, tlog.Hash, error) {
	body, _, ok := bytes.Cut(note, []byte("\n\n"))
	if !ok {
		return 0, tlog.Hash{}, errors.New("checkpoint: no signature block")
	}
	var cp tlogfmt.Checkpoint
	if _, err := cp.Unmarshal(append(body, '\n')); err != nil {
		return 0, tlog.Hash{}, fmt.Errorf("checkpoint: %w", err)
	}
	var h tlog.Hash
	copy(h[:], cp.Hash)
	return cp.Size, h, nil
}

// EntryProof is an entry with its inclusion proof in a tree of TreeSize
// entries whose root is RootHash; Checkpoint is the latest signed
// checkpoint (whose size may be larger).
type EntryProof struct {
	Index      uint64          `json:"index"`
	TreeSize   uint64          `json:"tree_size"`
	Entry      json.RawMessage `json:"entry"`
	LeafHash   tlog.Hash       `json:"leaf_hash"`
	Proof      []tlog.Hash     `json:"inclusion_proof"`
	RootHash   tlog.Hash       `json:"root_hash"`
	Checkpoint string          `json:"checkpoint"`
}

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
	p, err := s.entryProof(c.Request.Context(), index, size)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// entryProof builds an EntryProof at size (0 = the latest checkpoint's).
func (s *Server) entryProof(ctx context.Context, index, size uint64) (EntryProof, error) {
	note, err := s.ledger.Checkpoint(ctx)
	if err != nil {
		return EntryProof{}, err
	}
	cpSize, _, err := checkpointSize(note)
	if err != nil {
		return EntryProof{}, err
	}
	if size == 0 {
		size = cpSize
	}
	n, err := s.ledger.Size(ctx)
	if err != nil {
		return EntryProof{}, err
	}
	if size > n || index >= size {
		return EntryProof{}, errNotFound
	}
	raw, err := s.ledger.Entries(ctx, index, index+1)
	if err != nil {
		return EntryProof{}, err
	}
	proof, err := tlog.ProveRecord(int64(size), int64(index), s.ledger)
	if err != nil {
		return EntryProof{}, fmt.Errorf("inclusion proof: %w", err)
	}
	root, err := tlog.TreeHash(int64(size), s.ledger)
	if err != nil {
		return EntryProof{}, fmt.Errorf("tree hash: %w", err)
	}
	if proof == nil {
		proof = []tlog.Hash{}
	}
	return EntryProof{
		Index:      index,
		TreeSize:   size,
		Entry:      raw[0],
		LeafHash:   tlog.RecordHash(raw[0]),
		Proof:      proof,
		RootHash:   root,
		Checkpoint: string(note),
	}, nil
}

// waitCovered returns the first checkpoint that covers index, waiting for
// the next publication if needed.
func (s *Server) waitCovered(ctx context.Context, index uint64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		note, err := s.ledger.Checkpoint(ctx)
		if err != nil {
			return nil, err
		}
		size, _, err := checkpointSize(note)
		if err != nil {
			return nil, err
		}
		if size > index {
			return note, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: no checkpoint covers entry %d yet", ledger.ErrUnavailable, index)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ConsistencyProof proves that the tree of size To extends the tree of size
// From.
type ConsistencyProof struct {
	From     uint64      `json:"from"`
	To       uint64      `json:"to"`
	FromRoot tlog.Hash   `json:"from_root"`
	ToRoot   tlog.Hash   `json:"to_root"`
	Proof    []tlog.Hash `json:"consistency_proof"`
}

func (s *Server) getConsistency(c *gin.Context) {
	from, err := parseUint(c.Query("from"), "from")
	if err != nil {
		s.fail(c, err)
		return
	}
	to, err := parseUint(c.Query("to"), "to")
	if err != nil {
		s.fail(c, err)
		return
	}
	if from == 0 || from > to {
		s.fail(c, badRequest("Need 0 < from <= to."))
		return
	}
	ctx := c.Request.Context()
	n, err := s.ledger.Size(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	if to > n {
		s.fail(c, errNotFound)
		return
	}
	proof, err := tlog.ProveTree(int64(to), int64(from), s.ledger)
	if err != nil {
		s.fail(c, fmt.Errorf("consistency proof: %w", err))
		return
	}
	fromRoot, err := tlog.TreeHash(int64(from), s.ledger)
	if err != nil {
		s.fail(c, err)
		return
	}
	toRoot, err := tlog.TreeHash(int64(to), s.ledger)
	if err != nil {
		s.fail(c, err)
		return
	}
	if proof == nil {
		proof = []tlog.Hash{}
	}
	c.JSON(http.StatusOK, ConsistencyProof{From: from, To: to, FromRoot: fromRoot, ToRoot: toRoot, Proof: proof})
}
