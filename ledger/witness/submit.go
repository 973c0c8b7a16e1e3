package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// Endpoint is a witness a log submits to: its base URL (add-checkpoint is
// under it) and its cosignature verifier key.
type Endpoint struct {
	URL      string
	Verifier note.Verifier
}

// ParseEndpoint parses "<vkey>@<url>", as the gateway's --witness flag
// takes it.
func ParseEndpoint(s string) (Endpoint, error) {
	vkey, u, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return Endpoint{}, fmt.Errorf("witness %q: want <verifier key>@<url>", s)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		return Endpoint{}, err
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return Endpoint{}, fmt.Errorf("witness %q: not an http(s) URL", u)
	}
	return Endpoint{URL: u, Verifier: v}, nil
}

// Source is what a Submitter needs from a log.
type Source interface {
	Checkpoint(ctx context.Context) ([]byte, error)
	tlog.HashReader
}

// Submitter sends a log's checkpoints to its witnesses and keeps the
// latest checkpoint with the cosignatures collected.
type Submitter struct {
	src       Source
	endpoints []Endpoint
	client    *http.Client
	logger    *slog.Logger

	mu       sync.Mutex
	sizes    []uint64 // what each witness is believed to have
	cosigned []byte   // latest checkpoint with its cosignatures
	size     uint64
	last     []byte // latest checkpoint submitted
}

// DefaultTimeout bounds one add-checkpoint request.
const DefaultTimeout = 10 * time.Second

// NewSubmitter returns a submitter of src's checkpoints to endpoints.
// client may be nil.
func NewSubmitter(src Source, endpoints []Endpoint, client *http.Client, logger *slog.Logger) *Submitter {
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Submitter{src: src, endpoints: endpoints, client: client, logger: logger, sizes: make([]uint64, len(endpoints))}
}

// Submit sends the log's latest checkpoint to every witness (unless it was
// already sent) and returns how many cosigned it. Witnesses that fail are
// logged; the checkpoint is then served with the cosignatures it got.
func (s *Submitter) Submit(ctx context.Context) (int, error) {
	raw, err := s.src.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	c, err := ledger.ParseCheckpoint(raw)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	if bytes.Equal(raw, s.last) {
		s.mu.Unlock()
		return 0, nil
	}
	s.mu.Unlock()
	sigs := make([][]byte, len(s.endpoints))
	var wg sync.WaitGroup
	for i, ep := range s.endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sig, err := s.submitOne(ctx, i, ep, c, raw)
			if err != nil {
				s.logger.Warn("witness did not cosign", slog.String("witness", ep.URL), slog.Uint64("size", c.Size), slog.String("err", err.Error()))
				return
			}
			sigs[i] = sig
		}()
	}
	wg.Wait()
	out := bytes.Clone(raw)
	n := 0
	for _, sig := range sigs {
		if sig != nil {
			out = append(out, sig...)
			n++
		}
	}
	s.mu.Lock()
	if c.Size >= s.size {
		s.cosigned, s.size, s.last = out, c.Size, raw
	}
	s.mu.Unlock()
	return n, nil
}

// submitOne submits raw to witness i, retrying once with the size the
// witness reports on a conflict, and checks the cosignature it returns.
func (s *Submitter) submitOne(ctx context.Context, i int, ep Endpoint, c ledger.Checkpoint, raw []byte) ([]byte, error) {
	s.mu.Lock()
	old := s.sizes[i]
	s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if old > c.Size {
			return nil, fmt.Errorf("the witness has size %d, beyond this checkpoint's %d", old, c.Size)
		}
		var p tlog.TreeProof
		if old > 0 && old < c.Size {
			var err error
			if p, err = ledger.ConsistencyProof(ctx, s.src, old, c.Size); err != nil {
				return nil, err
			}
		}
		hashes := make([][]byte, len(p))
		for j := range p {
			hashes[j] = p[j][:]
		}
		sig, size, err := s.post(ctx, ep, FormatAddCheckpoint(old, hashes, raw))
		var conflict *ConflictError
		if errors.As(err, &conflict) && attempt == 0 {
			old = size
			continue
		}
		if err != nil {
			return nil, err
		}
		// The cosignature must verify over this checkpoint.
		if _, err := note.Open(append(bytes.Clone(raw), sig...), note.VerifierList(ep.Verifier)); err != nil {
			return nil, fmt.Errorf("the witness's cosignature does not verify: %w", err)
		}
		s.mu.Lock()
		s.sizes[i] = c.Size
		s.mu.Unlock()
		return sig, nil
	}
}

// maxResponse bounds a witness's response.
const maxResponse = 8 << 10

func (s *Submitter) post(ctx context.Context, ep Endpoint, body []byte) ([]byte, uint64, error) {
	u, err := url.JoinPath(ep.URL, "add-checkpoint")
	if err != nil {
		return nil, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, 0, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return b, 0, nil
	case http.StatusConflict:
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("witness conflict without a size: %q", b)
		}
		return nil, n, &ConflictError{Size: n}
	default:
		return nil, 0, fmt.Errorf("witness answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
}

// Cosigned returns the latest checkpoint submitted, with the cosignatures
// collected, or nil before the first Submit.
func (s *Submitter) Cosigned() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.cosigned)
}

// Run submits every new checkpoint until ctx ends, checking every
// interval.
func (s *Submitter) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Submit(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("witness submission", slog.String("err", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CosignedLog is a log whose Checkpoint carries the witnesses'
// cosignatures when the submitter has them for the latest checkpoint.
type CosignedLog struct {
	ledger.Log
	S *Submitter
}

// Checkpoint returns the latest checkpoint submitted to the witnesses,
// with their cosignatures (which may lag the log's latest by one
// submission), or the log's latest before the first submission.
func (l CosignedLog) Checkpoint(ctx context.Context) ([]byte, error) {
	if cs := l.S.Cosigned(); cs != nil {
		return cs, nil
	}
	return l.Log.Checkpoint(ctx)
}
