// Package witness implements both sides of C2SP tlog-witness for healthgw
// logs: a Witness (what `healthgw witness serve` runs) keeps the latest
// checkpoint it has seen for each log it knows (origin and log key), checks
// that every new checkpoint is consistent with it, and cosigns it with a
// C2SP tlog-cosignature/v1 key; a Submitter (what the gateway runs) sends
// each new checkpoint with its consistency proof to its witnesses and keeps
// the checkpoint with the cosignatures it collected, which the gateway then
// serves.
//
// A witness that has seen one checkpoint of a log never cosigns another of
// the same size with a different root, nor any that is not an extension of
// it: a log that shows different histories to different parties (a split
// view) cannot collect cosignatures for both.
//
// Cosignatures use transparency-dev/formats (note.NewSignerForCosignatureV1)
// and consistency proofs transparency-dev/merkle/proof.
package witness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/ledger"
)

// Errors of AddCheckpoint, each mapped to the C2SP tlog-witness status.
var (
	// ErrUnknownLog: no log with the checkpoint's origin is configured (404).
	ErrUnknownLog = errors.New("witness: unknown log")
	// ErrBadSignature: the checkpoint is not signed by the log's key (403).
	ErrBadSignature = errors.New("witness: checkpoint not signed by the log")
	// ErrBadRequest: the request is malformed (400).
	ErrBadRequest = errors.New("witness: bad request")
	// ErrInconsistent: the consistency proof does not hold, or a
	// checkpoint of the size already seen has another root (422). This is
	// what a split view looks like.
	ErrInconsistent = errors.New("witness: checkpoint not consistent with the one seen before")
)

// ConflictError: the request's old size is not the size of the latest
// checkpoint the witness has for the log (409, with the witness's size so
// that the log can retry).
type ConflictError struct{ Size uint64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("witness: old size does not match, the witness is at size %d", e.Size)
}

// Log is a log a witness follows: its origin and its checkpoint key.
type Log struct {
	Origin   string
	Verifier note.Verifier
}

// logRow is the latest checkpoint a witness cosigned for one log.
type logRow struct {
	Origin     string    `gorm:"column:origin;primaryKey"`
	KeyHash    int64     `gorm:"column:key_hash;not null"`
	Size       int64     `gorm:"column:size;not null"`
	Hash       []byte    `gorm:"column:hash;not null"`
	Checkpoint []byte    `gorm:"column:checkpoint;not null"`
	UpdatedAt  time.Time `gorm:"column:updated_at;not null"`
}

func (logRow) TableName() string { return "witness_logs" }

// Witness cosigns checkpoints of the logs it knows.
type Witness struct {
	db     *gorm.DB
	signer note.Signer
	logs   map[string]Log
	logger *slog.Logger
	mu     sync.Mutex // serialises updates (the row update is also conditional)
}

// New returns a witness that stores its state in db (tables are created
// if missing), cosigns with skey (a note signer key; see GenerateKey) and
// follows logs.
func New(ctx context.Context, db *gorm.DB, skey string, logs []Log, logger *slog.Logger) (*Witness, error) {
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Witness{db: db, signer: s, logs: map[string]Log{}, logger: logger}
	for _, l := range logs {
		if l.Origin == "" || l.Verifier == nil {
			return nil, errors.New("witness: a log needs an origin and a verifier key")
		}
		if _, dup := w.logs[l.Origin]; dup {
			return nil, fmt.Errorf("witness: log %q given twice", l.Origin)
		}
		w.logs[l.Origin] = l
	}
	if err := db.WithContext(ctx).AutoMigrate(&logRow{}); err != nil {
		return nil, fmt.Errorf("witness: migrate: %w", err)
	}
	return w, nil
}

// GenerateKey returns a new witness key pair named name: the signer key
// and its cosignature/v1 verifier key (what logs and verifiers configure).
func GenerateKey(name string) (skey, vkey string, err error) {
	skey, _, err = ledger.GenerateCheckpointKey(name)
	if err != nil {
		return "", "", err
	}
	vkey, err = VerifierKey(skey)
	return skey, vkey, err
}

// VerifierKey returns the cosignature/v1 verifier key of witness signer key
// skey.
func VerifierKey(skey string) (string, error) {
	v, err := ledger.VerifierKey(skey)
	if err != nil {
		return "", err
	}
	return fnote.VKeyToCosignatureV1(v)
}

// NewVerifier parses a witness's cosignature/v1 verifier key (a plain
// Ed25519 note verifier key is accepted too and treated as one).
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := fnote.NewVerifierForCosignatureV1(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	return v, nil
}

// AddCheckpoint is C2SP tlog-witness add-checkpoint: raw is a checkpoint
// of a known log, oldSize the size of the latest checkpoint of that log
// the submitter believes the witness has, and p the consistency proof from
// oldSize to raw's size. It returns the witness's cosignature line(s).
func (w *Witness) AddCheckpoint(ctx context.Context, oldSize uint64, p [][]byte, raw []byte) ([]byte, error) {
	origin, _, _ := bytes.Cut(raw, []byte("\n"))
	l, ok := w.logs[string(origin)]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLog, origin)
	}
	c, err := ledger.OpenCheckpoint(raw, l.Verifier, l.Origin)
	if errors.Is(err, ledger.ErrBadSignature) {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if oldSize > c.Size {
		return nil, fmt.Errorf("%w: old size %d beyond the checkpoint's %d", ErrBadRequest, oldSize, c.Size)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var rows []logRow
	if err := w.db.WithContext(ctx).Where("origin = ?", l.Origin).Limit(1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("witness: read state: %w", err)
	}
	var seen *logRow
	if len(rows) == 1 {
		seen = &rows[0]
	}
	var have uint64
	if seen != nil {
		have = uint64(seen.Size)
	}
	if oldSize != have {
		return nil, &ConflictError{Size: have}
	}
	if seen != nil && have > 0 {
		if have == c.Size {
			if !bytes.Equal(seen.Hash, c.Hash[:]) || len(p) != 0 {
				return nil, fmt.Errorf("%w: another root for size %d", ErrInconsistent, have)
			}
		} else if err := proof.VerifyConsistency(rfc6962.DefaultHasher, have, c.Size, p, seen.Hash, c.Hash[:]); err != nil {
			return nil, fmt.Errorf("%w: %d -> %d: %v", ErrInconsistent, have, c.Size, err)
		}
	} else if len(p) != 0 {
		return nil, fmt.Errorf("%w: a proof from size 0", ErrBadRequest)
	}
	if err := w.store(ctx, seen, l, c, raw); err != nil {
		return nil, err
	}
	return w.cosign(raw)
}

// store records c as the latest checkpoint of l, if the state is still
// seen (another process may share the database).
func (w *Witness) store(ctx context.Context, seen *logRow, l Log, c ledger.Checkpoint, raw []byte) error {
	row := logRow{Origin: l.Origin, KeyHash: int64(l.Verifier.KeyHash()), Size: int64(c.Size), Hash: c.Hash[:], Checkpoint: raw, UpdatedAt: time.Now().UTC()}
	db := w.db.WithContext(ctx)
	if seen == nil {
		res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return fmt.Errorf("witness: store state: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return &ConflictError{Size: 0}
		}
		return nil
	}
	if seen.Size == row.Size {
		return nil
	}
	res := db.Model(&logRow{}).Where("origin = ? AND size = ?", l.Origin, seen.Size).
		Updates(map[string]any{"size": row.Size, "hash": row.Hash, "checkpoint": row.Checkpoint, "updated_at": row.UpdatedAt, "key_hash": row.KeyHash})
	if res.Error != nil {
		return fmt.Errorf("witness: store state: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return &ConflictError{Size: uint64(seen.Size)}
	}
	return nil
}

// cosign returns the witness's signature line for checkpoint raw.
func (w *Witness) cosign(raw []byte) ([]byte, error) {
	text, _, ok := bytes.Cut(raw, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: not a signed note", ErrBadRequest)
	}
	signed, err := note.Sign(&note.Note{Text: string(text) + "\n"}, w.signer)
	if err != nil {
		return nil, fmt.Errorf("witness: cosign: %w", err)
	}
	_, sig, _ := bytes.Cut(signed, []byte("\n\n"))
	return sig, nil
}

// maxRequest bounds an add-checkpoint body (a checkpoint and a proof of at
// most 63 hashes).
const maxRequest = 16 << 10

// Handler serves POST /add-checkpoint (C2SP tlog-witness).
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", w.serveAdd)
	return mux
}

func (w *Witness) serveAdd(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
	if err != nil || len(body) > maxRequest {
		http.Error(rw, "request too large or unreadable", http.StatusBadRequest)
		return
	}
	oldSize, p, raw, err := ParseAddCheckpoint(body)
	if err == nil {
		var sig []byte
		if sig, err = w.AddCheckpoint(r.Context(), oldSize, p, raw); err == nil {
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = rw.Write(sig)
			return
		}
	}
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", conflict.Size)
	case errors.Is(err, ErrUnknownLog):
		http.Error(rw, "unknown log", http.StatusNotFound)
	case errors.Is(err, ErrBadSignature):
		http.Error(rw, "checkpoint signature not valid", http.StatusForbidden)
	case errors.Is(err, ErrInconsistent):
		w.logger.Warn("witness refused an inconsistent checkpoint", slog.String("err", err.Error()))
		http.Error(rw, "checkpoint not consistent with the one seen before", http.StatusUnprocessableEntity)
	case errors.Is(err, ErrBadRequest):
		http.Error(rw, err.Error(), http.StatusBadRequest)
	default:
		w.logger.Error("witness add-checkpoint", slog.String("err", err.Error()))
		http.Error(rw, "internal error", http.StatusInternalServerError)
	}
}

// FormatAddCheckpoint returns the body of an add-checkpoint request.
func FormatAddCheckpoint(oldSize uint64, p [][]byte, raw []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", oldSize)
	for _, h := range p {
		b.WriteString(base64.StdEncoding.EncodeToString(h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(raw)
	return b.Bytes()
}

// ParseAddCheckpoint parses an add-checkpoint request body.
func ParseAddCheckpoint(body []byte) (oldSize uint64, p [][]byte, raw []byte, err error) {
	rd := bufio.NewReader(bytes.NewReader(body))
	line, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "old ") {
		return 0, nil, nil, fmt.Errorf("%w: want an \"old <size>\" line", ErrBadRequest)
	}
	oldSize, err = strconv.ParseUint(strings.TrimSuffix(line[4:], "\n"), 10, 64)
	if err != nil || oldSize > 1<<62 {
		return 0, nil, nil, fmt.Errorf("%w: old size", ErrBadRequest)
	}
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return 0, nil, nil, fmt.Errorf("%w: no empty line before the checkpoint", ErrBadRequest)
		}
		if line == "\n" {
			break
		}
		h, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(line, "\n"))
		if err != nil || len(h) != 32 || len(p) >= 63 {
			return 0, nil, nil, fmt.Errorf("%w: proof line", ErrBadRequest)
		}
		p = append(p, h)
	}
	raw, _ = io.ReadAll(rd)
	return oldSize, p, raw, nil
}
